//! Following the run: what every miner verifiably did in an epoch.
//!
//! Once an epoch's merge is over, the validator reads the epoch's roster from chain, lists every
//! miner's artifacts in its store and reads a random sample of them
//! (`validation.audit_reads` per miner and kind), opening each against the roster exactly as a
//! miner would (size, signature, registration and stage, hash, dims); the ones left unread count
//! at the share of the read ones that verified (`Seen`). Work counts only what verifies, is
//! provably the miner's (`provable`: an id it started on stage 0, routed to it past stage 0,
//! and for a gradient an input that verified upstream) and was consumed downstream: an
//! activation counts when the miner it was routed to returned a verified gradient for it; a
//! gradient counts when it verifies. The merge counts when the miner uploaded a verified
//! reduction of every shard it is responsible for.
//!
//! Every miner's store is a stranger's server: miners are read concurrently (a few at a time),
//! every read is bounded ([`within`]: a sample's timeout, and the audit's [`Deadline`] on the
//! chain clock), and whatever a store answers (an error, nothing, garbage, a body that never
//! ends) costs that miner its work, logged and counted, never the audit.
//!
//! Every sample whose last-stage gradient verified is a finished [`Path`]: the miner at each
//! stage (stage 0 from whose store the sample's first activation came, later stages by the
//! routing every process computes alike) and the loss the last stage's miner put in the
//! gradient's header. CLASP ([`crate::clasp`]) attributes those losses.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::seq::SliceRandom;

use futures::StreamExt;
use futures::future::join_all;
use sliver_common::artifact::{ArtifactId, Expect, Hotkey, Kind};
use sliver_common::assignment::Member;
use sliver_common::layout;
use sliver_common::merge::reduced_by;
use sliver_common::metrics::Metrics;
use sliver_common::routing::Origins;
use sliver_common::{Epoch, RunSpec, StageIndex, WireCodec, routing};
use sliver_subnet::fetch;
use sliver_subnet::merged::{StageMerge, Weighting};
use sliver_subnet::run::Roster;
use tch::Tensor;
use tokio::sync::watch;
use tracing::warn;

/// What one miner did in one epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinerWork {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: String,
    /// Its stage.
    pub stage: StageIndex,
    /// Its share of its stage's samples in the epoch's routing (0 to 1; see
    /// `sliver_common::assignment::weights`).
    pub share: f64,
    /// Activations uploaded that verified.
    pub activations: u64,
    /// Verified activations consumed downstream (a verified gradient came back for them).
    pub consumed: u64,
    /// Gradients uploaded that verified.
    pub gradients: u64,
    /// Artifacts of this miner that were rejected.
    pub rejected: u64,
    /// Artifacts of this miner listed but not read before the audit's deadline (its store let
    /// a read time out): not counted as work, but not known to be absent either, so the spot
    /// checks' bound on its optimizer steps counts them.
    pub unread: u64,
    /// Whether it uploaded a verified reduction of every shard it reduces.
    pub merged: bool,
    /// Forwards that verified and were consumed downstream (the last stage: its verified
    /// gradients, forward and backward being one step there).
    pub samples_forward: u64,
    /// Backwards that verified (stage 0's leave no artifact: its consumed forwards stand in).
    pub samples_backward: u64,
    /// Its artifacts recomputed by spot checks.
    pub spot_checks: u64,
    /// Spot checks that did not match.
    pub spot_check_failures: u64,
    /// Samples it completed: verified forwards plus verified backwards.
    pub work: u64,
    /// Its artifacts listed (for samples that were its own) that verified or were left
    /// unread, plus [`unread`]: the most artifacts, so optimizer steps, its work can stand
    /// for.
    ///
    /// [`unread`]: MinerWork::unread
    pub listed: u64,
}

const CONCURRENCY: usize = 16;

/// Miners whose stores are read at once (each with [`CONCURRENCY`] requests in flight). A
/// stalling store holds its slot for two read timeouts at most (the listing, then one chunk of
/// reads), so only many of them together could push honest miners past the deadline.
const MINERS_AT_ONCE: usize = 16;

/// A finished sample: who computed it at each stage, and its loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The sample id.
    pub sample: u64,
    /// The uid of the miner at each stage, stage 0 first.
    pub uids: Vec<u16>,
    /// The training loss the last stage reported.
    pub loss: f32,
}

pub use fetch::peer_deadline;

/// When an audit's reads must be over: once the chain's clock reaches `block`.
///
/// The spec names no block time, so the budget is not turned into wall-clock seconds: the
/// validator's own view of the chain head (the clock its epoch loop follows) is compared with
/// the block. The epoch loop gives the epoch's `audit_end` (the audit starts at `score_at`):
/// a read still running then is abandoned, and what it would have shown counts for nothing.
#[derive(Debug, Clone)]
pub struct Deadline {
    clock: watch::Receiver<u64>,
    block: u64,
}

impl Deadline {
    /// Reads end once `clock` reaches `block`.
    pub fn at(clock: watch::Receiver<u64>, block: u64) -> Deadline {
        Deadline { clock, block }
    }

    /// No deadline but each read's own ([`peer_deadline`]).
    pub fn none() -> Deadline {
        let (_, clock) = watch::channel(0);
        Deadline {
            clock,
            block: u64::MAX,
        }
    }

    /// Whether the clock has reached the deadline.
    pub fn passed(&self) -> bool {
        *self.clock.borrow() >= self.block
    }

