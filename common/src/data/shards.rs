//! Pre-tokenized token shards in object storage, read by ranged GETs: a participant's memory and
//! start-up time do not grow with the corpus.
//!
//! # Format (`sliver-token-shards/1`)
//!
//! A location (a directory, or an `s3://bucket/prefix`) holds `manifest.json` and the shards
//! `shards/NNNNNN.tok`. The token stream is the one [`Corpus`](super::Corpus) builds from the
//! same documents (each document's tokens, then the tokenizer's separator), cut into shards of
//! at most `shard_tokens` tokens regardless of document ends; shard `i` holds the stream's
//! tokens `starts[i]..starts[i + 1]`.
//!
//! A shard is a 32-byte header, a chunk table, then the tokens:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `SLVTOKS1` |
//! | 8 | token width in bytes: 2 or 4 |
//! | 9..12 | zero |
//! | 12..16 | `chunk_tokens`, u32 LE |
//! | 16..24 | tokens in the shard, u64 LE |
//! | 24..28 | chunks, `ceil(tokens / chunk_tokens)`, u32 LE |
//! | 28..32 | zero |
//! | 32..32+32·chunks | the BLAKE3 of each chunk's bytes |
//! | then | the tokens, little-endian, chunk after chunk |
//!
//! Token ids are u16 when the vocabulary fits (both tokenizers today: 256 and 50257), u32
//! otherwise: half the bytes to store, to GET and to cache, for no loss.
//!
//! The manifest (JSON) names the tokenizer, token width, chunk size, each shard's key, token
//! count and the BLAKE3 of its header and chunk table (which commits to every chunk), and the
//! train/eval split as the lengths of its spans in stream order (they alternate between the
//! splits; see `split.rs`). Its own BLAKE3 is `data.manifest_blake3` in the run spec, so the spec
//! pins every token: a reader checks the manifest against the spec, each header against the
//! manifest and each chunk against its header before using a byte.
//!
//! # Memory
//!
//! A reader holds the manifest's shard list and split spans, and a bounded LRU cache of verified
//! headers and chunks ([`ShardOptions::cache_bytes`]). The manifest grows with the corpus but
//! slowly: one entry per shard (4 Mi tokens by default) and two spans per run of held-out blocks
//! (about `2 · eval_fraction · tokens / 8192` spans). At 50 B tokens and `eval_fraction = 0.05`
//! that is about 12 000 shards and 600 000 spans: a few MB of manifest and about 25 MB in
//! memory, against 100 GB of u16 tokens. An uncached sample costs a GET per chunk it touches
//! (8 KiB at the defaults) and, when its shard's header is not cached, one more (32 KiB), made
//! concurrently.
//!
//! The writer ([`prepare`]) holds one shard being filled, one source file (its documents), and
//! two bytes per block (8192 tokens) to compute the split at the end.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::split::{BlockCutter, FULL_BLOCKS_FROM, Layout, block_len};
use super::{DataSpec, Error, Split, Tokenizer, TokenizerKind, document, source};
use crate::storage::{Put, Reach, Store, StoreConfig};

/// The manifest's key under the location.
pub const MANIFEST_KEY: &str = "manifest.json";
/// The manifest's `format`.
pub const FORMAT: &str = "sliver-token-shards/1";
/// A shard's first bytes.
const MAGIC: &[u8; 8] = b"SLVTOKS1";
/// The fixed part of a shard's header.
const HEADER: u64 = 32;
/// The largest manifest a reader accepts.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// The most chunks in one shard (a 2 MiB chunk table).
const MAX_CHUNKS: u64 = 1 << 16;

