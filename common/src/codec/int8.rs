//! `int8`: symmetric 8-bit quantization with one f32 scale per row.
//!
//! `scale = absmax(row) / 127`, `q = round(x / scale)` in `[-127, 127]`; the
//! payload is every row's scale (f32) followed by every value (i8). Zero is
//! exact, which suits gradients and bottleneck outputs centred on zero.

use tch::{Kind, Tensor};

use super::{
    Codec, CodecError, CodecKind, f32_column, positive_scales, tensor_bytes, tensor_from_bytes,
};

pub(super) struct Int8;

impl Codec for Int8 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * 4 + numel
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let absmax = x.f_abs()?.f_amax([1].as_slice(), true)?;
        // An all-zero row gets the smallest positive scale, so every scale is positive.
        let scale = (absmax / 127.0).f_clamp_min(f32::MIN_POSITIVE as f64)?;
        let q = (x / &scale)
            .f_round()?
            .f_clamp(-127.0, 127.0)?
            .f_to_kind(Kind::Int8)?;
        tensor_bytes(&scale, scale.numel(), out)?;
        tensor_bytes(&q, numel, out)
    }

    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError> {
        let scale = f32_column(payload, rows)?;
        // One encoding per tensor: codes in -127..=127 (never -128) and positive scales.
        if payload[rows * 4..rows * 4 + numel].contains(&0x80) {
            return Err(CodecError::OutOfRange {
                what: "int8 code -128 (codes are -127..=127)",
            });
        }
        positive_scales(&scale, CodecKind::Int8)?;
        tensor_from_bytes(&payload[rows * 4..], Kind::Int8, numel, rows, row)
            .and_then(|q| q.f_to_kind(Kind::Float))
            .map(|q| q * scale)
            .map_err(|source| CodecError::Torch {
                codec: CodecKind::Int8,
                source,
            })
    }
}