    /// Resolves once the clock reaches the deadline (never, should the clock stop).
    pub async fn reached(&self) {
        let mut clock = self.clock.clone();
        loop {
            if *clock.borrow_and_update() >= self.block {
                return;
            }
            if clock.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// `read` of a miner's store, if it ends within [`peer_deadline`] and before `deadline`;
/// `None` when it does not (it is then dropped).
pub async fn within<T>(
    spec: &RunSpec,
    deadline: &Deadline,
    read: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        r = tokio::time::timeout(peer_deadline(spec), read) => r.ok(),
        () = deadline.reached() => None,
    }
}

/// What the audit knows of one miner's artifacts of one kind: the ones it read in full and
/// that verified, the ones listed but left unread (beyond `validation.audit_reads`),
/// and the share of the read ones that verified, which each unread one counts for.
///
/// When a miner lists no more than the audit reads, nothing is left unread and the counts are
/// exact; past that, they are unbiased estimates of its verified work (the reads are chosen at
/// random after the artifacts were uploaded, so a miner cannot put its real work where they
/// will land).
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Read in full and verified, each with the loss its header claims.
    good: HashMap<u64, Option<f32>>,
    /// Listed, not read.
    unread: HashSet<u64>,
    /// The share of the reads that verified (1 when every read one did).
    share: f64,
}

impl Seen {
    /// Whether `id` verified or is listed unread.
    fn present(&self, id: u64) -> bool {
        self.good.contains_key(&id) || self.unread.contains(&id)
    }

    /// What `id` counts for: 1 when it verified, the share when it is listed unread.
    fn weight(&self, id: u64) -> f64 {
        if self.good.contains_key(&id) {
            1.0
        } else if self.unread.contains(&id) {
            self.share
        } else {
            0.0
        }
    }

    /// Keeps only the ids `keep` says to; returns how many it dropped.
    fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> u64 {
        let before = self.good.len() + self.unread.len();
        self.good.retain(|id, _| keep(*id));
        self.unread.retain(|id| keep(*id));
        (before - self.good.len() - self.unread.len()) as u64
    }

    /// The verified count: the ones read plus the unread at the share, rounded.
    fn count(&self) -> u64 {
        (self.good.len() as f64 + self.share * self.unread.len() as f64).round() as u64
    }

    /// Every id it holds, verified or unread.
    fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.good.keys().chain(self.unread.iter()).copied()
    }

    /// How many ids it holds, verified or unread.
    fn len(&self) -> u64 {
        (self.good.len() + self.unread.len()) as u64
    }
}

/// Lists `producer`'s artifacts of `kind`, reads `spec.validation.audit_reads` of them chosen
/// at random in full, and returns what verified (with the loss each header claims), the rest
/// left unread, and how many were rejected. A store that cannot be read (not opened, a listing
/// that fails, or takes longer than [`peer_deadline`] or past `deadline`) is that miner's
/// failure: warned of (naming the miner and the error), counted as `unreadable_store`, and no
/// work. A read artifact that is rejected, or absent although listed, lowers the share the
/// unread ones count for. An artifact whose read does not end in time counts as absent
/// (counted as `timeout`), and its store is not read further: its unread ones count nothing.
async fn verified_ids(
    (spec, roster, metrics): (&RunSpec, &Roster, &Metrics),
    (epoch, stage): (Epoch, StageIndex),
    (producer, uid): (&Hotkey, u16),
    kind: Kind,
    codec: &WireCodec,
    deadline: &Deadline,
) -> (Seen, Counts) {
    let unreadable = |error: String| {
        metrics.reject("unreadable_store");
        warn!(
            %epoch,
            uid,
            miner = %producer.short(),
            kind = kind.as_str(),
            error,
            "cannot read a miner's store: no work counted from it"
        );
        (Seen::default(), Counts::default())
    };
    let store = match roster.store(producer) {
        Ok(s) => s,
        Err(e) => return unreadable(format!("{e:#}")),
    };
    let prefix = layout::artifacts(&spec.name, epoch, stage, producer, kind);
    let keys = match within(spec, deadline, store.list(&prefix)).await {
        Some(Ok(keys)) => keys,
        Some(Err(e)) => return unreadable(e.to_string()),
        None => {
            return unreadable(format!(
                "listing did not end within {:?} or before block {}",
                peer_deadline(spec),
                deadline.block
            ));
        }
    };
    // One key per id (a hostile listing may repeat one), in a random order: the first
    // `audit_reads` are read, the rest stay unread.
    let mut listed: Vec<(u64, String)> = keys
        .into_iter()
        .filter_map(|key| Some((layout::id_of_key(&key)?, key)))
        .collect::<HashMap<u64, String>>()
        .into_iter()
        .collect();
    listed.sort_unstable_by_key(|(id, _)| *id);
    listed.shuffle(&mut rand::rng());
    let reads = spec.validation.audit_reads.min(listed.len());
    let dims = spec.wire_dims();
    let mut seen = Seen {
        unread: listed[reads..].iter().map(|(id, _)| *id).collect(),
        ..Seen::default()
    };
    let mut rejected = 0;
    let mut absent = 0u64;
    let mut late = 0u64;
    let mut unread = 0;
    for (n, chunk) in listed[..reads].chunks(CONCURRENCY).enumerate() {
        let results = join_all(chunk.iter().map(|(id, key)| async move {
            let at = ArtifactId {
                epoch,
                stage,
                kind,
                id: *id,
            };
            let expect = Expect::of(&roster.run, at, *producer, codec, &dims);
            let read = fetch::fetch_opened(store, key, &expect, roster, metrics, codec);
            (*id, within(spec, deadline, read).await)
        }))
        .await;
        for r in results {
            match r {
                (id, Some(Ok(Some((header, _))))) => {
                    seen.good.insert(id, header.loss);
                }
                (_, Some(Ok(None))) => absent += 1,
                (_, Some(Err(()))) => rejected += 1,
                (_, None) => {
                    metrics.reject("timeout");
                    late += 1;
                }
            }
        }
        // A store that lets reads time out is not waited on again: the rest of its artifacts
        // count for nothing (so a stalling miner holds a slot for two timeouts at most).
        if late > 0 {
            unread = listed.len().saturating_sub((n + 1) * CONCURRENCY);
            break;
        }
    }
    if late > 0 {
        warn!(
            %epoch,
            uid,
            miner = %producer.short(),
            kind = kind.as_str(),
            late,
            unread,
            "a miner's store did not serve its artifacts in time: the rest not read, none counted"
        );
        seen.unread.clear();
    }
    let read = seen.good.len() as u64 + absent + rejected;
    seen.share = if read == 0 {
        0.0
    } else {
        seen.good.len() as f64 / read as f64
    };
    let unread = if late > 0 { late + unread as u64 } else { 0 };
    (seen, Counts { rejected, unread })
}

