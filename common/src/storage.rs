//! Object storage for the artifacts that miners and validators exchange.
//!
//! Participants never talk to each other directly: a miner writes its activations, gradients and
//! weights to a store it owns, publishes on chain where that store is (a [location]), and its peers
//! read from there. This module is that store, over [`object_store`], with the few rules the
//! protocol depends on made explicit:
//!
//! - **Write once.** Every key has exactly one writer (its path names the writer's hotkey) and is
//!   never rewritten: a reader that has seen an object may trust it not to change under it.
//!   [`Store::put_once`] therefore asks the backend to create the key only if it is absent
//!   (`PutMode::Create`) and reports [`Put::Exists`] instead of overwriting. Correctness does not
//!   rest on that check being atomic under concurrent writers, since there are none by design:
//!   `s3s-fs`, the test server, checks for the file and then writes it, which is not atomic, and
//!   neither is any store that ignores `If-None-Match`.
//! - **Bounded reads.** Peers are untrusted, so [`Store::get`] takes the largest size the caller is
//!   prepared to accept and refuses a larger object from its metadata, before its body is read.
//! - **Validated keys.** Keys are relative, `/`-separated, and drawn from a small character set, so
//!   the same key means the same object on the filesystem and on S3, and no key can climb out of
//!   its store (`..`) or collide with the filesystem backend's staging files (`name#1`).
//! - **Bounded retries.** Transient failures (timeouts, connection resets, 5xx) are retried here,
//!   a few times with exponential backoff and jitter, and counted in [`StoreStats::retries`];
//!   each request and its waits are bounded by the store's [`Timeouts`] (flags, and for a
//!   peer's store no more than the run's per-read deadline allows: [`Timeouts::within`]);
//!   `object_store`'s own retry loop is turned off so that there is one bound, not two multiplied.
//!   A retried create whose first attempt did land reports [`Put::Exists`]: the object is then
//!   the caller's own.
//! - **Deleted only by the owner, once expired.** [`Store::delete_prefix`] is called by the
//!   owner's garbage collection alone ([`crate::gc`]), on folders of epochs no reader needs any
//!   more; a store that refuses deletes only makes it warn.
//! - **Durable puts.** On the filesystem, `object_store` writes to a staging file and publishes it
//!   with a hard link (create) or rename; it does not fsync by default, so the store is opened with
//!   [`LocalFileSystem::with_fsync`]: the file, its parent directories and the new directory
//!   entries are synced before a put returns. S3 acknowledges a put only once it is durable.
//!
//! A [`StoreConfig`] says where a store is and how to reach it; [`StoreConfig::to_location`] turns
//! it into the one-line string published on chain.
//!
//! # Reading apart from writing
//!
//! Whatever a participant publishes lets others read its store, never write it: a location
//! carries the store's **read-only** key pair (`--storage.read_access_key_id`, as an IAM policy,
//! an R2 read token or a MinIO `readonly` user gives), or no key at all for a public-read
//! bucket; the key pair that writes is never published. A read-only key rather than presigned
//! reads, because peers list prefixes (a presigned URL names one object) and the keys they list
//! are only known once written; rather than only public-read buckets, because some providers
//! (R2's S3 API) offer no anonymous listing. [`Store::verify_published`] checks it before a
//! neuron announces: the published location must list the store and must fail to write it. Secret
//! keys are never printed ([`Debug`] redacts them, [`Display`](std::fmt::Display) omits them) nor
//! logged.
//!
//! A peer's location is untrusted input: [`Store::open_peer`] opens it under a [`Reach`] (see
//! `storage/peer.rs`): no filesystem, loopback or private addresses (after resolution) and no redirects,
//! outside an explicit local subnet.
//!
//! [location]: StoreConfig::to_location

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use rand::Rng;
use url::form_urlencoded;

mod link;
pub mod parts;
mod peer;
pub use link::{LISTED_BYTES, Link, LinkSpec, LinkTally};
pub use peer::Reach;

/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The longest location [`StoreConfig::to_location`] produces: it is published on chain.
pub const MAX_LOCATION_LEN: usize = 300;

/// The longest key accepted (S3's limit is 1024 bytes, including the store's prefix).
pub const MAX_KEY_LEN: usize = 512;

/// Attempts per request, the first included.
const ATTEMPTS: u32 = 4;

