//! The data module's error: why a corpus could not be loaded or used.

use super::{Split, TokenizerKind};

/// Why a corpus could not be loaded or used. Every variant names the source, file or field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `[data]` field has a bad value.
    #[error("{field} {message}")]
    InvalidSpec {
        /// The field, e.g. `data.eval_fraction`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A source path, URL or object does not exist.
    #[error("data source {location} not found")]
    NotFound {
        /// The path or URL.
        location: String,
    },
    /// A local file or directory could not be read.
    #[error("reading {location}")]
    Io {
        /// The path.
        location: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A source looks like a URL but does not parse as one.
    #[error("data source {url} is not a valid URL")]
    InvalidUrl {
        /// The source as written.
        url: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// The object store could not be built or read (unsupported scheme, network, permissions).
    #[error("object store error reading {location}")]
    Store {
        /// The URL or object.
        location: String,
        /// The object_store error.
        #[source]
        source: object_store::Error,
    },
    /// The URL's scheme has no object_store backend in this build (today: only `file://` and
    /// `memory://`; `s3://` needs object_store's `aws` feature).
    #[error(
        "data source {location}: {scheme}:// URLs are not supported by this build (file:// and memory:// are)"
    )]
    UnsupportedScheme {
        /// The source as written.
        location: String,
        /// The URL scheme, e.g. `s3`.
        scheme: String,
    },
    /// `format = "auto"` and a file named directly has an unknown extension.
    #[error(
        "cannot tell the format of {location} from its extension; set data.format to text, jsonl or parquet"
    )]
    UnknownFormat {
        /// The path or URL.
        location: String,
    },
    /// A text or JSONL file is not UTF-8.
    #[error("{location} is not valid UTF-8 text")]
    NotUtf8 {
        /// The path or URL.
        location: String,
        /// Where decoding failed.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A source holds no text (empty files, or a directory without readable files).
    #[error("no text in {location}")]
    NoText {
        /// The source as written.
        location: String,
    },
    /// A JSONL line is not JSON.
    #[error("{location}: bad JSON on line {line}")]
    BadJson {
        /// The path or URL.
        location: String,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSONL line is JSON but not an object.
    #[error("{location}: line {line} is not a JSON object")]
    NotAnObject {
        /// The path or URL.
        location: String,
        /// 1-based line number.
        line: usize,
    },
    /// A JSONL object lacks the text field.
    #[error("{location}: line {line} has no field {field:?}")]
    MissingField {
        /// The path or URL.
        location: String,
        /// 1-based line number.
        line: usize,
        /// `data.text_field`.
        field: String,
    },
    /// A JSONL text field holds something other than a string (or null, which is skipped).
    #[error("{location}: field {field:?} on line {line} is {found}, not a string")]
    WrongFieldType {
        /// The path or URL.
        location: String,
        /// 1-based line number.
        line: usize,
        /// `data.text_field`.
        field: String,
        /// What it holds, e.g. "a number".
        found: &'static str,
    },
    /// A Parquet file has no column named `data.text_field`.
    #[error("{location}: no column {column:?} (columns: {available})")]
    MissingColumn {
        /// The path or URL.
        location: String,
        /// `data.text_field`.
        column: String,
        /// The columns it has, comma-separated.
        available: String,
    },
    /// A Parquet text column is not a string column.
    #[error(
        "{location}: column {column:?} has type {found}, not a string type (Utf8, LargeUtf8 or Utf8View)"
    )]
    WrongColumnType {
        /// The path or URL.
        location: String,
        /// `data.text_field`.
        column: String,
        /// Its arrow type.
        found: String,
    },
    /// A Parquet file could not be decoded.
    #[error("{location}: unreadable Parquet")]
    Parquet {
        /// The path or URL.
        location: String,
        /// The decoder error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The tokenizer could not be built.
    #[error("building the {kind} tokenizer")]
    Tokenizer {
        /// Which tokenizer.
        kind: TokenizerKind,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Every source was read but no non-empty document remained.
    #[error("the corpus is empty: {sources:?} hold no non-empty documents")]
    EmptyCorpus {
        /// `data.sources`.
        sources: Vec<String>,
    },
    /// The corpus cannot hold a sample of the requested length in one split.
    #[error(
        "the corpus is too small: the {split} split needs {needed} contiguous tokens but its longest run is {longest}; add text or shorten the sequence"
    )]
    TooSmall {
        /// The split that is too small.
        split: Split,
        /// Tokens one sample needs (`seq_len + 1`).
        needed: usize,
        /// The longest window that split holds.
        longest: usize,
    },
    /// A token shard or the shard manifest is absent.
    #[error("token shard object {location} is missing")]
    ShardMissing {
        /// The location and key.
        location: String,
    },
    /// A token shard does not hold what the manifest says (hash, header or length).
    #[error("token shard {location} is corrupt: {reason}")]
    ShardCorrupt {
        /// The location and key.
        location: String,
        /// What does not match.
        reason: String,
    },
    /// The shard manifest is malformed, does not match `data.manifest_blake3`, or does not
    /// match the spec's `[data]`.
    #[error("shard manifest {location}: {reason}")]
    Manifest {
        /// The manifest's location and key.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a token shard's store failed (network, permissions, timeouts).
    #[error("storage error on {location}")]
    ShardStorage {
        /// The location and key.
        location: String,
        /// The storage error (boxed: it is large).
        #[source]
        source: Box<crate::storage::StorageError>,
    },
    /// Preparing shards into a location that already holds other shards.
    #[error(
        "{location} already holds different bytes: prepare into an empty location (shards are written once)"
    )]
    ShardExists {
        /// The location and key.
        location: String,
    },
    /// The shard reader's I/O thread has stopped (the process is shutting down).
    #[error("the token shard reader has stopped")]
    ShardsClosed,
    /// A background reading or tokenizing task panicked or was cancelled.
    #[error("data loading task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// Whether a source does not exist (as opposed to existing and being unreadable or bad).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
