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

/// The miners of every stage in one epoch, each stage ordered by uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    stages: Vec<Vec<Member>>,
}

impl Assignment {
    /// Assigns `members` to `stages` stages.
    pub fn new(stages: usize, members: &[Member]) -> Self {
        let mut sorted = members.to_vec();
        sorted.sort();
        sorted.dedup_by_key(|m| m.hotkey);
        let mut out: Vec<Vec<Member>> = vec![Vec::new(); stages];
        if stages == 0 {
            return Self { stages: out };
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
        Self { stages: out }
    }

    /// The miners of `stage` (empty for a stage out of range).
    pub fn stage(&self, stage: StageIndex) -> &[Member] {
        self.stages.get(stage.index()).map_or(&[], Vec::as_slice)
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
}
