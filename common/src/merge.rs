//! The merge: miners of a stage average their weights through storage (butterfly all-reduce).
//!
//! A stage's weights, flattened in parameter-name order, are cut into one contiguous shard per
//! miner. Shard `i` is reduced by two miners, `i` and `i + 1` (mod n): each downloads every
//! peer's copy of the shard, keeps those [`admit`] accepts, averages them ([`mean`]), and
//! uploads the result. Everyone then assembles the merged stage from the reduced shards, taking
//! shard `i` from its first reducer when present and its twin otherwise, so that all miners of
//! a stage, reading the same objects, end with bit-identical weights. The twin's copy checks the
//! first's: both averaged the same inputs in the same order, so they agree exactly unless one of
//! them lied or saw a late peer.
//!
//! **Each copy is bounded.** A copy counts only when it is finite and no weight lies further
//! from the weights the stage began the epoch with (the previous merge, which every honest
//! miner of the stage holds) than an honest epoch of AdamW steps can move it ([`DriftBound`], sized
//! as the spot checks size claimed weights' drift, over [`max_epoch_steps`]). A copy near the
//! float limit, or any weights no training reaches, is skipped and its producer named; the
//! reduction averages what is left. [`admit`] is that rule, and every reader (reducers, a
//! reader settling two reductions, a joiner, the validator) applies it, also to the reduction
//! it finally keeps, so that readers holding the same start accept and refuse the same parts.
//!
//! **Every accepted copy weighs the same.** Weighting copies by work would need a measure of
//! work no peer can forge and every reader sees alike. The count of a peer's artifacts listed
//! in its own store is neither: a peer inflates it by putting more keys, and two readers listing
//! at different moments see different counts. The work a validator verified is not forgeable but
//! costs a miner every peer's artifacts to verify, and no two readers verify at the same moment.
//! A plain mean uses only what every reader reads alike, the accepted copies of the epoch's
//! roster, so one copy moves the mean by at most its bound over the number of copies, and a
//! cheater's only way to weigh more is to register more hotkeys (each paid for and each a miner
//! the validator must pay for work). A miner that did little work drags its copy's weights
//! towards the epoch's start; that costs a little progress, never the model.
//!
//! This module is the arithmetic and the decision of what to keep of each shard ([`admit`],
//! [`verdict`]); `sliver_subnet`'s merge reader moves the bytes for the miners, joiners and
//! validators alike. The flat layout of a stage's weights is [`crate::flat`].

use tch::{Kind, TchError, Tensor};

use crate::spec::RunSpec;

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

/// The plain mean of `parts` (all the same length), summed in f64 in the given order, so that
/// two readers averaging the same parts in the same order get the same bits. Returns `None`
/// when there is nothing to average.
///
/// # Errors
/// When libtorch fails (lengths differ).
pub fn mean(parts: &[Tensor]) -> Result<Option<Tensor>, TchError> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let mut acc = first.f_zeros_like()?.f_to_kind(Kind::Double)?;
    for t in parts {
        acc = acc.f_add(&t.f_to_kind(Kind::Double)?)?;
    }
    Ok(Some(
        acc.f_div_scalar(parts.len() as f64)?
            .f_to_kind(Kind::Float)?,
    ))
}

/// The most optimizer steps one honest miner can take in one epoch, as far as the spec bounds
/// it: what sizes [`DriftBound`].
///
/// The spec sets no miner's speed, so the bound is the schedule's own unit, the block: a
/// miner's epoch (from the end of the previous merge's scatter to its own, `swarm.epoch_blocks`
/// blocks) sees at most one round of `swarm.window · swarm.rounds` samples per block from each
/// of the epoch's `origins` stage-0 miners (all of them may be routed to one miner of a later
/// stage), and steps once per `optimizer.accumulate` of them (rounded up: the epoch's last,
/// partial step). The assumption is that no sample goes round the pipeline within one block;
/// on the local subnet (250 ms blocks) a round takes several.
pub fn max_epoch_steps(spec: &RunSpec, origins: usize) -> u64 {
    crate::routing::max_samples_per_origin(spec)
        .saturating_mul(origins.max(1) as u64)
        .div_ceil(spec.optimizer.accumulate.max(1) as u64)
}

