//! The miner's side of the merge: moving shards through storage at the end of each epoch, in
//! three phases.
//!
//! 1. **Scatter**: upload this miner's copy of every shard of its stage.
//! 2. **Reduce**: for each shard it reduces, wait for the peers' copies until the schedule's
//!    reduce deadline, average them weighted by each peer's work (its artifacts of the epoch in
//!    storage), and upload the result.
//! 3. **Assemble**: read every shard's reductions until the assemble deadline and keep what the
//!    merge reader decides ([`StageMerge::verdict`]: the first reducer's, else the twin's,
//!    settled from the copies when the two disagree); a shard nobody reduced keeps this miner's
//!    own values.
//!
//! A peer that is late or gone is left out after the deadline. The arithmetic (shard ranges,
//! reducers, weighted mean, twin gap) is [`sliver_common::merge`]; the reading rule is
//! [`sliver_subnet::merged`], shared with joining miners and validators.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sliver_common::Stage;
use sliver_common::artifact::{ArtifactId, Kind, shard_id};
use sliver_common::flat::{flatten, load_flat};
use sliver_common::merge::{reduced_by, weighted_mean};
use sliver_common::schedule::Timeline;
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::fetch;
use sliver_subnet::merged::{StageMerge, Weighting};
use sliver_subnet::run::Roster;
use tch::Tensor;
use tracing::{info, warn};

use crate::adversary::Conduct;
use crate::held::Held;
use crate::node::Node;
use crate::outbox::{Claims, Outbox};

/// One epoch's merge of one stage, as this miner runs it.
struct Merge<'a> {
    node: &'a Node,
    reader: StageMerge<'a>,
    timeline: Timeline,
    /// This miner's position in its stage.
    pos: usize,
    /// This miner's weights at the end of the epoch, flat.
    flat: Tensor,
    outbox: Outbox,
    /// Pause between looks for what peers have not put yet.
    poll: Duration,
    /// Compute time spent.
    busy: Duration,
}

/// Runs the merge of epoch `epoch` for the stage `h` holds; returns the compute time it took.
///
/// # Errors
/// A libtorch failure or merged weights that do not fit the stage.
pub(crate) fn run(
    node: &Node,
    h: &mut Held,
    conduct: &Conduct,
    (epoch, roster): (Epoch, &Roster),
    poll: Duration,
) -> Result<Duration> {
    let timeline = node.spec().swarm.schedule().timeline(epoch);
    if conduct.skips_merge() {
        node.wait_for_block(timeline.assemble_end);
        return Ok(Duration::ZERO);
    }
    let t0 = Instant::now();
    let flat = flatten(h.stage.var_store())?;
    let me = node.me();
    let reader = StageMerge::new(
        &node.spec().name,
        roster,
        &node.metrics,
        (epoch, h.index),
        flat.numel() as i64,
    );
    let pos = reader
        .miners()
        .iter()
        .position(|m| m.hotkey == me)
        .context("this miner is not in its stage's roster")?;
    let mut merge = Merge {
        node,
        reader,
        timeline,
        pos,
        flat,
        outbox: Outbox::new(node),
        poll,
        busy: t0.elapsed(),
    };
    let merged = node.rt.block_on(async {
        merge.scatter().await?;
        merge.reduce(conduct).await?;
        merge.assemble().await
    })?;
    let t0 = Instant::now();
    load_flat(h.stage.var_store_mut(), &merged)?;
    Ok(merge.busy + t0.elapsed())
}

