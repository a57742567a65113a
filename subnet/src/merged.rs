//! Reading a stage's merge from storage: the one place miners, joiners and validators assemble
//! a stage from its reduced shards.
//!
//! Shard `i` of a stage of `n` miners is reduced by two of them, its first reducer and its twin
//! ([`reducers`]). A reader takes each shard from the first reducer's reduction, else the
//! twin's; when it has read both and they disagree, it reduces the shard itself from every
//! member's copy and keeps whichever matches ([`verdict`], the rule itself). Every reader of the
//! same objects so ends with the same weights, and a reducer that lied is named.
//!
//! Every copy a reader averages and the reduction it keeps pass [`admit`] first, against the
//! weights the stage began the epoch with when the reader holds them ([`StageMerge::bounded`]):
//! a copy out of reach is skipped with a warning naming its producer, a kept reduction out of
//! reach is dropped (the miner then keeps its own values of the shard). Copies are averaged
//! plainly ([`mean`]): nothing a peer lists of itself weighs.

use std::time::Duration;

use futures::StreamExt;
use sliver_common::artifact::{Hotkey, Kind};
use sliver_common::assignment::Member;
use sliver_common::merge::{DriftBound, Verdict, admit, mean, reducers, shard_range, verdict};
use sliver_common::metrics::Metrics;
use sliver_common::{Epoch, RunSpec, StageIndex};
use tch::Tensor;
use tracing::warn;

use crate::fetch;
use crate::run::Roster;

/// The merge of one stage in one epoch, as read from its miners' stores.
pub struct StageMerge<'a> {
    roster: &'a Roster,
    metrics: &'a Metrics,
    epoch: Epoch,
    stage: StageIndex,
    /// The stage's parameter count (the flat length of its weights).
    total: i64,
    /// How far an epoch moves a weight; `None` (not told the spec): copies are checked for
    /// length and finiteness only.
    reach: Option<DriftBound>,
    /// The flat weights the stage began the epoch with, when this reader holds them (kept as
    /// plain values: a tensor is not `Sync`, and the reader is borrowed across reads).
    start: Option<Vec<f32>>,
    /// How long one read of a shard may take ([`shard_deadline`]); unbounded until
    /// [`Self::bounded`] tells it the spec.
    read_deadline: Option<Duration>,
}

/// Shard reads in flight at once (a merge phase, or a shard's copies): as many as the feed and
/// the audit keep (`miner/src/feed.rs`, `validator/src/follow.rs`). A phase reads at most two
/// shards of each peer, and together the shards are the stage's weights, so on a saturated link
/// more in flight does not finish sooner; sixteen keep a link busy where round trips, not
/// bandwidth, bound small shards, and leave the honest peers' reads their slots while up to
/// seven peers stall both of theirs.
pub const READS_AT_ONCE: usize = 16;

/// How long one read of a peer's shard of `len` weights may take: a sample's timeout
/// (`swarm.sample_timeout_secs`, what every other read of a peer gets) for each activation's
/// worth of bytes in it, so the deadline is sized to the object and a store that answers
/// slowly, or never, costs its own part of the merge, not the reader's merge phases.
pub fn shard_deadline(spec: &RunSpec, len: i64) -> Duration {
    let shard_bytes = u64::try_from(len).unwrap_or(0).saturating_mul(4);
    let sample_bytes = spec
        .activation_codec()
        .encoded_len(&spec.wire_dims())
        .max(1) as u64;
    let samples = u32::try_from(shard_bytes.div_ceil(sample_bytes).max(1)).unwrap_or(u32::MAX);
    fetch::peer_deadline(spec).saturating_mul(samples)
}

impl<'a> StageMerge<'a> {
    /// The merge of `stage` in `epoch`; `total` is the stage's parameter count. It checks only
    /// that copies are finite until [`Self::bounded`] tells it the spec.
    pub fn new(
        roster: &'a Roster,
        metrics: &'a Metrics,
        (epoch, stage): (Epoch, StageIndex),
        total: i64,
    ) -> Self {
        Self {
            roster,
            metrics,
            epoch,
            stage,
            total,
            reach: None,
            start: None,
            read_deadline: None,
        }
    }

