//! Fixtures for the tests of Sliver's crates (feature `testing`): a tiny run
//! spec, a small in-memory corpus, the real text corpus's location and an
//! S3 test server.

#![allow(
    clippy::expect_used,
    reason = "test fixtures: a broken fixture should stop the test loudly"
)]

use crate::codec::CodecKind;
use crate::data::{Corpus, DataSpec};
use crate::spec::RunSpec;

/// A small model (d_model 64, 4 heads, 2 kv heads, seq 32, batch 4) cut into
/// `stages` (layer ranges, which fix the layer count), with the given boundary.
///
/// # Panics
/// When the arguments make an invalid spec (a fixture bug).
pub fn tiny_spec(
    stages: &[[usize; 2]],
    bottleneck: usize,
    codec: CodecKind,
    token_embedding: bool,
) -> RunSpec {
    let n_layers = stages.last().map_or(0, |s| s[1]);
    let stages: String = stages
        .iter()
        .map(|[a, b]| format!("[[stages]]\nlayers = [{a}, {b}]\n"))
        .collect();
    RunSpec::from_toml(&format!(
        r#"
        name = "tiny"
        seed = 42
        [model]
        vocab_size = 256
        d_model = 64
        n_layers = {n_layers}
        n_heads = 4
        n_kv_heads = 2
        ffn_hidden = 128
        seq_len = 32
        {stages}
        [boundary]
        bottleneck = {bottleneck}
        codec = "{codec}"
        token_embedding = {token_embedding}
        [optimizer]
        batch_size = 4
        warmup_steps = 5
        lr = 0.003
        [data]
        sources = ["unused"]
        "#
    ))
    .expect("the tiny spec fixture is valid")
}

/// A corpus built in memory from a little generated text.
///
/// # Panics
/// When the corpus cannot be built (a fixture bug).
pub fn small_corpus(spec: &RunSpec) -> Corpus {
    let texts: Vec<String> = (0..40)
        .map(|i| {
            (0..60)
                .map(|j| {
                    format!(
                        "line {j} of document {i}: the quick brown fox jumps over the lazy dog.\n"
                    )
                })
                .collect()
        })
        .collect();
    Corpus::from_texts(&spec.data, texts).expect("the small corpus fixture builds")
}

/// Where `scripts/setup.sh` put the real text corpus (`SLIVER_TEXT_DIR`).
///
/// # Panics
/// When the variable is unset, with a message saying how to set it.
pub fn text_dir() -> String {
    std::env::var("SLIVER_TEXT_DIR")
        .expect("SLIVER_TEXT_DIR is not set: run `scripts/test` (or `source scripts/setup.sh`) to fetch the text corpus")
}

/// A `[data]` table reading the real text corpus.
pub fn real_text() -> DataSpec {
    DataSpec {
        sources: vec![text_dir()],
        ..DataSpec::default()
    }
}

/// An `s3s-fs` server on 127.0.0.1 over a fresh directory, for tests of the S3 storage backend;
/// killed (and its directory removed) on drop.
///
/// `s3s-fs` keeps each bucket as a directory under its root. Its create-if-absent check
/// (`If-None-Match: *`) is a check then a write, not atomic: tests must not race two writers on
/// one key (the protocol never does).
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key the server accepts.
    pub access_key: String,
    /// The secret key the server accepts.
    pub secret_key: String,
    /// The bucket created by [`S3Server::spawn`].
    pub bucket: String,
    root: std::path::PathBuf,
    child: std::process::Child,
}

impl S3Server {
    /// How long the server may take to start listening.
    const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

    /// Starts `$SLIVER_S3S_FS` (installed by `scripts/setup.sh`) on 127.0.0.1 with a port the
    /// system picks, over a fresh directory holding the empty bucket `bucket`, and waits until it
    /// accepts connections.
    ///
    /// # Panics
    /// When `SLIVER_S3S_FS` is unset or names no file, or the server does not start in time.
    pub fn spawn(bucket: &str) -> S3Server {
        use std::io::BufRead;
        use std::sync::atomic::{AtomicU64, Ordering};

        static NEXT: AtomicU64 = AtomicU64::new(0);
        let binary = std::env::var_os("SLIVER_S3S_FS")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_file())
            .expect(
                "SLIVER_S3S_FS is unset or names no file: run `scripts/test` (or \
                 `source scripts/setup.sh`) to install the s3s-fs test server",
            );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = std::env::temp_dir().join(format!(
            "sliver-s3s-fs-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join(bucket)).expect("create the s3s-fs bucket directory");
        let access_key = "sliver-test-access".to_string();
        let secret_key = format!("sliver-test-secret-{nanos}");
        // With port 0 the system picks a free port (no race with other tests); the server logs
        // the address it bound at `info`, which is read from its stdout.
        let mut child = std::process::Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(&root)
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining after the address so the server never blocks on a full pipe.
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("server is running at http://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let mut server = S3Server {
            endpoint: String::new(),
            access_key,
            secret_key,
            bucket: bucket.to_string(),
            root,
            child,
        };
        let deadline = std::time::Instant::now() + Self::START_TIMEOUT;
        let addr: std::net::SocketAddr = rx
            .recv_timeout(Self::START_TIMEOUT)
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "s3s-fs did not report its address within {:?} (exit status: {:?})",
                    Self::START_TIMEOUT,
                    server.child.try_wait()
                )
            });
        while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "s3s-fs at {addr} does not accept connections"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server.endpoint = format!("http://{addr}");
        server
    }

    /// An `s3://` config for this server's bucket under `prefix` (may be empty), with its keys.
    pub fn config(&self, prefix: &str) -> crate::storage::StoreConfig {
        let url = match prefix.trim_matches('/') {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        };
        crate::storage::StoreConfig {
            url,
            endpoint: Some(self.endpoint.clone()),
            region: None,
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            latency: std::time::Duration::ZERO,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
