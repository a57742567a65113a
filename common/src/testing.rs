//! Fixtures for the tests of Sliver's crates (feature `testing`): a tiny run
//! spec, a small in-memory corpus, the real text corpus's location and an
//! S3 test server.

#![allow(
    clippy::expect_used,
    reason = "test fixtures: a broken fixture should stop the test loudly"
)]

pub mod hostile;
mod s3;
pub use s3::S3Server;

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

/// The run of tests that seal and read artifacts by hand: `name` on subnet 1, with a fixed spec
/// hash.
pub fn test_run(name: &str) -> crate::artifact::RunId {
    crate::artifact::RunId {
        name: name.to_owned(),
        netuid: 1,
        spec: [1; 32],
    }
}
