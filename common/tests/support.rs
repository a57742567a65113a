//! Shared fixtures: a tiny run spec and small corpora.

use sliver_common::data::{Corpus, DataSpec};
use sliver_common::{CodecKind, RunSpec};

/// A small model split into `stages` (layer ranges), with the given boundary.
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
    .expect("tiny spec is valid")
}

/// A corpus built in memory from a little generated text.
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
    Corpus::from_texts(&spec.data, texts).expect("small corpus builds")
}

/// The real text corpus fetched by `scripts/setup.sh`.
pub fn real_text_spec() -> DataSpec {
    let dir = std::env::var("SLIVER_TEXT_DIR").expect(
        "SLIVER_TEXT_DIR is not set: run `scripts/test` (or `source scripts/setup.sh`) to fetch the text corpus",
    );
    toml::from_str(&format!("sources = [{dir:?}]")).expect("data spec parses")
}
