//! The validator's dashboard: a read-only web page on its metrics port (`--metrics.port`), beside
//! `/metrics` and `/health` ([`sliver_common::metrics::serve_with`]).
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /` | the page: one HTML file with inline CSS and JavaScript (`dashboard.html`), nothing fetched from anywhere but this port |
//! | `GET /api/epochs` | the figures it draws, as JSON ([`Snapshot`]) |
//!
//! Both are GET only (any other method: 405). The page fetches `/api/epochs` and `/health` and
//! draws, with the DOM and SVG in plain JavaScript: the tokens trained so far (run specs set no
//! token target), the held-out loss per epoch as a line chart, the stage map of the latest
//! epoch (each stage's miners with their share of its verified passes and their verdict), each
//! miner's figures and score per epoch with why it was caught, and the bytes moved per epoch.
//! Everything that came from the network (hotkeys, reasons) is set as text (`textContent`),
//! never parsed as HTML, and the page's Content-Security-Policy lets it load nothing from
//! anywhere else.
//!
//! The figures are what the validator publishes, nothing more: each epoch is its record line
//! ([`crate::record::EpochReport`], `epochs.jsonl`) with its score table ([`crate::export`], the
//! Parquet file in its store) read into [`MinerView`]s, so under commit-reveal the scores are
//! null here as they are in the table ([`crate::export::Disclosure`]). The loop adds each epoch
//! as it is scored ([`Dashboard::push`]); at start, [`Dashboard::load`] reads the record and the
//! latest score tables back, so a restarted validator shows the run so far. The last
//! [`MAX_EPOCHS`] epochs are kept, each miner's lines for the last [`DETAILED_EPOCHS`] of them.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use polars::prelude::{DataFrame, PolarsResult};
use serde::{Deserialize, Serialize};
use sliver_common::RunSpec;
use sliver_common::layout;
use sliver_common::metrics::Routes;
use sliver_common::storage::Store;
use tracing::warn;

use crate::record::{self, EpochReport};

/// The page, served at `/`.
pub const PAGE: &str = include_str!("dashboard.html");

/// What the page may load: its own inline script and style, and requests to this port only.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

/// Epochs kept (their summary: loss, bytes, tokens); older ones are dropped, their tokens still
/// counted.
pub const MAX_EPOCHS: usize = 4096;

/// Epochs whose miners' lines are kept (and read back from the score tables at start).
pub const DETAILED_EPOCHS: usize = 64;

/// The largest score table read back at start (a table is a few hundred bytes a miner).
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// The run, as the page heads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's name (the spec's `name`).
    pub name: String,
    /// Pipeline stages.
    pub stages: usize,
    /// Tokens in one sample (a micro-batch: `batch_size` sequences of `seq_len`): a finished
    /// path trained this many.
    pub tokens_per_sample: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
}

impl RunInfo {
    /// The run of `spec`.
    pub fn of(spec: &RunSpec) -> RunInfo {
        RunInfo {
            name: spec.name.clone(),
            stages: spec.stages.len(),
            tokens_per_sample: (spec.optimizer.batch_size * spec.model.seq_len) as u64,
            epoch_blocks: spec.swarm.epoch_blocks,
        }
    }
}

/// One scored epoch as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochView {
    /// The epoch.
    pub epoch: u64,
    /// The block it was scored at.
    pub block: u64,
    /// Held-out loss of the merged model (`None`: not evaluated).
    pub eval_loss: Option<f64>,
    /// Bytes the validator downloaded to check it.
    pub bytes_moved: u64,
    /// Finished samples whose path was attributed.
    pub paths: u64,
    /// Tokens those samples trained: `paths` × [`RunInfo::tokens_per_sample`].
    pub tokens: u64,
    /// Artifacts rejected, over all miners.
    pub rejected: u64,
    /// Artifacts recomputed by spot checks.
    pub spot_checks: u64,
    /// Spot checks that did not match.
    pub spot_check_failures: u64,
    /// Whether the score table is sealed (commit-reveal: no scores or weights until revealed).
    pub sealed: bool,
    /// Whether the miners' lines come from the score table (`false`: from the record alone,
    /// which has no scores; or dropped, for an epoch older than [`DETAILED_EPOCHS`]).
    pub from_table: bool,
    /// Every miner of the epoch's roster, by stage then uid.
    pub miners: Vec<MinerView>,
}

/// One miner's line of an epoch: its row of the score table, with its share of its stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerView {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey, SS58 (`None`: not in the record alone).
    pub hotkey: Option<String>,
    /// Its stage.
    pub stage: u16,
    /// Verified forwards consumed downstream.
    pub samples_forward: u64,
    /// Verified backwards.
    pub samples_backward: u64,
    /// Verified passes: forwards plus backwards.
    pub passes: u64,
    /// Its share of its stage's verified passes (0 to 1).
    pub share: f64,
    /// Artifacts recomputed by spot checks.
    pub spot_checks: u64,
    /// Spot checks that did not match.
    pub spot_check_failures: u64,
    /// CLASP: the mean loss of its paths minus its peers'.
    pub clasp_effect: Option<f64>,
    /// Whether it uploaded a verified reduction of every shard it owed.
    pub merge_ok: Option<bool>,
    /// This epoch's score (0 when caught); `None` when sealed or not known.
    pub raw_score: Option<f64>,
    /// The moving average after this epoch; `None` when sealed or not known.
    pub ema_score: Option<f64>,
    /// The weight set on chain; `None` when sealed or not known.
    pub weight: Option<u16>,
    /// Why it was not paid (`spot_check`, `clasp`, `merge`, `low_work`); empty when paid.
    pub caught: Vec<String>,
    /// Its artifacts that failed verification.
    pub rejected: u64,
}

impl EpochView {
    /// The epoch of `report`, its miners from its score table `scores` when there is one (the
    /// frame as written, with or without its `epoch` column), else from the record.
    pub fn of(report: &EpochReport, scores: Option<&DataFrame>, run: &RunInfo) -> EpochView {
        let from_table = scores.and_then(|df| match miners_of(df) {
            Ok(m) => Some(m),
            Err(e) => {
                warn!(epoch = %report.epoch, error = %e, "a score table the dashboard cannot read; showing the record");
                None
            }
        });
        let (mut miners, from_table) = match from_table {
            Some(m) => (m, true),
            None => (record_miners(report), false),
        };
        share_out(&mut miners);
        miners.sort_by_key(|m| (m.stage, m.uid));
        EpochView {
            epoch: report.epoch.get(),
            block: report.block,
            eval_loss: report.eval_loss.filter(|l| l.is_finite()),
            bytes_moved: report.bytes_moved,
            paths: report.paths,
            tokens: report.paths.saturating_mul(run.tokens_per_sample),
            rejected: report.rejected,
            spot_checks: report.spot_checks.checked,
            spot_check_failures: report.spot_checks.failed,
            sealed: from_table && miners.iter().any(|m| m.raw_score.is_none()),
            from_table,
            miners,
        }
    }
}

/// The miners of a record line alone: no hotkeys, scores or weights.
fn record_miners(report: &EpochReport) -> Vec<MinerView> {
    report
        .miners
        .iter()
        .map(|m| MinerView {
            uid: m.uid,
            hotkey: None,
            stage: m.stage.0,
            samples_forward: 0,
            samples_backward: 0,
            passes: m.passes,
            share: 0.0,
            spot_checks: 0,
            spot_check_failures: 0,
            clasp_effect: None,
            merge_ok: None,
            raw_score: None,
            ema_score: None,
            weight: None,
            caught: m.caught.clone(),
            rejected: 0,
        })
        .collect()
}

/// Each miner's share of its stage's passes.
fn share_out(miners: &mut [MinerView]) {
    let mut per_stage: BTreeMap<u16, u64> = BTreeMap::new();
    for m in miners.iter() {
        *per_stage.entry(m.stage).or_default() += m.passes;
    }
    for m in miners.iter_mut() {
        let total = per_stage.get(&m.stage).copied().unwrap_or(0);
        m.share = if total == 0 {
            0.0
        } else {
            m.passes as f64 / total as f64
        };
    }
}

/// The miners of a score table ([`crate::export::SCORE_COLUMNS`]).
///
/// # Errors
/// A column missing or of another type.
pub fn miners_of(df: &DataFrame) -> PolarsResult<Vec<MinerView>> {
    let uid = df.column("uid")?.u16()?;
    let hotkey = df.column("hotkey")?.str()?;
    let stage = df.column("stage")?.u16()?;
    let fwd = df.column("samples_forward")?.u64()?;
    let bwd = df.column("samples_backward")?.u64()?;
    let spot = df.column("spot_checks")?.u64()?;
    let spot_bad = df.column("spot_check_failures")?.u64()?;
    let effect = df.column("clasp_effect")?.f64()?;
    let merge = df.column("merge_ok")?.bool()?;
    let raw = df.column("raw_score")?.f64()?;
    let ema = df.column("ema_score")?.f64()?;
    let weight = df.column("weight")?.u16()?;
    let caught = df.column("caught")?.str()?;
    let rejected = df.column("rejected")?.u64()?;
    Ok((0..df.height())
        .map(|i| {
            let (f, b) = (fwd.get(i).unwrap_or(0), bwd.get(i).unwrap_or(0));
            MinerView {
                uid: uid.get(i).unwrap_or(0),
                hotkey: hotkey.get(i).map(str::to_owned),
                stage: stage.get(i).unwrap_or(0),
                samples_forward: f,
                samples_backward: b,
                passes: f + b,
                share: 0.0,
                spot_checks: spot.get(i).unwrap_or(0),
                spot_check_failures: spot_bad.get(i).unwrap_or(0),
                clasp_effect: effect.get(i),
                merge_ok: merge.get(i),
                raw_score: raw.get(i),
                ema_score: ema.get(i),
                weight: weight.get(i),
                caught: caught
                    .get(i)
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                rejected: rejected.get(i).unwrap_or(0),
            }
        })
        .collect())
}

/// What `GET /api/epochs` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The run (`None` until the validator has its spec).
    pub run: Option<RunInfo>,
    /// Tokens trained over every scored epoch the validator has recorded, dropped ones included.
    pub tokens_trained: u64,
    /// The scored epochs kept, oldest first.
    pub epochs: Vec<EpochView>,
}

#[derive(Debug, Default)]
struct History {
    run: Option<RunInfo>,
    epochs: VecDeque<EpochView>,
    /// Tokens of the epochs dropped past [`MAX_EPOCHS`].
    tokens_dropped: u64,
}

impl History {
    /// Adds `view` in epoch order (replacing an epoch already there), then trims.
    fn insert(&mut self, view: EpochView) {
        match self.epochs.binary_search_by_key(&view.epoch, |e| e.epoch) {
            Ok(i) => self.epochs[i] = view,
            Err(i) => self.epochs.insert(i, view),
        }
        while self.epochs.len() > MAX_EPOCHS {
            if let Some(old) = self.epochs.pop_front() {
                self.tokens_dropped += old.tokens;
            }
        }
        let detailed_from = self.epochs.len().saturating_sub(DETAILED_EPOCHS);
        for old in self.epochs.iter_mut().take(detailed_from) {
            if !old.miners.is_empty() {
                old.miners = Vec::new();
                old.from_table = false;
            }
        }
    }
}

/// The dashboard's figures, shared by the epoch loop (which adds to them) and the HTTP routes
/// (which read them). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    inner: Arc<RwLock<History>>,
}

impl Dashboard {
    /// An empty dashboard: the page says it waits for the first scored epoch.
    pub fn new() -> Dashboard {
        Dashboard::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, History> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, History> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the run the page heads.
    pub fn set_run(&self, run: RunInfo) {
        self.write().run = Some(run);
    }

    /// The run, once set.
    pub fn run(&self) -> Option<RunInfo> {
        self.read().run.clone()
    }

    /// Adds a scored epoch (replacing one of the same number).
    pub fn push(&self, view: EpochView) {
        self.write().insert(view);
    }

    /// What `GET /api/epochs` answers now.
    pub fn snapshot(&self) -> Snapshot {
        let h = self.read();
        Snapshot {
            run: h.run.clone(),
            tokens_trained: h.tokens_dropped + h.epochs.iter().map(|e| e.tokens).sum::<u64>(),
            epochs: h.epochs.iter().cloned().collect(),
        }
    }

    /// Reads back what the validator recorded before this start: every line of `epochs.jsonl`
    /// in `dir` (a line that is not a report is passed over), with the score tables of the
    /// last [`DETAILED_EPOCHS`] from `store` (a table that cannot be read leaves that epoch's
    /// miners as the record has them). Needs the run ([`Dashboard::set_run`]); without it,
    /// does nothing. Returns how many epochs it read.
    pub async fn load(&self, dir: &Path, store: &Store) -> usize {
        let Some(run) = self.run() else {
            return 0;
        };
        let mut tail = record::Tail::new(&record::path(dir));
        let mut reports = Vec::new();
        loop {
            match tail.next_report() {
                Ok(Some(r)) => reports.push(r),
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    warn!(error = %e, "the dashboard passes over a line of the epoch record");
                }
                Err(e) => {
                    warn!(error = %e, "the dashboard cannot read the epoch record");
                    break;
                }
            }
        }
        let detailed_from = reports.len().saturating_sub(DETAILED_EPOCHS);
        let tables: Vec<Option<DataFrame>> = futures::stream::iter(
            reports
                .iter()
                .enumerate()
                .map(|(i, r)| (i >= detailed_from).then(|| layout::scores(&run.name, r.epoch))),
        )
        .map(|key| async move {
            let key = key?;
            match store.get(&key, MAX_TABLE_BYTES).await {
                Ok(Some(bytes)) => read_table(&bytes)
                    .inspect_err(
                        |e| warn!(key, error = %e, "a score table the dashboard cannot read"),
                    )
                    .ok(),
                Ok(None) => None,
                Err(e) => {
                    warn!(key, error = %e, "the dashboard cannot read a score table");
                    None
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
        let n = reports.len();
        let mut h = self.write();
        for (report, table) in reports.iter().zip(&tables) {
            h.insert(EpochView::of(report, table.as_ref(), &run));
        }
        n
    }

    /// The routes to mount on the metrics port: `GET /` (the page) and `GET /api/epochs`.
    pub fn routes(&self) -> Routes {
        let api = self.clone();
        Routes::new().route("/", get(page)).route(
            "/api/epochs",
            get(move || {
                let snapshot = api.snapshot();
                async move { epochs_json(&snapshot) }
            }),
        )
    }
}

/// A score table's Parquet bytes as a frame.
fn read_table(bytes: &[u8]) -> PolarsResult<DataFrame> {
    use polars::prelude::{ParquetReader, SerReader};
    ParquetReader::new(std::io::Cursor::new(bytes)).finish()
}

async fn page() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        PAGE,
    )
}

fn epochs_json(snapshot: &Snapshot) -> impl IntoResponse + use<> {
    let body = serde_json::to_string(snapshot)
        .unwrap_or_else(|e| format!(r#"{{"error":"encoding the epochs: {e}"}}"#));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{self, Disclosure, Row};
    use crate::follow::MinerWork;
    use crate::record::{Cost, MinerRecord, SpotChecks};
    use crate::scores::{Caught, Judged};
    use sliver_common::{Epoch, StageIndex};

    fn run() -> RunInfo {
        RunInfo {
            name: "dash".into(),
            stages: 2,
            tokens_per_sample: 128,
            epoch_blocks: 100,
        }
    }

    fn row(uid: u16, stage: u16, passes: u64, caught: Vec<Caught>) -> Row {
        Row {
            work: MinerWork {
                uid,
                hotkey: hex::encode([uid as u8; 32]),
                stage: StageIndex(stage),
                samples_forward: passes / 2,
                samples_backward: passes - passes / 2,
                work: passes,
                merged: true,
                ..MinerWork::default()
            },
            clasp: None,
            judged: Judged {
                uid,
                score: if caught.is_empty() { 0.5 } else { 0.0 },
                caught,
            },
            ema: 0.25,
            weight: 1000 * uid,
        }
    }

    fn report(epoch: u64, rows: &[Row]) -> EpochReport {
        EpochReport {
            epoch: Epoch(epoch),
            block: 100 * epoch,
            eval_loss: Some(3.0 - epoch as f64 / 10.0),
            bytes_moved: 1000 + epoch,
            miners: rows.iter().map(MinerRecord::of).collect(),
            paths: 10,
            spot_checks: SpotChecks {
                checked: 4,
                failed: 1,
                worst_cosine: 1.0,
                worst_norm_error: 0.0,
                worst_drift: 0.0,
            },
            rejected: 2,
            scores: String::new(),
            cost: Cost::default(),
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            row(3, 1, 30, Vec::new()),
            row(1, 0, 60, Vec::new()),
            row(2, 0, 20, vec![Caught::SpotCheck, Caught::Clasp]),
        ]
    }

    #[test]
    fn an_epoch_reads_its_score_table_as_published() {
        let rows = rows();
        let r = report(5, &rows);
        let mut df = export::scores_frame(Epoch(5), 500, &rows, Disclosure::Public).unwrap();
        let bytes = export::encode_part(&mut df).unwrap();
        let read = read_table(&bytes).unwrap();
        for table in [&df, &read] {
            let v = EpochView::of(&r, Some(table), &run());
            assert!(v.from_table && !v.sealed);
            assert_eq!((v.epoch, v.tokens, v.eval_loss), (5, 1280, Some(2.5)));
            let uids: Vec<u16> = v.miners.iter().map(|m| m.uid).collect();
            assert_eq!(uids, [1, 2, 3], "by stage, then uid");
            let m1 = &v.miners[0];
            assert_eq!(m1.hotkey, export::ss58(&hex::encode([1u8; 32])));
            assert!((m1.share - 0.75).abs() < 1e-12, "{m1:?}");
            assert_eq!((m1.raw_score, m1.weight), (Some(0.5), Some(1000)));
            assert_eq!(v.miners[1].caught, ["spot_check", "clasp"]);
            assert!((v.miners[2].share - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn a_sealed_table_shows_no_scores_and_the_record_alone_no_hotkeys() {
        let rows = rows();
        let r = report(5, &rows);
        let df = export::scores_frame(Epoch(5), 500, &rows, Disclosure::Sealed).unwrap();
        let v = EpochView::of(&r, Some(&df), &run());
        assert!(v.sealed);
        assert!(v.miners.iter().all(|m| m.weight.is_none()));
        let v = EpochView::of(&r, None, &run());
        assert!(!v.from_table && !v.sealed);
        assert_eq!(v.miners.len(), 3);
        assert!(v.miners.iter().all(|m| m.hotkey.is_none()));
        assert_eq!(v.miners[1].caught, ["spot_check", "clasp"]);
        assert!((v.miners[0].share - 0.75).abs() < 1e-12);
    }

    #[test]
    fn history_stays_in_order_bounded_and_counts_every_token() {
        let d = Dashboard::new();
        d.set_run(run());
        let rows = rows();
        for e in (1..=(MAX_EPOCHS as u64 + 10)).rev() {
            d.push(EpochView::of(&report(e, &rows), None, &run()));
        }
        d.push(EpochView::of(
            &report(MAX_EPOCHS as u64 + 10, &rows),
            None,
            &run(),
        ));
        let s = d.snapshot();
        assert_eq!(s.epochs.len(), MAX_EPOCHS);
        assert!(s.epochs.windows(2).all(|w| w[0].epoch < w[1].epoch));
        assert_eq!(s.epochs.last().unwrap().epoch, MAX_EPOCHS as u64 + 10);
        let detailed = s.epochs.iter().filter(|e| !e.miners.is_empty()).count();
        assert_eq!(detailed, DETAILED_EPOCHS);
        // Pushed newest first, so the oldest ten were dropped as they came: only the kept ones
        // count then. Pushed in order, every epoch counts.
        let d = Dashboard::new();
        for e in 1..=(MAX_EPOCHS as u64 + 10) {
            d.push(EpochView::of(&report(e, &rows), None, &run()));
        }
        assert_eq!(d.snapshot().tokens_trained, (MAX_EPOCHS as u64 + 10) * 1280);
    }

    #[tokio::test]
    async fn load_reads_the_record_and_the_tables_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store_dir = tmp.path().join("store");
        let config = sliver_common::storage::StoreConfig::filesystem(&store_dir);
        let store = Store::open(&config).unwrap();
        let rows = rows();
        for e in 1..=3 {
            record::append(tmp.path(), &report(e, &rows)).unwrap();
        }
        // Epoch 2's table is there; the others' are not.
        let mut df = export::scores_frame(Epoch(2), 200, &rows, Disclosure::Public).unwrap();
        store
            .put_once(
                &layout::scores("dash", Epoch(2)),
                export::encode_part(&mut df).unwrap(),
            )
            .await
            .unwrap();
        let d = Dashboard::new();
        assert_eq!(d.load(tmp.path(), &store).await, 0, "no run yet");
        d.set_run(run());
        assert_eq!(d.load(tmp.path(), &store).await, 3);
        let s = d.snapshot();
        let from: Vec<(u64, bool)> = s.epochs.iter().map(|e| (e.epoch, e.from_table)).collect();
        assert_eq!(from, [(1, false), (2, true), (3, false)]);
        assert_eq!(s.tokens_trained, 3 * 1280);
    }

    /// One HTTP/1.1 request; the whole response.
    fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_routes_serve_the_page_and_the_figures_and_only_to_get() {
        let d = Dashboard::new();
        d.set_run(run());
        d.push(EpochView::of(&report(4, &rows()), None, &run()));
        let shutdown = sliver_common::shutdown::Shutdown::new();
        let cancel = shutdown.token();
        let metrics = sliver_common::metrics::Metrics::new("validator");
        let addr = sliver_common::metrics::serve_with(metrics, 0, d.routes(), cancel.clone())
            .await
            .unwrap();
        let responses = tokio::task::spawn_blocking(move || {
            [
                request(addr, "GET", "/"),
                request(addr, "GET", "/api/epochs"),
                request(addr, "POST", "/api/epochs"),
                request(addr, "GET", "/health"),
            ]
        })
        .await
        .unwrap();
        let [page, api, post, health] = responses;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        let lower = page.to_ascii_lowercase();
        assert!(lower.contains("content-type: text/html"), "{page}");
        assert!(lower.contains("content-security-policy: default-src 'none'"));
        assert!(page.contains("<svg") || page.contains("createElementNS"));
        assert!(api.starts_with("HTTP/1.1 200"), "{api}");
        let body = api.split_once("\r\n\r\n").unwrap().1;
        let s: Snapshot = serde_json::from_str(body).unwrap();
        assert_eq!(s.epochs.len(), 1);
        assert_eq!(s.run.unwrap().name, "dash");
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        cancel.cancel();
    }

    #[test]
    fn the_page_sets_text_never_html() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!PAGE.contains(banned), "the page uses {banned}");
        }
        for external in ["http://", "https://", "//cdn"] {
            let uses = PAGE
                .lines()
                .filter(|l| l.contains(external) && !l.contains("www.w3.org/2000/svg"))
                .count();
            assert_eq!(uses, 0, "the page refers to {external}");
        }
    }
}