    /// Bounds every copy and kept reduction by what an epoch of `spec` can move a weight
    /// ([`DriftBound`], for this epoch's roster) from `start`, the stage's flat weights at the
    /// epoch's start; without `start` (or one of another length), as [`admit`] says.
    #[must_use]
    pub fn bounded(mut self, spec: &RunSpec, start: Option<&Tensor>) -> Self {
        let origins = self.roster.assignment.stage(StageIndex::FIRST).len();
        self.reach = Some(DriftBound::new(spec, origins));
        let largest = (0..self.count())
            .map(|i| self.range(i).1)
            .max()
            .unwrap_or(0);
        self.read_deadline = Some(shard_deadline(spec, largest));
        self.start = start.and_then(|t| {
            if t.numel() as i64 != self.total {
                warn!(
                    epoch = self.epoch.get(),
                    stage = self.stage.0,
                    got = t.numel(),
                    expected = self.total,
                    "the epoch's start weights do not fit the stage; bounding without them"
                );
                return None;
            }
            Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).reshape([-1])).ok()
        });
        self
    }

    /// The metrics rejections are counted in.
    pub fn metrics(&self) -> &'a Metrics {
        self.metrics
    }

    /// The stage.
    pub fn stage(&self) -> StageIndex {
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
        let read = fetch::shard(
            self.roster,
            self.metrics,
            (self.epoch, self.stage),
            &producer,
            kind,
            (i, self.count(), len),
        );
        let Some(deadline) = self.read_deadline else {
            return read.await;
        };
        match tokio::time::timeout(deadline, read).await {
            Ok(t) => t,
            Err(_) => {
                self.metrics.reject("timeout");
                warn!(
                    epoch = %self.epoch,
                    stage = %self.stage,
                    shard = i,
                    producer = %producer.short(),
                    ?deadline,
                    "a peer's store did not answer a shard read in time"
                );
                None
            }
        }
    }

    /// Shard `i` of the epoch's start weights, when this reader holds them.
    fn start_of(&self, i: usize) -> Option<Tensor> {
        let (at, len) = self.range(i);
        let (at, len) = (usize::try_from(at).ok()?, usize::try_from(len).ok()?);
        Some(Tensor::from_slice(self.start.as_ref()?.get(at..at + len)?))
    }

    /// The copies (or reductions) of shard `i` that [`admit`] accepts, keyed by the position of
    /// their producer; each one refused is counted and named in a warning.
    pub fn admit(&self, i: usize, parts: Vec<(usize, Tensor)>, what: &str) -> Vec<(usize, Tensor)> {
        let start = self.start_of(i);
        match admit(parts, start.as_ref(), self.reach.as_ref()) {
            Ok(a) => {
                for (pos, why) in &a.refused {
                    self.metrics.reject("merge_bound");
                    warn!(
                        epoch = self.epoch.get(),
                        stage = self.stage.0,
                        shard = i,
                        peer = %self.name(*pos),
                        reason = %why,
                        "skipping a peer's {what} of a shard"
                    );
                }
                a.accepted
            }
            Err(e) => {
                warn!(
                    epoch = self.epoch.get(),
                    stage = self.stage.0,
                    shard = i,
                    error = %e,
                    "could not check a shard's {what}; using none"
                );
                Vec::new()
            }
        }
    }

    /// The short hotkey of the miner at `pos`.
    fn name(&self, pos: usize) -> String {
        self.miners()
            .get(pos)
            .map_or_else(|| "this reader".to_owned(), |m| m.hotkey.short())
    }

    /// The reduction of shard `i` from `parts` (copies keyed by their producer's position): the
    /// plain mean of those [`admit`] accepts, in the order given; `None` when none is accepted
    /// (or libtorch fails, with a warning). What a reducer uploads.
    pub fn reduce(&self, i: usize, parts: Vec<(usize, Tensor)>) -> Option<Tensor> {
        let accepted: Vec<Tensor> = self
            .admit(i, parts, "copy")
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        match mean(&accepted) {
            Ok(m) => m,
            Err(e) => {
                warn!(
                    epoch = self.epoch.get(),
                    stage = self.stage.0,
                    shard = i,
                    error = %e,
                    "could not average a shard's copies"
                );
                None
            }
        }
    }

    /// Every member's copy of shard `i` that can be read and that [`admit`] accepts, in the
    /// stage's order. `weighting` is ignored: every accepted copy weighs the same.
    pub async fn copies(&self, i: usize, weighting: Weighting<'_>) -> Vec<Tensor> {
        let _ = weighting;
        // Each member's copy read on its own, [`READS_AT_ONCE`] at a time and in the stage's
        // order: one stalling store costs one shard deadline, not one per member after it.
        let read: Vec<(usize, Tensor)> = futures::stream::iter(0..self.count())
            .map(|pos| async move { self.read(Kind::Shard, pos, i).await.map(|t| (pos, t)) })
            .buffered(READS_AT_ONCE)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        self.admit(i, read, "copy")
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// What to keep of shard `i` given the reductions read from its first reducer and its twin:
    /// settled against the members' accepted copies (read only then) when they disagree beyond
    /// `tolerance`. Should the comparison itself fail (libtorch), the first reducer's reduction
    /// is kept, else the twin's, with a warning. A kept reduction that [`admit`] refuses (out of
    /// reach of the epoch's start, say from a lying reducer whose twin never answered) is
    /// dropped: `kept` is then `None`, and a merging miner keeps its own values of the shard.
    /// `weighting` is ignored (see [`Weighting`]).
    pub async fn verdict(
        &self,
        i: usize,
        pair: [Option<Tensor>; 2],
        tolerance: f64,
        weighting: Weighting<'_>,
    ) -> Verdict {
        let [first, twin] = self.reducers(i);
        // Whose reduction is kept, named should it be refused (`None`: reduced here).
        let mut from = if pair[0].is_some() { first } else { twin };
        let fallback = pair[0]
            .as_ref()
            .or(pair[1].as_ref())
            .map(Tensor::shallow_clone);
        let mut v = match verdict(pair, tolerance, || self.copies(i, weighting)).await {
            Ok(v) => {
                match v.off {
                    [true, false] => from = twin,
                    [true, true] => from = None,
                    _ => {}
                }
                v
            }
            Err(e) => {
                warn!(
                    epoch = self.epoch.get(),
                    stage = self.stage.0,
                    shard = i,
                    error = %e,
                    "could not compare a shard's two reductions; keeping the first"
                );
                Verdict {
                    kept: fallback,
                    off: [false; 2],
                    disagreed: false,
                    gap: 0.0,
                }
            }
        };
        if let Some(t) = v.kept.take() {
            let key = from.unwrap_or(usize::MAX);
            v.kept = self
                .admit(i, vec![(key, t)], "reduction")
                .pop()
                .map(|(_, t)| t);
        }
        v
    }

    /// The merged weights (flat), read as a joining miner reads them: both reductions of every
    /// shard, settled by [`Self::verdict`] as the stage's miners settle them; `None` if a shard
    /// has no reduction that holds (or the pieces do not fit).
    pub async fn assemble(&self, tolerance: f64) -> Option<Tensor> {
        let n = self.count();
        if n == 0 {
            return None;
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
            pieces.push(
                self.verdict(i, pair, tolerance, Weighting::Equal)
                    .await
                    .kept?,
            );
        }
        Tensor::f_cat(&pieces, 0).ok()
    }
}

