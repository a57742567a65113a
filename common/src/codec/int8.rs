//! `int8`: symmetric 8-bit quantization with one f32 scale per row.
//!
//! `scale = absmax(row) / 127`, `q = round(x / scale)` in `[-127, 127]`; the
//! payload is every row's scale (f32) followed by every value (i8). Zero is
//! exact, which suits gradients and bottleneck outputs centred on zero.

use tch::Tensor;

use super::{
    Codec, CodecError, CodecKind, dequantize_symmetric, f32_column, quantize_symmetric,
    tensor_bytes,
};

pub(super) struct Int8;

impl Codec for Int8 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * 4 + numel
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let (scale, q) = quantize_symmetric(x, 127.0)?;
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
        dequantize_symmetric(
            &payload[rows * 4..rows * 4 + numel],
            scale,
            numel,
            rows,
            row,
            CodecKind::Int8,
        )
    }
}