/// What reading one miner's artifacts of a kind counted besides the verified ones.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Artifacts refused on opening.
    rejected: u64,
    /// Artifacts listed but not read in time (the rest of a store that let a read time out).
    unread: u64,
}

/// Every miner's verified artifacts of an epoch: the ids (with the loss each header claims) of
/// its activations and gradients that opened against the roster, and its row of counts.
struct Verified {
    rows: BTreeMap<Hotkey, MinerWork>,
    acts: BTreeMap<Hotkey, Seen>,
    grads: BTreeMap<Hotkey, Seen>,
}

/// One miner's verified activations (not on the last stage) and gradients (not on the first).
async fn miner_work(
    (spec, roster, metrics): (&RunSpec, &Roster, &Metrics),
    (epoch, stage, m): (Epoch, StageIndex, Member),
    (act_codec, grad_codec): (&WireCodec, &WireCodec),
    deadline: &Deadline,
) -> (
    StageIndex,
    Member,
    Option<(Seen, Counts)>,
    Option<(Seen, Counts)>,
) {
    let stages = spec.stages.len();
    let cx = (spec, roster, metrics);
    let at = (epoch, stage);
    let who = (&m.hotkey, m.uid);
    let a = if stage.is_last(stages) {
        None
    } else {
        Some(verified_ids(cx, at, who, Kind::Act, act_codec, deadline).await)
    };
    let g = if stage.is_first() {
        None
    } else {
        Some(verified_ids(cx, at, who, Kind::Grad, grad_codec, deadline).await)
    };
    (stage, m, a, g)
}

/// Keeps of the verified artifacts only what is provably each miner's work, stage by stage
/// (so a stage's inputs are settled before the next stage's gradients are judged): on stage 0
/// an activation counts only for an id its producer started ([`Origins`]); past stage 0, an
/// activation counts only for an id routed to its producer, and a gradient only for an id
/// routed to its producer whose input activation verified: at stage 1 in the store of the
/// stage-0 miner that started it, later in the store of the miner of the previous stage the id
/// was routed to. Returns, per hotkey, how many artifacts were dropped because their id was not
/// its producer's (counted as `not_routed`); a gradient whose input is missing is not counted,
/// and not blamed on its producer (the input's producer may be the one that failed).
fn provable(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    acts: &mut BTreeMap<Hotkey, Seen>,
    grads: &mut BTreeMap<Hotkey, Seen>,
) -> BTreeMap<Hotkey, u64> {
    let stages = spec.stages.len();
    let mut unrouted: BTreeMap<Hotkey, u64> = BTreeMap::new();
    let first = roster.assignment.stage(StageIndex::FIRST);
    let origins = Origins::new(
        &spec.name,
        epoch,
        first,
        routing::max_samples_per_origin(spec),
    );
    let routed = |id: u64, stage: StageIndex| {
        if stage.is_first() {
            origins.of(id)
        } else {
            routing::route(&spec.name, epoch, id, stage, &roster.assignment).map(|m| m.hotkey)
        }
    };
    for m in first {
        if let Some(ids) = acts.get_mut(&m.hotkey) {
            *unrouted.entry(m.hotkey).or_default() +=
                ids.retain(|id| routed(id, StageIndex::FIRST) == Some(m.hotkey));
        }
    }
    for stage in StageIndex::all(stages).skip(1) {
        let miners = roster.assignment.stage(stage);
        if !stage.is_last(stages) {
            for m in miners {
                if let Some(ids) = acts.get_mut(&m.hotkey) {
                    *unrouted.entry(m.hotkey).or_default() +=
                        ids.retain(|id| routed(id, stage) == Some(m.hotkey));
                }
            }
        }
        let prev = stage.prev();
        let input_verified = |id: u64| {
            routed(id, prev)
                .and_then(|p| acts.get(&p))
                .is_some_and(|a| a.present(id))
        };
        for m in miners {
            let Some(ids) = grads.get_mut(&m.hotkey) else {
                continue;
            };
            *unrouted.entry(m.hotkey).or_default() +=
                ids.retain(|id| routed(id, stage) == Some(m.hotkey));
            ids.retain(input_verified);
        }
    }
    unrouted.retain(|_, n| *n > 0);
    for (hotkey, n) in &unrouted {
        for _ in 0..*n {
            metrics.reject("not_routed");
        }
        warn!(
            %epoch,
            miner = %hotkey.short(),
            artifacts = n,
            "artifacts for samples not their producer's (not started or not routed by it): not counted"
        );
    }
    unrouted
}