/// The prepared corpus's description: `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The tokenizer the shards were encoded with.
    pub tokenizer: TokenizerKind,
    /// Bytes per token id: 2 (u16) or 4 (u32), little-endian.
    pub token_bytes: u8,
    /// `data.eval_fraction` the split was drawn with.
    pub eval_fraction: f64,
    /// Non-empty documents in the stream.
    pub documents: u64,
    /// Tokens in the stream (the sum over shards).
    pub tokens: u64,
    /// Tokens per chunk, the unit of reading, caching and hashing.
    pub chunk_tokens: u32,
    /// The shards, in stream order.
    pub shards: Vec<ShardEntry>,
    /// The train/eval split.
    pub split: SplitEntry,
}

/// One shard in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// Its key under the location.
    pub key: String,
    /// Tokens it holds.
    pub tokens: u64,
    /// BLAKE3 (hex) of its header and chunk table, which hold every chunk's BLAKE3.
    pub blake3: String,
}

/// The train/eval split, as [`Corpus`](super::Corpus) computes it for the same stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitEntry {
    /// Blocks the stream was cut into.
    pub blocks: u64,
    /// How many of them are held out.
    pub eval_blocks: u64,
    /// The split of the first span.
    pub first: Split,
    /// Span lengths in stream order; consecutive spans belong to alternate splits.
    pub spans: Vec<u64>,
}

impl Manifest {
    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format is {:?}, not {FORMAT:?}", self.format));
        }
        let vocab = Tokenizer::new(self.tokenizer)
            .map_err(|e| e.to_string())?
            .vocab_size();
        match self.token_bytes {
            2 if vocab <= 1 << 16 => {}
            4 => {}
            other => return Err(format!("token_bytes {other} cannot hold {vocab} token ids")),
        }
        if !(1..=1 << 20).contains(&self.chunk_tokens) {
            return Err(format!(
                "chunk_tokens {} is not in 1..=2^20",
                self.chunk_tokens
            ));
        }
        let mut sum = 0u64;
        for s in &self.shards {
            if s.tokens == 0 || s.tokens.div_ceil(u64::from(self.chunk_tokens)) > MAX_CHUNKS {
                return Err(format!("shard {} holds {} tokens", s.key, s.tokens));
            }
            if parse_hash(&s.blake3).is_none() {
                return Err(format!("shard {} has no 64-hex-digit blake3", s.key));
            }
            sum = sum.saturating_add(s.tokens);
        }
        if sum != self.tokens || self.shards.is_empty() {
            return Err(format!(
                "its {} shards hold {sum} tokens, not the {} it states",
                self.shards.len(),
                self.tokens
            ));
        }
        let spans: u64 = self
            .split
            .spans
            .iter()
            .fold(0u64, |a, &b| a.saturating_add(b));
        if spans != self.tokens {
            return Err(format!(
                "its split covers {spans} tokens, not {}",
                self.tokens
            ));
        }
        Ok(())
    }

    fn layout(&self) -> Option<Layout> {
        Layout::from_span_lengths(
            self.split.first,
            &self.split.spans,
            usize::try_from(self.split.blocks).ok()?,
            usize::try_from(self.split.eval_blocks).ok()?,
        )
    }
}

fn parse_hash(hex_str: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

/// How a shard writer cuts the stream.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Most tokens per shard (the last may hold fewer). Default 4 Mi (8 MiB at u16).
    pub shard_tokens: u64,
    /// Tokens per chunk. Default 4096 (8 KiB at u16).
    pub chunk_tokens: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            shard_tokens: 1 << 22,
            chunk_tokens: 4096,
        }
    }
}

/// What a writer has done so far, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Non-empty documents encoded.
    pub documents: u64,
    /// Tokens in the stream.
    pub tokens: u64,
    /// Shards put into the store.
    pub shards: u64,
}

/// Tokenizes documents one at a time into shards in a store, then writes the manifest.
pub struct ShardWriter {
    store: Store,
    tokenizer: Tokenizer,
    eval_fraction: f64,
    options: WriteOptions,
    token_bytes: u8,
    /// The open shard's bytes.
    buf: Vec<u8>,
    shards: Vec<ShardEntry>,
    progress: Progress,
    /// Document ends while the stream is too short to know its block length.
    early_ends: Vec<usize>,
    cutter: Option<BlockCutter>,
    /// Lengths of the blocks closed so far (at most 8192 each).
    block_lens: Vec<u16>,
    scratch: Vec<Range<usize>>,
}