/// How long a store's requests may take, and how long it waits before retrying one: the
/// `--storage.connect_timeout_secs`, `--storage.request_timeout_secs` and
/// `--storage.retry_backoff_ms` flags, whose defaults are [`Timeouts::default`]. A peer's store
/// is read with them bounded by the run's per-read deadline ([`Timeouts::within`]), so no
/// storage timeout outlasts what the epoch's timeline gives a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to an S3 endpoint.
    pub connect: Duration,
    /// One S3 request, its body included (each attempt of it: the retries multiply it by at
    /// most the four attempts). Reads of peers are further bounded by their callers, each by a
    /// deadline sized to the object (a sample's timeout per activation's worth of bytes).
    pub request: Duration,
    /// The wait before the first retry; doubled for each further one, plus up to 50% jitter.
    pub backoff: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 300 s a request (generous, since a stage's weights, the largest object
    /// a participant writes, can be hundreds of megabytes on a slow link), 200 ms before the
    /// first retry.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(300),
            backoff: Duration::from_millis(200),
        }
    }
}

impl Timeouts {
    /// These timeouts for reads that each get `read` at the least (a run's per-read deadline,
    /// `swarm.sample_timeout_secs`): connecting takes at most a third of it, and the waits
    /// between all four tries (each backoff with its largest jitter) another third at
    /// most, leaving the rest to the requests themselves. The request timeout is kept: every
    /// read of a peer is bounded by its caller's deadline, sized to the object, which can be
    /// many times `read` for a merge shard. With the default 30 s sample timeout nothing
    /// changes (10 s to connect; 200 ms is under the 952 ms allowed).
    #[must_use]
    pub fn within(self, read: Duration) -> Self {
        // Largest sum of the waits, in backoffs: 1 + 2 + … + 2^(ATTEMPTS−2), times 1.5 (jitter).
        let waits_in_halves = 3 * ((1u32 << (ATTEMPTS - 1)) - 1);
        Self {
            connect: self.connect.min(read / 3),
            request: self.request,
            backoff: self.backoff.min(read * 2 / (3 * waits_in_halves)),
        }
    }
}

/// Where a participant's artifacts live, and how to reach it.
///
/// `Debug` is written by hand so that the secret key never appears in logs or panics.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `file:///abs/dir`, a plain filesystem path, or `s3://bucket/optional/prefix`.
    pub url: String,
    /// S3 endpoint, e.g. `http://127.0.0.1:9000`; AWS itself when unset. Plain `http` is allowed
    /// only to a loopback host (`127.0.0.1`, `::1`, `localhost`).
    pub endpoint: Option<String>,
    /// S3 region; [`DEFAULT_REGION`] when unset.
    pub region: Option<String>,
    /// S3 access key id: the one this participant uses (its write key; for a peer's store, the
    /// read key its location published). With neither key set, requests are unsigned (a
    /// public-read bucket).
    pub access_key_id: Option<String>,
    /// S3 secret access key. Never printed, never published.
    pub secret_access_key: Option<String>,
    /// The read-only access key id published in the location for others; none for a public-read
    /// bucket. Never the write key.
    pub read_access_key_id: Option<String>,
    /// Its secret: public by design once published, but still never printed.
    pub read_secret_access_key: Option<String>,
    /// The emulated network link requests cross ([`Link`]: a round trip, shared upload and
    /// download bandwidth, a failure rate), for benchmarks and tests; transparent by default.
    /// Not part of the location. Clones share the link's bandwidth, so a participant gives the
    /// same link to every store it opens, its peers' included.
    pub link: Link,
    /// Which peers' locations this participant reads ([`Reach`]); [`Reach::Public`] by default.
    /// Not part of the location.
    pub reach: Reach,
    /// How long requests may take ([`Timeouts`]); not part of the location.
    pub timeouts: Timeouts,
}

impl StoreConfig {
    /// A store in the directory `dir` (made absolute against the current directory), created on
    /// [`Store::open`] if missing.
    pub fn filesystem(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let url = url::Url::from_file_path(&abs)
            .map_or_else(|()| abs.to_string_lossy().into_owned(), String::from);
        Self::at(url)
    }

