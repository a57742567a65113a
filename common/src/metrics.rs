//! Prometheus metrics and a health endpoint, in one place for both binaries.
//!
//! [`Metrics`] owns a `prometheus-client` registry; every metric is named
//! `sliver_*` and carries a constant `role` label (`"miner"` or
//! `"validator"`). [`serve`] exposes it over HTTP:
//!
//! | route      | answer |
//! |------------|--------|
//! | `/metrics` | the Prometheus text exposition (format 0.0.4) |
//! | `/health`  | readiness as JSON ([`Readiness`]): `200` when ready, `503` when not: unhealthy ([`Metrics::set_healthy`]: starting or stopping) or stuck (no epoch finished within the bound, [`Metrics::expect_progress_within`]) |
//!
//! A role may add its own read-only routes on the same port ([`serve_with`]: the validator's
//! dashboard); this module knows nothing of them.
//!
//! `/health`'s answer is what the process has set as it went ([`Metrics::identify`],
//! [`Metrics::set_current_epoch`], [`Metrics::set_stage`], [`Metrics::set_training`],
//! [`Metrics::set_epoch`]): a request costs no chain or storage call.
//!
//! The metrics:
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `sliver_samples_total` | counter | `kind`: `forward`, `backward`, `eval`, ... |
//! | `sliver_bytes_total` | counter | `direction` (`up`, `down`), `kind` (`act`, `grad`, `shard`, `merged`, ...) |
//! | `sliver_artifact_rejections_total` | counter | `reason`: see [`Metrics::reject`] |
//! | `sliver_storage_deleted_total` | counter | (objects its garbage collection deleted from its own store) |
//! | `sliver_epoch` | gauge | |
//! | `sliver_loss` | gauge | `which`: `train`, `eval` |
//! | `sliver_utilisation` | gauge | (0..1) |
//! | `sliver_healthy` | gauge | 1 when healthy, 0 otherwise |
//!
//! Label values are a small fixed set of names chosen by Sliver's code,
//! never strings from the network: every distinct value is a time series
//! kept for the life of the process.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// What can go wrong serving metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be opened (port in use, ...).
    #[error("cannot listen for metrics on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    direction: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhichLabel {
    which: String,
}

/// A process's metrics. Cheap to clone into tasks: clones share one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    samples: Family<KindLabel, Counter>,
    bytes: Family<BytesLabels, Counter>,
    rejections: Family<ReasonLabel, Counter>,
    /// All rejections, whatever the reason; not exported (the family's sum is).
    rejections_total: Counter,
    deleted: Counter,
    epoch: Gauge<u64, AtomicU64>,
    loss: Family<WhichLabel, Gauge<f64, AtomicU64>>,
    utilisation: Gauge<f64, AtomicU64>,
    share: Gauge<f64, AtomicU64>,
    work_rate: Family<WhichLabel, Gauge<f64, AtomicU64>>,
    healthy_gauge: Gauge,
    healthy: AtomicBool,
    /// When an epoch last finished (or the bound was set), and how long may pass before the
    /// process counts as stuck ([`Metrics::expect_progress_within`]); no bound by default.
    progress: std::sync::Mutex<Option<(std::time::Instant, std::time::Duration)>>,
    /// What `/health` reports besides readiness, as the process sets it.
    status: std::sync::Mutex<Readiness>,
}

/// Who a process is on chain, set once it knows ([`Metrics::identify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The network's name (`finney`, `test`, `local`, `custom`).
    pub network: String,
    /// The subnet.
    pub netuid: u16,
    /// Its hotkey as an SS58 address.
    pub hotkey: String,
    /// Its uid on the subnet.
    pub uid: u16,
}

