//! Stage assignment: which miner runs which stage in an epoch.
//!
//! Every participant computes it from the same inputs (the run spec's stage count and the
//! epoch's miners, read from the chain at the roster's cutoff block), so no orchestrator is
//! needed and every validator agrees on who should have done what. The rule is sticky: a miner's
//! stage is its uid modulo the stage count, so
//!
//! - a miner keeps its stage for as long as it keeps its uid, whoever else comes or goes: a
//!   hole (a miner that left, or was never announced) shortens its own stage only, instead of
//!   shifting every later miner to another stage and its merge;
//! - a newcomer that takes a pruned uid takes the leaver's stage, the one left short;
//! - uids are handed out densely, so stages are balanced up to the holes.
//!
//! The one exception keeps the pipeline whole: while a stage would be empty and another has two
//! or more miners, the highest uid of the largest stage (the earliest such stage on a tie)
//! moves to the first empty stage.
//!
//! Within a stage, each miner's share of the samples follows its work rate ([`Rate`]): the rate
//! it declares in its announcement, measured on its own training, bounded around its stage's
//! typical (median) rate by the spec's `swarm.max_rate_ratio`, and above the typical rate only
//! once the chain has paid it (incentive at the roster's cutoff, where every validator's verified
//! work meets). A miner 8x slower than its peers so takes about an eighth of their samples and
//! never holds its stage back; one that declares more than it delivers starts no higher than a
//! typical miner, and then does less work than its share, which the validator does not pay.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::artifact::{Hotkey, Membership};

/// A pipeline stage's index, `0..stages`: which layers a miner holds, where its artifacts sit and
/// which peers it routes to and merges with. Headers carry it as 16 bits.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StageIndex(pub u16);

impl StageIndex {
    /// The first stage: it reads the training text and starts every sample.
    pub const FIRST: StageIndex = StageIndex(0);

    /// The index, for slices and the model's layer ranges.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The stage `i` of a `0..stages` range (saturating at `u16::MAX`, far past any spec's
    /// stage limit).
    pub fn at(i: usize) -> StageIndex {
        StageIndex(u16::try_from(i).unwrap_or(u16::MAX))
    }

    /// Whether this is the first stage.
    pub const fn is_first(self) -> bool {
        self.0 == 0
    }

    /// Whether this is the last of `stages`.
    pub const fn is_last(self, stages: usize) -> bool {
        self.0 as usize + 1 == stages
    }

    /// The stage after this one (toward the loss).
    #[must_use]
    pub const fn next(self) -> StageIndex {
        StageIndex(self.0.saturating_add(1))
    }

    /// The stage before this one (toward the data); the first stage has none and is its own.
    #[must_use]
    pub const fn prev(self) -> StageIndex {
        StageIndex(self.0.saturating_sub(1))
    }

    /// Every stage of a run with `stages` stages.
    pub fn all(stages: usize) -> impl Iterator<Item = StageIndex> {
        (0..stages).map(StageIndex::at)
    }
}

impl fmt::Display for StageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A miner taking part in an epoch: its uid and hotkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// Its uid on the subnet.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: Hotkey,
}

/// What the roster knows of a miner's speed, for its share of its stage's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// The work rate it declares in its announcement (`rate=`: giga parameter-tokens a second of
    /// compute, `sliver_common::sizing::work_per_sample` over its measured seconds a sample),
    /// if any.
    pub declared: Option<f64>,
    /// Whether the chain has paid it (incentive above zero at the roster's cutoff): only a miner
    /// whose work validators verified is routed more than its stage's typical miner.
    pub paid: bool,
}

impl Rate {
    /// The declared rate, when it is a positive finite number.
    fn usable(&self) -> Option<f64> {
        self.declared.filter(|x| x.is_finite() && *x > 0.0)
    }
}

/// The typical (upper median) of the usable declared `rates`; `None` when no one declared.
pub fn typical(rates: &[Rate]) -> Option<f64> {
    let mut declared: Vec<f64> = rates.iter().filter_map(Rate::usable).collect();
    declared.sort_by(f64::total_cmp);
    declared.get(declared.len() / 2).copied()
}

/// A typical miner's routing weight (a miner's weight is this times its rate over its stage's
/// median): integers, so that every participant sums and compares them alike.
pub const TYPICAL_WEIGHT: u64 = 1 << 16;

/// Each miner's routing weight in one stage, in the order of `rates` (see [`Rate`]): its
/// declared rate over the stage's median declared rate (the upper median), clamped to
/// `[1 / max_ratio, max_ratio]`, and to at most 1 while unpaid; a miner that declared no rate
/// counts as typical. All typical when no one declared.
pub fn weights(rates: &[Rate], max_ratio: f64) -> Vec<u64> {
    let Some(typical) = typical(rates) else {
        return vec![TYPICAL_WEIGHT; rates.len()];
    };
    let max_ratio = if max_ratio.is_finite() {
        max_ratio.max(1.0)
    } else {
        1.0
    };
    rates
        .iter()
        .map(|r| {
            let own = r.usable().map_or(1.0, |x| x / typical);
            let cap = if r.paid { max_ratio } else { 1.0 };
            let w = own.clamp(1.0 / max_ratio, cap) * TYPICAL_WEIGHT as f64;
            (w.round() as u64).max(1)
        })
        .collect()
}