impl ShardWriter {
    /// A writer into `store` (its root: `manifest.json` and `shards/` go there).
    ///
    /// # Errors
    /// A bad spec, or bad options.
    pub fn new(store: Store, spec: &DataSpec, options: WriteOptions) -> Result<Self, Error> {
        let tokenizer = Tokenizer::new(spec.tokenizer)?;
        if options.shard_tokens == 0 || !(1..=1 << 20).contains(&options.chunk_tokens) {
            return Err(Error::InvalidSpec {
                field: "shard options",
                message: format!("{options:?}: shards and chunks must hold tokens"),
            });
        }
        let token_bytes = if tokenizer.vocab_size() <= 1 << 16 {
            2
        } else {
            4
        };
        Ok(Self {
            store,
            tokenizer,
            eval_fraction: spec.eval_fraction,
            options,
            token_bytes,
            buf: Vec::new(),
            shards: Vec::new(),
            progress: Progress::default(),
            early_ends: Vec::new(),
            cutter: None,
            block_lens: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// What has been written so far.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Appends one document (empty ones are skipped, as [`Corpus`](super::Corpus) skips them).
    ///
    /// # Errors
    /// A shard could not be put.
    pub async fn push(&mut self, text: &str) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let tokens = self.tokenizer.encode(text);
        self.push_tokens(&tokens).await
    }

    /// Appends one document's tokens (encoded with this writer's tokenizer).
    async fn push_tokens(&mut self, tokens: &[u32]) -> Result<(), Error> {
        let separator = self.tokenizer.separator();
        for &t in tokens.iter().chain(separator) {
            match self.token_bytes {
                2 => self.buf.extend_from_slice(&(t as u16).to_le_bytes()),
                _ => self.buf.extend_from_slice(&t.to_le_bytes()),
            }
            if self.buf.len() as u64 == self.options.shard_tokens * u64::from(self.token_bytes) {
                self.flush().await?;
            }
        }
        self.progress.documents += 1;
        self.progress.tokens += (tokens.len() + separator.len()) as u64;
        let end = self.progress.tokens as usize;
        match &mut self.cutter {
            Some(cutter) => cutter.push(end, &mut self.scratch),
            None => {
                self.early_ends.push(end);
                if end >= FULL_BLOCKS_FROM {
                    let mut cutter = BlockCutter::new(block_len(end));
                    for &e in &self.early_ends {
                        cutter.push(e, &mut self.scratch);
                    }
                    self.early_ends = Vec::new();
                    self.cutter = Some(cutter);
                }
            }
        }
        self.take_blocks();
        Ok(())
    }

    fn take_blocks(&mut self) {
        // Blocks are at most MAX_BLOCK (8192) tokens long.
        self.block_lens
            .extend(self.scratch.drain(..).map(|b| b.len() as u16));
    }

    /// Puts the open shard.
    async fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let tb = usize::from(self.token_bytes);
        let tokens = (self.buf.len() / tb) as u64;
        let chunk_bytes = self.options.chunk_tokens as usize * tb;
        let chunks = self.buf.chunks(chunk_bytes).len();
        let mut object = Vec::with_capacity(HEADER as usize + 32 * chunks + self.buf.len());
        object.extend_from_slice(MAGIC);
        object.extend_from_slice(&[self.token_bytes, 0, 0, 0]);
        object.extend_from_slice(&self.options.chunk_tokens.to_le_bytes());
        object.extend_from_slice(&tokens.to_le_bytes());
        object.extend_from_slice(&(chunks as u32).to_le_bytes());
        object.extend_from_slice(&[0; 4]);
        for chunk in self.buf.chunks(chunk_bytes) {
            object.extend_from_slice(blake3::hash(chunk).as_bytes());
        }
        let hash = blake3::hash(&object);
        object.extend_from_slice(&self.buf);
        self.buf.clear();
        let key = format!("shards/{:06}.tok", self.shards.len());
        put(&self.store, &key, object.into()).await?;
        self.shards.push(ShardEntry {
            key,
            tokens,
            blake3: hash.to_hex().to_string(),
        });
        self.progress.shards += 1;
        Ok(())
    }

    /// Puts the last shard and the manifest; returns the manifest and its BLAKE3 (hex), the
    /// value of `data.manifest_blake3`.
    ///
    /// # Errors
    /// No text, a stream too short to split, or a failed put.
    pub async fn finish(mut self) -> Result<(Manifest, String), Error> {
        self.flush().await?;
        let total = self.progress.tokens as usize;
        let mut blocks = Vec::new();
        match self.cutter.take() {
            Some(cutter) => cutter.finish(&mut self.scratch),
            None => {
                let mut cutter = BlockCutter::new(block_len(total));
                for &e in &self.early_ends {
                    cutter.push(e, &mut self.scratch);
                }
                cutter.finish(&mut self.scratch);
            }
        }
        self.take_blocks();
        let mut at = 0;
        blocks.reserve(self.block_lens.len());
        for &len in &self.block_lens {
            blocks.push(at..at + usize::from(len));
            at += usize::from(len);
        }
        self.block_lens = Vec::new();
        let layout = Layout::from_blocks(&blocks, self.eval_fraction).ok_or(Error::TooSmall {
            split: Split::Eval,
            needed: 2,
            longest: total,
        })?;
        drop(blocks);
        let (first, spans) = layout.span_lengths();
        let (blocks, eval_blocks) = layout.blocks();
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            tokenizer: self.tokenizer.kind(),
            token_bytes: self.token_bytes,
            eval_fraction: self.eval_fraction,
            documents: self.progress.documents,
            tokens: self.progress.tokens,
            chunk_tokens: self.options.chunk_tokens,
            shards: self.shards,
            split: SplitEntry {
                blocks: blocks as u64,
                eval_blocks: eval_blocks as u64,
                first,
                spans,
            },
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Manifest {
            location: MANIFEST_KEY.to_owned(),
            reason: e.to_string(),
        })?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        put(&self.store, MANIFEST_KEY, bytes.into()).await?;
        Ok((manifest, hash))
    }
}

