//! `uint8`: asymmetric 8-bit quantization with one f32 minimum and scale per row.
//!
//! `scale = (max - min) / 255`, `q = round((x - min) / scale)` in `[0, 255]`;
//! the payload is every row's minimum, then every row's scale (f32), then
//! every value (u8). Uses all 256 levels on rows that are not centred on zero.

use tch::{Kind, Tensor};

use super::{Codec, CodecError, CodecKind, f32_column, tensor_bytes, tensor_from_bytes};

pub(super) struct Uint8;

impl Codec for Uint8 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * 8 + numel
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let min = x.f_amin([1].as_slice(), true)?;
        let max = x.f_amax([1].as_slice(), true)?;
        let scale = ((max - &min) / 255.0).f_clamp_min(f32::MIN_POSITIVE as f64)?;
        let q = ((x - &min) / &scale)
            .f_round()?
            .f_clamp(0.0, 255.0)?
            .f_to_kind(Kind::Uint8)?;
        tensor_bytes(&min, min.numel(), out)?;
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
        let min = f32_column(payload, rows)?;
        let scale = f32_column(&payload[rows * 4..], rows)?;
        tensor_from_bytes(&payload[rows * 8..], Kind::Uint8, numel, rows, row)
            .and_then(|q| q.f_to_kind(Kind::Float))
            .map(|q| q * scale + min)
            .map_err(|source| CodecError::Torch {
                codec: CodecKind::Uint8,
                source,
            })
    }
}
