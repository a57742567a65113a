//! `fp8`: 8-bit floats (OCP E4M3, `float8_e4m3fn`) with one f32 scale per row.
//!
//! `scale = absmax(row) / 448`, each value is `x / scale` rounded to the nearest
//! E4M3 float by libtorch; the payload is every row's scale (f32) followed by
//! every value (one byte). Same size as `int8`, a different error: int8's step
//! is a fixed `absmax / 127`, so values below `absmax / 254` become 0, while an
//! 8-bit float keeps 3 mantissa bits at every magnitude down to about
//! `absmax · 2^-15` (and subnormals reach about `absmax · 2^-18`). It was added for
//! gradients, whose size varies by orders of magnitude from token to token. Measured
//! as the gradient codec of a 7-wide boundary (the compression benchmark), it did
//! worse than int8 at every point: its 2.5% relative L2 error on the large values
//! costs more than int8's zeroing of the small ones, so no shipped spec uses it.
//!
//! One encoding per tensor: negative zero is written as `0x00`, and the two NaN
//! codes (`0x7f`, `0xff`) are refused; E4M3 has no infinities.

use tch::{Kind, Tensor};

use super::{
    Codec, CodecError, CodecKind, f32_column, positive_scales, tensor_bytes, tensor_from_bytes,
};

/// The largest finite E4M3 value.
const MAX: f64 = 448.0;
/// Negative zero and the two NaNs.
const NEGATIVE_ZERO: u8 = 0x80;
const NAN: u8 = 0x7f;

pub(super) struct Fp8;

impl Codec for Fp8 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * 4 + numel
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let absmax = x.f_abs()?.f_amax([1].as_slice(), true)?;
        let scale = (absmax / MAX).f_clamp_min(f32::MIN_POSITIVE as f64)?;
        // The clamp keeps a quotient rounded just past 448 finite (E4M3 has no infinity).
        let codes = (x / &scale)
            .f_clamp(-MAX, MAX)?
            .f_to_kind(Kind::Float8e4m3fn)?
            .f_view_dtype(Kind::Uint8)?;
        tensor_bytes(&scale, scale.numel(), out)?;
        let start = out.len();
        tensor_bytes(&codes, numel, out)?;
        for b in &mut out[start..] {
            if *b == NEGATIVE_ZERO {
                *b = 0;
            }
        }
        Ok(())
    }

    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError> {
        let scale = f32_column(payload, rows)?;
        positive_scales(&scale, CodecKind::Fp8)?;
        let codes = &payload[rows * 4..rows * 4 + numel];
        if codes.iter().any(|&b| b & 0x7f == NAN) {
            return Err(CodecError::OutOfRange {
                what: "fp8 NaN code (0x7f or 0xff)",
            });
        }
        if codes.contains(&NEGATIVE_ZERO) {
            return Err(CodecError::OutOfRange {
                what: "fp8 negative zero (0x80; zero is written 0x00)",
            });
        }
        tensor_from_bytes(codes, Kind::Uint8, numel, rows, row)
            .and_then(|q| q.f_view_dtype(Kind::Float8e4m3fn))
            .and_then(|q| q.f_to_kind(Kind::Float))
            .map(|q| q * scale)
            .map_err(|source| CodecError::Torch {
                codec: CodecKind::Fp8,
                source,
            })
    }
}
