//! The S3 test server: s3s's S3 protocol over s3s-fs's directory backend, served in this process
//! on 127.0.0.1, with the credentials a real provider issues: a key pair that may write, a
//! read-only key pair (as an IAM policy, an R2 token or a MinIO user with `readonly` gives), and
//! optionally anonymous reads (a public-read bucket).
//!
//! The protocol needs the two apart: a participant publishes on chain only what lets others
//! read its store, never what lets them write. With one key pair, as `s3s-fs`'s own binary
//! serves, a test could not tell the two apart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper_util::rt::TokioIo;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::S3ServiceBuilder;
use s3s::{S3Result, s3_error};

use crate::storage::StoreConfig;

/// The operations a read-only credential (or an anonymous reader of a public-read bucket) may
/// perform: what a peer's store is read with.
const READ_OPERATIONS: [&str; 6] = [
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "ListObjects",
    "HeadBucket",
    "GetBucketLocation",
];

/// An S3 server on 127.0.0.1 over a fresh directory, for tests and the local subnet; stopped
/// (and its directory removed) on drop.
///
/// s3s-fs keeps each bucket as a directory under its root. Its create-if-absent check
/// (`If-None-Match: *`) is a check then a write, not atomic: tests must not race two writers on
/// one key (the protocol never does).
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The access key that may write.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The access key that may only read (get, head, list).
    pub read_key: String,
    /// Its secret.
    pub read_secret: String,
    /// The bucket created by [`S3Server::spawn`].
    pub bucket: String,
    root: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Who may do what: the write key everything, the read key and (when public) anyone reads.
struct Policy {
    write: String,
    read: String,
    public_read: bool,
}

#[async_trait::async_trait]
impl S3Access for Policy {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let reads = READ_OPERATIONS.contains(&cx.s3_op().name());
        match cx.credentials().map(|c| c.access_key.as_str()) {
            Some(key) if key == self.write => Ok(()),
            Some(key) if key == self.read && reads => Ok(()),
            None if self.public_read && reads => Ok(()),
            Some(key) if key == self.read => Err(s3_error!(
                AccessDenied,
                "the read-only key may not {}",
                cx.s3_op().name()
            )),
            _ => Err(s3_error!(
                AccessDenied,
                "{} is not allowed",
                cx.s3_op().name()
            )),
        }
    }
}

/// The two key pairs.
struct Keys([(String, String); 2]);

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0
            .iter()
            .find(|(key, _)| key == access_key)
            .map(|(_, secret)| SecretKey::from(secret.as_str()))
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))
    }
}

impl S3Server {
    /// Starts a server over a fresh directory holding the empty bucket `bucket`; anonymous
    /// requests are refused.
    ///
    /// # Panics
    /// When the directory, the runtime or the listening socket cannot be made.
    pub fn spawn(bucket: &str) -> S3Server {
        Self::start(bucket, false)
    }

    /// As [`spawn`](Self::spawn), but anyone may read without a key (a public-read bucket).
    ///
    /// # Panics
    /// As [`spawn`](Self::spawn).
    pub fn spawn_public_read(bucket: &str) -> S3Server {
        Self::start(bucket, true)
    }

    fn start(bucket: &str, public_read: bool) -> S3Server {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = std::env::temp_dir().join(format!(
            "sliver-s3-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join(bucket)).expect("create the S3 bucket directory");
        let (access_key, secret_key) = (
            "sliver-test-write".to_string(),
            format!("sliver-test-write-secret-{nanos}"),
        );
        let (read_key, read_secret) = (
            "sliver-test-read".to_string(),
            format!("sliver-test-read-secret-{nanos}"),
        );
        let fs = s3s_fs::FileSystem::new(&root).expect("open the S3 server's directory");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(Keys([
            (access_key.clone(), secret_key.clone()),
            (read_key.clone(), read_secret.clone()),
        ]));
        builder.set_access(Policy {
            write: access_key.clone(),
            read: read_key.clone(),
            public_read,
        });
        let service = builder.build();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listener's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-test-server")
            .enable_all()
            .build()
            .expect("the S3 server's runtime");
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            access_key,
            secret_key,
            read_key,
            read_secret,
            bucket: bucket.to_string(),
            root,
            runtime: Some(runtime),
        }
    }

    /// An `s3://` config for this server's bucket under `prefix` (may be empty), with the write
    /// key and, to publish, the read-only key.
    pub fn config(&self, prefix: &str) -> StoreConfig {
        StoreConfig {
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            read_access_key_id: Some(self.read_key.clone()),
            read_secret_access_key: Some(self.read_secret.clone()),
            ..self.bare(prefix)
        }
    }

    /// A config for `prefix` with no key at all: what a public-read bucket is read with.
    pub fn bare(&self, prefix: &str) -> StoreConfig {
        let url = match prefix.trim_matches('/') {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        };
        StoreConfig {
            endpoint: Some(self.endpoint.clone()),
            ..StoreConfig::at(url)
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
