//! A miner that goes silent mid-epoch (killed, SIGKILL: no goodbye) costs its stage one sample
//! timeout. The stage-0 miners whose samples it held up find it from the stores, drop the
//! samples in flight through it, start their next samples around it, and keep routing around
//! it in the epochs after while it stays on the roster; its stage's other miner takes its
//! samples.

use sliver_launcher::localnet::{Localnet, Options};

use crate::short_run;
use crate::swarm::{SERIAL, count, epochs_by_number, next, wait_recorded};

/// Scored epochs.
const EPOCHS: usize = 5;
/// The miner killed (stage 1, uid 3: the owner's validator holds uid 0 and a miner's stage is
/// its uid modulo the stage count), after this many scored epochs; its stage's other miner.
const SILENT: usize = 2;
const KILLED_AFTER: usize = 1;
const PEER: usize = 0;
/// The stage-0 miners: their samples go through the silent one.
const ORIGINS: [usize; 2] = [1, 3];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_miner_costs_its_stage_one_sample_timeout() {
    let _serial = SERIAL.lock().await;
    let tmp = short_run::test_dir();
    let spec = short_run::spec("silent-test", &[[0, 1], [1, 2]], 43);
    let path = short_run::write(tmp.path(), &spec);
    let mut net = Localnet::start(Options {
        miners_per_stage: 2,
        epochs: EPOCHS as u64,
        ..short_run::options(tmp.path(), path)
    })
    .await
    .unwrap();
    let mut reports = Vec::new();
    for n in 0..EPOCHS {
        reports.push(next(&mut net));
        if n + 1 == KILLED_AFTER {
            net.kill_miner(SILENT);
        }
    }
    let last = reports.last().unwrap().epoch.get();
    wait_recorded(&net, &[PEER, ORIGINS[0], ORIGINS[1]], last).await;
    let logs = net.dir().join("logs");
    let by_epoch = |m: usize| epochs_by_number(&net, m);
    let silent_last = *by_epoch(SILENT).keys().last().unwrap();
    let (peer, origins) = (by_epoch(PEER), ORIGINS.map(by_epoch));
    let mut table = format!("the silent miner's last recorded epoch: {silent_last}\n");
    for (e, p) in &peer {
        table += &format!(
            "epoch {e}: stage-1 peer backwards {} | stage 0 (backwards, dropped, rerouted, skipped, avoided) {:?}\n",
            count(p, "backwards"),
            origins
                .iter()
                .map(|o| o.get(e).map(|v| (
                    count(v, "backwards"),
                    count(v, "dropped"),
                    count(v, "rerouted"),
                    count(v, "skipped"),
                    count(v, "avoided")
                )))
                .collect::<Vec<_>>()
        );
    }
    eprintln!("{table}");

    // The epoch it went silent in, and those after it that both stage-0 miners recorded.
    let silent_epoch = silent_last + 1;
    let after: Vec<u64> = origins[0]
        .keys()
        .copied()
        .filter(|&e| e > silent_epoch && origins[1].contains_key(&e) && peer.contains_key(&e))
        .collect();
    assert!(
        after.len() >= 2,
        "too few epochs after the one it went silent in (logs in {}):\n{table}",
        logs.display()
    );

    // Each stage-0 miner found it within an epoch of its going silent, and lost to it at most
    // what it had in flight then: the samples dropped on their timeout, and those dropped at
    // once (rerouted) beside them, one window's worth beyond the epoch's usual drops at the
    // drain's end. In the epochs after, it stays routed around (it is still on the roster: its
    // registration and commitment remain) and nothing more is lost to it.
    let in_flight = (spec.swarm.window * spec.swarm.rounds) as u64;
    for o in &origins {
        let found = o
            .iter()
            .find(|(_, v)| count(v, "avoided") > 0)
            .map(|(&e, _)| e)
            .unwrap_or(u64::MAX);
        assert!(
            found <= silent_epoch + 1,
            "a stage-0 miner never found the silent one:\n{table}"
        );
        let usual = o
            .iter()
            .filter(|(e, _)| **e != found)
            .map(|(_, v)| count(v, "dropped"))
            .max()
            .unwrap_or(0);
        let v = &o[&found];
        assert!(
            count(v, "rerouted") + count(v, "dropped") <= in_flight + usual,
            "epoch {found}: a stage-0 miner lost more than its window to the silent miner:\n{table}"
        );
        for (e, v) in o.range(found + 1..) {
            let on_roster = peer
                .get(e)
                .and_then(|p| p["share"].as_f64())
                .is_some_and(|s| s < 1.0);
            assert!(
                count(v, "rerouted") == 0
                    && (!on_roster || (count(v, "avoided") >= 1 && count(v, "skipped") > 0)),
                "epoch {e}: a stage-0 miner still routes to the silent one:\n{table}"
            );
        }
    }

    // The stage keeps training through its other miner, which now takes every sample.
    let before: u64 = origins
        .iter()
        .map(|o| {
            o.range(..silent_epoch)
                .map(|(_, v)| count(v, "backwards"))
                .max()
                .unwrap_or(0)
        })
        .sum();
    for &e in &after {
        let (a, b) = (&origins[0][&e], &origins[1][&e]);
        let trained = count(a, "backwards") + count(b, "backwards");
        assert!(
            trained * 2 >= before,
            "epoch {e}: stage 0 trained {trained} samples, against {before} before:\n{table}"
        );
        assert!(
            count(&peer[&e], "backwards") >= trained,
            "epoch {e}: the peer trains every sample stage 0 trained:\n{table}"
        );
    }
}