/// Lists and verifies every miner's activations and gradients of `epoch` (a few miners at a
/// time, each independently: one miner's unreadable or slow store costs only its row), keeps
/// what is provably each miner's ([`provable`]), and counts the activations each next-stage
/// miner consumed (returned a verified gradient for).
async fn verified_work(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    deadline: &Deadline,
) -> Verified {
    let act_codec = spec.activation_codec();
    let grad_codec = spec.gradient_codec();
    let stages = spec.stages.len();
    let mut acts: BTreeMap<Hotkey, Seen> = BTreeMap::new();
    let mut grads: BTreeMap<Hotkey, Seen> = BTreeMap::new();
    let mut rows: BTreeMap<Hotkey, MinerWork> = BTreeMap::new();
    let (act_codec, grad_codec) = (&act_codec, &grad_codec);
    let per_miner: Vec<_> = roster
        .assignment
        .members()
        .map(|(stage, m)| {
            miner_work(
                (spec, roster, metrics),
                (epoch, stage, *m),
                (act_codec, grad_codec),
                deadline,
            )
        })
        .collect();
    let mut done = futures::stream::iter(per_miner).buffer_unordered(MINERS_AT_ONCE);
    while let Some((stage, m, a, g)) = done.next().await {
        let mut row = MinerWork {
            uid: m.uid,
            hotkey: m.hotkey.to_string(),
            stage,
            share: roster.assignment.share(&m.hotkey).unwrap_or(0.0),
            ..MinerWork::default()
        };
        if let Some((ids, c)) = a {
            row.rejected += c.rejected;
            row.unread += c.unread;
            acts.insert(m.hotkey, ids);
        }
        if let Some((ids, c)) = g {
            row.rejected += c.rejected;
            row.unread += c.unread;
            grads.insert(m.hotkey, ids);
        }
        rows.insert(m.hotkey, row);
    }
    let unrouted = provable(spec, roster, metrics, epoch, &mut acts, &mut grads);
    for (hotkey, row) in &mut rows {
        row.activations = acts.get(hotkey).map_or(0, Seen::count);
        row.gradients = grads.get(hotkey).map_or(0, Seen::count);
        row.listed = acts.get(hotkey).map_or(0, Seen::len)
            + grads.get(hotkey).map_or(0, Seen::len)
            + row.unread;
        row.rejected += unrouted.get(hotkey).copied().unwrap_or(0);
    }
    // Consumed: the routed next-stage miner returned a verified gradient (each side counting
    // as what it verified, or at its share when left unread).
    for (stage, m) in roster.assignment.members() {
        if stage.is_last(stages) {
            continue;
        }
        let consumed = acts.get(&m.hotkey).map_or(0, |ids| {
            ids.ids()
                .map(|id| {
                    let returned =
                        routing::route(&spec.name, epoch, id, stage.next(), &roster.assignment)
                            .and_then(|n| grads.get(&n.hotkey))
                            .map_or(0.0, |g| g.weight(id));
                    ids.weight(id) * returned
                })
                .sum::<f64>()
                .round() as u64
        });
        if let Some(row) = rows.get_mut(&m.hotkey) {
            row.consumed = consumed;
        }
    }
    Verified { rows, acts, grads }
}

/// Audits every stage's merge. Each miner must have put a verified reduction of every shard it
/// reduces, agreeing with its twin's or, when the two disagree, with the validator's own
/// reduction of the shard's copies (weighted by `work`, as the miners weight them). Returns each
/// stage's merged weights as the merge reader assembles them (the model the validator
/// evaluates; `None` when a shard has no reduction), and whether each miner merged. Stages, and
/// the shards of a stage, are audited concurrently, every read bounded: a store that stalls
/// costs its own miner's merge, never the time of another stage's or shard's audit.
async fn audit_merges(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    stage_params: &[i64],
    // Owned: a tensor is `Send` but not `Sync`, and the audit runs on a spawned task.
    start: Vec<Option<Tensor>>,
    deadline: &Deadline,
) -> (Vec<Option<Tensor>>, BTreeMap<Hotkey, bool>) {
    // Bounded as the miners bound their merge: from the epoch's start (the last merge this
    // validator audited), so it settles a disagreement from the copies they accepted. Each
    // reader keeps its own copy of the start, so no tensor is shared across the audits.
    let readers: Vec<StageMerge<'_>> = StageIndex::all(spec.stages.len())
        .map(|stage| {
            let total = stage_params.get(stage.index()).copied().unwrap_or(0);
            StageMerge::new(roster, metrics, (epoch, stage), total)
                .bounded(spec, start.get(stage.index()).and_then(Option::as_ref))
        })
        .collect();
    drop(start);
    let audited = join_all(
        readers
            .iter()
            .map(|reader| audit_stage_merge(spec, epoch, reader, deadline)),
    )
    .await;
    let mut merged = Vec::with_capacity(audited.len());
    let mut merged_ok = BTreeMap::new();
    for (weights, ok) in audited {
        merged.push(weights);
        merged_ok.extend(ok);
    }
    (merged, merged_ok)
}

