//! `bf16`: bfloat16, fp32's exponent range with an 8-bit mantissa. Halves the
//! bytes with no scale to manage; safe for gradients, whose magnitudes span
//! many orders.

use tch::{Kind, Tensor};

use super::{Codec, CodecError, CodecKind, tensor_bytes, tensor_from_bytes};

pub(super) struct Bf16;

impl Codec for Bf16 {
    fn payload_len(&self, numel: usize, _rows: usize) -> usize {
        numel * 2
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        tensor_bytes(&x.f_to_kind(Kind::BFloat16)?, numel, out)
    }

    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError> {
        tensor_from_bytes(payload, Kind::BFloat16, numel, rows, row)
            .and_then(|t| t.f_to_kind(Kind::Float))
            .map_err(|source| CodecError::Torch {
                codec: CodecKind::Bf16,
                source,
            })
    }
}
