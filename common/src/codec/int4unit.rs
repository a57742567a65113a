//! `int4unit`: `int4`'s codes on a fixed grid, for rows scaled to unit RMS; no scale is sent.
//!
//! A row of `r` values whose root mean square is 1 has no value beyond `√r` (all of its
//! square sum in one value). So the grid `q · √r / 7` for `q` in `-7..=7` covers such a row
//! without clipping, and the step is known to both sides from the row length alone. The
//! payload is the codes packed as `int4` packs them and nothing else: a 7-wide boundary
//! costs 3.5 bytes a token instead of int4's 7.5 or int4log's 4.5.
//!
//! The codec does not scale rows itself: the boundary's encoder does, differentiably
//! (`BoundarySpec::unit_rms`), so the gradient that comes back is the gradient of what
//! was sent. Values beyond `√r` are clipped, which a unit-RMS row never needs. What is
//! lost is each token's norm; the encoder learns to carry what matters in the direction.
//! Gradients have no fixed scale and may not use this codec ([`RunSpec::validate`]).
//!
//! One encoding per tensor: codes -7..=7 and a zero padding nibble, as in `int4`; every
//! such code sequence is a different tensor.
//!
//! [`RunSpec::validate`]: crate::spec::RunSpec::validate

use tch::Tensor;

use super::int4::{pack_nibbles, unpack_nibbles};
use super::{Codec, CodecError, CodecKind, grid_of, row_values};

pub(super) struct Int4Unit;

/// The grid step for rows of `row` values: `√row / 7`.
fn step(row: usize) -> f32 {
    (row as f64).sqrt() as f32 / 7.0
}

impl Codec for Int4Unit {
    fn payload_len(&self, numel: usize, _rows: usize) -> usize {
        numel.div_ceil(2)
    }

    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
        let (values, row) = row_values(x, numel)?;
        let s = step(row);
        let codes: Vec<i8> = values
            .iter()
            .map(|&v| (v / s).round().clamp(-7.0, 7.0) as i8)
            .collect();
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
        let codes = unpack_nibbles(payload, numel)?;
        let s = step(row);
        let mut values = vec![0f32; rows * row];
        for (v, &c) in values.iter_mut().zip(&codes) {
            *v = f32::from(c) * s;
        }
        grid_of(&values, rows, row, CodecKind::Int4Unit)
    }
}
