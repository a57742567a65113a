//! The miner's side of the merge: moving shards through storage at the end of each epoch, in
//! three phases.
//!
//! 1. **Scatter**: upload this miner's copy of every shard of its stage.
//! 2. **Reduce**: for each shard it reduces, wait for the peers' copies until the schedule's
//!    reduce deadline, keep those within reach of the weights the stage began the epoch with
//!    ([`sliver_common::merge::admit`]; a copy refused is skipped and its producer named), average
//!    them plainly, and upload the result.
//! 3. **Assemble**: read every shard's reductions until the assemble deadline and keep what the
//!    merge reader decides ([`StageMerge::verdict`]: the first reducer's, else the twin's,
//!    settled from the copies when the two disagree); a shard nobody reduced keeps this miner's
//!    own values.
//!
//! A peer that is late or gone is left out after the deadline. Nothing a peer puts can stop the
//! merge: a reduction kept that is out of reach is dropped (this miner keeps its own values of
//! that shard), and merged weights that still do not load leave this miner's own weights in
//! place, with a warning. The arithmetic (shard ranges, reducers, the bound, the mean, twin gap)
//! is [`sliver_common::merge`]; the reading rule is [`sliver_subnet::merged`], shared with
//! joining miners and validators.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use sliver_common::Stage;
use sliver_common::artifact::{ArtifactId, Kind, shard_id};
use sliver_common::flat::{flatten, load_flat};
use sliver_common::merge::reduced_by;
use sliver_common::schedule::Timeline;
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::fetch;
use sliver_subnet::merged::{READS_AT_ONCE, StageMerge, Weighting};
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
/// Copies are bounded by the weights `h` began the epoch with ([`Held::start`]).
///
/// # Errors
/// A libtorch failure on this miner's own weights, or a failed upload; never what a peer put.
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
    let reader = StageMerge::new(roster, &node.metrics, (epoch, h.index), flat.numel() as i64)
        .bounded(node.spec(), h.start());
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
        merge.scatter(conduct).await?;
        merge.reduce(conduct).await?;
        anyhow::Ok(merge.assemble().await)
    })?;
    let t0 = Instant::now();
    match merged.map(|m| load_flat(h.stage.var_store_mut(), &m)) {
        Some(Ok(())) => {}
        Some(Err(e)) => warn!(
            %epoch,
            stage = %h.index,
            error = %e,
            "the merged weights do not load; keeping this miner's own"
        ),
        None => warn!(
            %epoch,
            stage = %h.index,
            "the merged weights could not be assembled; keeping this miner's own"
        ),
    }
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

    /// Resolves once the chain reaches `deadline` (or on shutdown, or when the clock stops).
    fn until(&self, deadline: u64) -> impl Future<Output = ()> + use<> {
        let mut clock = self.node.clock.clone();
        let cancel = self.node.cancel.clone();
        async move {
            tokio::select! {
                _ = clock.wait_for(|b| *b >= deadline) => {}
                () = cancel.cancelled() => {}
            }
        }
    }

    /// Phase 1: this miner's copy of every shard, put for its reducers.
    async fn scatter(&mut self, conduct: &Conduct) -> Result<()> {
        let codec = fetch::shard_codec();
        for i in 0..self.reader.count() {
            let own = conduct.copy(&self.own(i));
            self.outbox
                .send(self.at(Kind::Shard, i), &codec, &own, Claims::default())?;
        }
        self.outbox.flushed().await;
        Ok(())
    }

    /// Phase 2: every shard this miner reduces, averaged from the copies that arrived by the
    /// reduce deadline and put. Every missing copy of every shard it reduces is read at once
    /// ([`read_shards`]), so a peer whose store stalls costs one shard deadline of the phase,
    /// whatever the number of peers; the copies are combined in the stage's order, whatever
    /// order they arrived in.
    async fn reduce(&mut self, conduct: &Conduct) -> Result<()> {
        let n = self.reader.count();
        let miners = self.reader.miners();
        let codec = fetch::shard_codec();
        let mine = reduced_by(self.pos, n);
        // `parts[k][j]`: miner `j`'s copy of shard `mine[k]`.
        let mut parts: Vec<Vec<Option<Tensor>>> = mine
            .iter()
            .map(|&i| {
                (0..n)
                    .map(|j| (j == self.pos).then(|| self.own(i)))
                    .collect()
            })
            .collect();
        loop {
            let slots: Vec<(usize, usize)> = (0..mine.len())
                .flat_map(|k| (0..n).map(move |j| (k, j)))
                .filter(|&(k, j)| parts[k][j].is_none())
                .collect();
            let wants: Vec<(usize, usize)> = slots.iter().map(|&(k, j)| (j, mine[k])).collect();
            let stop = self.until(self.timeline.reduce_end);
            let got = read_shards(&self.reader, Kind::Shard, &wants, stop).await;
            for ((k, j), t) in slots.into_iter().zip(got) {
                parts[k][j] = t;
            }
            let all = parts.iter().flatten().all(Option::is_some);
            if all || self.past(self.timeline.reduce_end) {
                break;
            }
            tokio::time::sleep(self.poll).await;
        }
        for (i, parts) in mine.into_iter().zip(parts) {
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
            // Every copy within reach of the epoch's start weighs the same.
            let t0 = Instant::now();
            let parts: Vec<(usize, Tensor)> = parts
                .into_iter()
                .enumerate()
                .filter_map(|(j, p)| p.map(|t| (j, t)))
                .collect();
            let Some(mean) = self.reader.reduce(i, parts) else {
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
    /// assemble deadline; a shard with no reduction that holds keeps this miner's own values.
    /// `None` only if the pieces do not fit together (libtorch), with a warning.
    async fn assemble(&mut self) -> Option<Tensor> {
        let n = self.reader.count();
        let tolerance = self.node.spec().swarm.twin_tolerance;
        let reducers: Vec<[Option<usize>; 2]> = (0..n).map(|i| self.reader.reducers(i)).collect();
        // `got[i][slot]`: shard `i`'s reduction by its first reducer (slot 0) or its twin (1).
        let mut got: Vec<[Option<Tensor>; 2]> = (0..n).map(|_| [None, None]).collect();
        // Both reductions of every shard are read at once ([`read_shards`]).
        loop {
            let slots: Vec<(usize, usize, usize)> = (0..n)
                .flat_map(|i| (0..2).map(move |slot| (i, slot)))
                .filter_map(|(i, slot)| Some((i, slot, reducers[i][slot]?)))
                .filter(|&(i, slot, _)| got[i][slot].is_none())
                .collect();
            let wants: Vec<(usize, usize)> = slots.iter().map(|&(i, _, pos)| (pos, i)).collect();
            let stop = self.until(self.timeline.assemble_end);
            let read = read_shards(&self.reader, Kind::Merged, &wants, stop).await;
            for ((i, slot, _), t) in slots.into_iter().zip(read) {
                got[i][slot] = t;
            }
            let done = (0..n)
                .all(|i| got[i][0].is_some() && (got[i][1].is_some() || reducers[i][1].is_none()));
            if done || self.past(self.timeline.assemble_end) {
                break;
            }
            tokio::time::sleep(self.poll).await;
        }
        let mut pieces = Vec::with_capacity(n);
        let mut from_own = 0;
        for (i, got) in got.into_iter().enumerate() {
            let (piece, own) = shard_kept(&self.reader, i, got, tolerance, self.own(i)).await;
            from_own += usize::from(own);
            pieces.push(piece);
        }
        let t0 = Instant::now();
        let merged = Tensor::f_cat(&pieces, 0);
        self.busy += t0.elapsed();
        info!(
            epoch = %self.timeline.epoch,
            stage = %self.stage(),
            miners = n,
            shards_kept_local = from_own,
            "merged the stage"
        );
        merged
            .map_err(|e| {
                warn!(
                    epoch = %self.timeline.epoch,
                    stage = %self.stage(),
                    error = %e,
                    "the merged shards do not fit together"
                );
            })
            .ok()
    }
}

/// Reads `kind` of shard `i` from the miner at position `pos`, for every `(pos, i)` in `wants`,
/// [`READS_AT_ONCE`] at a time, each on its own and bounded by the reader's shard deadline
/// ([`sliver_subnet::merged::shard_deadline`]), until every read has answered or `stop`
/// resolves (the phase's end on the chain clock). Returns what each read got, in the order of
/// `wants` whatever order they arrived in: `None` for a copy absent, refused, or late. A failed
/// read is its producer's failure, counted and warned of ([`StageMerge::read`]); a read still
/// in flight when `stop` resolves is counted as a `timeout` and its producer named.
async fn read_shards(
    reader: &StageMerge<'_>,
    kind: Kind,
    wants: &[(usize, usize)],
    stop: impl Future<Output = ()>,
) -> Vec<Option<Tensor>> {
    let mut got: Vec<Option<Tensor>> = wants.iter().map(|_| None).collect();
    let mut answered = vec![false; wants.len()];
    let mut reads = futures::stream::iter(wants.iter().copied().enumerate())
        .map(|(k, (pos, i))| async move { (k, reader.read(kind, pos, i).await) })
        .buffer_unordered(READS_AT_ONCE);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            next = reads.next() => match next {
                Some((k, t)) => {
                    answered[k] = true;
                    got[k] = t;
                }
                None => break,
            },
            () = &mut stop => {
                let miners = reader.miners();
                let late: Vec<String> = wants
                    .iter()
                    .zip(&answered)
                    .filter(|(_, done)| !**done)
                    .map(|(&(pos, i), _)| {
                        reader.metrics().reject("timeout");
                        format!("{}:{i}", miners.get(pos).map_or_else(String::new, |m| m.hotkey.short()))
                    })
                    .collect();
                if !late.is_empty() {
                    warn!(
                        stage = %reader.stage(),
                        ?kind,
                        ?late,
                        "the merge phase ended before these peers' shards were read"
                    );
                }
                break;
            }
        }
    }
    got
}

