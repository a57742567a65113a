//! Fronts before an adversarial miner's S3 store: what its readers reach at the endpoint it
//! announces (`btminer --adversary.front`), while the miner itself writes to the store
//! directly.
//!
//! A front is a plain HTTP/1.1 proxy on 127.0.0.1: each request is passed to the store
//! unchanged (its signature included, so the store still checks the reader's key) and each
//! answer read whole, then given back as the front's [`Conduct`] says:
//!
//! - [`Conduct::Slow`] (`store-slow`): the answer's status and headers at once, then its body a
//!   byte at a time, forever for any real artifact;
//! - [`Conduct::Equivocate`] (`store-equivocate`): the first successful read of each
//!   activation or gradient gets the stored bytes, every later one another artifact under the
//!   same key: its payload negated and re-sealed with the miner's own hotkey, which the front
//!   holds. Listings and everything else pass unchanged.
//!
//! Every answer closes its connection, so each request arrives on a connection of its own.
//! The fronts run on a runtime of their own thread (as the S3 test server does), so a launcher
//! thread that blocks waiting for a report does not stall them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use sliver_common::WireCodec;
use sliver_common::artifact::{self, ArtifactId, RunId, Signer, Unsealed};
use sliver_common::codec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

/// The longest request or response head read.
const MAX_HEAD: usize = 64 * 1024;
/// The longest answer a front reads from the store: a stage's merged shard at most.
const MAX_BODY: usize = 1 << 30;

/// How a front answers.
#[derive(Clone)]
pub enum Conduct {
    /// Headers at once, then the body a byte each `per_byte`.
    Slow {
        /// The pause before each byte of a body.
        per_byte: Duration,
    },
    /// Honest bytes to each artifact's first reader, a re-sealed other artifact to the rest.
    Equivocate {
        /// The miner's hotkey, to sign the other artifact.
        signer: Arc<dyn Signer>,
    },
}

impl std::fmt::Debug for Conduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conduct::Slow { per_byte } => write!(f, "Slow({per_byte:?} a byte)"),
            Conduct::Equivocate { signer } => {
                write!(f, "Equivocate(as {})", signer.hotkey().short())
            }
        }
    }
}

/// What a front has done, for reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrontStats {
    /// Requests answered.
    pub requests: u64,
    /// Answers given in a trickle (`Slow`).
    pub trickled: u64,
    /// Artifacts answered with the honest bytes, as their first read (`Equivocate`).
    pub honest: u64,
    /// Artifacts answered with a re-sealed other artifact (`Equivocate`).
    pub equivocated: u64,
}