/// How a reader weights the members' copies of a shard when it reduces the shard itself.
///
/// Every accepted copy weighs the same, whichever is given (why:
/// [`sliver_common::merge`]); the type stays so that callers written against weighted copies
/// compile, and will go once they pass [`Weighting::Equal`].
#[derive(Clone, Copy)]
pub enum Weighting<'w> {
    /// Every accepted copy alike: what every reader does.
    Equal,
    /// Formerly each hotkey's given weight (the validator's verified work); now ignored, as
    /// [`Weighting::Equal`], so that the validator's audit reduces as the miners do.
    Given(&'w (dyn Fn(&Hotkey) -> f64 + Sync)),
}

#[cfg(test)]
mod tests {
    use sliver_common::artifact::{self, ArtifactId, Signer, Unsealed, shard_id};
    use sliver_common::layout;
    use sliver_common::storage::{Store, StoreConfig};

    use super::*;

    // The artifact signer the neurons use: a wallet hotkey.
    use crate::signer::HotkeySigner as Key;

    /// Puts `t` as `signer`'s shard `i` of 2 (`kind`) for epoch 1, stage 0, in `store`.
    async fn put(store: &Store, signer: &Key, kind: Kind, i: u32, t: &Tensor) {
        let codec = fetch::shard_codec();
        let at = ArtifactId {
            epoch: Epoch(1),
            stage: StageIndex(0),
            kind,
            id: shard_id(i, 2),
        };
        let dims = t.size();
        let bytes = artifact::seal(
            Unsealed {
                run: &sliver_common::testing::test_run("r"),
                at,
                codec: codec.kind(),
                dims: &dims,
                weights: None,
                loss: None,
                inputs: &[],
            },
            &codec.encode(t).unwrap(),
            signer,
        )
        .unwrap();
        let key = layout::artifact("r", &signer.hotkey(), at);
        store.put_once(&key, bytes.into()).await.unwrap();
    }

