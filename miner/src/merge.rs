//! The miner's side of the merge: moving shards through storage at the end of each epoch.
//!
//! The arithmetic (shard ranges, reducers, weighted mean, twin gap) is in
//! [`sliver_common::merge`]. Here: upload this miner's copy of every shard; for each shard it
//! reduces, wait for the peers' copies until the reduce deadline, average them weighted by each
//! peer's work (its artifacts of the epoch in storage) and upload the result; then assemble the
//! stage from every shard's first reduction (its twin's when the first is missing) and check the
//! two against each other. A peer that is late or gone is left out after the deadline; a shard
//! that nobody reduced keeps this miner's own values.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sliver_common::Stage;
use sliver_common::artifact::{self, Hotkey, Kind, Unsealed, shard_id};
use sliver_common::merge::{self as arith};
use sliver_subnet::fetch;
use sliver_subnet::run::Roster;
use tch::Tensor;
use tracing::{info, warn};

use crate::adversary::{Adversary, Tamper};
use crate::worker::{Held, Worker, spawn_put};

const POLL: Duration = Duration::from_millis(100);

fn get_shard(
    w: &Worker,
    roster: &Roster,
    epoch: u64,
    stage: usize,
    producer: &Hotkey,
    kind: Kind,
    shard: (usize, usize, i64),
) -> Option<Tensor> {
    w.rt.block_on(fetch::shard(
        &w.view.spec.name,
        roster,
        &w.metrics,
        epoch,
        stage,
        producer,
        kind,
        shard,
    ))
}

/// How much `producer` worked in `epoch`: its activations and gradients in storage (at least 1).
fn work_of(w: &Worker, roster: &Roster, epoch: u64, stage: usize, producer: &Hotkey) -> f64 {
    let Ok(store) = roster.store(producer) else {
        return 1.0;
    };
    let run = &w.view.spec.name;
    let mut n = 0usize;
    for kind in [Kind::Act, Kind::Grad] {
        let prefix = artifact::prefix(run, epoch, stage, producer, kind);
        n += w.rt.block_on(store.list(&prefix)).map_or(0, |k| k.len());
    }
    n.max(1) as f64
}