    /// The store at `url` with no endpoint, region or key set (checked on [`Store::open`]).
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            read_access_key_id: None,
            read_secret_access_key: None,
            link: Link::new(LinkSpec::default()),
            reach: Reach::Public,
            timeouts: Timeouts::default(),
        }
    }

    /// Fills endpoint/region/keys left unset from the usual AWS environment variables
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`). A filesystem config is returned unchanged.
    pub fn with_env(self) -> Self {
        self.with_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn with_vars(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if !self.url.starts_with("s3://") {
            return self;
        }
        self.endpoint = self.endpoint.or_else(|| var("AWS_ENDPOINT_URL"));
        self.region = self
            .region
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"));
        self.access_key_id = self.access_key_id.or_else(|| var("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self
            .secret_access_key
            .or_else(|| var("AWS_SECRET_ACCESS_KEY"));
        self
    }

    /// A compact one-line location that others can open for reading, published on chain: the url,
    /// then a query string for the S3 options that are set, e.g.
    /// `s3://bkt/pre?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1&key=RK&secret=RS`,
    /// where `key` and `secret` are the **read-only** pair (none for a public-read bucket). The
    /// write pair is never part of it; `latency` is not either.
    ///
    /// # Errors
    /// When the config is invalid (see [`Store::open`]), names a relative filesystem path (which
    /// no one else could open), publishes the write key as the read key, or the location would
    /// exceed [`MAX_LOCATION_LEN`] bytes.
    pub fn to_location(&self) -> Result<String, StorageError> {
        let target = self.validate()?;
        if let Target::Fs(_) = target
            && !self.url.starts_with("file://")
            && !Path::new(&self.url).is_absolute()
        {
            return Err(StorageError::InvalidUrl {
                url: self.url.clone(),
                reason: "a relative filesystem path cannot be published as a location".into(),
            });
        }
        if self.read_access_key_id.is_some() && self.read_access_key_id == self.access_key_id {
            return Err(StorageError::InvalidLocation {
                location: self.to_string(),
                reason: "the read-only key is the write key: publishing it would let anyone \
                         write to this store; give a key that can only read (or none, for a \
                         public-read bucket)"
                    .into(),
            });
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("endpoint", &self.endpoint),
            ("region", &self.region),
            ("key", &self.read_access_key_id),
            ("secret", &self.read_secret_access_key),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        let location = if query.is_empty() {
            self.url.clone()
        } else {
            format!("{}?{query}", self.url)
        };
        if location.len() > MAX_LOCATION_LEN {
            return Err(StorageError::InvalidLocation {
                location: self.to_string(),
                reason: format!(
                    "it is {} bytes long, more than the {MAX_LOCATION_LEN} that may be published",
                    location.len()
                ),
            });
        }
        Ok(location)
    }

    /// Parses a location written by [`to_location`](Self::to_location) (its inverse; `latency` is
    /// zero).
    ///
    /// # Errors
    /// On an unknown, repeated or empty query key, S3 options on a filesystem url, an over-long
    /// location, or a config that [`Store::open`] would refuse.
    pub fn from_location(s: &str) -> Result<Self, StorageError> {
        // The location itself may hold a secret: errors name only the url part.
        let (url, query) = s.split_once('?').unwrap_or((s, ""));
        let bad = |reason: String| StorageError::InvalidLocation {
            location: url.to_string(),
            reason,
        };
        if s.len() > MAX_LOCATION_LEN {
            return Err(bad(format!(
                "it is {} bytes long, more than the {MAX_LOCATION_LEN} allowed",
                s.len()
            )));
        }
        let mut config = Self::at(url);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*name {
                "endpoint" => &mut config.endpoint,
                "region" => &mut config.region,
                "key" => &mut config.access_key_id,
                "secret" => &mut config.secret_access_key,
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}` (known: endpoint, region, key, secret)"
                    )));
                }
            };
            if slot.is_some() {
                return Err(bad(format!("option `{name}` is given twice")));
            }
            if value.is_empty() {
                return Err(bad(format!("option `{name}` is empty")));
            }
            *slot = Some(value.into_owned());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the url, endpoint and keys without touching the store.
    fn validate(&self) -> Result<Target, StorageError> {
        let target = parse_url(&self.url)?;
        match &target {
            Target::Fs(_) => {
                if self.endpoint.is_some()
                    || self.region.is_some()
                    || self.access_key_id.is_some()
                    || self.secret_access_key.is_some()
                    || self.read_access_key_id.is_some()
                    || self.read_secret_access_key.is_some()
                {
                    return Err(StorageError::InvalidUrl {
                        url: self.url.clone(),
                        reason: "endpoint, region and keys apply only to an s3:// url".into(),
                    });
                }
            }
            Target::S3 { .. } => {
                if let Some(endpoint) = &self.endpoint {
                    check_endpoint(endpoint)?;
                }
                if self.access_key_id.is_some() != self.secret_access_key.is_some() {
                    return Err(StorageError::InvalidUrl {
                        url: self.url.clone(),
                        reason: "the access key id and the secret access key must be given \
                                 together (or neither, for a public bucket)"
                            .into(),
                    });
                }
                if self.read_access_key_id.is_some() != self.read_secret_access_key.is_some() {
                    return Err(StorageError::InvalidUrl {
                        url: self.url.clone(),
                        reason: "the read-only access key id and its secret must be given \
                                 together (or neither, for a public-read bucket)"
                            .into(),
                    });
                }
            }
        }
        Ok(target)
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "[redacted]"),
            )
            .field("read_access_key_id", &self.read_access_key_id)
            .field(
                "read_secret_access_key",
                &self.read_secret_access_key.as_ref().map(|_| "[redacted]"),
            )
            .field("link", &self.link)
            .field("reach", &self.reach)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// The url, and the endpoint when one is set; never a key.
impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " (endpoint {endpoint})")?;
        }
        Ok(())
    }
}

/// What a url names.
enum Target {
    Fs(PathBuf),
    S3 { bucket: String, prefix: String },
}

fn parse_url(url: &str) -> Result<Target, StorageError> {
    let bad = |reason: &str| StorageError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if url.is_empty() {
        return Err(bad("it is empty"));
    }
    if url.contains(['?', '#']) {
        return Err(bad("it may not contain `?` or `#`"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(Target::Fs(PathBuf::from(url)));
    };
    match scheme {
        "file" => {
            let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            let path = parsed
                .to_file_path()
                .map_err(|()| bad("expected file:///absolute/path"))?;
            Ok(Target::Fs(path))
        }
        "s3" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                })
                && !bucket.starts_with(['.', '-'])
                && !bucket.ends_with(['.', '-']);
            if !bucket_ok {
                return Err(bad(
                    "expected s3://bucket/optional/prefix with a bucket name of 3 to 63 \
                     lowercase letters, digits, `.` and `-`",
                ));
            }
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty() {
                validate_key(prefix).map_err(|e| bad(&format!("bad prefix: {e}")))?;
            }
            Ok(Target::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            })
        }
        other => Err(StorageError::UnknownScheme {
            url: url.to_string(),
            scheme: other.to_string(),
        }),
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), StorageError> {
    let bad = |reason: String| StorageError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let parsed = url::Url::parse(endpoint).map_err(|e| bad(e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(bad(
                    "plain http is allowed only to 127.0.0.1, ::1 or localhost; use https".into(),
                ));
            }
        }
        other => {
            return Err(bad(format!(
                "expected an http(s) url, got scheme `{other}`"
            )));
        }
    }
    if parsed.host().is_none() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("expected scheme://host[:port]".into()));
    }
    Ok(())
}