    /// A stage of two miners, each with its own store; `liar` is the second. Shard 0 is reduced
    /// first by the honest miner and checked by the liar; shard 1 the other way round.
    #[tokio::test]
    async fn a_lying_or_broken_reducer_costs_only_itself() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let stores: Vec<Store> = dirs
            .iter()
            .map(|d| Store::open(&StoreConfig::filesystem(d.path())).unwrap())
            .collect();
        let keys = [
            Key(sliver_chain::wallet::Keypair::generate()),
            Key(sliver_chain::wallet::Keypair::generate()),
        ];
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                uid: i as u16 + 1,
                hotkey: k.hotkey(),
            })
            .collect();
        let assignment = sliver_common::assignment::Assignment::new(1, &members);
        // Shard numbering follows the stage's order, which need not be the order given.
        let order: Vec<usize> = assignment
            .stage(StageIndex(0))
            .iter()
            .map(|m| members.iter().position(|x| x.hotkey == m.hotkey).unwrap())
            .collect();
        let (honest, liar) = (order[0], order[1]);
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: Epoch(1),
            assignment,
            stores: keys
                .iter()
                .zip(&stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let copies = [
            Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]),
            Tensor::from_slice(&[3.0f32, 6.0, 5.0, 8.0]),
        ];
        let mean = (&copies[0] + &copies[1]) * 0.5;
        for m in 0..2 {
            for i in 0..2u32 {
                let part = copies[m].narrow(0, 2 * i64::from(i), 2);
                put(&stores[m], &keys[m], Kind::Shard, i, &part).await;
            }
        }
        let honest_part = |i: i64| mean.narrow(0, 2 * i, 2);
        // The honest miner reduces both shards right; the liar puts a poisoned reduction of
        // shard 0 and bytes that are no artifact at all for shard 1.
        put(
            &stores[honest],
            &keys[honest],
            Kind::Merged,
            0,
            &honest_part(0),
        )
        .await;
        put(
            &stores[honest],
            &keys[honest],
            Kind::Merged,
            1,
            &honest_part(1),
        )
        .await;
        put(
            &stores[liar],
            &keys[liar],
            Kind::Merged,
            0,
            &(honest_part(0) * 0.5),
        )
        .await;
        let garbage_at = layout::artifact(
            "r",
            &keys[liar].hotkey(),
            ArtifactId {
                epoch: Epoch(1),
                stage: StageIndex(0),
                kind: Kind::Merged,
                id: shard_id(1, 2),
            },
        );
        stores[liar]
            .put_once(&garbage_at, vec![7u8; 64].into())
            .await
            .unwrap();

        let metrics = Metrics::new("test");
        let reader = StageMerge::new(&roster, &metrics, (Epoch(1), StageIndex(0)), 4);
        // Shard 0: first reducer honest, twin poisoned: settled from the copies, the twin named.
        let pair = [
            reader.read(Kind::Merged, 0, 0).await,
            reader.read(Kind::Merged, 1, 0).await,
        ];
        let v = reader.verdict(0, pair, 1e-6, Weighting::Equal).await;
        assert!(v.disagreed);
        assert_eq!(v.off, [false, true]);
        assert!(v.kept.unwrap().equal(&honest_part(0)));
        // A validator's weights are ignored: it settles as the miners do, by the plain mean.
        let weight = |h: &Hotkey| {
            if *h == keys[honest].hotkey() {
                1.0
            } else {
                3.0
            }
        };
        let pair = [
            reader.read(Kind::Merged, 0, 0).await,
            reader.read(Kind::Merged, 1, 0).await,
        ];
        let v = reader
            .verdict(0, pair, 1e-6, Weighting::Given(&weight))
            .await;
        assert_eq!(v.off, [false, true]);
        assert!(v.kept.unwrap().equal(&honest_part(0)));
        // Shard 1: the liar's bytes are rejected (counted), the honest twin's reduction is kept.
        assert!(reader.read(Kind::Merged, 1, 1).await.is_none());
        assert_eq!(metrics.rejections_total(), 1);
        // A joining miner assembles exactly the honest merge.
        let merged = reader.assemble(1e-6).await.unwrap();
        assert!(merged.equal(&mean), "{merged:?} against {mean:?}");
    }

    /// A peer whose store never answers costs its reader one bounded read, not the
    /// merge: the read gives up at the shard's deadline, a sample's timeout per activation's
    /// worth of bytes.
    #[tokio::test]
    async fn a_stalling_store_costs_one_bounded_read() {
        use sliver_common::codec::CodecKind;
        use sliver_common::storage::Reach;

        let mut spec =
            sliver_common::testing::tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        spec.swarm.sample_timeout_secs = 1;
        let sample_bytes = spec.activation_codec().encoded_len(&spec.wire_dims()) as i64;
        assert_eq!(shard_deadline(&spec, 1), Duration::from_secs(1));
        assert_eq!(
            shard_deadline(&spec, 3 * sample_bytes / 4 + 1),
            Duration::from_secs(4)
        );

        // A store that accepts every connection and never answers.
        use sliver_common::testing::hostile::{Behaviour, HostileServer};
        let hung = HostileServer::spawn(Behaviour::Silent).await;
        let silent = hung.config("bkt");
        let key = Key(sliver_chain::wallet::Keypair::generate());
        let members = [Member {
            uid: 0,
            hotkey: key.hotkey(),
        }];
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: Epoch(1),
            assignment: sliver_common::assignment::Assignment::new(1, &members),
            stores: std::collections::HashMap::from([(
                key.hotkey(),
                Store::open_peer(&silent, Reach::Local).unwrap(),
            )]),
        };
        let metrics = Metrics::new("test");
        let reader =
            StageMerge::new(&roster, &metrics, (Epoch(1), StageIndex(0)), 8).bounded(&spec, None);
        let t0 = std::time::Instant::now();
        assert!(reader.read(Kind::Shard, 0, 0).await.is_none());
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(10),
            "{took:?}"
        );
        assert_eq!(metrics.rejections("timeout"), 1);
    }
}
