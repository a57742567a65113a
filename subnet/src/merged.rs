//! Reading a stage's merge from storage: the one place miners, joiners and validators assemble
//! a stage from its reduced shards.
//!
//! Shard `i` of a stage of `n` miners is reduced by two of them, its first reducer and its twin
//! ([`reducers`]). A reader takes each shard from the first reducer's reduction, else the
//! twin's; when it has read both and they disagree, it reduces the shard itself from every
//! member's copy and keeps whichever matches ([`verdict`], the rule itself). Every reader of the
//! same objects so ends with the same weights, and a reducer that lied is named.

use sliver_common::artifact::{Hotkey, Kind};
use sliver_common::assignment::Member;
use sliver_common::merge::{Verdict, reducers, shard_range, verdict};
use sliver_common::metrics::Metrics;
use tch::{TchError, Tensor};

use crate::fetch;
use crate::run::Roster;

/// The merge of one stage in one epoch, as read from its miners' stores.
pub struct StageMerge<'a> {
    run: &'a str,
    roster: &'a Roster,
    metrics: &'a Metrics,
    epoch: u64,
    stage: usize,
    /// The stage's parameter count (the flat length of its weights).
    total: i64,
}

impl<'a> StageMerge<'a> {
    /// The merge of `stage` in `epoch`; `total` is the stage's parameter count.
    pub fn new(
        run: &'a str,
        roster: &'a Roster,
        metrics: &'a Metrics,
        (epoch, stage): (u64, usize),
        total: i64,
    ) -> Self {
        Self {
            run,
            roster,
            metrics,
            epoch,
            stage,
            total,
        }
    }

    /// The stage.
    pub fn stage(&self) -> usize {
        self.stage
    }

    /// The roster the merge is read against.
    pub fn roster(&self) -> &'a Roster {
        self.roster
    }

    /// The stage's miners, in the order shards are numbered.
    pub fn miners(&self) -> &'a [Member] {
        self.roster.assignment.stage(self.stage)
    }

    /// How many shards the stage is cut into: one per miner.
    pub fn count(&self) -> usize {
        self.miners().len()
    }

    /// `(start, len)` of shard `i` in the flat weights.
    pub fn range(&self, i: usize) -> (i64, i64) {
        shard_range(self.total, self.count(), i)
    }

    /// Positions (in [`Self::miners`]) of shard `i`'s first reducer and its twin; the twin is
    /// `None` when it is the same miner (a stage of one).
    pub fn reducers(&self, i: usize) -> [Option<usize>; 2] {
        let [a, b] = reducers(i, self.count());
        [Some(a), (a != b).then_some(b)]
    }

    /// The miner at `pos`'s copy (`Kind::Shard`) or reduction (`Kind::Merged`) of shard `i`;
    /// `None` when absent or rejected.
    pub async fn read(&self, kind: Kind, pos: usize, i: usize) -> Option<Tensor> {
        let producer = self.miners().get(pos)?.hotkey;
        let (_, len) = self.range(i);
        fetch::shard(
            self.run,
            self.roster,
            self.metrics,
            (self.epoch, self.stage),
            &producer,
            kind,
            (i, self.count(), len),
        )
        .await
    }

    /// Every member's copy of shard `i` that can be read, weighted by `weight` of its hotkey.
    pub async fn copies(
        &self,
        i: usize,
        weight: &(dyn Fn(&Hotkey) -> f64 + Sync),
    ) -> Vec<(f64, Tensor)> {
        let mut out = Vec::with_capacity(self.count());
        for (pos, m) in self.miners().iter().enumerate() {
            if let Some(t) = self.read(Kind::Shard, pos, i).await {
                out.push((weight(&m.hotkey), t));
            }
        }
        out
    }

    /// What to keep of shard `i` given the reductions read from its first reducer and its twin:
    /// settled against the members' copies (weighted by `weight`) when they disagree beyond
    /// `tolerance`.
    ///
    /// # Errors
    /// When libtorch fails.
    pub async fn verdict(
        &self,
        i: usize,
        pair: [Option<Tensor>; 2],
        tolerance: f64,
        weight: &(dyn Fn(&Hotkey) -> f64 + Sync),
    ) -> Result<Verdict, TchError> {
        verdict(pair, tolerance, || self.copies(i, weight)).await
    }

    /// The merged weights (flat), read as a joining miner reads them: both reductions of every
    /// shard, settled by [`Self::verdict`]; `None` if a shard has no reduction at all.
    ///
    /// # Errors
    /// When libtorch fails.
    pub async fn assemble(
        &self,
        tolerance: f64,
        weight: &(dyn Fn(&Hotkey) -> f64 + Sync),
    ) -> Result<Option<Tensor>, TchError> {
        let n = self.count();
        if n == 0 {
            return Ok(None);
        }
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let [first, twin] = self.reducers(i);
            let mut pair = [None, None];
            for (slot, pos) in [first, twin].into_iter().enumerate() {
                if let Some(pos) = pos {
                    pair[slot] = self.read(Kind::Merged, pos, i).await;
                }
            }
            match self.verdict(i, pair, tolerance, weight).await?.kept {
                Some(t) => pieces.push(t),
                None => return Ok(None),
            }
        }
        Ok(Some(Tensor::f_cat(&pieces, 0)?))
    }
}
