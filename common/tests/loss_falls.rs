//! Loss falls on real text (the Shakespeare corpus from `scripts/setup.sh`) in a short run.

use sliver_common::data::{Corpus, Split};
use sliver_common::{CodecKind, Trainer};
use tch::Device;

use crate::support::{real_text, tiny_spec};

#[test]
fn loss_falls_on_real_text_through_compressed_boundaries() {
    // The 8-wide int8 bottleneck: 8 bytes and a 4-byte scale per token.
    loss_falls_through(CodecKind::Int8, 12.0);
}

#[test]
fn loss_falls_through_an_int4_boundary() {
    // Two values per byte: 4 bytes and a 4-byte scale per token.
    loss_falls_through(CodecKind::Int4, 8.0);
}

#[test]
fn loss_falls_through_an_int2_boundary() {
    // Four values per byte: 2 bytes and a 4-byte scale per token.
    loss_falls_through(CodecKind::Int2, 6.0);
}

#[test]
fn loss_falls_through_an_int2log_boundary() {
    // int2's codes with a one-byte scale: 2 bytes and 1 byte per token.
    loss_falls_through(CodecKind::Int2Log, 3.0);
}

#[test]
fn loss_falls_through_an_int4log_boundary() {
    // int4's codes with a one-byte scale: 4 bytes and 1 byte per token.
    loss_falls_through(CodecKind::Int4Log, 5.0);
}

#[test]
#[allow(
    clippy::unwrap_used,
    reason = "a test: an invalid spec should stop it with its message"
)]
fn loss_falls_through_an_int4unit_boundary() {
    // Codes only, the encoder scaling each token to unit RMS: 4 bytes per token. Gradients
    // cross as int4log with one scale byte per 3 tokens.
    let mut spec = tiny_spec(&[[0, 2], [2, 4]], 8, CodecKind::Int4Log, true);
    spec.boundary.codec = CodecKind::Int4Unit;
    spec.boundary.grad_codec = Some(CodecKind::Int4Log);
    spec.boundary.grad_codec_row = Some(24);
    spec.validate().unwrap();
    loss_falls_with(spec, 4.0);
}

#[test]
fn loss_falls_through_an_fp8_boundary() {
    // int8's layout: 8 one-byte floats and a 4-byte scale per token.
    loss_falls_through(CodecKind::Fp8, 12.0);
}

/// Trains the tiny two-stage model through an 8-wide bottleneck sent as `codec` (one
/// scale per token) and checks that held-out loss falls and that `bytes_per_token`
/// (plus the header) is what crossed the boundary.
fn loss_falls_through(codec: CodecKind, bytes_per_token: f64) {
    loss_falls_with(
        tiny_spec(&[[0, 2], [2, 4]], 8, codec, true),
        bytes_per_token,
    );
}

/// [`loss_falls_through`] for a spec of the tiny two-stage model with any boundary.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the body of several tests: a failed step should stop the test with its message"
)]
fn loss_falls_with(mut spec: sliver_common::RunSpec, bytes_per_token: f64) {
    let codec = spec.boundary.codec;
    spec.data = real_text();
    spec.optimizer.batch_size = 8;
    let corpus = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Corpus::load(&spec.data))
        .expect("the real text corpus loads");
    assert!(
        corpus.tokens(Split::Train) > 1_000_000,
        "Shakespeare holds millions of bytes"
    );

    let steps = 80;
    let mut trainer = Trainer::pipeline(&spec, Device::Cpu, steps).unwrap();
    trainer.measure_gradient_wire(true);
    let before = trainer.eval(&corpus, 4).unwrap();
    let mut wire = 0;
    for i in 0..steps {
        let batch = trainer.batch(&corpus, Split::Train, i).unwrap();
        let report = trainer.step(&[batch]).unwrap();
        wire += report.activation_bytes;
        assert!(report.gradient_bytes > 0 && report.grad_norms.len() == 2);
        // Rounding loses something, never most of the gradient.
        let lost = report
            .gradient_wire
            .expect("measured: one boundary crossed");
        assert!(
            lost.relative_error > 0.0 && lost.relative_error < 0.5 && lost.zeroed < 0.9,
            "{codec}: {lost:?}"
        );
    }
    let after = trainer.eval(&corpus, 4).unwrap();
    // Byte-level loss starts near ln(256) = 5.5; a short run must cut it well down.
    assert!(before > 5.0, "initial eval loss {before}");
    assert!(
        after < before - 1.5,
        "{codec}: eval loss only went from {before} to {after}"
    );
    // What crossed the boundary was the bottleneck (plus a 24-byte header per
    // message of 256 tokens), not the 64-wide fp32 stream (256 bytes per token).
    let tokens = steps * 8 * 32;
    let per_token = wire as f64 / tokens as f64;
    assert!(
        (per_token - (bytes_per_token + 24.0 / 256.0)).abs() < 1e-9,
        "{codec}: {per_token} wire bytes per token"
    );
}
