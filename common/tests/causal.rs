//! What crosses a boundary for a token depends only on that token and the ones before it.
//!
//! The next stage is trained to predict the following token; if a token's decoded activation
//! depended on later tokens, the model could learn to read the answer off the wire. A
//! quantization scale shared by several tokens does exactly that, which is why
//! `boundary.codec_row` must keep each scale within one token.

use sliver_common::data::Split;
use sliver_common::{Batch, CodecKind, RunSpec, Stage, WireCodec};
use tch::{Device, Kind, Tensor};

use crate::support::{small_corpus, tiny_spec};

/// The largest change, at each position, of stage 0's decoded output when only the last
/// input token of every sequence changes.
#[allow(
    clippy::unwrap_used,
    reason = "the body of two tests: a failed step should stop the test with its message"
)]
fn change_by_position(spec: &RunSpec, wire: WireCodec) -> Vec<f64> {
    let corpus = small_corpus(spec);
    let seq = spec.model.seq_len;
    let tokens = corpus.batch(Split::Train, spec.seed, 0, 4, seq).unwrap();
    let mut changed = tokens.clone();
    // Row r holds seq + 1 tokens; the input's last position is index seq - 1 of the row.
    for row in changed.chunks_mut(seq + 1) {
        row[seq - 1] = (row[seq - 1] + 1) % 256;
    }
    let stage = Stage::new(spec, 0, Device::Cpu).unwrap();
    let through = |tokens: &[i64]| {
        let batch = Batch::from_tokens(tokens, 4, seq, Device::Cpu).unwrap();
        let out = stage.forward(None, &batch).unwrap();
        wire.decode(&wire.encode(out.output()).unwrap(), Device::Cpu)
            .unwrap()
    };
    let diff: Tensor = (through(&tokens) - through(&changed)).abs();
    // [batch, seq, k] -> the largest change at each position.
    let per_position = diff.amax([0, 2].as_slice(), false).to_kind(Kind::Double);
    Vec::<f64>::try_from(&per_position).unwrap()
}

#[test]
fn a_boundary_with_one_scale_per_token_is_causal() {
    for codec in [
        CodecKind::Int8,
        CodecKind::Int4,
        CodecKind::Int4Log,
        CodecKind::Int2,
        CodecKind::Int2Log,
        CodecKind::Fp8,
        CodecKind::Int4Unit,
    ] {
        let mut spec = tiny_spec(&[[0, 2], [2, 4]], 8, CodecKind::Int4Log, true);
        spec.boundary.codec = codec;
        // Gradients need a scale (int4unit has none); they are not what this test checks.
        spec.boundary.grad_codec = Some(CodecKind::Int4Log);
        spec.validate().unwrap();
        let change = change_by_position(&spec, spec.activation_codec());
        let (last, earlier) = change.split_last().unwrap();
        assert!(*last > 0.0, "{codec}: the changed token itself must change");
        assert!(
            earlier.iter().all(|&d| d == 0.0),
            "{codec}: earlier tokens changed: {earlier:?}"
        );
    }
}

#[test]
fn a_scale_shared_by_tokens_leaks_the_future() {
    // What the spec refuses: one scale per 256 values, 32 tokens of the 8-wide boundary.
    let spec = tiny_spec(&[[0, 2], [2, 4]], 8, CodecKind::Int2, true);
    let mut leaky = spec.clone();
    leaky.boundary.codec_row = 256;
    let err = leaky.validate().unwrap_err().to_string();
    assert!(err.contains("boundary.codec_row"), "{err}");
    let change = change_by_position(&spec, WireCodec::new(CodecKind::Int2, 256));
    let earlier = &change[..change.len() - 1];
    assert!(
        earlier.iter().filter(|&&d| d > 0.0).count() > earlier.len() / 2,
        "the shared scale carries the last token back to earlier ones: {earlier:?}"
    );
}
