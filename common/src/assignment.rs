//! Stage assignment: which miner runs which stage in an epoch, and its share of the stage's
//! samples.
//!
//! Every participant computes it from the same inputs (the run spec, and the epoch's miners with
//! what each announced, read from the chain at the roster's cutoff block), so no orchestrator is
//! needed and every validator agrees on who should have done what. The rule is sticky:
//!
//! - a miner that announced the stage it trains (`stage=`, with its work rate, once it has
//!   trained) keeps it, whoever else comes or goes: a hole (a miner that left, or was never
//!   announced) shortens its own stage only, instead of shifting other miners to another stage
//!   and its merge;
//! - a newcomer (no stage announced yet, or one the spec does not have) goes where throughput is
//!   short: to the stage whose work a sample, over the sum of its miners' rates, is the largest
//!   (the pipeline's bottleneck), counting itself and every miner without a rate as typical.
//!   Before anyone has a rate, newcomers go by uid modulo the stage count, which uids handed out
//!   densely keep balanced.
//!
//! The one exception keeps the pipeline whole: while a stage would be empty and another has two
//! or more miners, the highest uid of the largest stage (the earliest such stage on a tie)
//! moves to the first empty stage (and announces its new stage with its next rate).
//!
//! Within a stage, each miner's share of the samples follows its work rate ([`Declared`]): the
//! rate it declares in its announcement, measured on its own training, bounded around its
//! stage's typical (median) rate by the spec's `swarm.max_rate_ratio`, and above the typical rate
//! only once the chain has paid it (incentive at the roster's cutoff, where every validator's
//! verified work meets). A miner 8x slower than its peers so takes about an eighth of their
//! samples and never holds its stage back; one that declares more than it delivers starts no
//! higher than a typical miner, and then does less work than its share, which the validator does
//! not pay.

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

/// What the roster knows of a miner besides its uid: what it declared in its announcement, and
/// whether the chain has paid it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Declared {
    /// The work rate it declares (`rate=`: giga parameter-tokens a second of compute,
    /// `sliver_common::sizing::work_per_sample` over its measured seconds a sample), if any.
    pub rate: Option<f64>,
    /// The stage it declares it trains (`stage=`, announced with its rate), if any.
    pub stage: Option<StageIndex>,
    /// Whether the chain has paid it (incentive above zero at the roster's cutoff): only a miner
    /// whose work validators verified is routed more than its stage's typical miner.
    pub paid: bool,
}

impl Declared {
    /// The declared rate, when it is a positive finite number.
    fn usable(&self) -> Option<f64> {
        self.rate.filter(|x| x.is_finite() && *x > 0.0)
    }
}

/// The typical (upper median) of the usable declared rates of `miners`; `None` when no one
/// declared one.
pub fn typical(miners: &[Declared]) -> Option<f64> {
    let mut rates: Vec<f64> = miners.iter().filter_map(Declared::usable).collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied()
}

/// A typical miner's routing weight (a miner's weight is this times its rate over its stage's
/// median): integers, so that every participant sums and compares them alike.
pub const TYPICAL_WEIGHT: u64 = 1 << 16;

/// Each miner's routing weight in one stage, in the order of `miners` (see [`Declared`]): its
/// declared rate over the stage's median declared rate (the upper median), clamped to
/// `[1 / max_ratio, max_ratio]`, and to at most 1 while unpaid; a miner that declared no rate
/// counts as typical. All typical when no one declared.
pub fn weights(miners: &[Declared], max_ratio: f64) -> Vec<u64> {
    let Some(typical) = typical(miners) else {
        return vec![TYPICAL_WEIGHT; miners.len()];
    };
    let max_ratio = if max_ratio.is_finite() {
        max_ratio.max(1.0)
    } else {
        1.0
    };
    miners
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
    /// What each stage's miners declared, in the order of its miners.
    declared: Vec<Vec<Declared>>,
    /// Each stage's routing weights, in the order of its miners.
    weights: Vec<Vec<u64>>,
}

impl Assignment {
    /// Assigns `members` to `stages` stages by uid, every miner routed alike (nothing declared).
    pub fn new(stages: usize, members: &[Member]) -> Self {
        Self::declared(&vec![1.0; stages], members, |_| Declared::default(), 1.0)
    }

    /// Assigns `members` to the stages whose work a sample is `work` (one entry a stage,
    /// [`crate::sizing::work_per_sample`]) by what each `declared` (see the module's doc), and
    /// routes each by its rate ([`weights`], within `max_ratio` of its stage's typical miner).
    pub fn declared(
        work: &[f64],
        members: &[Member],
        declared: impl Fn(&Member) -> Declared,
        max_ratio: f64,
    ) -> Self {
        let stages = Self::stages_of(work, members, &declared);
        let declared: Vec<Vec<Declared>> = stages
            .iter()
            .map(|ms| ms.iter().map(&declared).collect())
            .collect();
        let weights = declared.iter().map(|d| weights(d, max_ratio)).collect();
        Self {
            stages,
            declared,
            weights,
        }
    }