/// A front on 127.0.0.1 before the store at `upstream`; stopped on drop.
pub struct Front {
    /// `http://127.0.0.1:PORT`: the endpoint the miner announces.
    pub endpoint: String,
    stats: Arc<Mutex<FrontStats>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Per artifact path: how many successful reads, and the forgery shown after the first.
type Reads = HashMap<String, (u64, Option<Vec<u8>>)>;

/// What a connection needs.
struct Shared {
    upstream: String,
    conduct: Conduct,
    /// Successful reads so far, per artifact path, and the forgery later readers get (made
    /// once: a signature is randomised, and every later reader is shown the same other
    /// artifact).
    reads: Mutex<Reads>,
    stats: Arc<Mutex<FrontStats>>,
}

impl Front {
    /// Starts a front before the S3 endpoint `upstream` (`http://HOST:PORT`).
    ///
    /// # Errors
    /// A malformed upstream, or no socket or runtime for the front.
    pub fn spawn(upstream: &str, conduct: Conduct) -> Result<Front> {
        let upstream = upstream
            .strip_prefix("http://")
            .with_context(|| {
                format!("a front stands before a plain http endpoint, not {upstream}")
            })?
            .trim_end_matches('/')
            .to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a front")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-front")
            .enable_all()
            .build()
            .context("the front's runtime")?;
        let stats = Arc::new(Mutex::new(FrontStats::default()));
        let shared = Arc::new(Shared {
            upstream,
            conduct: conduct.clone(),
            reads: Mutex::new(HashMap::new()),
            stats: stats.clone(),
        });
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((socket, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(socket, &shared).await {
                        debug!(error = %e, "a front's connection ended");
                    }
                });
            }
        });
        info!(endpoint = %addr, ?conduct, "store front started");
        Ok(Front {
            endpoint: format!("http://{addr}"),
            stats,
            runtime: Some(runtime),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> FrontStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A parsed HTTP message head.
struct Head {
    /// The first line (request line or status line).
    first: String,
    /// Header lines, as (name, value).
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head as bytes, with `Connection: close` and, when given, `Content-Length: len` in
    /// place of the framing headers it had.
    fn write(&self, len: Option<usize>) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.first);
        for (n, v) in &self.headers {
            let framing = ["connection", "keep-alive", "transfer-encoding"]
                .iter()
                .any(|f| n.eq_ignore_ascii_case(f))
                || (len.is_some() && n.eq_ignore_ascii_case("content-length"));
            if !framing {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        if let Some(len) = len {
            out.push_str(&format!("Content-Length: {len}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Reads a head (up to the blank line) from `r`; returns it and the bytes read past it.
async fn read_head(r: &mut (impl AsyncRead + Unpin)) -> Result<(Head, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        anyhow::ensure!(buf.len() < MAX_HEAD, "a head longer than {MAX_HEAD} bytes");
        let n = r.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the connection closed before the head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((Head { first, headers }, buf[end + 4..].to_vec()))
}

/// The body of a chunked message.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line")?;
        let size = std::str::from_utf8(&raw[..line])?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        raw = &raw[line + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(raw.len() >= size + 2, "a truncated chunk");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Whether a request target names an activation or a gradient (`.../{act|grad}/{id}`).
fn is_artifact(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let id = parts.next().unwrap_or("");
    let kind = parts.next().unwrap_or("");
    (kind == "act" || kind == "grad") && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Passes one request to the store and answers it as the front's conduct says.
async fn serve(mut client: TcpStream, shared: &Shared) -> Result<()> {
    let (request, mut body) = read_head(&mut client).await?;
    let len: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while body.len() < len {
        let mut chunk = vec![0u8; (len - body.len()).min(1 << 16)];
        let n = client.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the request's body was cut short");
        body.extend_from_slice(&chunk[..n]);
    }
    let mut upstream = TcpStream::connect(&shared.upstream).await?;
    upstream.write_all(&request.write(None)).await?;
    upstream.write_all(&body).await?;
    let (response, mut rest) = read_head(&mut upstream).await?;
    let mut tail = Vec::new();
    (&mut upstream)
        .take(MAX_BODY as u64)
        .read_to_end(&mut tail)
        .await?;
    rest.extend_from_slice(&tail);
    let mut parts = request.first.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let status_ok = response.first.split_whitespace().nth(1) == Some("200");
    let mut body = if method == "HEAD" {
        Vec::new()
    } else if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(&rest)?
    } else {
        let len = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(rest.len());
        rest.truncate(len);
        rest
    };
    shared
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .requests += 1;
    let head = if method == "HEAD" {
        response.write(None)
    } else {
        if method == "GET"
            && status_ok
            && is_artifact(path)
            && let Conduct::Equivocate { signer } = &shared.conduct
        {
            let mut reads = shared.reads.lock().unwrap_or_else(|p| p.into_inner());
            let (n, forgery) = reads.entry(path.to_owned()).or_default();
            *n += 1;
            let mut stats = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
            if *n == 1 {
                stats.honest += 1;
            } else if let Some(other) = forgery.clone().or_else(|| reseal(&body, signer.as_ref())) {
                stats.equivocated += 1;
                debug!(
                    path,
                    read = *n,
                    "equivocated: another artifact under the same key"
                );
                *forgery = Some(other.clone());
                body = other;
            }
        }
        response.write(Some(body.len()))
    };
    client.write_all(&head).await?;
    if let Conduct::Slow { per_byte } = shared.conduct
        && !body.is_empty()
    {
        shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .trickled += 1;
        for b in &body {
            tokio::time::sleep(per_byte).await;
            client.write_all(std::slice::from_ref(b)).await?;
            client.flush().await?;
        }
    } else {
        client.write_all(&body).await?;
    }
    client.flush().await?;
    client.shutdown().await?;
    Ok(())
}

/// Another artifact under the same name as `bytes`: the same header fields (run, artifact,
/// weights, loss, inputs), its payload negated, sealed by `signer`. `None` when `bytes` is not
/// an artifact whose payload decodes.
pub fn reseal(bytes: &[u8], signer: &dyn Signer) -> Option<Vec<u8>> {
    let (header, at) = artifact::read_header(bytes).ok()?;
    let (wire, tensor) = codec::decode(bytes.get(at..)?, tch::Device::Cpu).ok()?;
    let payload = WireCodec::new(wire.codec, wire.row)
        .encode(&(-tensor))
        .ok()?;
    let run = RunId {
        name: header.run.clone(),
        netuid: header.netuid,
        spec: header.spec,
    };
    let inputs: Vec<&artifact::Header> = header.inputs.iter().collect();
    artifact::seal(
        Unsealed {
            run: &run,
            at: ArtifactId {
                epoch: header.epoch,
                stage: header.stage,
                kind: header.kind,
                id: header.id,
            },
            codec: header.codec,
            dims: &header.dims,
            weights: header.weights,
            loss: header.loss,
            inputs: &inputs,
        },
        &payload,
        signer,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sliver_chain::wallet::Keypair;
    use sliver_common::artifact::{Hotkey, Kind};
    use sliver_common::storage::{Reach, Store};
    use sliver_common::testing::S3Server;
    use sliver_common::{CodecKind, Epoch, StageIndex, layout};
    use sliver_subnet::signer::HotkeySigner;
    use tch::Tensor;

    use super::*;

    /// An activation sealed by `signer`, stored in `store`; returns its key and bytes.
    async fn put_activation(store: &Store, signer: &HotkeySigner) -> (String, Vec<u8>) {
        let run = RunId {
            name: "front-test".into(),
            netuid: 9,
            spec: [7; 32],
        };
        let at = ArtifactId {
            epoch: Epoch(2),
            stage: StageIndex(0),
            kind: Kind::Act,
            id: 42,
        };
        let tensor = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75]).view([1, 2, 3]);
        let payload = WireCodec::new(CodecKind::Int8, 0).encode(&tensor).unwrap();
        let bytes = artifact::seal(
            Unsealed {
                run: &run,
                at,
                codec: CodecKind::Int8,
                dims: &[1, 2, 3],
                weights: None,
                loss: None,
                inputs: &[],
            },
            &payload,
            signer,
        )
        .unwrap();
        let key = layout::artifact(&run.name, &signer.hotkey(), at);
        store
            .put_once(&key, Bytes::from(bytes.clone()))
            .await
            .unwrap();
        (key, bytes)
    }

    /// A reader of `server`'s bucket through `front` with the read-only key, as a peer reads a
    /// published location.
    fn reader(server: &S3Server, front: &Front) -> Store {
        let mut config = server.config("local");
        config.endpoint = Some(front.endpoint.clone());
        config.access_key_id = config.read_access_key_id.take();
        config.secret_access_key = config.read_secret_access_key.take();
        Store::open_peer(&config, Reach::Local).unwrap()
    }

    /// The first reader of an artifact gets the stored bytes; every later reader another
    /// artifact under the same key, validly signed by the same hotkey, with another payload:
    /// proof, once two readers compare, that the producer equivocated. Listings pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_equivocating_front_shows_the_first_reader_the_truth_and_the_rest_a_forgery() {
        let server = S3Server::spawn("sliver");
        let store = Store::open(&server.config("local")).unwrap();
        let signer = HotkeySigner(Keypair::from_seed(&[3; 32]));
        let (key, honest) = put_activation(&store, &signer).await;
        let front = Front::spawn(
            &server.endpoint,
            Conduct::Equivocate {
                signer: Arc::new(signer.clone()),
            },
        )
        .unwrap();
        let peer = reader(&server, &front);
        let listed = peer.list("runs/").await.unwrap();
        assert_eq!(listed, vec![key.clone()]);
        let first = peer.get(&key, 1 << 20).await.unwrap().unwrap();
        assert_eq!(
            first.as_ref(),
            honest.as_slice(),
            "the first read is the truth"
        );
        let second = peer.get(&key, 1 << 20).await.unwrap().unwrap();
        let third = peer.get(&key, 1 << 20).await.unwrap().unwrap();
        assert_ne!(second.as_ref(), honest.as_slice());
        assert_eq!(second, third, "every later reader sees the same forgery");
        let (a, at_a) = artifact::read_header(&first).unwrap();
        let (b, at_b) = artifact::read_header(&second).unwrap();
        assert_eq!(
            b.producer,
            Hotkey(signer.0.account_id().0),
            "signed by the producer"
        );
        assert!(a.equivocates(&b), "two signed objects under one name");
        let (_, t_a) = codec::decode(&first[at_a..], tch::Device::Cpu).unwrap();
        let (_, t_b) = codec::decode(&second[at_b..], tch::Device::Cpu).unwrap();
        assert!(
            t_b.equal(&(-t_a)),
            "the forgery's payload is the truth negated"
        );
        let stats = front.stats();
        assert_eq!((stats.honest, stats.equivocated), (1, 2), "{stats:?}");
    }

    /// A slow front sends its headers at once and then trickles: a reader with a deadline
    /// gives up, one without gets the honest bytes, late.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_front_trickles_the_truth() {
        let server = S3Server::spawn("sliver");
        let store = Store::open(&server.config("local")).unwrap();
        let signer = HotkeySigner(Keypair::from_seed(&[4; 32]));
        let (key, honest) = put_activation(&store, &signer).await;
        let per_byte = Duration::from_millis(20);
        let front = Front::spawn(&server.endpoint, Conduct::Slow { per_byte }).unwrap();
        let peer = reader(&server, &front);
        let cut = tokio::time::timeout(Duration::from_millis(300), peer.get(&key, 1 << 20)).await;
        assert!(cut.is_err(), "a reader's deadline cuts it off");
        let started = std::time::Instant::now();
        let slow = peer.get(&key, 1 << 20).await.unwrap().unwrap();
        assert_eq!(slow.as_ref(), honest.as_slice());
        assert!(
            started.elapsed() >= per_byte * honest.len() as u32,
            "{} bytes in {:?}",
            honest.len(),
            started.elapsed()
        );
        assert!(front.stats().trickled >= 2, "{:?}", front.stats());
    }

    #[test]
    fn artifact_paths_are_told_from_the_rest() {
        assert!(is_artifact("/sliver/local/runs/r/e1/s0/ab/act/42"));
        assert!(is_artifact("/b/runs/r/e1/s1/ab/grad/7"));
        assert!(!is_artifact("/b/runs/r/e1/s1/ab/shard/7"));
        assert!(!is_artifact("/b/runs/r/e1/s1/ab/act/"));
        assert!(!is_artifact("/b/specs/abc.toml"));
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