impl Merge<'_> {
    fn at(&self, kind: Kind, i: usize) -> ArtifactId {
        ArtifactId {
            epoch: self.timeline.epoch,
            stage: self.stage(),
            kind,
            id: shard_id(i as u32, self.reader.count() as u32),
        }
    }

    fn stage(&self) -> StageIndex {
        self.reader.stage()
    }

    /// This miner's own values of shard `i`.
    fn own(&self, i: usize) -> Tensor {
        let (start, len) = self.reader.range(i);
        self.flat.narrow(0, start, len)
    }

    /// Whether to stop waiting for peers at `deadline`.
    fn past(&self, deadline: u64) -> bool {
        self.node.block() >= deadline || self.node.cancelled()
    }

    /// Phase 1: this miner's copy of every shard, put for its reducers.
    async fn scatter(&mut self) -> Result<()> {
        let codec = fetch::shard_codec();
        for i in 0..self.reader.count() {
            let own = self.own(i);
            self.outbox
                .send(self.at(Kind::Shard, i), &codec, &own, Claims::default())?;
        }
        self.outbox.flushed().await;
        Ok(())
    }

    /// Phase 2: every shard this miner reduces, averaged from the copies that arrived by the
    /// reduce deadline and put.
    async fn reduce(&mut self, conduct: &Conduct) -> Result<()> {
        let n = self.reader.count();
        let miners = self.reader.miners();
        let codec = fetch::shard_codec();
        for i in reduced_by(self.pos, n) {
            let mut parts: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
            parts[self.pos] = Some(self.own(i));
            loop {
                for (j, part) in parts.iter_mut().enumerate() {
                    if part.is_none() {
                        *part = self.reader.read(Kind::Shard, j, i).await;
                    }
                }
                if parts.iter().all(Option::is_some) || self.past(self.timeline.reduce_end) {
                    break;
                }
                tokio::time::sleep(self.poll).await;
            }
            let missing: Vec<String> = miners
                .iter()
                .zip(&parts)
                .filter(|(_, p)| p.is_none())
                .map(|(m, _)| m.hotkey.short())
                .collect();
            if !missing.is_empty() {
                warn!(
                    epoch = %self.timeline.epoch,
                    stage = %self.stage(),
                    shard = i,
                    ?missing,
                    "merging without late or absent peers"
                );
            }
            // Each copy weighs its producer's artifacts of the epoch, as listed once its wait ends.
            let work = self.reader.work().await;
            let weighted: Vec<(f64, Tensor)> = miners
                .iter()
                .zip(parts)
                .filter_map(|(m, p)| p.map(|t| (work.get(&m.hotkey).copied().unwrap_or(1.0), t)))
                .collect();
            let t0 = Instant::now();
            let Some(mean) = weighted_mean(&weighted)? else {
                continue;
            };
            self.busy += t0.elapsed();
            let mean = conduct.reduction(&mean);
            self.outbox
                .send(self.at(Kind::Merged, i), &codec, &mean, Claims::default())?;
        }
        self.outbox.flushed().await;
        Ok(())
    }

    /// Phase 3: the merged stage, every shard as the merge reader decides, read until the
    /// assemble deadline.
    async fn assemble(&mut self) -> Result<Tensor> {
        let n = self.reader.count();
        let tolerance = self.node.spec().swarm.twin_tolerance;
        let mut pieces = Vec::with_capacity(n);
        let mut from_own = 0;
        for i in 0..n {
            let reducers = self.reader.reducers(i);
            let mut got: [Option<Tensor>; 2] = [None, None];
            loop {
                for (slot, pos) in reducers.iter().enumerate() {
                    if let (None, Some(pos)) = (&got[slot], pos) {
                        got[slot] = self.reader.read(Kind::Merged, *pos, i).await;
                    }
                }
                let done = got[0].is_some() && (got[1].is_some() || reducers[1].is_none());
                if done || self.past(self.timeline.assemble_end) {
                    break;
                }
                tokio::time::sleep(self.poll).await;
            }
            let verdict = self
                .reader
                .verdict(i, got, tolerance, Weighting::Listed)
                .await;
            if verdict.disagreed {
                self.node.metrics.reject("twin");
                let miners = self.reader.miners();
                let name = |slot: usize| reducers[slot].map(|p| miners[p].hotkey.short());
                warn!(
                    epoch = %self.timeline.epoch,
                    stage = %self.stage(),
                    shard = i,
                    first = ?name(0),
                    first_wrong = verdict.off[0],
                    twin = ?name(1),
                    twin_wrong = verdict.off[1],
                    gap = verdict.gap,
                    "the two reductions of a shard disagree; reduced it here to settle it"
                );
            }
            pieces.push(match verdict.kept {
                Some(t) => t,
                None => {
                    from_own += 1;
                    self.own(i)
                }
            });
        }
        let t0 = Instant::now();
        let merged = Tensor::f_cat(&pieces, 0)?;
        self.busy += t0.elapsed();
        info!(
            epoch = %self.timeline.epoch,
            stage = %self.stage(),
            miners = n,
            shards_kept_local = from_own,
            "merged the stage"
        );
        Ok(merged)
    }
}

/// Loads the newest merged weights of `stage`'s index from storage, looking back from the epoch
/// before `current`; returns the epoch they are from.
///
/// # Errors
/// A chain error, or merged weights that do not fit the stage.
pub(crate) fn load_latest(node: &Node, stage: &mut Stage, current: Epoch) -> Result<Option<Epoch>> {
    let s = StageIndex::at(stage.index());
    let t0 = Instant::now();
    let total = flatten(stage.var_store())?.numel() as i64;
    let spec = node.spec();
    for epoch in (current.get().saturating_sub(16)..current.get())
        .rev()
        .map(Epoch)
    {
        let roster = node.rt.block_on(node.view.roster(epoch))?;
        let reader = StageMerge::new(&spec.name, &roster, &node.metrics, (epoch, s), total);
        // Settled as the stage's miners settled it, so a joiner holds what its peers hold.
        let merged = node.rt.block_on(reader.assemble(spec.swarm.twin_tolerance));
        if let Some(flat) = merged {
            load_flat(stage.var_store_mut(), &flat)?;
            info!(%epoch, stage = %s, took = ?t0.elapsed(), "loaded merged weights");
            return Ok(Some(epoch));
        }
    }
    Ok(None)
}
