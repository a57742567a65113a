//! The epoch's timeline: every block at which a miner or a validator changes what it does.
//!
//! The chain is the clock, and every deadline of an epoch is derived here from the spec's two
//! lengths (`swarm.epoch_blocks` = E, `swarm.merge_blocks` = M), so miners and validators agree
//! on the timeline by construction. Epoch `e` spans `[e·E, (e+1)·E)`; its last M blocks are the
//! merge window, and the merge and the audit spill over into the first M blocks of the next
//! epoch, while that epoch already trains:
//!
//! ```text
//! block (epoch e, next = (e+1)·E)   who        what
//! start       = e·E                 miners     training begins (roster fixed at its cutoff)
//! train_end   = next − M            miners     no new samples; in-flight ones drain; the
//!                                              roster of e+1 is fixed (its cutoff)
//! drain_end   = next − M + M/4      miners     in-flight samples are dropped; the merge
//!                                              scatters this miner's shards
//!                                   validator  picks the artifacts to recompute (challenge)
//! reduce_end  = next − M + 3M/4     miners     reducers stop waiting for peers' shards
//! next                              miners     epoch e+1 trains
//! assemble_end = next + M/4         miners     stop waiting for reductions; a miner that
//!                                              missed the merge has lost it
//! score_at    = next + M/2          validator  audits and scores e
//! answer_end  = next + M            miners     stop answering e's spot-check challenges
//!                                   validator  stops waiting for those answers
//! audit_end   = max(answer_end,     validator  abandons the audit's reads still running: half
//!               midpoint of score_at           way to the next epoch's drain_end, so what
//!               and drain_end of e+1)          follows (spot checks, evaluation) ends before
//!                                              it must challenge e+1
//! ```
//!
//! The fractions of M are the only place these proportions are written.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::SwarmSpec;

/// An epoch's number: epoch `e` is blocks `[e·E, (e+1)·E)`. It names artifacts, keys, rosters and
/// score tables; arithmetic on it is [`next`](Epoch::next) and [`prev`](Epoch::prev) only.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The epoch after this one.
    #[must_use]
    pub const fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }

    /// The epoch before this one, if any.
    pub fn prev(self) -> Option<Epoch> {
        self.0.checked_sub(1).map(Epoch)
    }

    /// Its little-endian bytes, for hashing (sample ids, routes, seeds).
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Epoch {
    fn from(n: u64) -> Self {
        Epoch(n)
    }
}

/// The block arithmetic of a run: which epoch a block falls in, and each epoch's [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    epoch_blocks: u64,
    merge_blocks: u64,
}

/// Every deadline of one epoch, as block numbers (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The epoch.
    pub epoch: Epoch,
    /// Its first block: training begins.
    pub start: u64,
    /// First block of the merge window: no new samples start; the next epoch's roster is fixed.
    pub train_end: u64,
    /// In-flight samples are dropped, the merge begins, and validators pick their challenges.
    pub drain_end: u64,
    /// Reducers stop waiting for their peers' shards.
    pub reduce_end: u64,
    /// The next epoch's first block.
    pub next: u64,
    /// Miners stop waiting for the reductions of this epoch's merge.
    pub assemble_end: u64,
    /// Validators audit and score this epoch.
    pub score_at: u64,
    /// Miners stop answering this epoch's spot-check challenges; validators stop waiting.
    pub answer_end: u64,
    /// Validators abandon the audit's reads still running (what this epoch's artifacts and
    /// merge show stays in storage until garbage collection, two epochs on): the later of
    /// `answer_end` and half way from `score_at` to the next epoch's `drain_end`, when the
    /// validator must challenge the next epoch.
    pub audit_end: u64,
}

impl Schedule {
    /// The schedule of a run's `[swarm]` section.
    pub fn new(swarm: &SwarmSpec) -> Self {
        Self {
            epoch_blocks: swarm.epoch_blocks.max(1),
            merge_blocks: swarm.merge_blocks,
        }
    }

    /// The epoch block `block` falls in.
    pub fn epoch_of(&self, block: u64) -> Epoch {
        Epoch(block / self.epoch_blocks)
    }

    /// First block of `epoch`.
    pub fn epoch_start(&self, epoch: Epoch) -> u64 {
        epoch.0.saturating_mul(self.epoch_blocks)
    }

