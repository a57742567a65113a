//! Following the run: what every miner verifiably did in an epoch.
//!
//! Once an epoch's merge is over, the validator reads the epoch's roster from chain and every
//! miner's artifacts from its store, opening each against the roster exactly as a miner would
//! (size, signature, registration and stage, hash, dims). Work counts only what verifies and
//! was consumed downstream: an activation counts when the miner it was routed to returned a
//! verified gradient for it; a gradient counts when it verifies. The merge counts when the
//! miner uploaded a verified reduction of every shard it is responsible for.
//!
//! Every sample whose last-stage gradient verified is a finished [`Path`]: the miner at each
//! stage (stage 0 from whose store the sample's first activation came, later stages by the
//! routing every process computes alike) and the loss the last stage's miner put in the
//! gradient's header. CLASP ([`crate::clasp`]) attributes those losses.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use futures::StreamExt;
use futures::future::join_all;
use sliver_common::artifact::{ArtifactId, Expect, Hotkey, Kind};
use sliver_common::assignment::Member;
use sliver_common::layout;
use sliver_common::merge::reduced_by;
use sliver_common::metrics::Metrics;
use sliver_common::{Epoch, RunSpec, StageIndex, WireCodec, routing};
use sliver_subnet::fetch;
use sliver_subnet::merged::{StageMerge, Weighting};
use sliver_subnet::run::Roster;
use tch::Tensor;
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
    /// Activations uploaded that verified.
    pub activations: u64,
    /// Verified activations consumed downstream (a verified gradient came back for them).
    pub consumed: u64,
    /// Gradients uploaded that verified.
    pub gradients: u64,
    /// Artifacts of this miner that were rejected.
    pub rejected: u64,
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
}

const CONCURRENCY: usize = 16;

/// Miners whose stores are read at once (each with [`CONCURRENCY`] requests in flight).
const MINERS_AT_ONCE: usize = 8;

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

/// How long one read of a miner's store may take: a sample's timeout
/// (`swarm.sample_timeout_secs`), what its peers give it too. A store that answers slowly, or
/// never, costs that miner's work, not the validator's epoch.
fn peer_deadline(spec: &RunSpec) -> std::time::Duration {
    std::time::Duration::from_secs(spec.swarm.sample_timeout_secs)
}

/// The ids of `producer`'s artifacts of `kind` that verified, each with the loss its header
/// claims, and how many were rejected. A store that cannot be read (not opened, a listing that
/// fails or takes longer than [`peer_deadline`]) is that miner's failure: warned of, counted as
/// `unreadable_store`, and no work; a read that times out counts as absent.
async fn verified_ids(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    (epoch, stage): (Epoch, StageIndex),
    producer: &Hotkey,
    kind: Kind,
    codec: &WireCodec,
) -> (HashMap<u64, Option<f32>>, u64) {
    let unreadable = |error: String| {
        metrics.reject("unreadable_store");
        warn!(miner = %producer.short(), kind = kind.as_str(), error, "cannot read a miner's store: no work counted from it");
        (HashMap::new(), 0)
    };
    let store = match roster.store(producer) {
        Ok(s) => s,
        Err(e) => return unreadable(format!("{e:#}")),
    };
    let prefix = layout::artifacts(&spec.name, epoch, stage, producer, kind);
    let keys = match tokio::time::timeout(peer_deadline(spec), store.list(&prefix)).await {
        Ok(Ok(keys)) => keys,
        Ok(Err(e)) => return unreadable(e.to_string()),
        Err(_) => return unreadable(format!("listing took more than {:?}", peer_deadline(spec))),
    };
    let dims = spec.wire_dims();
    let mut ok = HashMap::new();
    let mut rejected = 0;
    for chunk in keys.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|key| async {
            let id = layout::id_of_key(key)?;
            let at = ArtifactId {
                epoch,
                stage,
                kind,
                id,
            };
            let expect = Expect::of(&spec.name, at, *producer, codec, &dims);
            let read = fetch::fetch_opened(store, key, &expect, roster, metrics, codec);
            Some((
                id,
                tokio::time::timeout(peer_deadline(spec), read)
                    .await
                    .unwrap_or(Ok(None)),
            ))
        }))
        .await;
        for r in results.into_iter().flatten() {
            match r {
                (id, Ok(Some((header, _)))) => {
                    ok.insert(id, header.loss);
                }
                (_, Ok(None)) => {}
                (_, Err(())) => rejected += 1,
            }
        }
    }
    (ok, rejected)
}

