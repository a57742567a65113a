//! The merge: miners of a stage average their weights through storage (butterfly all-reduce).
//!
//! A stage's weights, flattened in parameter-name order, are cut into one contiguous shard per
//! miner. Shard `i` is reduced by two miners, `i` and `i + 1` (mod n): each downloads every
//! peer's copy of the shard, averages them weighted by the peers' work, and uploads the result.
//! Everyone then assembles the merged stage from the reduced shards, taking shard `i` from its
//! first reducer when present and its twin otherwise, so that all miners of a stage, reading the
//! same objects, end with bit-identical weights. The twin's copy checks the first's: both
//! averaged the same inputs in the same order, so they agree exactly unless one of them lied or
//! saw a late peer.
//!
//! This module is the arithmetic; the miner's merge task moves the bytes.

use tch::{Device, Kind, Tensor, nn};

/// A stage's weights could not be flattened or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The flat vector does not have the stage's parameter count.
    #[error("merged weights hold {got} values, the stage has {expected}")]
    Length {
        /// Parameters of the stage.
        expected: i64,
        /// Values given.
        got: i64,
    },
    /// A merged value is NaN or infinite.
    #[error("merged weights hold non-finite values")]
    NonFinite,
    /// libtorch failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Every parameter of `vs` in name order, as one fp32 vector on the CPU.
///
/// # Errors
/// When libtorch fails.
pub fn flatten(vs: &nn::VarStore) -> Result<Tensor, MergeError> {
    let parts = sorted_variables(vs)
        .into_iter()
        .map(|(_, t)| {
            t.f_detach()?
                .f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_reshape([-1])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_cat(&parts, 0)?)
}

/// Flat weights (as [`flatten`] lays them out) as fp32 little-endian bytes: what weight
/// hashes cover and what a miner shows a validator's spot check.
///
/// # Errors
/// When libtorch fails.
pub fn flat_bytes(flat: &Tensor) -> Result<Vec<u8>, MergeError> {
    let values = Vec::<f32>::try_from(flat.f_to_kind(Kind::Float)?.f_reshape([-1])?)?;
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// The flat weights [`flat_bytes`] wrote; `None` when the length is not a multiple of 4.
pub fn flat_from_bytes(bytes: &[u8]) -> Option<Tensor> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(Tensor::from_slice(&values))
}

/// BLAKE3 of flat weights' [`flat_bytes`]: what an artifact's header claims its payload was
/// computed with, and what a stage's miners compare after a merge.
///
/// # Errors
/// When libtorch fails.
pub fn hash_flat(flat: &Tensor) -> Result<[u8; 32], MergeError> {
    Ok(*blake3::hash(&flat_bytes(flat)?).as_bytes())
}

/// Loads `flat` (as [`flatten`] lays it out) into `vs`.
///
/// # Errors
/// [`MergeError::Length`] or [`MergeError::NonFinite`]; nothing is changed then.
pub fn load_flat(vs: &mut nn::VarStore, flat: &Tensor) -> Result<(), MergeError> {
    let vars = sorted_variables(vs);
    let expected: i64 = vars.iter().map(|(_, t)| t.numel() as i64).sum();
    let got = flat.numel() as i64;
    if got != expected {
        return Err(MergeError::Length { expected, got });
    }
    if !bool::try_from(flat.f_isfinite()?.f_all()?)? {
        return Err(MergeError::NonFinite);
    }
    tch::no_grad(|| {
        let mut at = 0i64;
        for (_, mut t) in vars {
            let n = t.numel() as i64;
            let src = flat
                .f_narrow(0, at, n)?
                .f_view(t.size().as_slice())?
                .f_to_device(t.device())?
                .f_to_kind(t.kind())?;
            t.f_copy_(&src)?;
            at += n;
        }
        Ok(())
    })
}

/// `(start, len)` of shard `index` of `count` over `total` values: contiguous, sizes differing by at most one.
pub fn shard_range(total: i64, count: usize, index: usize) -> (i64, i64) {
    let count = count.max(1) as i64;
    let index = index as i64;
    let base = total / count;
    let extra = total % count;
    let start = index * base + index.min(extra);
    let len = base + i64::from(index < extra);
    (start, len)
}

/// The two miners (positions in the stage) that reduce shard `shard` of `count`: first and twin.
/// With one miner both are that miner.
pub fn reducers(shard: usize, count: usize) -> [usize; 2] {
    let count = count.max(1);
    [shard % count, (shard + 1) % count]
}

/// The shards miner `position` reduces, of `count`.
pub fn reduced_by(position: usize, count: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..count)
        .filter(|&s| reducers(s, count).contains(&position))
        .collect();
    out.dedup();
    out
}

/// The average of `parts` weighted by their weights (all the same length), in the given order.
/// Returns `None` when there is nothing to average.
///
/// # Errors
/// When libtorch fails (lengths differ).
pub fn weighted_mean(parts: &[(f64, Tensor)]) -> Result<Option<Tensor>, MergeError> {
    let total: f64 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
    if parts.is_empty() || total <= 0.0 {
        return Ok(None);
    }
    let mut acc = parts[0].1.f_zeros_like()?.f_to_kind(Kind::Double)?;
    for (w, t) in parts {
        acc = acc.f_add(
            &t.f_to_kind(Kind::Double)?
                .f_mul_scalar(w.max(0.0) / total)?,
        )?;
    }
    Ok(Some(acc.f_to_kind(Kind::Float)?))
}

