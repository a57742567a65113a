//! `int2` and `int2log`: four levels per value, four values per byte, one scale per
//! row: an f32 (`int2`) or one byte, a quarter power of two (`int2log`).
//!
//! Two bits carry a sign and an "inner or outer" choice: a value decodes to
//! `c · s` with `c` in `{-1.5, -0.5, +0.5, +1.5}` (bit patterns `0..=3`, so
//! `c = bits - 1.5`). The encoder puts a value in an outer level when its
//! magnitude exceeds the row's root mean square, then takes the scale `s`
//! that fits those levels best in the least-squares sense,
//! `s = Σ x·c / Σ c²`. For Gaussian rows that is within 1% of the best
//! four-level quantizer (Lloyd–Max: relative squared error 0.1175); what an
//! absmax scale would do with four levels, spend two of them on the few
//! values near the row's extreme, costs about twice the error.
//!
//! `int2` writes `s` as an f32. `int2log` writes the byte `e` of the quarter power
//! of two nearest `s`, `2^((e - 192) / 4)` as in `int4log`: at most 9% off the
//! least-squares scale, which adds about 0.2% of the row's mean square to the error
//! on average. Why: 26 values a token as int2 take 6.5 bytes, so an f32 scale per
//! token makes 10.5 bytes (98x of a 256-wide fp32 residual) and one byte 7.5 (136x).
//!
//! The scales come first, one per row, then the codes, packed four to a byte, the
//! earliest value in the lowest two bits; the bits after the last value of the
//! message are zero. One encoding per tensor: `int2`'s scales are finite and not
//! negative; a zero scale (an all-zero row; `int2log`'s byte 0) comes with every
//! code `+0.5` (bits `0b10`), the encoder's code for zero; and no row is all outer
//! codes, which the encoder cannot produce because not every value of a row can
//! exceed its root mean square.
//!
//! Why our own: no crate serializes a 2-bit per-row-scaled code with these
//! rules, and the receiver's checks are the point. Unlike `int4` and `int8`
//! there is no zero level, so small values come back as `±s/2`, and values far
//! beyond the row's spread are clipped to `±1.5 s`: what buys twice `int4`'s
//! values for the same bytes.

use tch::Tensor;

use super::int4log;
use super::{Codec, CodecError, CodecKind, grid_of, row_values};

/// `int2` (f32 scales) or, with `log_scale`, `int2log` (one-byte scales).
pub(super) struct Int2 {
    pub(super) log_scale: bool,
}

/// The level of each 2-bit pattern, in units of the row's scale.
const LEVELS: [f32; 4] = [-1.5, -0.5, 0.5, 1.5];
/// The pattern the encoder writes for a zero (and every value of an all-zero row).
const ZERO_BITS: u8 = 0b10;

/// The 2-bit pattern for `x` in a row whose root mean square is `rms`.
fn bits(x: f32, rms: f32) -> u8 {
    match (x >= 0.0, x.abs() > rms) {
        (false, true) => 0,
        (false, false) => 1,
        (true, false) => 2,
        (true, true) => 3,
    }
}

impl Int2 {
    /// Bytes per row's scale.
    fn scale_len(&self) -> usize {
        if self.log_scale { 1 } else { 4 }
    }

    fn kind(&self) -> CodecKind {
        if self.log_scale {
            CodecKind::Int2Log
        } else {
            CodecKind::Int2
        }
    }

    /// Row `r`'s scale as written in `scales`, refused unless finite and not negative.
    fn scale(&self, scales: &[u8], r: usize) -> Result<f32, CodecError> {
        if self.log_scale {
            return Ok(match scales[r] {
                0 => 0.0,
                e => int4log::scale(e),
            });
        }
        let bytes = [
            scales[4 * r],
            scales[4 * r + 1],
            scales[4 * r + 2],
            scales[4 * r + 3],
        ];
        let scale = f32::from_le_bytes(bytes);
        if !scale.is_finite() {
            return Err(CodecError::NonFinite { what: "scales" });
        }
        if scale.is_sign_negative() {
            return Err(CodecError::OutOfRange {
                what: "int2 scales must not be negative",
            });
        }
        Ok(scale)
    }
}

impl Codec for Int2 {
    fn payload_len(&self, numel: usize, rows: usize) -> usize {
        rows * self.scale_len() + numel.div_ceil(4)
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let (values, row) = row_values(x, numel)?;
        let mut codes = Vec::with_capacity(numel);
        for chunk in values.chunks(row) {
            let ms = chunk.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / chunk.len() as f64;
            let rms = ms.sqrt() as f32;
            let start = codes.len();
            codes.extend(chunk.iter().map(|&v| bits(v, rms)));
            let (mut num, mut den) = (0f64, 0f64);
            for (&v, &b) in chunk.iter().zip(&codes[start..]) {
                let c = f64::from(LEVELS[b as usize]);
                num += f64::from(v) * c;
                den += c * c;
            }
            // Every term of `num` is |v|·|c| >= 0: the scale is never negative, and zero
            // only for an all-zero row.
            let s = (num / den) as f32;
            if !self.log_scale {
                out.extend_from_slice(&s.to_le_bytes());
            } else if s > 0.0 {
                out.push(int4log::nearest(s));
            } else {
                out.push(0);
            }
        }
        out.extend(codes.chunks(4).map(|quad| {
            quad.iter()
                .enumerate()
                .fold(0u8, |byte, (i, &b)| byte | (b << (2 * i)))
        }));
        Ok(())
    }

    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError> {
        let out_of_range = |what| Err(CodecError::OutOfRange { what });
        let (scales, packed) = payload.split_at(rows * self.scale_len());
        if !numel.is_multiple_of(4) && packed.last().is_some_and(|&b| b >> (2 * (numel % 4)) != 0) {
            return out_of_range("int2 padding bits after the last value must be 0");
        }
        let code = |i: usize| (packed[i / 4] >> (2 * (i % 4))) & 0b11;
        let mut values = vec![0f32; rows * row];
        for r in 0..rows {
            let scale = self.scale(scales, r)?;
            let span = r * row..((r + 1) * row).min(numel);
            if scale == 0.0 {
                if span.clone().any(|i| code(i) != ZERO_BITS) {
                    return out_of_range("an int2 row with scale 0 must hold only +0.5 codes");
                }
                continue;
            }
            if span.clone().all(|i| code(i) == 0 || code(i) == 3) {
                return out_of_range("an int2 row cannot hold only outer codes");
            }
            for i in span {
                values[i] = LEVELS[code(i) as usize] * scale;
            }
        }
        grid_of(&values, rows, row, self.kind())
    }
}