    /// Every stage's miners, by the sticky rule of this module's doc.
    fn stages_of(
        work: &[f64],
        members: &[Member],
        declared: &impl Fn(&Member) -> Declared,
    ) -> Vec<Vec<Member>> {
        let stages = work.len();
        let mut sorted = members.to_vec();
        sorted.sort();
        sorted.dedup_by_key(|m| m.hotkey);
        let mut out: Vec<Vec<Member>> = vec![Vec::new(); stages];
        if stages == 0 {
            return out;
        }
        let all: Vec<Declared> = sorted.iter().map(declared).collect();
        let typical_rate = typical(&all);
        let mut newcomers = Vec::new();
        for (m, d) in sorted.into_iter().zip(&all) {
            match d.stage.filter(|s| s.index() < stages) {
                Some(s) => out[s.index()].push(m),
                None => newcomers.push((m, d.usable())),
            }
        }
        match typical_rate {
            // No rates yet: by uid.
            None => {
                for (m, _) in newcomers {
                    out[usize::from(m.uid) % stages].push(m);
                }
            }
            // To the stage with the most work a sample for its miners' total rate.
            Some(typical_rate) => {
                let rate_of = |m: &Member| declared(m).usable().unwrap_or(typical_rate);
                let mut total: Vec<f64> =
                    out.iter().map(|ms| ms.iter().map(rate_of).sum()).collect();
                for (m, rate) in newcomers {
                    let time = |s: usize| {
                        let w = work.get(s).copied().filter(|w| w.is_finite() && *w > 0.0);
                        w.unwrap_or(1.0) / total[s].max(f64::MIN_POSITIVE)
                    };
                    let short = (0..stages)
                        .max_by(|&a, &b| time(a).total_cmp(&time(b)).then(b.cmp(&a)))
                        .unwrap_or(0);
                    total[short] += rate.unwrap_or(typical_rate);
                    out[short].push(m);
                }
            }
        }
        for ms in &mut out {
            ms.sort();
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

    /// What the roster holds `hotkey` declared, if it is assigned.
    pub fn declared_by(&self, hotkey: &Hotkey) -> Option<Declared> {
        let (stage, i) = self.position(hotkey)?;
        self.declared.get(stage.index())?.get(i).copied()
    }

    /// The typical declared rate of `stage`'s miners ([`typical`]); `None` when none declared.
    pub fn typical_rate(&self, stage: StageIndex) -> Option<f64> {
        typical(self.declared.get(stage.index())?)
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

    fn rate(rate: Option<f64>, paid: bool) -> Declared {
        Declared {
            rate,
            stage: None,
            paid,
        }
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
        let a = Assignment::declared(
            &[1.0, 1.0],
            &members,
            |x| Declared {
                stage: Some(StageIndex(x.uid % 2)),
                ..rate(Some(if x.uid == 1 { 1.0 } else { 4.0 }), true)
            },
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

    /// Miners keep the stage they announced; newcomers go where a sample takes longest for the
    /// stage's total rate; before anyone has a rate, by uid.
    #[test]
    fn newcomers_go_where_throughput_is_short() {
        let on = |stage: u16, r: f64| Declared {
            rate: Some(r),
            stage: Some(StageIndex(stage)),
            paid: true,
        };
        // Stage 0: uids 1 and 2, fast; stage 1: uid 3, slow; stage 2: uid 4, typical. Stage 1's
        // work a sample is twice the others'.
        let standing = |m: &Member| match m.uid {
            1 | 2 => on(0, 4.0),
            3 => on(1, 1.0),
            4 => on(2, 2.0),
            // uid 9 announced a stage the spec does not have: a newcomer.
            9 => on(7, 2.0),
            _ => Declared::default(),
        };
        let work = [1.0, 2.0, 1.0];
        let members: Vec<Member> = [1, 2, 3, 4, 5, 6, 9].into_iter().map(m).collect();
        let a = Assignment::declared(&work, &members, standing, 8.0);
        let stage_of = |uid| a.stage_of(&m(uid).hotkey).unwrap().0;
        // Incumbents stay, whatever their uid says.
        assert_eq!(
            (stage_of(1), stage_of(2), stage_of(3), stage_of(4)),
            (0, 0, 1, 2)
        );
        // Times a sample (work over total rate): stage 0 1/8, stage 1 2/1, stage 2 1/2. The
        // typical rate is 2 (the upper median of 1, 2, 2, 4, 4). uid 5 goes to stage 1 (then
        // 2/3), uid 6 too (then 2/5), uid 9 to stage 2 (1/2 is now the longest).
        assert_eq!((stage_of(5), stage_of(6), stage_of(9)), (1, 1, 2));
        // Each stage stays ordered by uid.
        assert_eq!(
            a.stage(StageIndex(1))
                .iter()
                .map(|x| x.uid)
                .collect::<Vec<_>>(),
            vec![3, 5, 6]
        );
        // Nobody has a rate yet: by uid, as before.
        let fresh = Assignment::declared(&work, &members, |_| Declared::default(), 8.0);
        assert_eq!(fresh, Assignment::new(3, &members));
        assert_eq!(fresh.stage_of(&m(4).hotkey), Some(StageIndex(1)));
    }
}