/// What `GET /health` answers, as JSON: whether the process is ready, and the status fields it
/// has set as it went (none costs a request to the chain). `null` where not known yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Readiness {
    /// `true` (HTTP 200) when healthy and not stuck; `false` (HTTP 503) otherwise.
    pub ready: bool,
    /// `miner` or `validator`.
    pub role: String,
    /// The network's name.
    pub network: Option<String>,
    /// The subnet.
    pub netuid: Option<u16>,
    /// The hotkey, SS58.
    pub hotkey: Option<String>,
    /// The uid.
    pub uid: Option<u16>,
    /// A miner's stage this epoch (`null` off the roster, and for a validator).
    pub stage: Option<u16>,
    /// The epoch the chain is in, as the process last saw it.
    pub epoch: Option<u64>,
    /// The last epoch the process finished (a miner: trained and merged; a validator: scored).
    pub last_epoch_finished: Option<u64>,
    /// When it finished, in seconds since the Unix epoch.
    pub last_epoch_finished_at: Option<u64>,
    /// Whether a miner is training an epoch now (always `false` for a validator).
    pub training: bool,
    /// `false` while the process starts or stops ([`Metrics::set_healthy`]).
    pub healthy: bool,
    /// Why the process counts as stuck, when it does.
    pub stuck: Option<String>,
}