/// One stage's part of [`audit_merges`]: its merged weights, and whether each miner merged.
async fn audit_stage_merge(
    spec: &RunSpec,
    epoch: Epoch,
    reader: &StageMerge<'_>,
    deadline: &Deadline,
) -> (Option<Tensor>, Vec<(Hotkey, bool)>) {
    let tolerance = spec.swarm.twin_tolerance;
    let stage = reader.stage();
    let miners = reader.miners();
    let n = miners.len();
    let mut reductions: HashMap<(usize, usize), Tensor> = HashMap::new();
    let mut ok: Vec<bool> = vec![true; n];
    // Every reduction is read concurrently, each bounded (see [`within`]): one not read in time
    // is missing, and a stalling store costs its own miner's merge, not the time of the miners
    // read after it.
    let reads: Vec<_> = (0..n)
        .flat_map(|pos| reduced_by(pos, n).into_iter().map(move |i| (pos, i)))
        .map(|(pos, i)| async move {
            let t = within(spec, deadline, reader.read(Kind::Merged, pos, i)).await;
            (pos, i, t.flatten())
        })
        .collect();
    let read: Vec<(usize, usize, Option<Tensor>)> = futures::stream::iter(reads)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (pos, i, t) in read {
        match t {
            Some(t) => {
                reductions.insert((i, pos), t);
            }
            None => ok[pos] = false,
        }
    }
    // Settling a disagreement reads the members' copies: bounded like every read of a peer's
    // store, every shard's at once; a verdict not reached in time keeps nothing and names no one.
    let verdicts = join_all((0..n).map(|i| {
        let reducers = reader.reducers(i);
        let pair = reducers.map(|r| r.and_then(|pos| reductions.remove(&(i, pos))));
        async move {
            let v = within(
                spec,
                deadline,
                reader.verdict(i, pair, tolerance, Weighting::Equal),
            )
            .await;
            (reducers, v)
        }
    }))
    .await;
    let mut pieces = Vec::with_capacity(n);
    for (i, (reducers, v)) in verdicts.into_iter().enumerate() {
        let (kept, off) = match v {
            Some(v) => (v.kept, v.off),
            None => (None, [false; 2]),
        };
        for (r, off) in reducers.into_iter().zip(off) {
            if let (Some(r), true) = (r, off) {
                warn!(
                    %epoch,
                    %stage,
                    shard = i,
                    uid = miners[r].uid,
                    "a reduction of a shard does not match its inputs"
                );
                ok[r] = false;
            }
        }
        pieces.push(kept);
    }
    let ok = miners.iter().map(|m| m.hotkey).zip(ok).collect();
    let pieces: Option<Vec<Tensor>> = pieces.into_iter().collect();
    let weights = pieces
        .filter(|p| !p.is_empty())
        .and_then(|p| Tensor::f_cat(&p, 0).ok());
    (weights, ok)
}

/// What an epoch's audit found.
pub struct Audit {
    /// One row per miner on the roster, by uid.
    pub rows: Vec<MinerWork>,
    /// Each stage's merged weights (flat), assembled from the verified reductions the audit
    /// read: every shard from its first reducer, else its twin; `None` when a shard has neither.
    pub merged: Vec<Option<Tensor>>,
    /// Every finished sample, by id.
    pub paths: Vec<Path>,
}

/// Audits `epoch`. `stage_params` holds each stage's parameter count (the merge's flat length).
/// Every read of a miner's store ends by `deadline` (and within [`peer_deadline`]); what a
/// miner's store does not show in time, or at all, costs that miner only: the audit itself does
/// not fail for anything a peer's store answers.
pub async fn audit(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    (stage_params, start): (&[i64], Vec<Option<Tensor>>),
    deadline: &Deadline,
) -> Audit {
    let stages = spec.stages.len();
    let (
        Verified {
            mut rows,
            acts,
            grads,
        },
        (merged, merge_ok),
    ) = tokio::join!(
        verified_work(spec, roster, metrics, epoch, deadline),
        audit_merges(spec, roster, metrics, epoch, stage_params, start, deadline),
    );
    for (hotkey, ok) in merge_ok {
        if let Some(row) = rows.get_mut(&hotkey) {
            row.merged = ok;
        }
    }
    let paths = finished_paths(spec, roster, epoch, &acts, &grads);
    let mut out: Vec<MinerWork> = rows.into_values().collect();
    for r in &mut out {
        // Stage 0's backward leaves no artifact: its consumed forwards stand for both passes.
        (r.samples_forward, r.samples_backward) = if r.stage.is_first() {
            (r.consumed, r.consumed)
        } else if r.stage.is_last(stages) {
            (r.gradients, r.gradients)
        } else {
            (r.consumed, r.gradients)
        };
        r.work = r.samples_forward + r.samples_backward;
    }
    out.sort_by_key(|r| r.uid);
    Audit {
        rows: out,
        merged,
        paths,
    }
}

/// The finished samples: a last-stage gradient read in full that verified with a loss, whose
/// first activation verified (or is listed unread) in a stage-0 miner's store.
fn finished_paths(
    spec: &RunSpec,
    roster: &Roster,
    epoch: Epoch,
    acts: &BTreeMap<Hotkey, Seen>,
    grads: &BTreeMap<Hotkey, Seen>,
) -> Vec<Path> {
    let stages = spec.stages.len();
    let first: HashMap<u64, u16> = roster
        .assignment
        .stage(StageIndex::FIRST)
        .iter()
        .flat_map(|m| {
            acts.get(&m.hotkey)
                .into_iter()
                .flat_map(|ids| ids.ids().map(|id| (id, m.uid)))
        })
        .collect();
    let mut paths = Vec::new();
    for m in roster.assignment.stage(StageIndex::at(stages - 1)) {
        let Some(ids) = grads.get(&m.hotkey) else {
            continue;
        };
        // Only a gradient read in full has a loss the audit saw verify.
        for (&sample, &loss) in &ids.good {
            let (Some(loss), Some(&uid0)) = (loss, first.get(&sample)) else {
                continue;
            };
            let mut uids = vec![uid0];
            for s in StageIndex::all(stages).skip(1) {
                match routing::route(&spec.name, epoch, sample, s, &roster.assignment) {
                    Some(r) => uids.push(r.uid),
                    None => break,
                }
            }
            if uids.len() == stages && uids.last() == Some(&m.uid) {
                paths.push(Path { sample, uids, loss });
            }
        }
    }
    paths.sort_by_key(|p| p.sample);
    paths
}

#[cfg(test)]
mod tests {
    use sliver_chain::wallet::Keypair;
    use sliver_common::artifact::{self, Signer, Unsealed};
    use sliver_common::assignment::Assignment;
    use sliver_common::codec::CodecKind;
    use sliver_common::storage::{Store, StoreConfig};
    use sliver_common::testing::tiny_spec;

    use super::*;

    // The artifact signer the neurons use: a wallet hotkey.
    use sliver_subnet::signer::HotkeySigner as Key;