/// What a merging miner keeps of shard `i` from the reductions read from its first reducer and
/// its twin (`got`): the merge reader's verdict ([`StageMerge::verdict`]: the first's, else the
/// twin's, settled from the accepted copies when they disagree, dropped when out of reach), else
/// its `own` values. Returns the piece and whether it is its own. A disagreement is counted and
/// warned of, naming both reducers.
async fn shard_kept(
    reader: &StageMerge<'_>,
    i: usize,
    got: [Option<Tensor>; 2],
    tolerance: f64,
    own: Tensor,
) -> (Tensor, bool) {
    let reducers = reader.reducers(i);
    let verdict = reader.verdict(i, got, tolerance, Weighting::Equal).await;
    if verdict.disagreed {
        reader.metrics().reject("twin");
        let miners = reader.miners();
        let name = |slot: usize| reducers[slot].map(|p| miners[p].hotkey.short());
        warn!(
            stage = %reader.stage(),
            shard = i,
            first = ?name(0),
            first_wrong = verdict.off[0],
            twin = ?name(1),
            twin_wrong = verdict.off[1],
            gap = verdict.gap,
            "the two reductions of a shard disagree; reduced it here to settle it"
        );
    }
    match verdict.kept {
        Some(t) => (t, false),
        None => (own, true),
    }
}