/// The miners of every stage in one epoch, each stage ordered by uid, with each one's routing
/// weight ([`weights`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    stages: Vec<Vec<Member>>,
    /// Each stage's miners' rates, in the order of its miners.
    rates: Vec<Vec<Rate>>,
    /// Each stage's routing weights, in the order of its miners.
    weights: Vec<Vec<u64>>,
}

impl Assignment {
    /// Assigns `members` to `stages` stages, every miner routed alike.
    pub fn new(stages: usize, members: &[Member]) -> Self {
        Self::weighted(stages, members, |_| Rate::default(), 1.0)
    }

    /// Assigns `members` to `stages` stages, each miner routed by its `rate` ([`weights`],
    /// within `max_ratio` of its stage's typical miner).
    pub fn weighted(
        stages: usize,
        members: &[Member],
        rate: impl Fn(&Member) -> Rate,
        max_ratio: f64,
    ) -> Self {
        let stages = Self::stages_of(stages, members);
        let rates: Vec<Vec<Rate>> = stages
            .iter()
            .map(|ms| ms.iter().map(&rate).collect())
            .collect();
        let weights = rates.iter().map(|r| weights(r, max_ratio)).collect();
        Self {
            stages,
            rates,
            weights,
        }
    }

    /// Every stage's miners, by the sticky rule of this module's doc.
    fn stages_of(stages: usize, members: &[Member]) -> Vec<Vec<Member>> {
        let mut sorted = members.to_vec();
        sorted.sort();
        sorted.dedup_by_key(|m| m.hotkey);
        let mut out: Vec<Vec<Member>> = vec![Vec::new(); stages];
        if stages == 0 {
            return out;
        }
        for m in sorted {
            out[usize::from(m.uid) % stages].push(m);
        }
        // Fill empty stages from the largest (each stage stays sorted by uid: the moved miner
        // is the highest of its old stage and alone in its new one).
        while let Some(empty) = out.iter().position(Vec::is_empty) {
            let largest = (0..stages)
                .max_by_key(|&s| (out[s].len(), std::cmp::Reverse(s)))
                .unwrap_or(0);
            if out[largest].len() < 2 {
                break;
            }
            if let Some(m) = out[largest].pop() {
                out[empty].push(m);
            }
        }
        out
    }

    /// The miners of `stage` (empty for a stage out of range).
    pub fn stage(&self, stage: StageIndex) -> &[Member] {
        self.stages.get(stage.index()).map_or(&[], Vec::as_slice)
    }

    /// The routing weights of `stage`'s miners, in [`Assignment::stage`]'s order.
    pub fn weights(&self, stage: StageIndex) -> &[u64] {
        self.weights.get(stage.index()).map_or(&[], Vec::as_slice)
    }

    /// The rate the roster holds for `hotkey`, if it is assigned.
    pub fn rate(&self, hotkey: &Hotkey) -> Option<Rate> {
        let (stage, i) = self.position(hotkey)?;
        self.rates.get(stage.index())?.get(i).copied()
    }

    /// The typical declared rate of `stage`'s miners ([`typical`]); `None` when none declared.
    pub fn typical_rate(&self, stage: StageIndex) -> Option<f64> {
        typical(self.rates.get(stage.index())?)
    }

    /// `hotkey`'s share of its stage's samples (0 to 1), if it is assigned.
    pub fn share(&self, hotkey: &Hotkey) -> Option<f64> {
        let (stage, i) = self.position(hotkey)?;
        let weights = self.weights(stage);
        let total: u64 = weights.iter().sum();
        Some(weights.get(i).copied().unwrap_or(0) as f64 / total.max(1) as f64)
    }

    /// Number of stages.
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Every miner with its stage.
    pub fn members(&self) -> impl Iterator<Item = (StageIndex, &Member)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, ms)| ms.iter().map(move |m| (StageIndex::at(s), m)))
    }

    /// Whether every stage has at least one miner (the pipeline can run).
    pub fn is_complete(&self) -> bool {
        self.stages.iter().all(|s| !s.is_empty())
    }

    /// The position of `hotkey` within its stage, with the stage.
    pub fn position(&self, hotkey: &Hotkey) -> Option<(StageIndex, usize)> {
        self.stages.iter().enumerate().find_map(|(s, ms)| {
            ms.iter()
                .position(|m| &m.hotkey == hotkey)
                .map(|i| (StageIndex::at(s), i))
        })
    }
}