    /// Seals and puts `signer`'s artifact `at` (a zero tensor of the wire's dims), naming
    /// `inputs` as its evidence, in `store`; returns its header.
    async fn put(
        spec: &RunSpec,
        store: &Store,
        signer: &Key,
        at: ArtifactId,
        inputs: &[&artifact::Header],
    ) -> artifact::Header {
        let codec = if at.kind == Kind::Grad {
            spec.gradient_codec()
        } else {
            spec.activation_codec()
        };
        let dims = spec.wire_dims();
        let t = Tensor::zeros(dims.as_slice(), (tch::Kind::Float, tch::Device::Cpu));
        let bytes = artifact::seal(
            Unsealed {
                run: &sliver_common::testing::test_run(&spec.name),
                at,
                codec: codec.kind(),
                dims: &dims,
                weights: None,
                loss: (at.kind == Kind::Grad).then_some(1.0),
                inputs,
            },
            &codec.encode(&t).unwrap(),
            signer,
        )
        .unwrap();
        let key = layout::artifact(&spec.name, &signer.hotkey(), at);
        let header = artifact::read_header(&bytes).unwrap().0;
        store.put_once(&key, bytes.into()).await.unwrap();
        header
    }

    /// A miner lists more artifacts than the audit reads: the audit reads exactly
    /// `audit_reads` of them, and counts the rest at the share of the read ones that verified.
    /// All real: counted in full. Half of them garbage: the garbage gains nothing beyond what
    /// the reads show (the count is twice the real ones read), and each read is one GET.
    #[tokio::test]
    async fn the_audit_reads_a_sample_and_counts_the_rest_at_its_share() {
        let mut net = Honest::new(2);
        net.spec.validation.audit_reads = 10;
        let spec = &net.spec;
        let epoch = Epoch(1);
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch,
            assignment: Assignment::new(2, &net.members()),
            stores: net
                .keys
                .iter()
                .zip(&net.stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let origin = &net.keys[0];
        let at = |id| ArtifactId {
            epoch,
            stage: StageIndex::FIRST,
            kind: Kind::Act,
            id,
        };
        let id = |c| routing::sample_id("r", epoch, &origin.hotkey(), c);
        for c in 0..20 {
            put(spec, &net.stores[0], origin, at(id(c)), &[]).await;
        }
        let roster = &roster;
        let count = |metrics: Metrics| async move {
            let v = verified_work(spec, roster, &metrics, epoch, &Deadline::none()).await;
            (v.rows[&origin.hotkey()].clone(), metrics)
        };
        let (row, metrics) = count(Metrics::new("validator")).await;
        assert_eq!((row.activations, row.rejected, row.listed), (20, 0, 20));
        assert_eq!(metrics.rejections_total(), 0);
        // Twenty more keys, under the origin's own ids, holding garbage.
        for c in 20..40 {
            let key = layout::artifact("r", &origin.hotkey(), at(id(c)));
            net.stores[0]
                .put_once(&key, vec![7u8; 99].into())
                .await
                .unwrap();
        }
        let (row, metrics) = count(Metrics::new("validator")).await;
        let garbage_read = metrics.rejections_total();
        assert_eq!(row.rejected, garbage_read);
        assert!(garbage_read <= 10);
        // 10 - g real ones read, verified: the 30 unread count at (10 - g) / 10 each.
        assert_eq!(row.activations, 4 * (10 - garbage_read));
        // The garbage read is not counted among its artifacts.
        assert_eq!(row.listed, 40 - garbage_read);
    }

    /// Two stages of two miners, each with its own store. Stage 0: `honest` starts six samples
    /// and `squatter` uploads activations under the same ids (and two of its own); stage 1:
    /// each sample's routed miner returns its gradient, and the other (`faker`'s part) also
    /// signs gradients for samples routed to its peer. Only what is provably each miner's
    /// counts: the squatter keeps its own two, the faker nothing it was not routed.
    #[tokio::test]
    async fn work_counts_only_when_it_is_provably_the_miners() {
        let mut spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        spec.name = "r".into();
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores: Vec<Store> = dirs
            .iter()
            .map(|d| Store::open(&StoreConfig::filesystem(d.path())).unwrap())
            .collect();
        let keys: Vec<Key> = (0..4).map(|_| Key(Keypair::generate())).collect();
        // Uids 0 and 2 are stage 0, 1 and 3 stage 1.
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                uid: i as u16,
                hotkey: k.hotkey(),
            })
            .collect();
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: Epoch(1),
            assignment: Assignment::new(2, &members),
            stores: keys
                .iter()
                .zip(&stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let (honest, squatter) = (0, 2);
        let epoch = Epoch(1);
        let at = |stage: u16, kind, id| ArtifactId {
            epoch,
            stage: StageIndex(stage),
            kind,
            id,
        };
        let mut routed_to: HashMap<Hotkey, u64> = HashMap::new();
        for c in 0..6 {
            let id = routing::sample_id("r", epoch, &keys[honest].hotkey(), c);
            let input = put(
                &spec,
                &stores[honest],
                &keys[honest],
                at(0, Kind::Act, id),
                &[],
            )
            .await;
            put(
                &spec,
                &stores[squatter],
                &keys[squatter],
                at(0, Kind::Act, id),
                &[],
            )
            .await;
            let to = routing::route("r", epoch, id, StageIndex(1), &roster.assignment).unwrap();
            *routed_to.entry(to.hotkey).or_default() += 1;
            // Every stage-1 miner signs a gradient for it: the routed one and the faker.
            for i in [1, 3] {
                put(
                    &spec,
                    &stores[i],
                    &keys[i],
                    at(1, Kind::Grad, id),
                    &[&input],
                )
                .await;
            }
        }
        for c in 0..2 {
            let id = routing::sample_id("r", epoch, &keys[squatter].hotkey(), c);
            put(
                &spec,
                &stores[squatter],
                &keys[squatter],
                at(0, Kind::Act, id),
                &[],
            )
            .await;
        }
        let metrics = Metrics::new("validator");
        let v = verified_work(&spec, &roster, &metrics, epoch, &Deadline::none()).await;
        let row = |i: usize| &v.rows[&keys[i].hotkey()];
        assert_eq!(row(honest).activations, 6);
        assert_eq!(row(squatter).activations, 2);
        assert_eq!(row(squatter).rejected, 6);
        for i in [1, 3] {
            let routed = routed_to.get(&keys[i].hotkey()).copied().unwrap_or(0);
            assert_eq!(row(i).gradients, routed, "miner {i}");
            assert_eq!(row(i).rejected, 6 - routed, "miner {i}");
        }
        // The honest origin's six were all consumed; the squatter's copies were not.
        assert_eq!(row(honest).consumed, 6);
        assert_eq!(row(squatter).consumed, 0);
    }

