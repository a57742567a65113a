//! Text to token ids and back: byte-level (vocab 256) or GPT-2 BPE (tiktoken's `r50k_base` ranks
//! as carried by the `tiktoken-rs` crate, vocab 50257). Both encode text literally: a
//! `<|endoftext|>` written in a document is text, and only the corpus separator is the special
//! token.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tiktoken_rs::CoreBPE;

use super::{Error, TokenizerKind};

/// GPT-2's vocabulary: 50000 merges + 256 bytes + `<|endoftext|>`.
const GPT2_VOCAB: usize = 50257;
/// GPT-2's `<|endoftext|>` id.
const GPT2_EOT: u32 = 50256;
/// U+FFFD in UTF-8, for ids that decode to nothing.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
/// What joins two documents under the byte tokenizer.
const BYTE_SEPARATOR: &[u32] = &[b'\n' as u32, b'\n' as u32];

/// A tokenizer: byte-level or GPT-2 BPE. Cheap to clone (the BPE tables are shared).
#[derive(Clone)]
pub struct Tokenizer {
    kind: TokenizerKind,
    /// Present exactly when `kind` is `Gpt2`.
    bpe: Option<Arc<CoreBPE>>,
}

impl Tokenizer {
    /// Builds the tokenizer of `kind`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the GPT-2 tables cannot be built (they are compiled in, so this
    /// only fails if the `tiktoken-rs` crate is broken).
    pub fn new(kind: TokenizerKind) -> Result<Self, Error> {
        match kind {
            TokenizerKind::Byte => Ok(Self::byte()),
            TokenizerKind::Gpt2 => Self::gpt2(),
        }
    }

    /// The byte-level tokenizer: token id = UTF-8 byte.
    pub fn byte() -> Self {
        Self {
            kind: TokenizerKind::Byte,
            bpe: None,
        }
    }

    /// The GPT-2 BPE tokenizer (`r50k_base`).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the compiled-in ranks fail to load.
    pub fn gpt2() -> Result<Self, Error> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| Error::Tokenizer {
            kind: TokenizerKind::Gpt2,
            source: e.into(),
        })?;
        Ok(Self {
            kind: TokenizerKind::Gpt2,
            bpe: Some(Arc::new(bpe)),
        })
    }

    /// Which tokenizer this is.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// Number of distinct token ids: 256 (byte) or 50257 (gpt2).
    pub fn vocab_size(&self) -> usize {
        match self.kind {
            TokenizerKind::Byte => 256,
            TokenizerKind::Gpt2 => GPT2_VOCAB,
        }
    }

    /// Token ids of `text`. Special-token strings in `text` are encoded as ordinary text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.bpe {
            None => text.bytes().map(u32::from).collect(),
            Some(bpe) => bpe.encode_ordinary(text),
        }
    }

    /// Text of `tokens`. Ids outside the vocabulary and byte sequences that are not UTF-8 (a
    /// window cut inside a multi-byte character) become U+FFFD.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(tokens.len() * 2);
        match &self.bpe {
            None => {
                for &t in tokens {
                    match u8::try_from(t) {
                        Ok(b) => bytes.push(b),
                        Err(_) => bytes.extend_from_slice(REPLACEMENT),
                    }
                }
            }
            Some(bpe) => {
                for run in tokens.split_inclusive(|&t| t as usize >= GPT2_VOCAB) {
                    let (good, bad) = match run.last() {
                        Some(&t) if t as usize >= GPT2_VOCAB => (&run[..run.len() - 1], true),
                        _ => (run, false),
                    };
                    // Every id below GPT2_VOCAB is in r50k_base's decoder or its special tokens.
                    match bpe.decode_bytes(good) {
                        Ok(b) => bytes.extend_from_slice(&b),
                        Err(_) => bytes.extend_from_slice(REPLACEMENT),
                    }
                    if bad {
                        bytes.extend_from_slice(REPLACEMENT);
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The tokens placed after every document when documents are joined into one stream:
    /// `"\n\n"` for byte, `<|endoftext|>` for gpt2.
    pub fn separator(&self) -> &'static [u32] {
        match self.kind {
            TokenizerKind::Byte => BYTE_SEPARATOR,
            TokenizerKind::Gpt2 => &[GPT2_EOT],
        }
    }

    /// Encodes many documents, in order, on all cores (BPE is the slow part of loading).
    pub(crate) fn encode_all(&self, docs: &[String]) -> Vec<Vec<u32>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(docs.len());
        if self.bpe.is_none() || threads <= 1 {
            return docs.iter().map(|d| self.encode(d)).collect();
        }
        // Work stealing by document index: document sizes vary by orders of magnitude.
        let next = AtomicUsize::new(0);
        let mut parts: Vec<(usize, Vec<u32>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(doc) = docs.get(i) else { break };
                            done.push((i, self.encode(doc)));
                        }
                        done
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| match w.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        parts.sort_unstable_by_key(|(i, _)| *i);
        parts.into_iter().map(|(_, tokens)| tokens).collect()
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Hello, world!\n\nTo be, or not to be: that is the question.\n\
                          ünïcödé 🦀 <|endoftext|> tabs\tand  spaces  ";

    #[test]
    fn byte_round_trip() {
        let t = Tokenizer::byte();
        assert_eq!(t.vocab_size(), 256);
        let ids = t.encode(SAMPLE);
        assert_eq!(ids.len(), SAMPLE.len());
        assert!(ids.iter().all(|&i| i < 256));
        assert_eq!(t.decode(&ids), SAMPLE);
        assert_eq!(t.separator(), &[10, 10]);
        assert_eq!(t.decode(&[104, 105, 300]), "hi\u{FFFD}");
    }

    #[test]
    fn gpt2_round_trip_and_known_ids() {
        let t = Tokenizer::gpt2().unwrap();
        assert_eq!(t.vocab_size(), 50257);
        // Reference ids from OpenAI's GPT-2 encoder.
        assert_eq!(t.encode("Hello world"), vec![15496, 995]);
        let ids = t.encode(SAMPLE);
        assert!(
            ids.len() < SAMPLE.len() / 2,
            "BPE should compress: {} ids",
            ids.len()
        );
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
        // The literal special-token text is not the special token.
        assert!(!ids.contains(&GPT2_EOT));
        assert_eq!(t.decode(&ids), SAMPLE);
        assert_eq!(t.decode(t.separator()), "<|endoftext|>");
        assert_eq!(t.decode(&[15496, 99_999, 995]), "Hello\u{FFFD} world");
    }

    #[test]
    fn encode_all_keeps_order() {
        let t = Tokenizer::gpt2().unwrap();
        let docs: Vec<String> = (0..50)
            .map(|i| format!("document number {i} ").repeat(i % 7 + 1))
            .collect();
        let all = t.encode_all(&docs);
        assert_eq!(all.len(), docs.len());
        for (doc, ids) in docs.iter().zip(&all) {
            assert_eq!(&t.encode(doc), ids);
        }
    }
}
