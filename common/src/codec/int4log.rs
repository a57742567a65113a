//! `int4log`: `int4`'s codes with a one-byte scale per row instead of a four-byte one.
//!
//! A row's scale is a quarter power of two, `2^((e - 192) / 4)` for the byte `e` in
//! `1..=255` (about `3.6e-15` to `2.3e4`): the smallest such scale with
//! `7 · scale >= absmax(row)`, so `q = round(x / scale)` stays in `[-7, 7]` and the
//! largest code of a row is 6 or 7. `e = 0` is an all-zero row. The payload is every
//! row's byte followed by the codes packed as `int4` packs them.
//!
//! Why: a boundary must quantize each token on its own (a scale shared by tokens
//! leaks later tokens to the next stage), and a 7-wide int4 bottleneck spends 3.5 bytes
//! on its values, so an f32 scale per token is more than half the message. One byte
//! costs a scale up to 19% coarser than `absmax / 7`, that is at most half a code of
//! range; MX formats' power-of-two scales (OCP Microscaling, E8M0) are the same idea
//! with steps four times coarser.
//!
//! One encoding per tensor: codes -7..=7 and a zero padding nibble as in `int4`; a row
//! with `e = 0` holds only zero codes, and a row with `e >= 1` some nonzero code, and
//! with `e >= 2` (a scale that was not clamped at the bottom) a code of magnitude 6 or 7.
//! Values beyond `7 · 2^15.75` are clipped and values below half the smallest scale
//! round to zero; neither occurs at a boundary.

use tch::Tensor;

use super::int4::{pack_nibbles, unpack_nibbles};
use super::{Codec, CodecError, CodecKind, grid_of, row_values};

pub(super) struct Int4Log;

/// The exponent bias: byte `e` is the scale `2^((e - BIAS) / 4)`.
const BIAS: i32 = 192;

/// The scale of byte `e` (1..=255). `int2log` writes its scales the same way.
pub(super) fn scale(e: u8) -> f32 {
    2f64.powf(f64::from(i32::from(e) - BIAS) / 4.0) as f32
}

/// The byte of the smallest scale whose 7 steps reach `absmax` (> 0), clamped to 1..=255.
fn exponent(absmax: f32) -> u8 {
    let guess = (4.0 * (f64::from(absmax) / 7.0).log2()).ceil() as i32 + BIAS;
    let mut e = guess.clamp(1, 255) as u8;
    // Settle the float rounding of the logarithm against the scales actually used.
    while e < 255 && 7.0 * scale(e) < absmax {
        e += 1;
    }
    while e > 1 && 7.0 * scale(e - 1) >= absmax {
        e -= 1;
    }
    e
}

/// The byte (1..=255) of the quarter power of two nearest `s` (> 0) on a log scale.
pub(super) fn nearest(s: f32) -> u8 {
    let guess = (4.0 * f64::from(s).log2()).round() as i32 + BIAS;
    guess.clamp(1, 255) as u8
}

impl Codec for Int4Log {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows + numel.div_ceil(2)
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let (values, row) = row_values(x, numel)?;
        let mut codes = Vec::with_capacity(numel);
        for chunk in values.chunks(row) {
            let absmax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let mut e = if absmax > 0.0 { exponent(absmax) } else { 0 };
            let start = codes.len();
            if e > 0 {
                let s = scale(e);
                codes.extend(
                    chunk
                        .iter()
                        .map(|&v| (v / s).round().clamp(-7.0, 7.0) as i8),
                );
            }
            // A row too small for the smallest scale rounds to nothing: write it as zeros.
            if e == 0 || codes[start..].iter().all(|&c| c == 0) {
                e = 0;
                codes.truncate(start);
                codes.resize(start + chunk.len(), 0);
            }
            out.push(e);
        }
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
        let exponents = &payload[..rows];
        let codes = unpack_nibbles(&payload[rows..], numel)?;
        let mut values = vec![0f32; rows * row];
        for (r, &e) in exponents.iter().enumerate() {
            let span = r * row..((r + 1) * row).min(numel);
            let largest = codes[span.clone()]
                .iter()
                .map(|c| c.unsigned_abs())
                .max()
                .unwrap_or(0);
            let refused = match e {
                0 if largest != 0 => {
                    Some("an int4log row with scale byte 0 must hold only zero codes")
                }
                1.. if largest == 0 => Some("an int4log row of zero codes must have scale byte 0"),
                2.. if largest < 6 => Some(
                    "an int4log row's largest code must be 6 or 7 (its scale is the smallest that fits)",
                ),
                _ => None,
            };
            if let Some(what) = refused {
                return Err(CodecError::OutOfRange { what });
            }
            if e > 0 {
                let s = scale(e);
                for i in span {
                    values[i] = f32::from(codes[i]) * s;
                }
            }
        }
        grid_of(&values, rows, row, CodecKind::Int4Log)
    }
}
