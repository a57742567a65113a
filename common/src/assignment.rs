//! Stage assignment: which miner runs which stage in an epoch.
//!
//! Every participant computes it from the same inputs (the run spec's stage count and the
//! epoch's miners, read from the chain), so no orchestrator is needed and every validator agrees
//! on who should have done what. The rule is greedy in uid order: each miner joins the stage
//! with the fewest miners so far, ties going to the earlier stage. That gives
//!
//! - balance: stage sizes differ by at most one;
//! - stability: the same miners give the same assignment, epoch after epoch;
//! - newcomers where they are needed: a new uid is placed on a stage that is short.
//!
//! A miner that leaves shifts the miners after it in uid order; they rejoin their new stage from
//! its latest merged checkpoint, as any newcomer does.

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
        let mut out = vec![Vec::new(); stages];
        for m in sorted {
            // The first of the shortest stages.
            if let Some(stage) = out.iter_mut().min_by_key(|s| s.len()) {
                stage.push(m);
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
    fn balanced_stable_and_newcomers_fill_short_stages() {
        for n in 0..20u16 {
            let members: Vec<Member> = (0..n).map(m).collect();
            let a = Assignment::new(3, &members);
            let sizes: Vec<usize> = StageIndex::all(3).map(|s| a.stage(s).len()).collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n}: {sizes:?}");
            // Order of the input does not matter.
            let mut rev = members.clone();
            rev.reverse();
            assert_eq!(Assignment::new(3, &rev), a);
            // A newcomer leaves everyone else where they were and joins a short stage.
            let mut more = members.clone();
            more.push(m(n));
            let b = Assignment::new(3, &more);
            for x in &members {
                assert_eq!(a.stage_of(&x.hotkey), b.stage_of(&x.hotkey));
            }
            let joined = b.stage_of(&m(n).hotkey).unwrap();
            assert_eq!(a.stage(joined).len(), *lo);
        }
    }
}