    /// A roster of honest miners on filesystem stores: `origin` (stage 0) starts samples and
    /// puts their activations, and every sample's routed stage-1 miner its gradient.
    struct Honest {
        spec: RunSpec,
        keys: Vec<Key>,
        stores: Vec<Store>,
        _dirs: Vec<tempfile::TempDir>,
    }

    impl Honest {
        fn new(n: usize) -> Honest {
            let mut spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
            spec.name = "r".into();
            let dirs: Vec<tempfile::TempDir> =
                (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
            let stores = dirs
                .iter()
                .map(|d| Store::open(&StoreConfig::filesystem(d.path())).unwrap())
                .collect();
            let keys = (0..n).map(|_| Key(Keypair::generate())).collect();
            Honest {
                spec,
                keys,
                stores,
                _dirs: dirs,
            }
        }

        fn members(&self) -> Vec<Member> {
            self.keys
                .iter()
                .enumerate()
                .map(|(i, k)| Member {
                    uid: i as u16,
                    hotkey: k.hotkey(),
                })
                .collect()
        }
    }

    /// One miner's store answers every request with hostility (403, a body trickled forever,
    /// different garbage to each reader): the audit still ends, by its deadline at the latest,
    /// with a row for every miner; the honest ones keep their work, the hostile one has none.
    #[tokio::test]
    async fn a_hostile_store_costs_only_its_miner() {
        use sliver_common::testing::hostile::{Behaviour, HostileServer, list_answer};
        // Uids 0 and 2 on stage 0 (2 is hostile), uid 1 alone on stage 1.
        let net = Honest::new(3);
        let spec = &net.spec;
        let epoch = Epoch(1);
        let members = net.members();
        let assignment = Assignment::new(2, &members);
        let hostile = net.keys[2].hotkey();
        let at = |stage: u16, kind, id| ArtifactId {
            epoch,
            stage: StageIndex(stage),
            kind,
            id,
        };
        for c in 0..4 {
            let id = routing::sample_id("r", epoch, &net.keys[0].hotkey(), c);
            let input = put(
                spec,
                &net.stores[0],
                &net.keys[0],
                at(0, Kind::Act, id),
                &[],
            )
            .await;
            put(
                spec,
                &net.stores[1],
                &net.keys[1],
                at(1, Kind::Grad, id),
                &[&input],
            )
            .await;
        }
        // What a reader of the hostile store is shown: a listing of its activations (ids it
        // started), and for every object garbage that differs from one reader to the next.
        let hostile_keys: Vec<String> = (0..4)
            .map(|c| {
                let id = routing::sample_id("r", epoch, &hostile, c);
                layout::artifact("r", &hostile, at(0, Kind::Act, id))
            })
            .collect();
        let per_reader: Behaviour = Behaviour::PerReader(std::sync::Arc::new(move |n, target| {
            if target.contains("list-type") {
                list_answer(&hostile_keys)
            } else {
                vec![n as u8; 64 + n as usize]
            }
        }));
        for behaviour in [Behaviour::Deny, Behaviour::Slow, per_reader] {
            let server = HostileServer::spawn(behaviour.clone()).await;
            let mut stores: HashMap<Hotkey, Store> = net
                .keys
                .iter()
                .zip(&net.stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect();
            stores.insert(hostile, Store::open(&server.config("peer")).unwrap());
            let roster = Roster {
                run: sliver_common::testing::test_run("r"),
                epoch,
                assignment: assignment.clone(),
                stores,
            };
            // The chain reaches the audit's deadline three seconds in; each read alone may
            // take the spec's 30 s.
            let (tx, clock) = watch::channel(0u64);
            let deadline = Deadline::at(clock, 10);
            let advance = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                let _ = tx.send(10);
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                drop(tx);
            });
            let metrics = Metrics::new("validator");
            let began = std::time::Instant::now();
            let audit = audit(
                spec,
                &roster,
                &metrics,
                epoch,
                (&[8, 8], Vec::new()),
                &deadline,
            )
            .await;
            advance.abort();
            assert!(
                began.elapsed() < std::time::Duration::from_secs(20),
                "{behaviour:?}: the audit took {:?}",
                began.elapsed()
            );
            assert!(server.connections() > 0, "{behaviour:?}");
            let work: Vec<(u16, u64)> = audit.rows.iter().map(|r| (r.uid, r.work)).collect();
            assert_eq!(work, vec![(0, 8), (1, 8), (2, 0)], "{behaviour:?}");
            assert_eq!(audit.paths.len(), 4, "{behaviour:?}");
            assert!(
                metrics.rejections("unreadable_store")
                    + metrics.rejections("timeout")
                    + metrics.rejections_total()
                    > 0,
                "{behaviour:?}: the hostile store's failure is not counted"
            );
        }
    }

