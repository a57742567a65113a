//! `fp32`: the tensor's 32-bit floats as they are. The reference codec and
//! the unit that compression ratios are measured against.

use tch::{Kind, Tensor};

use super::{Codec, CodecError, tensor_bytes, tensor_from_bytes};

pub(super) struct Fp32;

impl Codec for Fp32 {
    fn payload_len(&self, numel: usize, _rows: usize) -> usize {
        numel * 4
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        tensor_bytes(x, numel, out)
    }

    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError> {
        tensor_from_bytes(payload, Kind::Float, numel, rows, row).map_err(|source| {
            CodecError::Torch {
                codec: super::CodecKind::Fp32,
                source,
            }
        })
    }
}