/// How far any one weight of an honest miner's copy of a shard can lie from the weights the
/// stage began the epoch with, as the spot checks bound claimed weights
/// (`validation.weight_drift_margin` times what AdamW moves a weight in the steps allowed,
/// [`OptimizerSpec::max_step_change`](crate::spec::OptimizerSpec::max_step_change) a step), over
/// the [`max_epoch_steps`] of an epoch.
#[derive(Debug, Clone, Copy)]
pub struct DriftBound {
    /// Steps in an epoch ([`max_epoch_steps`]).
    pub steps: u64,
    /// `validation.weight_drift_margin`.
    pub margin: f64,
    /// Most one step moves a weight of magnitude 0 (Adam's update alone).
    adam: f64,
    /// What a step adds per unit of a weight's magnitude (the decoupled decay).
    decay: f64,
}

impl DriftBound {
    /// The reach of an epoch of `spec` whose roster has `origins` stage-0 miners.
    pub fn new(spec: &RunSpec, origins: usize) -> Self {
        let o = &spec.optimizer;
        let adam = o.max_step_change(0.0);
        Self {
            steps: max_epoch_steps(spec, origins),
            margin: spec.validation.weight_drift_margin,
            adam,
            decay: o.max_step_change(1.0) - adam,
        }
    }

    /// The most a weight may move from a start whose largest magnitude is `start_max`. A
    /// weight's magnitude grows by at most one Adam update a step (the decay only shrinks it),
    /// so it stays under `start_max + steps · adam`, and each step moves it at most
    /// `adam + decay · that`.
    pub fn allowed(&self, start_max: f64) -> f64 {
        let steps = self.steps as f64;
        let w_max = start_max.abs() + steps * self.adam;
        (self.adam + self.decay * w_max) * steps * self.margin
    }
}

/// Why a copy (or a reduction) of a shard was refused by [`admit`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Its length is not the shard's.
    #[error("it holds {got} values, the shard {expected}")]
    Length {
        /// The shard's length.
        expected: i64,
        /// Values given.
        got: i64,
    },
    /// A value is NaN or infinite.
    #[error("it holds non-finite values")]
    NonFinite,
    /// A value lies further from the epoch's start (or, without one, from the copies' median)
    /// than an honest epoch moves one.
    #[error("a value moved {moved:e} from the {from}, more than the {allowed:e} an epoch allows")]
    Drift {
        /// The largest move.
        moved: f64,
        /// The most allowed.
        allowed: f64,
        /// What it was measured from: "epoch's start" or "copies' median".
        from: &'static str,
    },
}

/// What [`admit`] kept and refused, each with the caller's key (a position in the stage).
#[derive(Debug)]
pub struct Admitted<K> {
    /// The parts accepted, in the order given.
    pub accepted: Vec<(K, Tensor)>,
    /// The parts refused and why.
    pub refused: Vec<(K, Refusal)>,
}