/// Checks a key: relative, `/`-separated, non-empty segments of ASCII letters, digits, `-`, `_`,
/// `.` and `=`, no `.` or `..` segment, at most [`MAX_KEY_LEN`] bytes.
fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "it is {} bytes long, more than {MAX_KEY_LEN}",
            key.len()
        ));
    }
    if key.starts_with('/') {
        return Err("it starts with `/` (keys are relative)".into());
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("it has an empty segment (`//` or a trailing `/`)".into());
        }
        if segment == "." || segment == ".." {
            return Err(format!("it has a `{segment}` segment"));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')))
        {
            return Err(format!(
                "it contains {c:?}; keys use ASCII letters, digits, `-`, `_`, `.`, `=` and `/`"
            ));
        }
    }
    Ok(())
}

/// What [`Store::put_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The object was written and is durable.
    Created,
    /// The key already held exactly these bytes (a retried or repeated put): nothing was written.
    Same,
    /// The key already held other bytes; nothing was written. Only a writer of this store can
    /// have put them: this participant before a restart, or whoever holds its write key.
    Exists,
}

/// Counters since [`Store::open`], shared by the store's clones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Objects created by [`Store::put_once`] (not counting [`Put::Exists`]).
    pub puts: u64,
    /// Bytes in those objects.
    pub bytes_put: u64,
    /// Objects read by [`Store::get`] (not counting absent ones).
    pub gets: u64,
    /// Bytes in those objects.
    pub bytes_got: u64,
    /// Requests retried after a transient failure.
    pub retries: u64,
}