async fn put(store: &Store, key: &str, bytes: Bytes) -> Result<(), Error> {
    let location = format!("{}/{key}", store.config());
    match store.put_once(key, bytes).await {
        Ok(Put::Created | Put::Same) => Ok(()),
        Ok(Put::Exists) => Err(Error::ShardExists { location }),
        Err(source) => Err(Error::ShardStorage {
            location,
            source: Box::new(source),
        }),
    }
}

/// Reads every source of `spec` one file at a time, tokenizes its documents and writes shards
/// and the manifest into `store`; `progress` is called after each file. Returns the manifest
/// and its BLAKE3 (hex).
///
/// # Errors
/// As [`Corpus::load`](super::Corpus::load) for the sources, or a failed put.
pub async fn prepare(
    spec: &DataSpec,
    store: Store,
    options: WriteOptions,
    mut progress: impl FnMut(&str, Progress),
) -> Result<(Manifest, String), Error> {
    let mut sources_only = spec.clone();
    sources_only.shards = None;
    sources_only.manifest_blake3 = None;
    sources_only.validate()?;
    let mut writer = ShardWriter::new(store, spec, options)?;
    for src in &spec.sources {
        let before = writer.progress().documents;
        for file in source::list(src, spec.format).await? {
            let raw = file.read().await?;
            let (tokenizer, field) = (writer.tokenizer.clone(), spec.text_field.clone());
            let encoded = tokio::task::spawn_blocking(move || {
                let docs = document::parse(&raw, &field)?;
                Ok::<_, Error>(tokenizer.encode_all(&docs))
            })
            .await??;
            for tokens in encoded.iter().filter(|t| !t.is_empty()) {
                writer.push_tokens(tokens).await?;
            }
            progress(&file.location, writer.progress());
        }
        if writer.progress().documents == before {
            return Err(Error::NoText {
                location: src.clone(),
            });
        }
    }
    writer.finish().await
}