/// The one rule for what of a shard a reader of a merge uses: every peer's copy a reducer
/// averages, every copy a reader settling two reductions averages, and the reduction a reader
/// finally keeps all pass through here, so miners, joiners and validators holding the same
/// start accept and refuse the same parts.
///
/// A part is accepted when it is finite, has the shard's length, and no value lies further
/// than `reach` allows ([`DriftBound::allowed`]) from the same values of `start`: the shard of the
/// weights every honest miner of the stage began the epoch with (the previous merge). An
/// honest miner's copy never moves further (its steps are bounded by [`max_epoch_steps`]), nor
/// does the mean of such copies, so an honest reduction passes too.
///
/// **Without a start** (a joiner reading an epoch whose start it never held, a validator in its
/// first epoch or one that does not pass its start) the centre is the values' median over the
/// finite parts when there are at least three of them: with an honest majority each median lies
/// between honest values, so honest parts lie within twice an honest epoch's move of it (inside
/// the margin of 2 the spot checks use too) while a copy near the float limit lies beyond.
/// With fewer than three (a single reduction, a stage of two) there is no majority to trust, and
/// only finiteness is checked: the reader then keeps a reduction some reducer signed, or the
/// mean of the finite copies. That is safe enough because it is rare and local: a joiner meets
/// it only in the one epoch it loads, only for a shard whose two reductions disagreed in a stage
/// of at most two copies, and from its first merge on it holds a start and is bounded again; a
/// validator only scores with it (its audit flags a reducer, never trains on the weights).
///
/// With `reach` `None` (a reader not told the spec) only length and finiteness are checked.
///
/// # Errors
/// When libtorch fails.
pub fn admit<K>(
    parts: Vec<(K, Tensor)>,
    start: Option<&Tensor>,
    reach: Option<&DriftBound>,
) -> Result<Admitted<K>, TchError> {
    let mut accepted = Vec::with_capacity(parts.len());
    let mut refused = Vec::new();
    for (k, t) in parts {
        let expected = start.map_or(t.numel() as i64, |s| s.numel() as i64);
        let got = t.numel() as i64;
        if got != expected {
            refused.push((k, Refusal::Length { expected, got }));
        } else if !bool::try_from(t.f_isfinite()?.f_all()?)? {
            refused.push((k, Refusal::NonFinite));
        } else {
            accepted.push((k, t));
        }
    }
    let Some(reach) = reach else {
        return Ok(Admitted { accepted, refused });
    };
    let (centre, from) = match start {
        Some(s) => (s.f_to_kind(Kind::Double)?, "epoch's start"),
        None if accepted.len() >= 3 => {
            let all: Vec<Tensor> = accepted.iter().map(|(_, t)| t.shallow_clone()).collect();
            let (median, _) = Tensor::f_stack(&all, 0)?.f_median_dim(0, false)?;
            (median.f_to_kind(Kind::Double)?, "copies' median")
        }
        None => return Ok(Admitted { accepted, refused }),
    };
    let allowed = reach.allowed(centre.f_abs()?.f_max()?.double_value(&[]));
    let mut kept = Vec::with_capacity(accepted.len());
    for (k, t) in accepted {
        let moved = t
            .f_to_kind(Kind::Double)?
            .f_sub(&centre)?
            .f_abs()?
            .f_max()?
            .double_value(&[]);
        // `!(moved <= allowed)` refuses NaN too.
        if moved <= allowed {
            kept.push((k, t));
        } else {
            refused.push((
                k,
                Refusal::Drift {
                    moved,
                    allowed,
                    from,
                },
            ));
        }
    }
    Ok(Admitted {
        accepted: kept,
        refused,
    })
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
/// members' accepted copies (`inputs`, averaged by [`mean`]).
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
pub fn settle(pair: [&Tensor; 2], inputs: &[Tensor], tolerance: f64) -> Result<Settled, TchError> {
    let reduced = mean(inputs)?;
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
/// `inputs` reads (those [`admit`] accepted, averaged by [`mean`]), and whichever reduction
/// matches is kept.
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
    F: std::future::Future<Output = Vec<Tensor>>,
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
            Tensor::from_slice(&[1.0f32, 2.0]),
            Tensor::from_slice(&[7.0f32, 8.0]),
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
    fn the_mean_weighs_every_part_alike() {
        let x = Tensor::from_slice(&[1.0f32, 2.0]);
        let y = Tensor::from_slice(&[3.0f32, 6.0]);
        let m = mean(&[x, y]).unwrap().unwrap();
        assert_eq!(Vec::<f32>::try_from(&m).unwrap(), vec![2.0, 4.0]);
        assert!(mean(&[]).unwrap().is_none());
    }

    fn spec() -> RunSpec {
        crate::testing::tiny_spec(&[[0, 1], [1, 2]], 8, crate::CodecKind::Fp32, false)
    }

    #[test]
    fn an_epoch_reaches_as_far_as_its_steps_allow() {
        let spec = spec();
        let s = &spec.swarm;
        let per_origin = s.epoch_blocks * (s.window * s.rounds) as u64;
        let steps = max_epoch_steps(&spec, 1);
        assert_eq!(steps, per_origin.div_ceil(spec.optimizer.accumulate as u64));
        assert!(max_epoch_steps(&spec, 3) >= 3 * steps - 2);
        let reach = DriftBound::new(&spec, 1);
        // At least what the spot checks allow over as many steps, from the largest weight.
        let floor = spec.optimizer.max_step_change(0.5) * steps as f64 * reach.margin;
        assert!(reach.allowed(0.5) >= floor);
        assert!(reach.allowed(0.5) < f64::from(f32::MAX) / 1e30);
    }

    #[test]
    fn copies_out_of_reach_of_the_start_are_refused_and_named() {
        let spec = spec();
        let reach = DriftBound::new(&spec, 1);
        let start = t(&[0.5, -0.25, 0.0, 1.0]);
        let step = reach.allowed(1.0) as f32 / 2.0;
        let honest = &start + f64::from(step);
        let extreme = t(&[
            f32::MAX / 4.0,
            -f32::MAX / 4.0,
            f32::MAX / 4.0,
            -f32::MAX / 4.0,
        ]);
        let beyond = &start + f64::from(reach.allowed(1.0) as f32 * 1.5);
        let nan = t(&[f32::NAN, 0.0, 0.0, 0.0]);
        let short = t(&[0.5, 0.5]);
        let parts = vec![
            (0, honest.copy()),
            (1, extreme),
            (2, start.copy()),
            (3, beyond),
            (4, nan),
            (5, short),
        ];
        let a = admit(parts, Some(&start), Some(&reach)).unwrap();
        let kept: Vec<usize> = a.accepted.iter().map(|(k, _)| *k).collect();
        assert_eq!(kept, [0, 2]);
        let refused: Vec<usize> = a.refused.iter().map(|(k, _)| *k).collect();
        assert_eq!(refused, [4, 5, 1, 3]);
        assert!(matches!(a.refused[2].1, Refusal::Drift { .. }));
        assert_eq!(a.refused[0].1, Refusal::NonFinite);
        // The mean of the accepted copies is itself accepted.
        let m = mean(&[honest, start.copy()]).unwrap().unwrap();
        let again = admit(vec![((), m)], Some(&start), Some(&reach)).unwrap();
        assert_eq!((again.accepted.len(), again.refused.len()), (1, 0));
    }

    #[test]
    fn without_a_start_the_median_of_three_is_the_centre() {
        let spec = spec();
        let reach = DriftBound::new(&spec, 1);
        let honest = [t(&[0.5, 0.1]), t(&[0.51, 0.09]), t(&[0.49, 0.11])];
        let extreme = t(&[f32::MAX / 4.0, -f32::MAX / 4.0]);
        let mut parts: Vec<(usize, Tensor)> = honest
            .iter()
            .enumerate()
            .map(|(k, x)| (k, x.copy()))
            .collect();
        parts.push((3, extreme.copy()));
        let a = admit(parts, None, Some(&reach)).unwrap();
        assert_eq!(a.accepted.len(), 3);
        assert_eq!(a.refused.len(), 1);
        assert_eq!(a.refused[0].0, 3);
        // Two parts: no majority, only finiteness.
        let a = admit(
            vec![(0, honest[0].copy()), (1, extreme)],
            None,
            Some(&reach),
        )
        .unwrap();
        assert_eq!(a.accepted.len(), 2);
    }

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn no_inputs() -> std::future::Ready<Vec<Tensor>> {
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
        let inputs = [t(&[1.0, 2.0]), t(&[7.0, 8.0])];
        let right = t(&[4.0, 5.0]);
        let wrong = &right * 0.5;
        let read = || std::future::ready(inputs.iter().map(Tensor::copy).collect());
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