/// Why a storage operation failed. Each variant names the key, url or location concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A url that names no store.
    #[error("invalid storage url `{url}`: {reason}")]
    InvalidUrl {
        /// The url.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A url whose scheme is not `file` or `s3`.
    #[error(
        "unsupported storage url `{url}`: unknown scheme `{scheme}` (expected file:// or s3://)"
    )]
    UnknownScheme {
        /// The url.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// An S3 endpoint that is not an http(s) url, or plain http to a host that is not loopback.
    #[error("invalid S3 endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A published location that cannot be parsed or produced.
    #[error("invalid storage location `{location}`: {reason}")]
    InvalidLocation {
        /// The location's url part (its query may hold a secret).
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key (or list prefix) outside the accepted form.
    #[error("invalid storage key `{key}`: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object larger than the caller accepts; its body was not read.
    #[error("object `{key}` is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// The key.
        key: String,
        /// The object's size (or, if the store's metadata understated it, the bytes read so far).
        size: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// The filesystem store's directory could not be created.
    #[error("cannot create the storage directory {dir}: {source}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The backend could not be set up from the config.
    #[error("cannot open the store at {url}: {source}")]
    Open {
        /// The store, as [`StoreConfig`]'s `Display` writes it.
        url: String,
        /// The cause.
        source: object_store::Error,
    },
    /// A request failed (after retries, if the failure looked transient).
    #[error("storage request for `{key}` failed: {source}")]
    Backend {
        /// The key or list prefix.
        key: String,
        /// The cause.
        source: object_store::Error,
    },
}

/// An open store: cheap to clone (the clones share the connection pool and the counters).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    backend: Arc<dyn ObjectStore>,
    /// Prepended to every key: empty, or the s3 url's prefix followed by `/`.
    prefix: String,
    puts: AtomicU64,
    bytes_put: AtomicU64,
    gets: AtomicU64,
    bytes_got: AtomicU64,
    retries: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `config` names, creating a filesystem store's directory if missing. No
    /// request is sent: an unreachable S3 endpoint shows at the first operation.
    ///
    /// # Errors
    /// On a bad url or endpoint, only one of the two keys, or a directory that cannot be created.
    pub fn open(config: &StoreConfig) -> Result<Store, StorageError> {
        Self::open_with(config, None)
    }

    /// Opens a peer's store from the location it published: [`Store::open`] after the checks of
    /// `reach` ([`Reach`]), over an HTTP client that follows no redirect and, outside
    /// [`Reach::Local`], connects only to public addresses.
    ///
    /// # Errors
    /// [`StorageError::InvalidLocation`] for a location `reach` refuses, or as [`Store::open`].
    pub fn open_peer(config: &StoreConfig, reach: Reach) -> Result<Store, StorageError> {
        peer::check(config, reach)?;
        Self::open_with(config, Some(peer::Connector::new(reach)))
    }

    fn open_with(
        config: &StoreConfig,
        connector: Option<peer::Connector>,
    ) -> Result<Store, StorageError> {
        let (backend, prefix): (Arc<dyn ObjectStore>, String) = match config.validate()? {
            Target::Fs(dir) => {
                if connector.is_some() {
                    // A peer's directory is read, never made.
                    if !dir.is_dir() {
                        return Err(StorageError::InvalidLocation {
                            location: config.to_string(),
                            reason: "no such directory".into(),
                        });
                    }
                } else {
                    std::fs::create_dir_all(&dir).map_err(|source| StorageError::CreateDir {
                        dir: dir.clone(),
                        source,
                    })?;
                }
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|source| StorageError::Open {
                        url: config.to_string(),
                        source,
                    })?
                    .with_fsync(true)
                    // A delete also removes the directories it leaves empty, so an expired
                    // epoch's folder goes with its last object ([`Store::delete_prefix`]).
                    .with_automatic_cleanup(true);
                (Arc::new(fs), String::new())
            }
            Target::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(config.region.as_deref().unwrap_or(DEFAULT_REGION))
                    // Path-style requests: a local or self-hosted server has no per-bucket DNS.
                    .with_virtual_hosted_style_request(false)
                    // Retries are ours (see the module docs).
                    .with_retry(RetryConfig {
                        max_retries: 0,
                        ..RetryConfig::default()
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(config.timeouts.request)
                            .with_connect_timeout(config.timeouts.connect),
                    );
                if let Some(endpoint) = &config.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(connector) = connector {
                    builder = builder.with_http_connector(connector.with(config.timeouts));
                }
                builder = match (&config.access_key_id, &config.secret_access_key) {
                    (Some(key), Some(secret)) => builder
                        .with_access_key_id(key)
                        .with_secret_access_key(secret),
                    _ => builder.with_skip_signature(true),
                };
                let s3 = builder.build().map_err(|source| StorageError::Open {
                    url: config.to_string(),
                    source,
                })?;
                let prefix = if prefix.is_empty() {
                    prefix
                } else {
                    format!("{prefix}/")
                };
                (Arc::new(s3), prefix)
            }
        };
        // Behind the participant's link: every request crosses it and is counted there
        // (`Link::tally`); a transparent link only counts.
        let backend: Arc<dyn ObjectStore> = Arc::new(link::Linked::new(
            backend,
            config.link.clone(),
            config.timeouts.request,
        ));
        tracing::debug!(store = %config, "storage opened");
        Ok(Store {
            inner: Arc::new(Inner {
                config: config.clone(),
                backend,
                prefix,
                puts: AtomicU64::new(0),
                bytes_put: AtomicU64::new(0),
                gets: AtomicU64::new(0),
                bytes_got: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        })
    }

    /// The config this store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Creates `key` (a `/`-separated relative key like `runs/r/e1/s0/HOTKEY/act/42`) with
    /// `bytes`, unless it exists: [`Put::Created`] once the object is durable, [`Put::Exists`] if
    /// the key already existed (nothing is written). Transient failures are retried a few times.
    ///
    /// # Errors
    /// On an invalid key, or a failure that persisted through the retries.
    pub async fn put_once(&self, key: &str, bytes: Bytes) -> Result<Put, StorageError> {
        let path = self.path(key)?;
        let len = bytes.len() as u64;
        let result = self
            .retrying(key, || {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                self.inner
                    .backend
                    .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            })
            .await;
        match result {
            Ok(_) => {
                self.inner.puts.fetch_add(1, Ordering::Relaxed);
                self.inner.bytes_put.fetch_add(len, Ordering::Relaxed);
                tracing::debug!(key, bytes = len, "storage put");
                Ok(Put::Created)
            }
            Err(StorageError::Backend {
                source: object_store::Error::AlreadyExists { .. },
                ..
            }) => {
                // Ours (a retry whose first attempt landed) only if it holds these very bytes.
                let held = match self.get(key, len).await {
                    Ok(held) => held,
                    Err(StorageError::TooLarge { .. }) => None,
                    Err(e) => return Err(e),
                };
                if held.as_ref() == Some(&bytes) {
                    tracing::debug!(key, "storage put skipped: the key holds these bytes");
                    Ok(Put::Same)
                } else {
                    tracing::debug!(key, "storage put skipped: the key holds other bytes");
                    Ok(Put::Exists)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Checks, before it is announced, that `location` (this store's published location) lets
    /// others read this store and not write it: a peer opening it under `reach` can list the
    /// store, and its put of the `probe` key (a key of [`crate::layout`]) fails. A probe that
    /// did land is removed with this store's own key.
    ///
    /// # Errors
    /// [`StorageError::InvalidLocation`] when the location can write, or a read through it fails.
    pub async fn verify_published(
        &self,
        location: &str,
        reach: Reach,
        probe: &str,
    ) -> Result<(), StorageError> {
        let published = StoreConfig::from_location(location)?;
        let bad = |reason: String| StorageError::InvalidLocation {
            location: self.inner.config.to_string(),
            reason,
        };
        if let Target::Fs(_) = published.validate()? {
            // Anyone on this machine can write a directory: only a local subnet publishes one,
            // and `open_peer` refuses it elsewhere.
            return peer::check(&published, reach);
        }
        let reader = Store::open_peer(&published, reach)?;
        if let Err(e) = reader.list(probe).await {
            return Err(bad(format!(
                "peers could not read the store through the published location: {e}"
            )));
        }
        let wrote = reader
            .put_once(probe, Bytes::from_static(b"sliver write probe"))
            .await;
        if self.exists(probe).await? {
            let path = self.path(probe)?;
            if let Err(e) = self.inner.backend.delete(&path).await {
                tracing::warn!(key = probe, error = %e, "could not remove the write probe");
            }
        }
        // A read-only key is refused before the key's existence is looked at, so any answer
        // but an error means the location can write.
        if wrote.is_ok() {
            return Err(bad(
                "the published location can write to the store: publish a read-only key \
                 (--storage.read_access_key_id / --storage.read_secret_access_key), or none for \
                 a public-read bucket, never the key this participant writes with"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads `key`: `None` if it is absent. An object larger than `max_len` bytes is refused from
    /// its metadata, before its body is downloaded.
    ///
    /// # Errors
    /// [`StorageError::TooLarge`], an invalid key, or a failure that persisted through retries.
    pub async fn get(&self, key: &str, max_len: u64) -> Result<Option<Bytes>, StorageError> {
        let path = self.path(key)?;
        let result = self
            .retrying(key, || async {
                let got = self
                    .inner
                    .backend
                    .get_opts(&path, GetOptions::default())
                    .await?;
                if got.meta.size > max_len {
                    // Dropping `got` drops the unread body.
                    return Ok(Err(got.meta.size));
                }
                let mut stream = got.into_stream();
                let mut buf = BytesMut::new();
                while let Some(chunk) = stream.try_next().await? {
                    if (buf.len() + chunk.len()) as u64 > max_len {
                        return Ok(Err((buf.len() + chunk.len()) as u64));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(Ok(buf.freeze()))
            })
            .await;
        match result {
            Ok(Ok(bytes)) => {
                self.inner.gets.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .bytes_got
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                tracing::debug!(key, bytes = bytes.len(), "storage get");
                Ok(Some(bytes))
            }
            Ok(Err(size)) => Err(StorageError::TooLarge {
                key: key.to_string(),
                size,
                limit: max_len,
            }),
            Err(StorageError::Backend {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads bytes `range` of `key` (one ranged GET): `None` if the object is absent. A range
    /// past the object's end is an error, as is an answer of another length.
    ///
    /// # Errors
    /// An invalid key or range, or a failure that persisted through retries.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StorageError> {
        let path = self.path(key)?;
        let result = self
            .retrying(key, || self.inner.backend.get_range(&path, range.clone()))
            .await;
        match result {
            Ok(bytes) if bytes.len() as u64 == range.end - range.start => {
                self.inner.gets.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .bytes_got
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(Some(bytes))
            }
            Ok(bytes) => Err(StorageError::Backend {
                key: key.to_string(),
                source: object_store::Error::Generic {
                    store: "get_range",
                    source: format!("asked for bytes {range:?}, got {} bytes", bytes.len()).into(),
                },
            }),
            Err(StorageError::Backend {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The keys under `prefix`, relative as given to [`put_once`](Self::put_once), sorted.
    ///
    /// `prefix` names a "directory": `runs/r` and `runs/r/` both list `runs/r/a` but not
    /// `runs/rx/a`; the empty prefix lists the whole store.
    ///
    /// # Errors
    /// On an invalid prefix, or a failure that persisted through retries.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let base = self.folder(prefix)?;
        let strip = &self.inner.prefix;
        let mut keys = self
            .retrying(prefix, || {
                self.inner
                    .backend
                    .list(base.as_ref())
                    .map_ok(|meta| meta.location.to_string())
                    .try_collect::<Vec<_>>()
            })
            .await?;
        keys.retain_mut(|key| match key.strip_prefix(strip.as_str()) {
            Some(rest) => {
                *key = rest.to_string();
                true
            }
            None => false,
        });
        keys.sort_unstable();
        Ok(keys)
    }

    /// The names of the folders directly under `prefix` (one listing with a delimiter: the
    /// objects below them are not listed), sorted: for `runs/r`, `["challenges", "e3", ...]`.
    ///
    /// # Errors
    /// On an invalid prefix, or a failure that persisted through retries.
    pub async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let base = self.folder(prefix)?;
        let listed = self
            .retrying(prefix, || {
                self.inner.backend.list_with_delimiter(base.as_ref())
            })
            .await?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Deletes every object under `prefix` (listed as [`list`](Self::list) lists it) and
    /// returns how many it deleted. Only the store's owner can: a read-only key, or a store
    /// that refuses deletes, gets an error. Deletes go out in the backend's batches (S3:
    /// `DeleteObjects`, up to 1000 keys a request, so an epoch's folder costs a listing and a
    /// few requests; the filesystem: ten files at a time); an object already gone is neither
    /// counted nor an error. Transient failures are retried like every request.
    ///
    /// Nothing in the protocol deletes but the owner's garbage collection ([`crate::gc`]): a key
    /// is write-once while any reader may still ask for it, and deleted only once none can.
    ///
    /// # Errors
    /// On an invalid prefix, or a listing or delete that failed (after retries); the objects
    /// deleted before the failure stay deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let paths: Vec<ObjectPath> = self
            .list(prefix)
            .await?
            .iter()
            .filter_map(|key| self.path(key).ok())
            .collect();
        if paths.is_empty() {
            return Ok(0);
        }
        let deleted = AtomicU64::new(0);
        self.retrying(prefix, || {
            let locations = futures::stream::iter(paths.clone().into_iter().map(Ok)).boxed();
            let deleted = &deleted;
            self.inner
                .backend
                .delete_stream(locations)
                .map(move |done| match done {
                    Ok(_) => {
                        deleted.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }
                    // Gone already (a retry whose first attempt landed).
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                })
                .try_collect::<()>()
        })
        .await?;
        let deleted = deleted.into_inner();
        tracing::debug!(prefix, deleted, "storage delete");
        Ok(deleted)
    }

    /// Whether `key` exists (a metadata request; the body is not read).
    ///
    /// # Errors
    /// On an invalid key, or a failure that persisted through retries.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        let opts = || GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self
            .retrying(key, || async {
                self.inner.backend.get_opts(&path, opts()).await.map(|_| ())
            })
            .await
        {
            Ok(()) => Ok(true),
            Err(StorageError::Backend {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Counters since [`open`](Self::open), over all clones of this store.
    pub fn stats(&self) -> StoreStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StoreStats {
            puts: load(&self.inner.puts),
            bytes_put: load(&self.inner.bytes_put),
            gets: load(&self.inner.gets),
            bytes_got: load(&self.inner.bytes_got),
            retries: load(&self.inner.retries),
        }
    }

    /// The backend path of the "directory" `prefix` (`runs/r` and `runs/r/` alike), after
    /// validating it; `None` for the whole store.
    fn folder(&self, prefix: &str) -> Result<Option<ObjectPath>, StorageError> {
        let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
        let full = if trimmed.is_empty() {
            self.inner.prefix.trim_end_matches('/').to_string()
        } else {
            self.path(trimmed)?.to_string()
        };
        Ok((!full.is_empty()).then(|| ObjectPath::from(full.as_str())))
    }

    /// The backend path of `key`, after validating it.
    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        validate_key(key).map_err(|reason| StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        })?;
        // Validated keys hold no character that `Path::from` would encode or split differently.
        Ok(ObjectPath::from(format!("{}{key}", self.inner.prefix)))
    }

    /// Runs `request` (through the configured [`Link`]), retrying transient failures with
    /// exponential backoff and jitter, at most [`ATTEMPTS`] times in all.
    async fn retrying<T, F, Fut>(&self, key: &str, mut request: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match request().await {
                Ok(value) => return Ok(value),
                Err(source) if attempt < ATTEMPTS && is_transient(&source) => {
                    let backoff = self.inner.config.timeouts.backoff * 2u32.pow(attempt - 1);
                    let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
                    let wait = backoff + Duration::from_millis(jitter);
                    tracing::warn!(
                        key,
                        attempt,
                        of = ATTEMPTS,
                        wait_ms = wait.as_millis() as u64,
                        error = %source,
                        "storage request failed; retrying"
                    );
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(source) => {
                    return Err(StorageError::Backend {
                        key: key.to_string(),
                        source,
                    });
                }
            }
        }
    }
}

/// Whether a failure may go away on its own: network errors, timeouts and server errors all come
/// back as `Generic`; the other variants are answers (absent, exists, denied, unsupported).
fn is_transient(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The miner and validator spawn storage calls onto tokio tasks.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: T) {}
        let store = Store::open(&StoreConfig::at("s3://bkt")).unwrap();
        send(store.put_once("k", Bytes::new()));
        send(store.get("k", 1));
        send(store.get_range("k", 0..1));
        send(store.list(""));
        send(store.exists("k"));
        send(store.list_folders(""));
        send(store.delete_prefix("k"));
        send(store.clone());
    }

    #[test]
    fn keys() {
        for good in ["a", "runs/r/e1/s0/5Grw=/act/42", "a.b-c_d"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "..", ".", "a/./b", "a b", "a#1", "a?b", "a\\b", "é",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn urls() {
        assert!(
            matches!(parse_url("s3://bkt/a/b/"), Ok(Target::S3 { bucket, prefix }) if bucket == "bkt" && prefix == "a/b")
        );
        assert!(
            matches!(parse_url("s3://bkt"), Ok(Target::S3 { prefix, .. }) if prefix.is_empty())
        );
        assert!(
            matches!(parse_url("file:///tmp/x"), Ok(Target::Fs(p)) if p == Path::new("/tmp/x"))
        );
        assert!(matches!(parse_url("rel/dir"), Ok(Target::Fs(_))));
        assert!(matches!(
            parse_url("gs://bkt"),
            Err(StorageError::UnknownScheme { .. })
        ));
        for bad in [
            "",
            "s3://",
            "s3://B",
            "s3://bkt/../x",
            "s3://bkt?x",
            "file://rel",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        for good in [
            "http://127.0.0.1:9000",
            "http://localhost:1",
            "http://[::1]:9",
            "https://s3.example.com",
        ] {
            assert!(check_endpoint(good).is_ok(), "{good}");
        }
        for bad in ["http://10.0.0.1:9000", "ftp://127.0.0.1", "127.0.0.1:9000"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peer_timeouts_fit_in_a_read() {
        let flags = Timeouts::default();
        // The default 30 s sample timeout changes nothing.
        assert_eq!(flags.within(Duration::from_secs(30)), flags);
        // A 3 s one: a second to connect, the retries' waits within another.
        let t = flags.within(Duration::from_secs(3));
        assert_eq!(t.connect, Duration::from_secs(1));
        assert_eq!(t.request, flags.request);
        let waits: Duration = (0..ATTEMPTS - 1)
            .map(|a| t.backoff * 2u32.pow(a) * 3 / 2)
            .sum();
        assert!(waits <= Duration::from_secs(1), "{waits:?}");
    }

    #[test]
    fn env_fills_only_unset_fields() {
        let vars = |name: &str| {
            Some(match name {
                "AWS_ENDPOINT_URL" => "http://127.0.0.1:1".to_string(),
                "AWS_DEFAULT_REGION" => "eu-west-1".to_string(),
                "AWS_ACCESS_KEY_ID" => "AK".to_string(),
                "AWS_SECRET_ACCESS_KEY" => "SK".to_string(),
                _ => return None,
            })
        };
        let config = StoreConfig {
            region: Some("us-west-2".into()),
            ..StoreConfig::from_location("s3://bkt").unwrap()
        }
        .with_vars(vars);
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(config.region.as_deref(), Some("us-west-2"));
        assert_eq!(config.access_key_id.as_deref(), Some("AK"));
        assert_eq!(config.secret_access_key.as_deref(), Some("SK"));
        let fs = StoreConfig::filesystem("/tmp/x");
        assert_eq!(fs.clone().with_vars(vars), fs);
    }
}