/// Runs the merge of epoch `epoch` for the stage `h` holds; returns the compute time it took.
///
/// # Errors
/// A libtorch failure or merged weights that do not fit the stage.
pub(crate) fn run(w: &Worker, h: &mut Held, epoch: u64, roster: &Roster) -> Result<Duration> {
    let swarm = &w.view.spec.swarm;
    let run = w.view.spec.name.clone();
    let s = h.index;
    let me = w.signer.hotkey();
    let miners = roster.assignment.stage(s).to_vec();
    let n = miners.len();
    let pos = miners
        .iter()
        .position(|m| m.hotkey == me)
        .context("this miner is not in its stage's roster")?;
    if w.adversary == Some(Adversary::Late) {
        // Tests and benchmarks: misses the merge altogether and keeps its own weights.
        w.wait_for_block(swarm.epoch_start(epoch + 1) + swarm.merge_blocks / 4);
        return Ok(Duration::ZERO);
    }
    let mut busy = Duration::ZERO;
    let t0 = Instant::now();
    let flat = arith::flatten(h.stage.var_store())?;
    let total = flat.numel() as i64;
    busy += t0.elapsed();
    let codec = fetch::shard_codec();
    let mut uploads = Vec::new();
    let seal = |kind: Kind, i: usize, t: &Tensor| -> Result<Vec<u8>> {
        let payload = codec.encode(t)?;
        let dims = t.size();
        Ok(artifact::seal(
            Unsealed {
                run: &run,
                epoch,
                stage: s as u16,
                kind,
                id: shard_id(i as u32, n as u32),
                codec: codec.kind(),
                dims: &dims,
                weights: None,
                loss: None,
            },
            &payload,
            w.signer.as_ref(),
        )?)
    };
    let put = |kind: Kind, i: usize, bytes: Vec<u8>, uploads: &mut Vec<_>| {
        let key = artifact::key(&run, epoch, s, &me, kind, shard_id(i as u32, n as u32));
        uploads.push(spawn_put(
            &w.rt,
            w.store.clone(),
            key,
            bytes,
            kind,
            w.metrics.clone(),
        ));
    };
    for i in 0..n {
        let (start, len) = arith::shard_range(total, n, i);
        let bytes = seal(Kind::Shard, i, &flat.narrow(0, start, len))?;
        put(Kind::Shard, i, bytes, &mut uploads);
    }
    wait_uploads(w, &mut uploads);

    // Reduce the shards this miner is responsible for.
    let reduce_deadline = swarm.merge_start(epoch) + swarm.merge_blocks * 3 / 4;
    for i in arith::reduced_by(pos, n) {
        let (start, len) = arith::shard_range(total, n, i);
        let mut parts: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
        parts[pos] = Some(flat.narrow(0, start, len));
        loop {
            for (j, m) in miners.iter().enumerate() {
                if parts[j].is_none() {
                    parts[j] = get_shard(w, roster, epoch, s, &m.hotkey, Kind::Shard, (i, n, len));
                }
            }
            if parts.iter().all(Option::is_some)
                || w.block() >= reduce_deadline
                || w.cancel.is_cancelled()
            {
                break;
            }
            std::thread::sleep(POLL);
        }
        let missing: Vec<String> = miners
            .iter()
            .zip(&parts)
            .filter(|(_, p)| p.is_none())
            .map(|(m, _)| m.hotkey.short())
            .collect();
        if !missing.is_empty() {
            warn!(
                epoch,
                stage = s,
                shard = i,
                ?missing,
                "merging without late or absent peers"
            );
        }
        let weighted: Vec<(f64, Tensor)> = miners
            .iter()
            .zip(parts)
            .filter_map(|(m, p)| p.map(|t| (work_of(w, roster, epoch, s, &m.hotkey), t)))
            .collect();
        let t0 = Instant::now();
        let Some(mean) = arith::weighted_mean(&weighted)? else {
            continue;
        };
        busy += t0.elapsed();
        let mean = w
            .adversary
            .map_or(mean.shallow_clone(), |a| a.reduction(&mean));
        let bytes = seal(Kind::Merged, i, &mean)?;
        put(Kind::Merged, i, bytes, &mut uploads);
    }
    wait_uploads(w, &mut uploads);

    // Assemble from every shard's reductions.
    let assemble_deadline = swarm.epoch_start(epoch + 1) + swarm.merge_blocks / 4;
    let mut pieces = Vec::with_capacity(n);
    let mut from_own = 0;
    for i in 0..n {
        let (start, len) = arith::shard_range(total, n, i);
        let [first, twin] = arith::reducers(i, n);
        let mut got: [Option<Tensor>; 2] = [None, None];
        loop {
            for (slot, r) in [first, twin].into_iter().enumerate() {
                if got[slot].is_none() {
                    got[slot] = get_shard(
                        w,
                        roster,
                        epoch,
                        s,
                        &miners[r].hotkey,
                        Kind::Merged,
                        (i, n, len),
                    );
                }
            }
            let done = got[0].is_some() && (got[1].is_some() || first == twin);
            if done || w.block() >= assemble_deadline || w.cancel.is_cancelled() {
                break;
            }
            std::thread::sleep(POLL);
        }
        let mut settled = None;
        if let [Some(a), Some(b)] = &got {
            let gap = arith::relative_gap(a, b)?;
            if gap > swarm.twin_tolerance {
                w.metrics.reject("twin");
                // Settle it: reduce the shard here from every member's copy and keep the
                // reduction that matches (or this one, when neither does).
                let parts: Vec<(f64, Tensor)> = miners
                    .iter()
                    .filter_map(|m| {
                        get_shard(w, roster, epoch, s, &m.hotkey, Kind::Shard, (i, n, len))
                            .map(|t| (work_of(w, roster, epoch, s, &m.hotkey), t))
                    })
                    .collect();
                let settled_by = arith::settle([a, b], &parts, swarm.twin_tolerance)?;
                warn!(
                    epoch,
                    stage = s,
                    shard = i,
                    first = %miners[first].hotkey.short(),
                    first_wrong = settled_by.off[0],
                    twin = %miners[twin].hotkey.short(),
                    twin_wrong = settled_by.off[1],
                    gap,
                    "the two reductions of a shard disagree; reduced it here to settle it"
                );
                settled = settled_by.keep([a, b]);
            }
        }
        let [a, b] = got;
        pieces.push(match settled.or(a).or(b) {
            Some(t) => t,
            None => {
                from_own += 1;
                flat.narrow(0, start, len)
            }
        });
    }
    let t0 = Instant::now();
    let merged = Tensor::f_cat(&pieces, 0)?;
    arith::load_flat(h.stage.var_store_mut(), &merged)?;
    busy += t0.elapsed();
    info!(
        epoch,
        stage = s,
        miners = n,
        shards_kept_local = from_own,
        "merged the stage"
    );
    Ok(busy)
}

fn wait_uploads(w: &Worker, uploads: &mut Vec<tokio::task::JoinHandle<()>>) {
    let pending = std::mem::take(uploads);
    w.rt.block_on(async {
        for u in pending {
            let _ = u.await;
        }
    });
}

/// Loads the newest merged weights of `stage`'s index from storage, looking back from the epoch
/// before `current`; returns the epoch they are from.
///
/// # Errors
/// A chain error, or merged weights that do not fit the stage.
pub(crate) fn load_latest(w: &Worker, stage: &mut Stage, current: u64) -> Result<Option<u64>> {
    let s = stage.index();
    let t0 = Instant::now();
    let flat = arith::flatten(stage.var_store())?;
    let total = flat.numel() as i64;
    for epoch in (current.saturating_sub(16)..current).rev() {
        let roster = w.rt.block_on(w.view.roster(epoch))?;
        let merged = w.rt.block_on(fetch::merged_stage(
            &w.view.spec.name,
            &roster,
            &w.metrics,
            epoch,
            s,
            total,
        ));
        if let Some(flat) = merged {
            arith::load_flat(stage.var_store_mut(), &flat)?;
            info!(epoch, stage = s, took = ?t0.elapsed(), "loaded merged weights");
            return Ok(Some(epoch));
        }
    }
    Ok(None)
}