/// How a reader caches.
#[derive(Debug, Clone, Copy)]
pub struct ShardOptions {
    /// The most bytes of verified headers and chunks held at once. Default 64 MiB.
    pub cache_bytes: u64,
}

impl Default for ShardOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
        }
    }
}

/// A runtime of its own for the reader's requests, so that samples can be read synchronously
/// from any thread (a training worker, a blocking task, even inside another runtime).
struct Io(Option<tokio::runtime::Runtime>);

impl Io {
    fn new() -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sliver-shards")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                location: "the shard reader's runtime".to_owned(),
                source: e,
            })?;
        Ok(Self(Some(rt)))
    }

    /// Runs `fut` on the reader's runtime and waits for it, blocking this thread.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let rt = self.0.as_ref().ok_or(Error::ShardsClosed)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| Error::ShardsClosed)
    }

    /// Runs `fut` on the reader's runtime, awaited from another.
    async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let rt = self.0.as_ref().ok_or(Error::ShardsClosed)?;
        Ok(rt.spawn(fut).await?)
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it go instead.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// What the cache holds of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Part {
    /// The header and chunk table.
    Table,
    /// Chunk `n`'s bytes.
    Chunk(u64),
}

/// A least-recently-used cache of verified bytes, bounded in bytes.
struct Lru {
    limit: u64,
    bytes: u64,
    tick: u64,
    entries: HashMap<(usize, Part), (Bytes, u64)>,
    order: BTreeMap<u64, (usize, Part)>,
}

impl Lru {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: (usize, Part)) -> Option<Bytes> {
        self.tick += 1;
        let (bytes, used) = self.entries.get_mut(&key)?;
        self.order.remove(used);
        *used = self.tick;
        self.order.insert(self.tick, key);
        Some(bytes.clone())
    }

    fn insert(&mut self, key: (usize, Part), bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.limit || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + len > self.limit {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = self.entries.remove(&old) {
                self.bytes -= b.len() as u64;
            }
        }
        self.tick += 1;
        self.bytes += len;
        self.entries.insert(key, (bytes, self.tick));
        self.order.insert(self.tick, key);
    }
}

/// A prepared corpus's shards, read by ranged GETs through a bounded cache.
pub(crate) struct Shards {
    /// The location, without keys, for errors.
    location: String,
    store: Store,
    io: Io,
    token_bytes: u64,
    chunk_tokens: u64,
    /// Where each shard starts in the stream, then the stream's length.
    starts: Vec<u64>,
    entries: Vec<(String, [u8; 32])>,
    cache: Mutex<Lru>,
}