    /// The last block at which an announcement counts for `epoch`'s roster: the first block of
    /// the previous epoch's merge window, so the roster is known before `epoch` begins and a
    /// miner that has merged can go on without idling until the boundary.
    pub fn roster_cutoff(&self, epoch: Epoch) -> u64 {
        self.epoch_start(epoch).saturating_sub(self.merge_blocks)
    }

    /// Every deadline of `epoch`.
    pub fn timeline(&self, epoch: Epoch) -> Timeline {
        let m = self.merge_blocks;
        let next = self.epoch_start(epoch.next());
        let train_end = next.saturating_sub(m);
        Timeline {
            epoch,
            start: self.epoch_start(epoch),
            train_end,
            drain_end: train_end.saturating_add(m / 4),
            reduce_end: train_end.saturating_add(m.saturating_mul(3) / 4),
            next,
            assemble_end: next.saturating_add(m / 4),
            score_at: next.saturating_add(m / 2),
            answer_end: next.saturating_add(m),
            audit_end: {
                let score_at = next.saturating_add(m / 2);
                let next_drain_end = next
                    .saturating_add(self.epoch_blocks)
                    .saturating_sub(m)
                    .saturating_add(m / 4);
                let midway = score_at + next_drain_end.saturating_sub(score_at) / 2;
                midway.max(next.saturating_add(m))
            },
        }
    }

    /// The timeline of the epoch `block` falls in.
    pub fn at(&self, block: u64) -> Timeline {
        self.timeline(self.epoch_of(block))
    }
}

impl Timeline {
    /// Whether samples may still start at `block`.
    pub fn training(&self, block: u64) -> bool {
        block < self.train_end
    }
}

impl SwarmSpec {
    /// This run's [`Schedule`].
    pub fn schedule(&self) -> Schedule {
        Schedule::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(epoch_blocks: u64, merge_blocks: u64) -> Schedule {
        Schedule::new(&SwarmSpec {
            epoch_blocks,
            merge_blocks,
            ..SwarmSpec::default()
        })
    }

    #[test]
    fn deadlines_follow_the_documented_fractions_of_the_merge_window() {
        let t = schedule(240, 40).timeline(Epoch(2));
        assert_eq!(
            t,
            Timeline {
                epoch: Epoch(2),
                start: 480,
                train_end: 680,
                drain_end: 690,
                reduce_end: 710,
                next: 720,
                assemble_end: 730,
                score_at: 740,
                answer_end: 760,
                // Half way from 740 to the next epoch's drain_end, 930.
                audit_end: 835,
            }
        );
        assert!(t.training(679) && !t.training(680));
    }

    #[test]
    fn deadlines_are_ordered_for_every_valid_window() {
        for m in 1..20 {
            let s = schedule(20, m);
            for e in [0, 1, 7].map(Epoch) {
                let t = s.timeline(e);
                let order = [
                    t.start,
                    t.train_end,
                    t.drain_end,
                    t.reduce_end,
                    t.next,
                    t.assemble_end,
                    t.score_at,
                    t.answer_end,
                    t.audit_end,
                ];
                assert!(order.windows(2).all(|w| w[0] <= w[1]), "m={m}: {t:?}");
                assert!(t.start < t.train_end, "m={m}: no training in {t:?}");
                // Scoring happens after the merge ends and before the answers stop; the audit
                // ends before the next epoch's challenge is due (and inside the next epoch).
                assert!(t.assemble_end <= t.score_at && t.score_at <= t.answer_end);
                let next = s.timeline(e.next());
                if t.answer_end <= next.drain_end {
                    assert!(t.audit_end <= next.drain_end, "m={m}: {t:?} {next:?}");
                }
                assert!(t.audit_end < next.next, "m={m}: {t:?}");
                assert_eq!(s.epoch_of(t.start), e);
                assert_eq!(s.epoch_of(t.next - 1), e);
            }
        }
    }

    #[test]
    fn the_roster_of_an_epoch_is_fixed_when_the_previous_merge_window_opens() {
        let s = schedule(240, 40);
        assert_eq!(s.roster_cutoff(Epoch(3)), s.timeline(Epoch(2)).train_end);
        assert_eq!(s.roster_cutoff(Epoch(0)), 0);
        assert_eq!(s.at(719), s.timeline(Epoch(2)));
    }

    #[test]
    fn far_epochs_saturate_instead_of_overflowing() {
        let t = schedule(240, 40).timeline(Epoch(u64::MAX / 2));
        assert_eq!(t.answer_end, u64::MAX);
    }
}