/// Every miner's verified artifacts of an epoch: the ids (with the loss each header claims) of
/// its activations and gradients that opened against the roster, and its row of counts.
struct Verified {
    rows: BTreeMap<Hotkey, MinerWork>,
    acts: BTreeMap<Hotkey, HashMap<u64, Option<f32>>>,
    grads: BTreeMap<Hotkey, HashMap<u64, Option<f32>>>,
}

/// One miner's verified activations (not on the last stage) and gradients (not on the first).
async fn miner_work(
    (spec, roster, metrics): (&RunSpec, &Roster, &Metrics),
    (epoch, stage, m): (Epoch, StageIndex, Member),
    (act_codec, grad_codec): (&WireCodec, &WireCodec),
) -> (
    StageIndex,
    Member,
    Option<(HashMap<u64, Option<f32>>, u64)>,
    Option<(HashMap<u64, Option<f32>>, u64)>,
) {
    let stages = spec.stages.len();
    let at = (epoch, stage);
    let a = if stage.is_last(stages) {
        None
    } else {
        Some(verified_ids(spec, roster, metrics, at, &m.hotkey, Kind::Act, act_codec).await)
    };
    let g = if stage.is_first() {
        None
    } else {
        Some(verified_ids(spec, roster, metrics, at, &m.hotkey, Kind::Grad, grad_codec).await)
    };
    (stage, m, a, g)
}

