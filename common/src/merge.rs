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
//! This module is the arithmetic and the decision of what to keep of each shard ([`verdict`]);
//! `sliver_subnet`'s merge reader moves the bytes for the miners, joiners and validators alike.
//! The flat layout of a stage's weights is [`crate::flat`].

use tch::{Kind, TchError, Tensor};

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
pub fn weighted_mean(parts: &[(f64, Tensor)]) -> Result<Option<Tensor>, TchError> {
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
pub fn relative_gap(a: &Tensor, b: &Tensor) -> Result<f64, TchError> {
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
) -> Result<Settled, TchError> {
    let reduced = weighted_mean(inputs)?;
    let mut off = [false; 2];
    if let Some(r) = &reduced {
        for (o, t) in off.iter_mut().zip(pair) {
            *o = relative_gap(t, r)? > tolerance;
        }
    }
    Ok(Settled { reduced, off })
}

/// What a reader of a merge keeps of one shard, and which of its two reducers it found off.
#[derive(Debug)]
pub struct Verdict {
    /// The shard to assemble: the first reducer's reduction when it holds, else the twin's,
    /// else one reduced here from the members' copies; `None` when neither reduction was read.
    pub kept: Option<Tensor>,
    /// Whether the first reducer and the twin were each found off the members' copies.
    pub off: [bool; 2],
    /// Whether the two reductions disagreed beyond the tolerance (and so were settled).
    pub disagreed: bool,
    /// Their relative gap ([`relative_gap`]); 0 when fewer than two were read.
    pub gap: f64,
}

/// Decides what to keep of one shard from the reductions read from its first reducer and its
/// twin (`pair`; the twin's is `None` when it is the same miner). When both were read and they
/// disagree beyond `tolerance`, the shard is reduced here from its members' copies, which
/// `inputs` reads (weighted as [`weighted_mean`]), and whichever reduction matches is kept.
/// This is the one rule miners, joiners and validators all assemble a stage by, so that every
/// reader of the same objects ends with the same weights.
///
/// # Errors
/// When libtorch fails (lengths differ).
pub async fn verdict<F>(
    pair: [Option<Tensor>; 2],
    tolerance: f64,
    inputs: impl FnOnce() -> F,
) -> Result<Verdict, TchError>
where
    F: std::future::Future<Output = Vec<(f64, Tensor)>>,
{
    let (a, b) = match pair {
        [Some(a), Some(b)] => (a, b),
        [first, twin] => {
            return Ok(Verdict {
                kept: first.or(twin),
                off: [false; 2],
                disagreed: false,
                gap: 0.0,
            });
        }
    };
    let gap = relative_gap(&a, &b)?;
    if gap <= tolerance {
        return Ok(Verdict {
            kept: Some(a),
            off: [false; 2],
            disagreed: false,
            gap,
        });
    }
    // Nothing borrowed is held across the read: tensors are `Send` but not `Sync`.
    let inputs = inputs().await;
    let settled = settle([&a, &b], &inputs, tolerance)?;
    let off = settled.off;
    Ok(Verdict {
        kept: settled.keep([&a, &b]),
        off,
        disagreed: true,
        gap,
    })
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
    fn weighted_mean_weights_each_part() {
        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let y = Tensor::from_slice(&[3.0f32, 6.0]);
        let m = weighted_mean(&[(1.0, x), (3.0, y)]).unwrap().unwrap();
        assert_eq!(Vec::<f32>::try_from(&m).unwrap(), vec![2.5, 5.0]);
        assert!(weighted_mean(&[]).unwrap().is_none());
    }

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn no_inputs() -> std::future::Ready<Vec<(f64, Tensor)>> {
        panic!("inputs are read only when the two reductions disagree")
    }

    #[tokio::test]
    async fn a_shard_is_taken_from_its_first_reducer_else_its_twin() {
        let a = t(&[1.0, 2.0]);
        let b = t(&[1.0, 2.0]);
        let v = verdict([Some(a.copy()), Some(b)], 1e-6, no_inputs)
            .await
            .unwrap();
        assert!(!v.disagreed && v.off == [false, false]);
        assert!(v.kept.unwrap().equal(&a));
        let v = verdict([None, Some(a.copy())], 1e-6, no_inputs)
            .await
            .unwrap();
        assert!(v.kept.unwrap().equal(&a));
        let v = verdict([Some(a.copy()), None], 1e-6, no_inputs)
            .await
            .unwrap();
        assert!(v.kept.unwrap().equal(&a));
        let v = verdict([None, None], 1e-6, no_inputs).await.unwrap();
        assert!(v.kept.is_none() && !v.disagreed);
    }

    #[tokio::test]
    async fn disagreeing_reductions_are_settled_from_the_inputs() {
        let inputs = [(1.0, t(&[1.0, 2.0])), (3.0, t(&[5.0, 6.0]))];
        let right = t(&[4.0, 5.0]);
        let wrong = &right * 0.5;
        let read = || std::future::ready(inputs.iter().map(|(w, x)| (*w, x.copy())).collect());
        // The first is off: the twin is kept and the first named.
        let v = verdict([Some(wrong.copy()), Some(right.copy())], 1e-6, read)
            .await
            .unwrap();
        assert!(v.disagreed && v.off == [true, false]);
        assert!(v.kept.unwrap().equal(&right));
        // The twin is off.
        let v = verdict([Some(right.copy()), Some(wrong.copy())], 1e-6, read)
            .await
            .unwrap();
        assert_eq!(v.off, [false, true]);
        assert!(v.kept.unwrap().equal(&right));
        // Both are off: the reader's own reduction is kept.
        let worse = &right * 2.0;
        let v = verdict([Some(wrong), Some(worse)], 1e-6, read)
            .await
            .unwrap();
        assert_eq!(v.off, [true, true]);
        assert!(v.kept.unwrap().allclose(&right, 1e-6, 1e-6, false));
    }
}