impl fmt::Debug for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shards")
            .field("location", &self.location)
            .field("shards", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Shards {
    /// Opens the shards `spec.shards` names, checks the manifest against
    /// `spec.manifest_blake3` and the spec's tokenizer and split, and returns them with the
    /// manifest and its layout.
    pub(crate) async fn open(
        spec: &DataSpec,
        options: ShardOptions,
    ) -> Result<(Shards, Manifest, Layout), Error> {
        let (Some(location), Some(expected)) = (&spec.shards, &spec.manifest_blake3) else {
            return Err(Error::InvalidSpec {
                field: "data.shards",
                message: "is not set".to_owned(),
            });
        };
        let config = StoreConfig::from_location(location).map_err(|e| Error::InvalidSpec {
            field: "data.shards",
            message: format!("is not a location: {e}"),
        })?;
        let shown = config.to_string();
        // The spec names the location as it names its sources: trusted like a local path.
        let store =
            Store::open_peer(&config, Reach::Local).map_err(|source| Error::ShardStorage {
                location: shown.clone(),
                source: Box::new(source),
            })?;
        let io = Io::new()?;
        let manifest_at = format!("{shown}/{MANIFEST_KEY}");
        let reader = store.clone();
        let got = io
            .run(async move { reader.get(MANIFEST_KEY, MAX_MANIFEST_BYTES).await })
            .await?;
        let bytes = match got {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(Error::ShardMissing {
                    location: manifest_at,
                });
            }
            Err(source) => {
                return Err(Error::ShardStorage {
                    location: manifest_at,
                    source: Box::new(source),
                });
            }
        };
        let bad = |reason: String| Error::Manifest {
            location: manifest_at.clone(),
            reason,
        };
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if !hash.eq_ignore_ascii_case(expected) {
            return Err(bad(format!(
                "its BLAKE3 is {hash}, but data.manifest_blake3 is {expected}"
            )));
        }
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
        drop(bytes);
        manifest.check().map_err(bad)?;
        if manifest.tokenizer != spec.tokenizer {
            return Err(bad(format!(
                "the shards hold {} tokens but data.tokenizer is {}",
                manifest.tokenizer, spec.tokenizer
            )));
        }
        if manifest.eval_fraction != spec.eval_fraction {
            return Err(bad(format!(
                "the shards were split with eval_fraction {} but data.eval_fraction is {}",
                manifest.eval_fraction, spec.eval_fraction
            )));
        }
        let layout = manifest
            .layout()
            .ok_or_else(|| bad("its split is not a valid layout".to_owned()))?;
        let mut starts = Vec::with_capacity(manifest.shards.len() + 1);
        let mut at = 0u64;
        for s in &manifest.shards {
            starts.push(at);
            at += s.tokens;
        }
        starts.push(at);
        let entries = manifest
            .shards
            .iter()
            .map(|s| (s.key.clone(), parse_hash(&s.blake3).unwrap_or_default()))
            .collect();
        let shards = Shards {
            location: shown,
            store,
            io,
            token_bytes: u64::from(manifest.token_bytes),
            chunk_tokens: u64::from(manifest.chunk_tokens),
            starts,
            entries,
            cache: Mutex::new(Lru::new(options.cache_bytes)),
        };
        let mut manifest = manifest;
        // The reader keeps its own compact copies; the caller needs only the counts.
        manifest.shards = Vec::new();
        manifest.split.spans = Vec::new();
        Ok((shards, manifest, layout))
    }

    /// Bytes the cache holds now.
    pub(crate) fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn at(&self, shard: usize) -> String {
        format!("{}/{}", self.location, self.entries[shard].0)
    }

    /// The stream's tokens `range`.
    pub(crate) fn read(&self, range: Range<usize>) -> Result<Vec<u32>, Error> {
        let (mut pos, end) = (range.start as u64, range.end as u64);
        let total = self.starts.last().copied().unwrap_or(0);
        if end > total {
            return Err(Error::ShardCorrupt {
                location: self.location.clone(),
                reason: format!("tokens {range:?} asked for, but the shards hold {total}"),
            });
        }
        let mut out = Vec::with_capacity(range.len());
        while pos < end {
            let shard = self.starts.partition_point(|&s| s <= pos) - 1;
            let offset = pos - self.starts[shard];
            let chunk = offset / self.chunk_tokens;
            let bytes = self.chunk(shard, chunk)?;
            let from = offset - chunk * self.chunk_tokens;
            let take = (end - pos).min(bytes.len() as u64 / self.token_bytes - from);
            let tb = self.token_bytes as usize;
            let slice = &bytes[from as usize * tb..(from + take) as usize * tb];
            if tb == 2 {
                out.extend(
                    slice
                        .chunks_exact(2)
                        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
                );
            } else {
                out.extend(
                    slice
                        .chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            pos += take;
        }
        Ok(out)
    }

    /// Chunk `chunk` of shard `shard`, verified: from the cache, or fetched with its shard's
    /// table (when that is not cached either) in one round trip.
    fn chunk(&self, shard: usize, chunk: u64) -> Result<Bytes, Error> {
        let (table, cached) = {
            let mut cache = self.lock();
            (
                cache.get((shard, Part::Table)),
                cache.get((shard, Part::Chunk(chunk))),
            )
        };
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let tokens = self.starts[shard + 1] - self.starts[shard];
        let chunks = tokens.div_ceil(self.chunk_tokens);
        let table_len = HEADER + 32 * chunks;
        let chunk_start = table_len + chunk * self.chunk_tokens * self.token_bytes;
        let chunk_len =
            (tokens - chunk * self.chunk_tokens).min(self.chunk_tokens) * self.token_bytes;
        let key = self.entries[shard].0.clone();
        let store = self.store.clone();
        let want_table = table.is_none();
        let (got_table, got_chunk) = self.io.block(async move {
            let table = async {
                if want_table {
                    store.get_range(&key, 0..table_len).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            let data = store.get_range(&key, chunk_start..chunk_start + chunk_len);
            tokio::join!(table, data)
        })?;
        let missing = |location| Error::ShardMissing { location };
        let storage = |source| Error::ShardStorage {
            location: self.at(shard),
            source: Box::new(source),
        };
        let corrupt = |reason: String| Error::ShardCorrupt {
            location: self.at(shard),
            reason,
        };
        let table = match (table, got_table) {
            (Some(t), _) => t,
            (None, Ok(Some(Some(t)))) => {
                self.check_table(&t, shard, tokens, chunks)
                    .map_err(corrupt)?;
                t
            }
            (None, Ok(Some(None))) => return Err(missing(self.at(shard))),
            (None, Ok(None)) => return Err(corrupt("no table was read".to_owned())),
            (None, Err(e)) => return Err(storage(e)),
        };
        let data = match got_chunk {
            Ok(Some(d)) => d,
            Ok(None) => return Err(missing(self.at(shard))),
            Err(e) => return Err(storage(e)),
        };
        let at = (HEADER + 32 * chunk) as usize;
        if blake3::hash(&data).as_bytes()[..] != table[at..at + 32] {
            return Err(corrupt(format!(
                "chunk {chunk} (bytes {chunk_start}..{}) does not match its BLAKE3",
                chunk_start + chunk_len
            )));
        }
        // A copy, so that the cache holds exactly these bytes and not a larger buffer.
        let data = Bytes::copy_from_slice(&data);
        let mut cache = self.lock();
        if want_table {
            cache.insert((shard, Part::Table), table);
        }
        cache.insert((shard, Part::Chunk(chunk)), data.clone());
        Ok(data)
    }

    fn check_table(
        &self,
        table: &[u8],
        shard: usize,
        tokens: u64,
        chunks: u64,
    ) -> Result<(), String> {
        if blake3::hash(table).as_bytes() != &self.entries[shard].1 {
            return Err("its header and chunk table do not match the manifest's BLAKE3".to_owned());
        }
        // The hash matched, so the header is the writer's: its fields must agree with the
        // manifest, or the manifest is inconsistent with its own shards.
        let u32_at =
            |i: usize| u32::from_le_bytes([table[i], table[i + 1], table[i + 2], table[i + 3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&table[16..24]);
        if &table[..8] != MAGIC
            || u64::from(table[8]) != self.token_bytes
            || u64::from(u32_at(12)) != self.chunk_tokens
            || u64::from_le_bytes(t) != tokens
            || u64::from(u32_at(24)) != chunks
        {
            return Err("its header disagrees with the manifest".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
