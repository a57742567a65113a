//! Following the run: what every miner verifiably did in an epoch.
//!
//! Once an epoch's merge is over, the validator reads the epoch's roster from chain and every
//! miner's artifacts from its store, opening each against the roster exactly as a miner would
//! (size, signature, registration and stage, hash, dims). Work counts only what verifies and
//! was consumed downstream: an activation counts when the miner it was routed to returned a
//! verified gradient for it; a gradient counts when it verifies. The merge counts when the
//! miner uploaded a verified reduction of every shard it is responsible for.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use futures::future::join_all;
use sliver_common::artifact::{self, Expect, Hotkey, Kind};
use sliver_common::merge::{reduced_by, reducers};
use sliver_common::metrics::Metrics;
use sliver_common::{RunSpec, WireCodec, routing};
use sliver_subnet::fetch;
use sliver_subnet::run::Roster;
use tch::Tensor;

/// What one miner did in one epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinerWork {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: String,
    /// Its stage.
    pub stage: u16,
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
    /// Samples it completed: consumed forwards plus verified backwards.
    pub work: u64,
}

const CONCURRENCY: usize = 16;

async fn verified_ids(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    (epoch, stage): (u64, usize),
    producer: &Hotkey,
    kind: Kind,
    codec: &WireCodec,
) -> Result<(HashSet<u64>, u64)> {
    let store = roster.store(producer)?;
    let prefix = artifact::prefix(&spec.name, epoch, stage, producer, kind);
    let keys = store.list(&prefix).await?;
    let dims = [
        spec.optimizer.batch_size as i64,
        spec.model.seq_len as i64,
        spec.boundary.wire_dim(spec.model.d_model) as i64,
    ];
    let mut ok = HashSet::new();
    let mut rejected = 0;
    for chunk in keys.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|key| async {
            let id = artifact::id_of_key(key)?;
            let expect = Expect {
                run: &spec.name,
                epoch,
                stage: stage as u16,
                kind,
                id: Some(id),
                producer: *producer,
                codec: codec.kind(),
                dims: &dims,
                payload_len: codec.encoded_len(&dims),
            };
            Some((
                id,
                fetch::fetch(store, key, &expect, roster, metrics, codec).await,
            ))
        }))
        .await;
        for r in results.into_iter().flatten() {
            match r {
                (id, Ok(Some(_))) => {
                    ok.insert(id);
                }
                (_, Ok(None)) => {}
                (_, Err(())) => rejected += 1,
            }
        }
    }
    Ok((ok, rejected))
}

/// What an epoch's audit found.
pub struct Audit {
    /// One row per miner on the roster, by uid.
    pub rows: Vec<MinerWork>,
    /// Each stage's merged weights (flat), assembled from the verified reductions the audit
    /// read: every shard from its first reducer, else its twin; `None` when a shard has neither.
    pub merged: Vec<Option<Tensor>>,
}

/// Audits `epoch`. `stage_params` holds each stage's parameter count (the merge's flat length).
///
/// # Errors
/// A storage listing that fails for good.
pub async fn audit(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: u64,
    stage_params: &[i64],
) -> Result<Audit> {
    let b = &spec.boundary;
    let act_codec = WireCodec::new(b.codec, b.codec_row);
    let grad_codec = WireCodec::new(b.grad_codec(), b.codec_row);
    let stages = spec.stages.len();
    let mut acts: BTreeMap<Hotkey, HashSet<u64>> = BTreeMap::new();
    let mut grads: BTreeMap<Hotkey, HashSet<u64>> = BTreeMap::new();
    let mut rows: BTreeMap<Hotkey, MinerWork> = BTreeMap::new();
    for (stage, m) in roster.assignment.members() {
        let mut row = MinerWork {
            uid: m.uid,
            hotkey: m.hotkey.to_string(),
            stage: stage as u16,
            ..MinerWork::default()
        };
        if stage + 1 < stages {
            let (ids, rej) = verified_ids(
                spec,
                roster,
                metrics,
                (epoch, stage),
                &m.hotkey,
                Kind::Act,
                &act_codec,
            )
            .await?;
            row.activations = ids.len() as u64;
            row.rejected += rej;
            acts.insert(m.hotkey, ids);
        }
        if stage > 0 {
            let (ids, rej) = verified_ids(
                spec,
                roster,
                metrics,
                (epoch, stage),
                &m.hotkey,
                Kind::Grad,
                &grad_codec,
            )
            .await?;
            row.gradients = ids.len() as u64;
            row.rejected += rej;
            grads.insert(m.hotkey, ids);
        }
        rows.insert(m.hotkey, row);
    }
    // Consumed: the routed next-stage miner returned a verified gradient.
    for (stage, m) in roster.assignment.members() {
        if stage + 1 >= stages {
            continue;
        }
        let next = roster.assignment.stage(stage + 1);
        let consumed = acts.get(&m.hotkey).map_or(0, |ids| {
            ids.iter()
                .filter(|id| {
                    routing::route(&spec.name, epoch, **id, stage + 1, next)
                        .and_then(|n| grads.get(&n.hotkey))
                        .is_some_and(|g| g.contains(id))
                })
                .count() as u64
        });
        if let Some(row) = rows.get_mut(&m.hotkey) {
            row.consumed = consumed;
        }
    }
    // Merge: a verified reduction of every shard the miner reduces. The reductions read here
    // are also the merged model the validator evaluates.
    let mut merged = Vec::with_capacity(stages);
    for stage in 0..stages {
        let miners = roster.assignment.stage(stage);
        let n = miners.len();
        let total = stage_params.get(stage).copied().unwrap_or(0);
        let mut reductions: HashMap<(usize, usize), Tensor> = HashMap::new();
        for (pos, m) in miners.iter().enumerate() {
            let mut all = true;
            for i in reduced_by(pos, n) {
                let (_, len) = sliver_common::merge::shard_range(total, n, i);
                let got = fetch::shard(
                    &spec.name,
                    roster,
                    metrics,
                    epoch,
                    stage,
                    &m.hotkey,
                    Kind::Merged,
                    (i, n, len),
                )
                .await;
                all &= got.is_some();
                if let Some(t) = got {
                    reductions.insert((i, pos), t);
                }
            }
            if let Some(row) = rows.get_mut(&m.hotkey) {
                row.merged = all;
            }
        }
        let pieces: Option<Vec<Tensor>> = (0..n)
            .map(|i| {
                reducers(i, n)
                    .iter()
                    .find_map(|r| reductions.remove(&(i, *r)))
            })
            .collect();
        merged.push(
            pieces
                .filter(|p| !p.is_empty())
                .and_then(|p| Tensor::f_cat(&p, 0).ok()),
        );
    }
    let mut out: Vec<MinerWork> = rows.into_values().collect();
    for r in &mut out {
        // Stage 0's backward leaves no artifact: its consumed forwards stand for both passes.
        r.work = if r.stage == 0 {
            2 * r.consumed
        } else if usize::from(r.stage) + 1 == stages {
            2 * r.gradients
        } else {
            r.consumed + r.gradients
        };
    }
    out.sort_by_key(|r| r.uid);
    Ok(Audit { rows: out, merged })
}