/// Largest `|a - b|` relative to the largest `|a|`: how far a shard's twin reduction is from the first.
///
/// # Errors
/// When libtorch fails (lengths differ).
pub fn relative_gap(a: &Tensor, b: &Tensor) -> Result<f64, MergeError> {
    let diff = a.f_sub(b)?.f_abs()?.f_max()?.double_value(&[]);
    let scale = a.f_abs()?.f_max()?.double_value(&[]).max(1e-12);
    Ok(diff / scale)
}

/// How two disagreeing reductions of one shard stand against the shard reduced from its
/// members' copies (`inputs`, weighted as [`weighted_mean`]).
#[derive(Debug)]
pub struct Settled {
    /// The shard reduced from `inputs` (`None` without inputs).
    pub reduced: Option<Tensor>,
    /// Whether each of the two reductions is off it by more than the tolerance (neither is
    /// when there is nothing to compare with).
    pub off: [bool; 2],
}

impl Settled {
    /// The reduction to keep: the first that matches, else the one reduced here.
    pub fn keep(self, pair: [&Tensor; 2]) -> Option<Tensor> {
        match self.off {
            [false, _] => Some(pair[0].shallow_clone()),
            [true, false] => Some(pair[1].shallow_clone()),
            [true, true] => self.reduced,
        }
    }
}

/// Settles a disagreement between a shard's two reductions by reducing it from `inputs`.
///
/// # Errors
/// When libtorch fails.
pub fn settle(
    pair: [&Tensor; 2],
    inputs: &[(f64, Tensor)],
    tolerance: f64,
) -> Result<Settled, MergeError> {
    let reduced = weighted_mean(inputs)?;
    let mut off = [false; 2];
    if let Some(r) = &reduced {
        for (o, t) in off.iter_mut().zip(pair) {
            *o = relative_gap(t, r)? > tolerance;
        }
    }
    Ok(Settled { reduced, off })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_reduction_is_told_from_the_right_one() {
        let inputs = vec![
            (1.0, Tensor::from_slice(&[1.0f32, 2.0])),
            (3.0, Tensor::from_slice(&[5.0f32, 6.0])),
        ];
        let right = Tensor::from_slice(&[4.0f32, 5.0]);
        let wrong = &right * 0.5;
        let s = settle([&wrong, &right], &inputs, 1e-6).unwrap();
        assert_eq!(s.off, [true, false]);
        assert!(s.keep([&wrong, &right]).unwrap().equal(&right));
        let s = settle([&wrong, &wrong], &inputs, 1e-6).unwrap();
        assert!(
            s.keep([&wrong, &wrong])
                .unwrap()
                .allclose(&right, 1e-6, 1e-6, false)
        );
        let s = settle([&wrong, &right], &[], 1e-6).unwrap();
        assert_eq!((s.off, s.reduced.is_none()), ([false, false], true));
    }

    #[test]
    fn shards_tile_and_each_has_two_reducers() {
        for total in [0i64, 1, 7, 100] {
            for count in 1..6 {
                let mut at = 0;
                for i in 0..count {
                    let (s, l) = shard_range(total, count, i);
                    assert_eq!(s, at);
                    at += l;
                }
                assert_eq!(at, total);
                let mut seen = vec![0; count];
                for p in 0..count {
                    for s in reduced_by(p, count) {
                        seen[s] += 1;
                    }
                }
                let want = if count == 1 { 1 } else { 2 };
                assert!(seen.iter().all(|&n| n == want), "{count}: {seen:?}");
            }
        }
    }

    #[test]
    fn flatten_load_round_trip_and_weighted_mean() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _a = vs.root().var("a", &[2, 3], nn::Init::Const(1.0));
        let _b = vs.root().var("b", &[4], nn::Init::Const(2.0));
        let flat = flatten(&vs).unwrap();
        assert_eq!(flat.size(), [10]);
        let mut other = nn::VarStore::new(Device::Cpu);
        let _a = other.root().var("a", &[2, 3], nn::Init::Const(0.0));
        let _b = other.root().var("b", &[4], nn::Init::Const(0.0));
        load_flat(&mut other, &flat).unwrap();
        assert_eq!(relative_gap(&flatten(&other).unwrap(), &flat).unwrap(), 0.0);
        assert!(load_flat(&mut other, &Tensor::zeros([3], (Kind::Float, Device::Cpu))).is_err());
        let nan = Tensor::full([10], f64::NAN, (Kind::Float, Device::Cpu));
        assert!(matches!(
            load_flat(&mut other, &nan),
            Err(MergeError::NonFinite)
        ));

        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let y = Tensor::from_slice(&[3.0f32, 6.0]);
        let m = weighted_mean(&[(1.0, x), (3.0, y)]).unwrap().unwrap();
        assert_eq!(Vec::<f32>::try_from(&m).unwrap(), vec![2.5, 5.0]);
        assert!(weighted_mean(&[]).unwrap().is_none());
    }
}