    /// A miner in a two-miner stage signs gradients for samples routed to its peer, and for
    /// samples no one started: it gains no work from them, and its honest peer is not pushed
    /// under the low-work floor.
    #[tokio::test]
    async fn fake_work_gains_nothing_and_does_not_sink_the_honest_peer() {
        // Uid 0 on stage 0; uids 1 (honest) and 3 (faker) on stage 1; uid 2 (stage 0) idle.
        let net = Honest::new(4);
        let spec = &net.spec;
        let epoch = Epoch(1);
        let members = net.members();
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch,
            assignment: Assignment::new(2, &members),
            stores: net
                .keys
                .iter()
                .zip(&net.stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let (honest, faker) = (1, 3);
        let at = |stage: u16, kind, id| ArtifactId {
            epoch,
            stage: StageIndex(stage),
            kind,
            id,
        };
        let mut routed: HashMap<usize, u64> = HashMap::new();
        let mut c = 0;
        while routed.get(&honest).copied().unwrap_or(0) < 3
            || routed.get(&faker).copied().unwrap_or(0) < 3
        {
            let id = routing::sample_id("r", epoch, &net.keys[0].hotkey(), c);
            c += 1;
            let input = put(
                spec,
                &net.stores[0],
                &net.keys[0],
                at(0, Kind::Act, id),
                &[],
            )
            .await;
            let to = routing::route("r", epoch, id, StageIndex(1), &roster.assignment).unwrap();
            let i = if to.hotkey == net.keys[honest].hotkey() {
                honest
            } else {
                faker
            };
            *routed.entry(i).or_default() += 1;
            put(
                spec,
                &net.stores[i],
                &net.keys[i],
                at(1, Kind::Grad, id),
                &[&input],
            )
            .await;
            if i == honest {
                put(
                    spec,
                    &net.stores[faker],
                    &net.keys[faker],
                    at(1, Kind::Grad, id),
                    &[&input],
                )
                .await;
            }
        }
        // Gradients for samples no stage-0 miner started (no input anywhere, so no evidence of
        // one: refused on opening).
        for id in 0..40u64 {
            put(
                spec,
                &net.stores[faker],
                &net.keys[faker],
                at(1, Kind::Grad, id),
                &[],
            )
            .await;
        }
        let metrics = Metrics::new("validator");
        let mut audit = audit(
            spec,
            &roster,
            &metrics,
            epoch,
            (&[8, 8], Vec::new()),
            &Deadline::none(),
        )
        .await;
        let work = |uid: usize| {
            audit
                .rows
                .iter()
                .find(|r| r.uid == uid as u16)
                .unwrap()
                .work
        };
        assert_eq!(work(honest), 2 * routed[&honest]);
        assert_eq!(work(faker), 2 * routed[&faker]);
        assert_eq!(work(0), 2 * (routed[&honest] + routed[&faker]));
        assert!(metrics.rejections("not_routed") >= routed[&honest]);
        // Judged with every merge done and no CLASP flag: the honest peer is paid.
        for r in &mut audit.rows {
            r.merged = true;
        }
        let judged = crate::scores::judge(&audit.rows, &BTreeMap::new());
        let of = |uid: usize| judged.iter().find(|j| j.uid == uid as u16).unwrap();
        assert!(of(honest).caught.is_empty(), "{:?}", of(honest));
        assert!(of(honest).score > 0.0);
    }

    /// Picking spot checks: a hostile store (denying, or trickling forever) costs only its
    /// miner's picks; the honest miners are picked from, within the challenge's deadline.
    #[tokio::test]
    async fn a_hostile_store_does_not_stop_the_challenge() {
        use sliver_common::testing::hostile::{Behaviour, HostileServer};
        let net = Honest::new(3);
        let spec = &net.spec;
        let epoch = Epoch(1);
        let assignment = Assignment::new(2, &net.members());
        let hostile = net.keys[2].hotkey();
        for c in 0..4 {
            let id = routing::sample_id("r", epoch, &net.keys[0].hotkey(), c);
            let at = |stage: u16, kind| ArtifactId {
                epoch,
                stage: StageIndex(stage),
                kind,
                id,
            };
            let input = put(spec, &net.stores[0], &net.keys[0], at(0, Kind::Act), &[]).await;
            put(
                spec,
                &net.stores[1],
                &net.keys[1],
                at(1, Kind::Grad),
                &[&input],
            )
            .await;
        }
        let own = tempfile::tempdir().unwrap();
        let own = Store::open(&StoreConfig::filesystem(own.path())).unwrap();
        for behaviour in [Behaviour::Deny, Behaviour::Slow] {
            let server = HostileServer::spawn(behaviour.clone()).await;
            let mut stores: HashMap<Hotkey, Store> = net
                .keys
                .iter()
                .zip(&net.stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect();
            stores.insert(hostile, Store::open(&server.config("peer")).unwrap());
            let roster = Roster {
                run: sliver_common::testing::test_run("r"),
                epoch,
                assignment: assignment.clone(),
                stores,
            };
            // The chain passes the challenge's deadline (the epoch's `reduce_end`) 3 s in.
            let reduce_end = spec.swarm.schedule().timeline(epoch).reduce_end;
            let (tx, clock) = watch::channel(0u64);
            let advance = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                let _ = tx.send(reduce_end);
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                drop(tx);
            });
            let metrics = Metrics::new("validator");
            let began = std::time::Instant::now();
            let picked =
                crate::checks::challenge(spec, &roster, &metrics, epoch, (&own, &clock)).await;
            advance.abort();
            let picked = picked.unwrap();
            assert!(
                began.elapsed() < std::time::Duration::from_secs(20),
                "{behaviour:?}: took {:?}",
                began.elapsed()
            );
            let by = |i: usize| {
                picked
                    .iter()
                    .filter(|c| c.miner == net.keys[i].hotkey())
                    .count()
            };
            let k = spec.validation.spot_checks;
            assert_eq!((by(0), by(1), by(2)), (k, k, 0), "{behaviour:?}");
        }
    }
}
