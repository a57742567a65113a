//! The protocol at many miners in a few processes (what `scripts/bench-scale` measures), with
//! the invariants that must hold at any size: 32 miners in 4 stages, eight to a `btminer`
//! process (`--sim.hotkeys`), each with its own hotkey, chain connection, store link and state,
//! against the real local chain, a filesystem store and the validator.
//!
//! Over three scored epochs: every sample a miner took on is trained or counted as dropped
//! (`forwards == backwards + dropped`); both reductions of every shard agree (every miner of a
//! stage ends each epoch with the same merged weights); each miner keeps its stage from epoch to
//! epoch; every miner is paid and none is caught; and every storage request each miner made is
//! on its record (its link's tally).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sliver_launcher::localnet::{Localnet, Options};

use crate::short_run;
use crate::swarm::{SERIAL, next, recorded_epochs};

const STAGES: usize = 4;
const PER_STAGE: usize = 8;
const SCORED: u64 = 3;

fn options(dir: &Path) -> Options {
    let mut spec = short_run::spec("scale-test", &[[0, 1], [1, 2], [2, 3], [3, 4]], 1);
    spec.optimizer.batch_size = 4;
    spec.swarm.window = 2;
    // 32 miners and the validator share 2 cores, and the validator's audit of every miner must
    // end by its deadline: reading every artifact (a few hundred a miner) it did not reach the
    // later stages' miners, which then counted no work. The audit reads a sample of each
    // miner's artifacts and counts the rest at the share that verified, as at scale.
    spec.validation.audit_reads = 16;
    spec.swarm.epoch_blocks = 200;
    spec.swarm.merge_blocks = 60;
    Options {
        miners_per_stage: PER_STAGE,
        epochs: SCORED + 1,
        miners_per_process: 8,
        ..short_run::options(dir, short_run::write(dir, &spec))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_miners_in_four_processes_keep_the_protocol_s_invariants() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut net = Localnet::start(options(tmp.path())).await.unwrap();
    assert_eq!(net.miners.len(), STAGES * PER_STAGE);
    assert_eq!(net.miner_pids().len(), STAGES * PER_STAGE / 8);
    // The first scored epoch is the one the miners join during; the next ones are checked.
    let first = next(&mut net).epoch.get();
    let mut scored = Vec::new();
    for _ in 0..SCORED {
        let r = next(&mut net);
        assert!(r.eval_loss.is_some(), "epoch {}: no held-out loss", r.epoch);
        assert_eq!(r.miners.len(), STAGES * PER_STAGE, "epoch {}", r.epoch);
        for m in &r.miners {
            assert!(
                m.passes > 0,
                "epoch {}: uid {} did no verified work",
                r.epoch,
                m.uid
            );
            assert!(
                m.caught.is_empty(),
                "epoch {}: uid {} caught: {:?}",
                r.epoch,
                m.uid,
                m.caught
            );
        }
        scored.push(r.epoch.get());
    }
    net.stop();
    let mut merged: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    for i in 0..net.miners.len() {
        let epochs = recorded_epochs(&net, i);
        let stages: BTreeSet<u64> = epochs.iter().filter_map(|v| v["stage"].as_u64()).collect();
        assert_eq!(stages.len(), 1, "miner {i} changed stage: {stages:?}");
        for v in &epochs {
            let epoch = v["epoch"].as_u64().unwrap();
            if epoch <= first || !scored.contains(&epoch) {
                continue;
            }
            let n = |k: &str| v[k].as_u64().unwrap();
            assert_eq!(
                n("forwards"),
                n("backwards") + n("dropped"),
                "miner {i}, epoch {epoch}: a sample neither trained nor counted as dropped: {v}"
            );
            let requests = &v["storage"]["requests"];
            assert!(
                requests["get"].as_u64().unwrap_or(0) > 0
                    && requests["put"].as_u64().unwrap_or(0) > 0,
                "miner {i}, epoch {epoch}: no storage requests on record: {v}"
            );
            merged
                .entry((epoch, v["stage"].as_u64().unwrap()))
                .or_default()
                .insert(v["merged_blake3"].as_str().unwrap().to_owned());
        }
    }
    for ((epoch, stage), hashes) in &merged {
        assert_eq!(
            hashes.len(),
            1,
            "epoch {epoch}, stage {stage}: miners merged differently"
        );
    }
    // Every stage of every checked epoch was seen.
    assert_eq!(merged.len(), STAGES * SCORED as usize, "{merged:?}");
}