impl Metrics {
    /// Registers every metric, prefixed `sliver_` and labelled
    /// `role="<role>"` (`"miner"` or `"validator"`). Starts healthy.
    pub fn new(role: &'static str) -> Self {
        let mut registry =
            Registry::with_prefix_and_labels("sliver", [("role".into(), role.into())].into_iter());
        let samples = Family::<KindLabel, Counter>::default();
        registry.register(
            "samples",
            "Samples processed, by kind (forward, backward, eval)",
            samples.clone(),
        );
        let bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "bytes",
            "Bytes moved to (up) or from (down) object storage, by artifact kind",
            bytes.clone(),
        );
        let rejections = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "artifact_rejections",
            "Artifacts rejected, by reason",
            rejections.clone(),
        );
        let deleted = Counter::default();
        registry.register(
            "storage_deleted",
            "Objects deleted from this participant's own store by its garbage collection",
            deleted.clone(),
        );
        let epoch = Gauge::<u64, AtomicU64>::default();
        registry.register("epoch", "Current training epoch", epoch.clone());
        let loss = Family::<WhichLabel, Gauge<f64, AtomicU64>>::default();
        registry.register("loss", "Latest loss (train, eval)", loss.clone());
        let utilisation = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "utilisation",
            "Fraction of time spent computing (0 to 1)",
            utilisation.clone(),
        );
        let share = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "share",
            "A miner's share of its stage's samples in its last epoch's routing (0 to 1)",
            share.clone(),
        );
        let work_rate = Family::<WhichLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "work_rate",
            "A miner's work rate in giga parameter-tokens a second of compute: measured in its last epoch, declared in the roster, and its stage's typical",
            work_rate.clone(),
        );
        let healthy_gauge = Gauge::default();
        healthy_gauge.set(1);
        registry.register(
            "healthy",
            "1 when /health answers 200, 0 otherwise",
            healthy_gauge.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                samples,
                bytes,
                rejections,
                rejections_total: Counter::default(),
                deleted,
                epoch,
                loss,
                utilisation,
                share,
                work_rate,
                healthy_gauge,
                healthy: AtomicBool::new(true),
                progress: std::sync::Mutex::new(None),
                status: std::sync::Mutex::new(Readiness {
                    role: role.to_owned(),
                    ..Readiness::default()
                }),
            }),
        }
    }

    /// Adds `n` to `sliver_samples_total{kind}`; `kind` is a fixed name such
    /// as `"forward"`, `"backward"` or `"eval"`.
    pub fn add_samples(&self, kind: &str, n: u64) {
        self.inner
            .samples
            .get_or_create(&kind_label(kind))
            .inc_by(n);
    }

    /// Samples counted so far for `kind`.
    pub fn samples(&self, kind: &str) -> u64 {
        self.inner
            .samples
            .get(&kind_label(kind))
            .map_or(0, |counter| counter.get())
    }

    /// Adds `n` to `sliver_bytes_total{direction, kind}`; `direction` is
    /// `"up"` or `"down"`, `kind` a fixed artifact name such as `"act"`,
    /// `"grad"`, `"shard"` or `"merged"`.
    pub fn add_bytes(&self, direction: &str, kind: &str, n: u64) {
        self.inner
            .bytes
            .get_or_create(&bytes_labels(direction, kind))
            .inc_by(n);
    }

    /// Bytes counted so far for `direction` and `kind`.
    pub fn bytes(&self, direction: &str, kind: &str) -> u64 {
        self.inner
            .bytes
            .get(&bytes_labels(direction, kind))
            .map_or(0, |counter| counter.get())
    }

    /// Counts one rejected artifact in
    /// `sliver_artifact_rejections_total{reason}`.
    ///
    /// `reason` must be one of a small fixed set of names chosen by our code
    /// (`"signature"`, `"hash"`, `"dims"`, `"size"`, `"unregistered"`,
    /// `"wrong_stage"`, `"malformed"`, ...), never a string taken from the
    /// artifact or a peer: each distinct value is a new time series, so an
    /// attacker-controlled value would grow the registry without bound.
    pub fn reject(&self, reason: &str) {
        self.inner
            .rejections
            .get_or_create(&reason_label(reason))
            .inc();
        self.inner.rejections_total.inc();
    }

    /// Rejections counted so far for `reason`.
    pub fn rejections(&self, reason: &str) -> u64 {
        self.inner
            .rejections
            .get(&reason_label(reason))
            .map_or(0, |counter| counter.get())
    }

    /// Rejections counted so far, all reasons together.
    pub fn rejections_total(&self) -> u64 {
        self.inner.rejections_total.get()
    }

    /// Adds `n` to `sliver_storage_deleted_total`: objects the garbage collection deleted.
    pub fn add_deleted(&self, n: u64) {
        self.inner.deleted.inc_by(n);
    }

    /// Objects counted as deleted so far.
    pub fn deleted(&self) -> u64 {
        self.inner.deleted.get()
    }

    /// Sets `sliver_epoch`: `epoch` has finished (a miner trained and merged it, a validator
    /// scored it). `/health` reports it, and when, as the last epoch finished.
    pub fn set_epoch(&self, epoch: crate::schedule::Epoch) {
        self.inner.epoch.set(epoch.get());
        {
            let mut progress = self.progress();
            if let Some((at, _)) = progress.as_mut() {
                *at = std::time::Instant::now();
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut status = self.status();
        status.last_epoch_finished = Some(epoch.get());
        status.last_epoch_finished_at = Some(now);
    }

    /// Says who the process is on chain, for `/health`.
    pub fn identify(&self, id: Identity) {
        let mut status = self.status();
        status.network = Some(id.network);
        status.netuid = Some(id.netuid);
        status.hotkey = Some(id.hotkey);
        status.uid = Some(id.uid);
    }

    /// The epoch the chain is in now, for `/health` (the process follows the chain's blocks).
    pub fn set_current_epoch(&self, epoch: crate::schedule::Epoch) {
        self.status().epoch = Some(epoch.get());
    }

    /// A miner's stage this epoch (`None`: not on the roster), for `/health`.
    pub fn set_stage(&self, stage: Option<crate::assignment::StageIndex>) {
        self.status().stage = stage.map(|s| s.0);
    }

    /// Whether a miner is training an epoch now, for `/health`.
    pub fn set_training(&self, training: bool) {
        self.status().training = training;
    }

    /// What `/health` answers now.
    pub fn readiness(&self) -> Readiness {
        let healthy = self.is_healthy();
        let stuck = self.stuck();
        let mut status = self.status().clone();
        status.ready = healthy && stuck.is_none();
        status.healthy = healthy;
        status.stuck = stuck;
        status
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Readiness> {
        self.inner
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From now on, `/health` answers 503 once `bound` passes without an epoch finishing
    /// ([`Metrics::set_epoch`], which each role calls once an epoch is done): a process whose
    /// loop is stuck is not ready, however alive it is.
    pub fn expect_progress_within(&self, bound: std::time::Duration) {
        *self.progress() = Some((std::time::Instant::now(), bound));
    }

    /// Why the process counts as stuck, if it does: no epoch finished within the bound.
    pub fn stuck(&self) -> Option<String> {
        let (at, bound) = (*self.progress())?;
        let since = at.elapsed();
        (since > bound).then(|| {
            format!(
                "stuck: no epoch finished for {} s (expected within {} s)",
                since.as_secs(),
                bound.as_secs()
            )
        })
    }

    fn progress(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, std::time::Duration)>> {
        self.inner
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `sliver_loss{which}`; `which` is `"train"` or `"eval"`.
    pub fn set_loss(&self, which: &str, loss: f64) {
        self.inner
            .loss
            .get_or_create(&WhichLabel {
                which: which.to_owned(),
            })
            .set(loss);
    }

    /// Sets `sliver_utilisation`, clamped to 0..=1.
    pub fn set_utilisation(&self, utilisation: f64) {
        self.inner.utilisation.set(utilisation.clamp(0.0, 1.0));
    }

    /// Sets `sliver_share`, clamped to 0..=1.
    pub fn set_share(&self, share: f64) {
        self.inner.share.set(share.clamp(0.0, 1.0));
    }

    /// Sets `sliver_work_rate{which}`; `which` is `"measured"`, `"declared"` or `"stage"`.
    pub fn set_work_rate(&self, which: &str, rate: f64) {
        self.inner
            .work_rate
            .get_or_create(&WhichLabel {
                which: which.to_owned(),
            })
            .set(rate);
    }

    /// Sets what `/health` reports (and the `sliver_healthy` gauge).
    pub fn set_healthy(&self, ok: bool) {
        self.inner
            .healthy
            .store(ok, std::sync::atomic::Ordering::Relaxed);
        self.inner.healthy_gauge.set(i64::from(ok));
    }

    /// Whether `/health` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.inner
            .healthy
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every metric in the Prometheus text exposition format (0.0.4), served
    /// with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let ready = self.is_healthy() && self.stuck().is_none();
        self.inner.healthy_gauge.set(i64::from(ready));
        let mut out = String::new();
        if let Err(error) = prometheus_text::encode(&mut out, &self.inner.registry) {
            tracing::error!(%error, "encoding metrics");
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

fn kind_label(kind: &str) -> KindLabel {
    KindLabel {
        kind: kind.to_owned(),
    }
}

fn bytes_labels(direction: &str, kind: &str) -> BytesLabels {
    BytesLabels {
        direction: direction.to_owned(),
        kind: kind.to_owned(),
    }
}

fn reason_label(reason: &str) -> ReasonLabel {
    ReasonLabel {
        reason: reason.to_owned(),
    }
}

/// Serves `GET /metrics` and `GET /health` for `metrics` on
/// `127.0.0.1:port` (`port` 0: any free port) until `cancel` fires.
///
/// Returns once the socket is listening, with the bound address; the server
/// itself runs in a task spawned here (detached: it ends on `cancel`,
/// finishing requests in flight). Must be called within a tokio runtime.
///
/// ```no_run
/// # async fn run() -> Result<(), sliver_common::metrics::MetricsError> {
/// use sliver_common::{metrics::{self, Metrics}, shutdown::Shutdown};
/// let (metrics, shutdown) = (Metrics::new("miner"), Shutdown::new());
/// let addr = metrics::serve(metrics.clone(), 9100, shutdown.token()).await?;
/// # let _ = addr;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`MetricsError::Bind`] when the port cannot be bound.
pub async fn serve(
    metrics: Metrics,
    port: u16,
    cancel: CancellationToken,
) -> Result<SocketAddr, MetricsError> {
    serve_with(metrics, port, Routes::new(), cancel).await
}

/// Extra routes served beside `/metrics` and `/health` ([`serve_with`]).
pub type Routes = Router;

/// [`serve`], with `extra` routes merged in beside `/metrics` and `/health` (the validator's
/// dashboard). `extra` must not route `/metrics` or `/health` (axum panics on a route given
/// twice).
///
/// # Errors
/// [`MetricsError::Bind`] when the port cannot be bound.
pub async fn serve_with(
    metrics: Metrics,
    port: u16,
    extra: Routes,
    cancel: CancellationToken,
) -> Result<SocketAddr, MetricsError> {
    let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let bind_error = |source| MetricsError::Bind {
        addr: wanted,
        source,
    };
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(health_handler))
        .with_state(metrics)
        .merge(extra);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        match served {
            Ok(()) => tracing::debug!(%addr, "metrics server stopped"),
            Err(error) => tracing::error!(%addr, %error, "metrics server failed"),
        }
    });
    tracing::info!(%addr, "serving /metrics and /health");
    Ok(addr)
}

async fn metrics_handler(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
}

async fn health_handler(State(metrics): State<Metrics>) -> impl IntoResponse {
    let readiness = metrics.readiness();
    let code = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&readiness).unwrap_or_else(|e| {
        // Plain fields never fail to encode; say so rather than answer nothing.
        format!(r#"{{"ready":false,"stuck":"encoding /health: {e}"}}"#)
    });
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    const BOUND: Duration = Duration::from_secs(10);

    #[test]
    fn counters_read_back() {
        let metrics = Metrics::new("validator");
        let clone = metrics.clone();
        assert_eq!(metrics.samples("forward"), 0);
        metrics.add_samples("forward", 3);
        clone.add_samples("forward", 4);
        metrics.add_samples("eval", 1);
        assert_eq!(metrics.samples("forward"), 7);
        assert_eq!(metrics.samples("eval"), 1);
        assert_eq!(metrics.samples("backward"), 0);

        metrics.add_bytes("up", "act", 1000);
        metrics.add_bytes("down", "act", 10);
        assert_eq!(metrics.bytes("up", "act"), 1000);
        assert_eq!(metrics.bytes("down", "act"), 10);
        assert_eq!(metrics.bytes("up", "grad"), 0);

        metrics.reject("signature");
        metrics.reject("hash");
        clone.reject("hash");
        assert_eq!(metrics.rejections("hash"), 2);
        assert_eq!(metrics.rejections("signature"), 1);
        assert_eq!(metrics.rejections("dims"), 0);
        assert_eq!(metrics.rejections_total(), 3);

        assert!(metrics.is_healthy());
        metrics.set_healthy(false);
        assert!(!clone.is_healthy());
    }

    #[test]
    fn encode_names_every_metric() {
        let metrics = Metrics::new("miner");
        metrics.add_samples("backward", 2);
        metrics.add_bytes("up", "grad", 5);
        metrics.reject("wrong_stage");
        metrics.set_epoch(crate::Epoch(7));
        metrics.add_deleted(3);
        metrics.set_loss("train", 2.5);
        metrics.set_utilisation(1.5);
        let text = metrics.encode();
        for line in [
            "# TYPE sliver_samples_total counter",
            r#"sliver_samples_total{role="miner",kind="backward"} 2"#,
            r#"sliver_bytes_total{role="miner",direction="up",kind="grad"} 5"#,
            r#"sliver_artifact_rejections_total{role="miner",reason="wrong_stage"} 1"#,
            r#"sliver_epoch{role="miner"} 7"#,
            r#"sliver_storage_deleted_total{role="miner"} 3"#,
            r#"sliver_loss{role="miner",which="train"} 2.5"#,
            r#"sliver_utilisation{role="miner"} 1.0"#,
            r#"sliver_healthy{role="miner"} 1"#,
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    /// One HTTP/1.1 GET over a plain TCP connection; returns the whole
    /// response (the server closes after it: `Connection: close`).
    async fn get(addr: SocketAddr, path: &'static str) -> String {
        let request = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(BOUND))?;
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok::<_, std::io::Error>(response)
        });
        tokio::time::timeout(BOUND, request)
            .await
            .expect("the request timed out")
            .unwrap()
            .unwrap()
    }

    /// `GET /health`: the whole response, and its body as [`Readiness`].
    async fn health(addr: SocketAddr) -> (String, Readiness) {
        let response = get(addr, "/health").await;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let ready = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
        (response, ready)
    }

    #[tokio::test]
    async fn serve_answers_metrics_and_health_then_stops_on_cancel() {
        let metrics = Metrics::new("validator");
        metrics.add_samples("eval", 9);
        let cancel = CancellationToken::new();
        let addr = serve(metrics.clone(), 0, cancel.clone()).await.unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);

        let response = get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{response}"
        );
        assert!(
            response.contains(r#"sliver_samples_total{role="validator",kind="eval"} 9"#),
            "{response}"
        );

        // Before it knows who it is, readiness says so with nulls.
        let (response, ready) = health(addr).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{response}"
        );
        assert_eq!(
            ready,
            Readiness {
                ready: true,
                role: "validator".into(),
                healthy: true,
                ..Readiness::default()
            }
        );
        // What the process sets as it goes is what /health answers.
        metrics.identify(Identity {
            network: "local".into(),
            netuid: 9,
            hotkey: "5Hot".into(),
            uid: 4,
        });
        metrics.set_current_epoch(crate::schedule::Epoch(6));
        metrics.set_stage(Some(crate::StageIndex(1)));
        metrics.set_training(true);
        let (_, ready) = health(addr).await;
        assert_eq!(
            (
                ready.network.as_deref(),
                ready.netuid,
                ready.hotkey.as_deref(),
                ready.uid,
                ready.stage,
                ready.epoch,
                ready.training,
                ready.last_epoch_finished,
            ),
            (
                Some("local"),
                Some(9),
                Some("5Hot"),
                Some(4),
                Some(1),
                Some(6),
                true,
                None
            )
        );
        // A loop that finishes no epoch within its bound is stuck: 503 with the reason, and
        // the gauge says 0; an epoch finishing makes it ready again, and is reported with when.
        metrics.expect_progress_within(Duration::from_millis(50));
        let (response, _) = health(addr).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (response, ready) = health(addr).await;
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert!(!ready.ready && ready.healthy, "{ready:?}");
        let stuck = ready.stuck.unwrap_or_default();
        assert!(stuck.contains("stuck: no epoch finished"), "{stuck}");
        assert!(
            metrics
                .encode()
                .contains(r#"sliver_healthy{role="validator"} 0"#)
        );
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        metrics.set_epoch(crate::schedule::Epoch(5));
        let (response, ready) = health(addr).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(ready.ready && ready.stuck.is_none(), "{ready:?}");
        assert_eq!(ready.last_epoch_finished, Some(5));
        let at = ready.last_epoch_finished_at.unwrap();
        assert!(at >= before && at <= before + 60, "{at} vs {before}");
        metrics.expect_progress_within(Duration::from_secs(3600));

        // Stopping (or not yet started): 503, healthy false, the fields still there.
        metrics.set_healthy(false);
        let (response, ready) = health(addr).await;
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert!(
            !ready.ready && !ready.healthy && ready.stuck.is_none(),
            "{ready:?}"
        );
        assert_eq!(ready.uid, Some(4));
        metrics.set_stage(None);
        metrics.set_training(false);
        let ready = metrics.readiness();
        assert_eq!((ready.stage, ready.training), (None, false));

        let response = get(addr, "/nothing").await;
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");

        cancel.cancel();
        let stopped = async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(BOUND, stopped)
            .await
            .expect("the server must stop listening on cancel");
    }

    #[tokio::test]
    async fn serve_with_answers_the_extra_routes_too() {
        let extra = Routes::new().route("/extra", axum::routing::get(|| async { "extra page" }));
        let cancel = CancellationToken::new();
        let addr = serve_with(Metrics::new("validator"), 0, extra, cancel.clone())
            .await
            .unwrap();
        let response = get(addr, "/extra").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("extra page"), "{response}");
        let response = get(addr, "/health").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        cancel.cancel();
    }

    #[tokio::test]
    async fn serve_reports_a_port_in_use() {
        let taken = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = serve(Metrics::new("miner"), port, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(error, MetricsError::Bind { .. }), "{error}");
    }
}
