//! `int4`: symmetric 4-bit quantization with one f32 scale per row, two values per byte.
//!
//! `scale = absmax(row) / 7`, `q = round(x / scale)` in `[-7, 7]`; the payload is
//! every row's scale (f32) followed by the codes packed two to a byte as
//! two's-complement nibbles, the earlier value in the low nibble. Like `int8`,
//! zero is exact and the code range is symmetric, so `-8` (nibble `0x8`) never
//! occurs; an odd count leaves the last high nibble zero. Half the bytes of
//! `int8` for the same values: at a stage boundary that buys a bottleneck twice
//! as wide for the same wire size.

use tch::Tensor;

use super::{
    Codec, CodecError, CodecKind, dequantize_symmetric, f32_column, quantize_symmetric,
    tensor_bytes,
};

pub(super) struct Int4;

impl Codec for Int4 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * 4 + numel.div_ceil(2)
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let (scale, q) = quantize_symmetric(x, 7.0)?;
        let q = q
            .f_reshape([-1])?
            .f_narrow(0, 0, numel as i64)?
            .f_contiguous()?;
        tensor_bytes(&scale, scale.numel(), out)?;
        let mut codes = vec![0i8; numel];
        q.f_copy_data(&mut codes, numel)?;
        pack_nibbles(&codes, out);
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
        let codes = unpack_nibbles(&payload[rows * 4..], numel)?;
        // Reuse the byte-per-value path.
        let codes: Vec<u8> = codes.into_iter().map(|c| c as u8).collect();
        dequantize_symmetric(&codes, scale, numel, rows, row, CodecKind::Int4)
    }
}

/// Appends `codes` (each in -7..=7) two to a byte as two's-complement nibbles, the earlier
/// value in the low nibble; an odd count leaves the last high nibble zero.
pub(super) fn pack_nibbles(codes: &[i8], out: &mut Vec<u8>) {
    out.extend(
        codes
            .chunks(2)
            .map(|p| (p[0] as u8 & 0x0f) | ((p.get(1).copied().unwrap_or(0) as u8 & 0x0f) << 4)),
    );
}

/// Reads `numel` codes packed by [`pack_nibbles`] from the start of `packed` (which holds at
/// least `numel.div_ceil(2)` bytes), refusing what the packer never writes: a -8 code, or a
/// nonzero padding nibble after an odd count.
pub(super) fn unpack_nibbles(packed: &[u8], numel: usize) -> Result<Vec<i8>, CodecError> {
    let packed = &packed[..numel.div_ceil(2)];
    if packed.iter().any(|&b| b & 0x0f == 0x08 || b >> 4 == 0x08) {
        return Err(CodecError::OutOfRange {
            what: "int4 code -8 (codes are -7..=7)",
        });
    }
    if numel % 2 == 1 && packed.last().is_some_and(|&b| b >> 4 != 0) {
        return Err(CodecError::OutOfRange {
            what: "int4 padding nibble after the last value must be 0",
        });
    }
    // Sign-extend each nibble into an i8.
    Ok(packed
        .iter()
        .flat_map(|&b| [(b << 4) as i8 >> 4, b as i8 >> 4])
        .take(numel)
        .collect())
}