/// Lists and verifies every miner's activations and gradients of `epoch` (a few miners at a
/// time, each independently: one miner's unreadable store costs only its row), and counts the
/// activations each next-stage miner consumed (returned a verified gradient for).
async fn verified_work(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
) -> Verified {
    let act_codec = spec.activation_codec();
    let grad_codec = spec.gradient_codec();
    let stages = spec.stages.len();
    let mut acts: BTreeMap<Hotkey, HashMap<u64, Option<f32>>> = BTreeMap::new();
    let mut grads: BTreeMap<Hotkey, HashMap<u64, Option<f32>>> = BTreeMap::new();
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
            )
        })
        .collect();
    let mut done = futures::stream::iter(per_miner).buffer_unordered(MINERS_AT_ONCE);
    while let Some((stage, m, a, g)) = done.next().await {
        let mut row = MinerWork {
            uid: m.uid,
            hotkey: m.hotkey.to_string(),
            stage,
            ..MinerWork::default()
        };
        if let Some((ids, rej)) = a {
            row.activations = ids.len() as u64;
            row.rejected += rej;
            acts.insert(m.hotkey, ids);
        }
        if let Some((ids, rej)) = g {
            row.gradients = ids.len() as u64;
            row.rejected += rej;
            grads.insert(m.hotkey, ids);
        }
        rows.insert(m.hotkey, row);
    }
    // Consumed: the routed next-stage miner returned a verified gradient.
    for (stage, m) in roster.assignment.members() {
        if stage.is_last(stages) {
            continue;
        }
        let next = roster.assignment.stage(stage.next());
        let consumed = acts.get(&m.hotkey).map_or(0, |ids| {
            ids.keys()
                .filter(|id| {
                    routing::route(&spec.name, epoch, **id, stage.next(), next)
                        .and_then(|n| grads.get(&n.hotkey))
                        .is_some_and(|g| g.contains_key(id))
                })
                .count() as u64
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
/// evaluates; `None` when a shard has no reduction), and whether each miner merged.
async fn audit_merges(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    stage_params: &[i64],
    // Owned: a tensor is `Send` but not `Sync`, and the audit runs on a spawned task.
    start: Vec<Option<Tensor>>,
) -> (Vec<Option<Tensor>>, BTreeMap<Hotkey, bool>) {
    let tolerance = spec.swarm.twin_tolerance;
    let mut merged = Vec::with_capacity(spec.stages.len());
    let mut merged_ok = BTreeMap::new();
    for stage in StageIndex::all(spec.stages.len()) {
        let total = stage_params.get(stage.index()).copied().unwrap_or(0);
        // Bounded as the miners bound their merge: from the epoch's start (the last merge this
        // validator audited), so it settles a disagreement from the copies they accepted.
        let reader = StageMerge::new(&spec.name, roster, metrics, (epoch, stage), total)
            .bounded(spec, start.get(stage.index()).and_then(Option::as_ref));
        let miners = reader.miners();
        let n = miners.len();
        let mut reductions: HashMap<(usize, usize), Tensor> = HashMap::new();
        let mut ok: Vec<bool> = vec![true; n];
        for (pos, ok) in ok.iter_mut().enumerate() {
            for i in reduced_by(pos, n) {
                match reader.read(Kind::Merged, pos, i).await {
                    Some(t) => {
                        reductions.insert((i, pos), t);
                    }
                    None => *ok = false,
                }
            }
        }
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let reducers = reader.reducers(i);
            let pair = reducers.map(|r| r.and_then(|pos| reductions.remove(&(i, pos))));
            let verdict = reader.verdict(i, pair, tolerance, Weighting::Equal).await;
            for (r, off) in reducers.into_iter().zip(verdict.off) {
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
            pieces.push(verdict.kept);
        }
        for (m, ok) in miners.iter().zip(ok) {
            merged_ok.insert(m.hotkey, ok);
        }
        let pieces: Option<Vec<Tensor>> = pieces.into_iter().collect();
        merged.push(
            pieces
                .filter(|p| !p.is_empty())
                .and_then(|p| Tensor::f_cat(&p, 0).ok()),
        );
    }
    (merged, merged_ok)
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
///
/// # Errors
/// A storage listing that fails for good.
pub async fn audit(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    (stage_params, start): (&[i64], Vec<Option<Tensor>>),
) -> Result<Audit> {
    let stages = spec.stages.len();
    let Verified {
        mut rows,
        acts,
        grads,
    } = verified_work(spec, roster, metrics, epoch).await;
    let (merged, merge_ok) = audit_merges(spec, roster, metrics, epoch, stage_params, start).await;
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
    Ok(Audit {
        rows: out,
        merged,
        paths,
    })
}

/// The finished samples: a verified last-stage gradient with a loss, whose first activation
/// verified in a stage-0 miner's store.
fn finished_paths(
    spec: &RunSpec,
    roster: &Roster,
    epoch: Epoch,
    acts: &BTreeMap<Hotkey, HashMap<u64, Option<f32>>>,
    grads: &BTreeMap<Hotkey, HashMap<u64, Option<f32>>>,
) -> Vec<Path> {
    let stages = spec.stages.len();
    let first: HashMap<u64, u16> = roster
        .assignment
        .stage(StageIndex::FIRST)
        .iter()
        .flat_map(|m| {
            acts.get(&m.hotkey)
                .into_iter()
                .flat_map(|ids| ids.keys().map(|id| (*id, m.uid)))
        })
        .collect();
    let mut paths = Vec::new();
    for m in roster.assignment.stage(StageIndex::at(stages - 1)) {
        let Some(ids) = grads.get(&m.hotkey) else {
            continue;
        };
        for (&sample, &loss) in ids {
            let (Some(loss), Some(&uid0)) = (loss, first.get(&sample)) else {
                continue;
            };
            let mut uids = vec![uid0];
            for s in StageIndex::all(stages).skip(1) {
                match routing::route(&spec.name, epoch, sample, s, roster.assignment.stage(s)) {
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