/// Loads the newest merged weights of `stage`'s index from storage, looking back from the epoch
/// before `current`; returns the epoch they are from. Read as the stage's miners settled them,
/// bounded without a start (this miner never held that epoch's: [`sliver_common::merge::admit`]
/// says what it checks then); merged weights that do not load are skipped with a warning and an
/// older epoch tried.
///
/// # Errors
/// A chain error.
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
        let reader = StageMerge::new(&roster, &node.metrics, (epoch, s), total).bounded(spec, None);
        // Settled as the stage's miners settled it, so a joiner holds what its peers hold.
        let merged = node.rt.block_on(reader.assemble(spec.swarm.twin_tolerance));
        if let Some(flat) = merged {
            match load_flat(stage.var_store_mut(), &flat) {
                Ok(()) => {
                    info!(%epoch, stage = %s, took = ?t0.elapsed(), "loaded merged weights");
                    return Ok(Some(epoch));
                }
                Err(e) => {
                    warn!(%epoch, stage = %s, error = %e, "merged weights do not load; trying an older epoch")
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use sliver_common::CodecKind;
    use sliver_common::artifact::{self, Signer, Unsealed};
    use sliver_common::assignment::{Assignment, Member};
    use sliver_common::layout;
    use sliver_common::merge::mean;
    use sliver_common::metrics::Metrics;
    use sliver_common::storage::Store;
    use sliver_common::testing::{S3Server, tiny_spec};

    use super::*;
    use crate::adversary::{Adversary, Tamper};

    // The artifact signer the neurons use: a wallet hotkey.
    use sliver_subnet::signer::HotkeySigner as Key;

    const N: usize = 3;
    const E: Epoch = Epoch(1);

    /// Puts `t` as `signer`'s `kind` of shard `i` of [`N`] for epoch [`E`], stage 0.
    async fn put(store: &Store, signer: &Key, kind: Kind, i: usize, t: &Tensor) {
        let codec = fetch::shard_codec();
        let at = ArtifactId {
            epoch: E,
            stage: StageIndex(0),
            kind,
            id: shard_id(i as u32, N as u32),
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

    /// A stage of three miners, one of whose stores accepts connections and never answers.
    /// The reads of a merge phase run at once, so the phase costs about one shard deadline, not
    /// one per read of that peer; its reads are counted as timeouts, and the honest copies are
    /// read and merged in the stage's order. A phase that ends first cuts the stalled reads
    /// there and keeps what arrived.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalling_peer_costs_one_shard_deadline_not_one_per_read() {
        use sliver_common::storage::Reach;
        use sliver_subnet::merged::shard_deadline;

        let mut spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Fp32, false);
        spec.swarm.sample_timeout_secs = 1;
        let server = S3Server::spawn("stall");
        use sliver_common::testing::hostile::{Behaviour, HostileServer};
        let hung = HostileServer::spawn(Behaviour::Silent).await;
        let silent = hung.config("silent");
        let keys: Vec<Key> = (0..N)
            .map(|_| Key(sliver_chain::wallet::Keypair::generate()))
            .collect();
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(k, key)| Member {
                uid: k as u16 + 1,
                hotkey: key.hotkey(),
            })
            .collect();
        let assignment = Assignment::new(1, &members);
        let key: Vec<usize> = assignment
            .stage(StageIndex(0))
            .iter()
            .map(|m| members.iter().position(|x| x.hotkey == m.hotkey).unwrap())
            .collect();
        let stalled = 1; // its position in the stage
        let stores: Vec<Store> = (0..N)
            .map(|pos| {
                if pos == stalled {
                    Store::open_peer(&silent, Reach::Local).unwrap()
                } else {
                    Store::open(&server.config(&format!("m{pos}"))).unwrap()
                }
            })
            .collect();
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: E,
            assignment,
            stores: (0..N)
                .map(|pos| (keys[key[pos]].hotkey(), stores[pos].clone()))
                .collect(),
        };
        let start = Tensor::from_slice(&[0.5f32, -0.25, 0.125, 1.0, -1.0, 0.0]);
        let flats: Vec<Tensor> = (0..N)
            .map(|pos| &start + 1e-3 * (pos as f64 + 1.0))
            .collect();
        let metrics = Metrics::new("test");
        let reader = StageMerge::new(&roster, &metrics, (E, StageIndex(0)), start.numel() as i64)
            .bounded(&spec, Some(&start));
        let deadline = shard_deadline(&spec, reader.range(0).1);
        for pos in (0..N).filter(|&p| p != stalled) {
            for i in 0..N {
                let (at, len) = reader.range(i);
                let copy = flats[pos].narrow(0, at, len);
                put(&stores[pos], &keys[key[pos]], Kind::Shard, i, &copy).await;
            }
        }
        // Every copy of every shard, as a phase reads them: three of them from the stalled peer.
        let wants: Vec<(usize, usize)> = (0..N).flat_map(|i| (0..N).map(move |j| (j, i))).collect();
        let t0 = Instant::now();
        let got = read_shards(&reader, Kind::Shard, &wants, std::future::pending()).await;
        let took = t0.elapsed();
        assert!(
            took >= deadline && took < deadline * 2,
            "{took:?} for a shard deadline of {deadline:?}"
        );
        assert_eq!(metrics.rejections("timeout"), N as u64);
        for (&(j, _), t) in wants.iter().zip(&got) {
            assert_eq!(t.is_some(), j != stalled, "peer {j}");
        }
        let honest_mean = mean(
            &(0..N)
                .filter(|&p| p != stalled)
                .map(|p| flats[p].shallow_clone())
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .unwrap();
        let mut got = got.into_iter();
        let merged: Vec<Tensor> = (0..N)
            .map(|i| {
                let parts: Vec<(usize, Tensor)> = (0..N)
                    .filter_map(|j| got.next().unwrap().map(|t| (j, t)))
                    .collect();
                reader.reduce(i, parts).unwrap()
            })
            .collect();
        let merged = Tensor::cat(&merged, 0);
        assert!(
            merged.allclose(&honest_mean, 1e-6, 1e-7, false),
            "{merged:?} against {honest_mean:?}"
        );
        // The phase's end comes first: the stalled reads stop there, the honest ones are kept.
        let t0 = Instant::now();
        let cut = read_shards(
            &reader,
            Kind::Shard,
            &wants,
            tokio::time::sleep(deadline / 2),
        )
        .await;
        assert!(t0.elapsed() < deadline, "{:?}", t0.elapsed());
        assert_eq!(metrics.rejections("timeout"), 2 * N as u64);
        for (&(j, _), t) in wants.iter().zip(&cut) {
            assert_eq!(t.is_some(), j != stalled, "peer {j}");
        }
    }

    /// A stage of three miners over s3s-fs, one of them `merge-extreme`: its copies and
    /// reductions are finite values near the float limit. Every honest miner reduces and
    /// assembles with the miner's own merge code, and ends with the mean of the honest copies; a
    /// joiner reading the epoch without its start gets the same; nothing panics or errors.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_merge_extreme_miner_is_skipped_and_the_honest_mean_kept() {
        let spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Fp32, false);
        let server = S3Server::spawn("merge");
        let keys: Vec<Key> = (0..N)
            .map(|_| Key(sliver_chain::wallet::Keypair::generate()))
            .collect();
        let stores: Vec<Store> = (0..N)
            .map(|k| Store::open(&server.config(&format!("m{k}"))).unwrap())
            .collect();
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(k, key)| Member {
                uid: k as u16 + 1,
                hotkey: key.hotkey(),
            })
            .collect();
        let assignment = Assignment::new(1, &members);
        // `key[pos]`: the index of the key at each position of the stage.
        let key: Vec<usize> = assignment
            .stage(StageIndex(0))
            .iter()
            .map(|m| members.iter().position(|x| x.hotkey == m.hotkey).unwrap())
            .collect();
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: E,
            assignment,
            stores: keys
                .iter()
                .zip(&stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let liar = 1; // its position in the stage: twin of shard 0, first reducer of shard 1
        let start = Tensor::from_slice(&[0.5f32, -0.25, 0.125, 1.0, -1.0, 0.0]);
        let total = start.numel() as i64;
        // Each honest miner's weights moved a little from the start during the epoch.
        let flats: Vec<Tensor> = (0..N)
            .map(|pos| &start + 1e-3 * (pos as f64 + 1.0))
            .collect();
        let metrics = Metrics::new("test");
        let reader = |bounded_by: Option<&Tensor>| {
            StageMerge::new(&roster, &metrics, (E, StageIndex(0)), total).bounded(&spec, bounded_by)
        };
        let shard = |t: &Tensor, i: usize| {
            let (s, l) = reader(None).range(i);
            t.narrow(0, s, l)
        };
        // Scatter.
        for pos in 0..N {
            let k = key[pos];
            for i in 0..N {
                let own = shard(&flats[pos], i);
                let copy = if pos == liar {
                    Adversary::MergeExtreme.copy(&own)
                } else {
                    own
                };
                put(&stores[k], &keys[k], Kind::Shard, i, &copy).await;
            }
        }
        // Reduce: the honest reducers through the merge reader, bounded by their start.
        for pos in 0..N {
            let r = reader(Some(&start));
            for i in reduced_by(pos, N) {
                let mut parts = Vec::new();
                for j in 0..N {
                    if let Some(t) = r.read(Kind::Shard, j, i).await {
                        parts.push((j, t));
                    }
                }
                let honest = r.reduce(i, parts).unwrap();
                let up = if pos == liar {
                    Adversary::MergeExtreme.reduction(&honest)
                } else {
                    honest
                };
                put(&stores[key[pos]], &keys[key[pos]], Kind::Merged, i, &up).await;
            }
        }
        assert!(
            metrics.rejections("merge_bound") >= 2,
            "each honest reducer skipped the extreme copy"
        );
        let honest_mean = mean(
            &(0..N)
                .filter(|&p| p != liar)
                .map(|p| flats[p].shallow_clone())
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .unwrap();
        // Assemble: every honest miner keeps the mean of the honest copies.
        for pos in (0..N).filter(|&p| p != liar) {
            let r = reader(Some(&start));
            let mut pieces = Vec::new();
            for i in 0..N {
                let got = r.reducers(i).map(|p| p.map(|p| (p, i)));
                let mut pair = [None, None];
                for (slot, g) in got.into_iter().enumerate() {
                    if let Some((p, i)) = g {
                        pair[slot] = r.read(Kind::Merged, p, i).await;
                    }
                }
                let (piece, own) = shard_kept(
                    &r,
                    i,
                    pair,
                    spec.swarm.twin_tolerance,
                    shard(&flats[pos], i),
                )
                .await;
                assert!(!own, "shard {i} settled from the peers");
                pieces.push(piece);
            }
            let merged = Tensor::cat(&pieces, 0);
            assert!(
                merged.allclose(&honest_mean, 1e-6, 1e-7, false),
                "{merged:?} against {honest_mean:?}"
            );
        }
        // A joiner, without the epoch's start: the median of the three copies is its centre.
        let joined = reader(None)
            .assemble(spec.swarm.twin_tolerance)
            .await
            .unwrap();
        assert!(joined.allclose(&honest_mean, 1e-6, 1e-7, false));
        // A reduction out of reach with no twin to settle it is not kept: the miner keeps its
        // own values of the shard.
        let r = reader(Some(&start));
        let own = shard(&flats[0], 1);
        let extreme = Adversary::MergeExtreme.reduction(&own);
        let (piece, kept_own) = shard_kept(
            &r,
            1,
            [Some(extreme), None],
            spec.swarm.twin_tolerance,
            own.copy(),
        )
        .await;
        assert!(kept_own && piece.equal(&own));
    }
}