impl Membership for Assignment {
    fn stage_of(&self, hotkey: &Hotkey) -> Option<StageIndex> {
        self.position(hotkey).map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(uid: u16) -> Member {
        Member {
            uid,
            hotkey: Hotkey([uid as u8; 32]),
        }
    }

    #[test]
    fn balanced_over_dense_uids_and_every_stage_filled() {
        for n in 0..20u16 {
            let members: Vec<Member> = (0..n).map(m).collect();
            let a = Assignment::new(3, &members);
            let sizes: Vec<usize> = StageIndex::all(3).map(|s| a.stage(s).len()).collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n}: {sizes:?}");
            assert_eq!(a.is_complete(), n >= 3, "{n}: {sizes:?}");
            // Order of the input does not matter.
            let mut rev = members.clone();
            rev.reverse();
            assert_eq!(Assignment::new(3, &rev), a);
        }
    }

    /// A miner that leaves moves no one else; a newcomer on its uid takes its stage.
    #[test]
    fn a_hole_does_not_reshuffle_the_others() {
        let members: Vec<Member> = (1..=9).map(m).collect();
        let before = Assignment::new(3, &members);
        let without: Vec<Member> = members.iter().copied().filter(|x| x.uid != 4).collect();
        let after = Assignment::new(3, &without);
        for x in &without {
            assert_eq!(
                before.stage_of(&x.hotkey),
                after.stage_of(&x.hotkey),
                "uid {}",
                x.uid
            );
        }
        let newcomer = Member {
            uid: 4,
            hotkey: Hotkey([200; 32]),
        };
        let mut with = without.clone();
        with.push(newcomer);
        let again = Assignment::new(3, &with);
        assert_eq!(
            again.stage_of(&newcomer.hotkey),
            before.stage_of(&m(4).hotkey)
        );
    }

    /// Uids that all fall on one stage still fill every stage, moving only what must move.
    #[test]
    fn an_empty_stage_is_filled_from_the_largest() {
        let members: Vec<Member> = [3, 6, 9, 12, 1].into_iter().map(m).collect();
        let a = Assignment::new(3, &members);
        assert!(a.is_complete());
        // uid 1 stays on stage 1; the highest of stage 0 (12) moves to stage 2.
        assert_eq!(a.stage_of(&m(1).hotkey), Some(StageIndex(1)));
        assert_eq!(a.stage_of(&m(12).hotkey), Some(StageIndex(2)));
        assert_eq!(a.stage(StageIndex(0)).len(), 3);
        // A lone miner cannot fill three stages.
        assert!(!Assignment::new(3, &[m(5)]).is_complete());
    }

    fn rate(declared: Option<f64>, paid: bool) -> Rate {
        Rate { declared, paid }
    }

    /// Shares follow declared rates around the stage's median, within the spec's ratio, and
    /// above the median only once paid.
    #[test]
    fn weights_follow_rates_within_bounds() {
        let t = TYPICAL_WEIGHT;
        // No one declared: all alike.
        assert_eq!(weights(&[rate(None, false); 3], 8.0), vec![t; 3]);
        // A quarter-speed miner beside a paid peer: a quarter of its weight.
        assert_eq!(
            weights(&[rate(Some(4.0), true), rate(Some(1.0), true)], 8.0),
            vec![t, t / 4]
        );
        // The fast one unpaid: held at the typical weight, which the upper median is here.
        assert_eq!(
            weights(&[rate(Some(4.0), false), rate(Some(1.0), false)], 8.0),
            vec![t, t / 4]
        );
        // One miner claiming a huge rate among three: unpaid, no more than typical; paid, at
        // most `max_ratio` times it. One claiming nothing is typical; one far slower is held
        // at 1 / max_ratio.
        let rates = [
            rate(Some(1e12), false),
            rate(Some(2.0), true),
            rate(Some(2.0), true),
            rate(None, true),
            rate(Some(0.001), true),
        ];
        assert_eq!(weights(&rates, 8.0), vec![t, t, t, t, t / 8]);
        let mut paid = rates;
        paid[0].paid = true;
        assert_eq!(weights(&paid, 8.0)[0], 8 * t);
        // Garbage rates count as none declared; no weight is zero.
        let odd = [
            rate(Some(f64::NAN), true),
            rate(Some(-1.0), true),
            rate(Some(f64::INFINITY), true),
        ];
        assert_eq!(weights(&odd, 8.0), vec![t; 3]);
        assert!(
            weights(&rates, f64::NAN)
                .iter()
                .all(|&w| w == t || w == t / 8 || w >= 1)
        );
    }

    /// The assignment's shares add up to one per stage and follow the weights.
    #[test]
    fn shares_follow_weights() {
        let members: Vec<Member> = (0..4).map(m).collect();
        let a = Assignment::weighted(
            2,
            &members,
            |x| rate(Some(if x.uid == 1 { 1.0 } else { 4.0 }), true),
            8.0,
        );
        // Stage 1 holds uids 1 and 3: uid 1 at a quarter of uid 3's rate.
        assert!((a.share(&m(1).hotkey).unwrap() - 0.2).abs() < 1e-9);
        assert!((a.share(&m(3).hotkey).unwrap() - 0.8).abs() < 1e-9);
        assert!((a.share(&m(0).hotkey).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(a.share(&m(9).hotkey), None);
        assert_eq!(
            Assignment::new(2, &members).weights(StageIndex(1)),
            &[TYPICAL_WEIGHT; 2]
        );
    }
}
