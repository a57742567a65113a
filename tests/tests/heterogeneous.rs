//! Machines of different speeds on one local subnet: a miner throttled to a quarter of its
//! peers' speed (`btminer --sim.slowdown 4`) measures and announces its work rate, is routed
//! about a quarter of its peer's share, is paid for the work it does, and its stage no longer
//! runs at its pace. On the same run, a miner asked to leave (SIGUSR1) finishes its epoch,
//! merges, exits cleanly and is paid for that epoch.

use std::time::Duration;

use sliver_launcher::localnet::{Localnet, Options};

use crate::short_run;
use crate::swarm::{SERIAL, next, recorded_epochs, wait_recorded};

/// Scored epochs: the rates are measured in the first one a miner trains, announced after it,
/// and routed by from the roster after next (its cutoff is the next epoch's merge window).
const EPOCHS: usize = 6;

/// The throttled miner and its peer on stage 1, the last (uids 3 and 1: the owner's validator
/// holds uid 0, and a miner's stage is its uid modulo the stage count). Stage 0 starts its own
/// samples, each miner at its own pace; stage 1 is routed.
const SLOW: usize = 2;
/// The local subnet's block time (`short_run::options`).
const BLOCK_MS: u64 = 100;
const PEER: usize = 0;

/// The miner asked to leave (stage 0, beside miner 1), after this many scored epochs.
const LEAVER: usize = 3;
const LEAVES_AFTER: usize = 4;

fn f(v: &serde_json::Value, key: &str) -> Option<f64> {
    v[key].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_speed_miner_gets_a_quarter_share_and_its_stage_keeps_pace() {
    let _serial = SERIAL.lock().await;
    let tmp = short_run::test_dir();
    // Samples of 16 sequences: enough compute that the throttled miner's pace holds its stage
    // at even shares.
    let mut spec = short_run::spec("rates-test", &[[0, 1], [1, 2]], 42);
    spec.optimizer.batch_size = 16;
    let path = short_run::write(tmp.path(), &spec);
    let mut net = Localnet::start(Options {
        miners_per_stage: 2,
        epochs: EPOCHS as u64,
        slowdowns: vec![(SLOW, 4.0)],
        ..short_run::options(tmp.path(), path)
    })
    .await
    .unwrap();
    let mut reports = Vec::new();
    for n in 0..EPOCHS {
        reports.push(next(&mut net));
        if n + 1 == LEAVES_AFTER {
            net.ask_miner_to_leave(LEAVER).unwrap();
        }
    }
    let last = reports.last().unwrap().epoch.get();
    wait_recorded(&net, &[SLOW, PEER], last).await;
    let (slow, peer) = (recorded_epochs(&net, SLOW), recorded_epochs(&net, PEER));
    let logs = net.dir().join("logs");
    let in_epoch = |records: &[serde_json::Value], e: u64| {
        records
            .iter()
            .find(|v| v["epoch"].as_u64() == Some(e))
            .cloned()
    };
    let firsts = [recorded_epochs(&net, 1), recorded_epochs(&net, 3)];
    let mut table = String::new();
    for s in &slow {
        let e = s["epoch"].as_u64().unwrap();
        let p = in_epoch(&peer, e).unwrap_or_default();
        table += &format!(
            "epoch {e}: slow share {:?} rate {:?} declared {:?} backwards {:?} compute_s {:?} | peer rate {:?} declared {:?} backwards {:?} | stage 0 (forwards, dropped) {:?}\n",
            f(s, "share"),
            f(s, "rate"),
            f(s, "declared_rate"),
            s["backwards"].as_u64(),
            f(s, "compute_s"),
            f(&p, "rate"),
            f(&p, "declared_rate"),
            p["backwards"].as_u64(),
            firsts
                .iter()
                .map(|r| in_epoch(r, e).map(|v| (v["forwards"].as_u64(), v["dropped"].as_u64())))
                .collect::<Vec<_>>(),
        );
    }
    eprintln!("{table}");

    // It measured itself at about a quarter of its peer's rate.
    let measured = |r: &[serde_json::Value]| r.iter().rev().find_map(|v| f(v, "rate"));
    let (rs, rp) = (measured(&slow).unwrap(), measured(&peer).unwrap());
    assert!(
        (0.12..=0.5).contains(&(rs / rp)),
        "measured rates {rs} and {rp}:\n{table}"
    );

    // Once both rates are on the roster, it is routed about a quarter of its peer's share
    // (a fifth of the stage's samples), and does about that share of the stage's work.
    let weighted: Vec<u64> = slow
        .iter()
        .filter(|v| f(v, "declared_rate").is_some())
        .filter_map(|v| {
            let e = v["epoch"].as_u64()?;
            f(&in_epoch(&peer, e)?, "declared_rate").map(|_| e)
        })
        .collect();
    assert!(
        !weighted.is_empty(),
        "no epoch routed by both rates (logs in {}):\n{table}",
        logs.display()
    );
    let backwards = |r: &[serde_json::Value], e| {
        in_epoch(r, e)
            .and_then(|v| v["backwards"].as_u64())
            .unwrap_or(0)
    };
    for &e in &weighted {
        let share = f(&in_epoch(&slow, e).unwrap(), "share").unwrap();
        assert!(
            (0.1..=0.35).contains(&share),
            "epoch {e}: share {share}\n{table}"
        );
        let (s, p) = (backwards(&slow, e), backwards(&peer, e));
        let done = s as f64 / (s + p).max(1) as f64;
        assert!(
            (0.03..=0.4).contains(&done),
            "epoch {e}: it did {s} of the stage's {} samples\n{table}",
            s + p
        );
    }

    // Its stage does not run at its pace. At even shares, when it was busy computing most of
    // the training window (its pace held the stage), the stage trains clearly more once routed
    // by rate; when it was not (the pipeline's rounds in flight and the feed's polls held the
    // stage, not its compute: a busy machine), at least as much.
    let even: Vec<u64> = slow
        .iter()
        .filter(|v| f(v, "declared_rate").is_none() && f(v, "share") == Some(0.5))
        .filter_map(|v| v["epoch"].as_u64())
        .filter(|&e| in_epoch(&peer, e).is_some())
        .collect();
    let stage = |e| backwards(&slow, e) + backwards(&peer, e);
    let best = |es: &[u64]| es.iter().map(|&e| stage(e)).max().unwrap_or(0);
    assert!(!even.is_empty(), "no epoch at even shares:\n{table}");
    let window_s =
        (spec.swarm.epoch_blocks - spec.swarm.merge_blocks) as f64 * BLOCK_MS as f64 / 1000.0;
    let held = even.iter().any(|&e| {
        in_epoch(&slow, e)
            .and_then(|v| f(&v, "compute_s"))
            .is_some_and(|c| c >= 0.8 * window_s)
    });
    let gain = if held { 1.15 } else { 0.95 };
    assert!(
        best(&weighted) as f64 >= gain * best(&even) as f64,
        "stage 1 trained {} samples at most at even shares (the slow miner computing {}most of \
         the window), {} routed by rate:\n{table}",
        best(&even),
        if held { "" } else { "less than " },
        best(&weighted)
    );

    // The validator paid it for what it did in those epochs.
    let uid = net.miners[SLOW].uid.0;
    for r in reports.iter().filter(|r| weighted.contains(&r.epoch.get())) {
        let m = r.miners.iter().find(|m| m.uid == uid).unwrap();
        assert!(
            m.caught.is_empty() && m.passes > 0,
            "epoch {}: {m:?}",
            r.epoch
        );
    }

    // The leaver finished the epoch it was training: it exited with success, its last epoch
    // merged with its peer's, and the validator paid it for that epoch.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = net.miner_exit(LEAVER) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "miner {LEAVER} still runs 30 s after the last report (logs in {})",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success(), "miner {LEAVER} exited with {status}");
    let left = recorded_epochs(&net, LEAVER);
    let last_epoch = left.last().unwrap()["epoch"].as_u64().unwrap();
    let twin = in_epoch(&recorded_epochs(&net, 1), last_epoch).unwrap();
    assert_eq!(
        left.last().unwrap()["merged_blake3"],
        twin["merged_blake3"],
        "epoch {last_epoch}: the leaver's merge differs from its peer's"
    );
    let leaver_uid = net.miners[LEAVER].uid.0;
    let report = reports
        .iter()
        .find(|r| r.epoch.get() == last_epoch)
        .unwrap_or_else(|| panic!("no report of epoch {last_epoch}, the leaver's last"));
    let m = report.miners.iter().find(|m| m.uid == leaver_uid).unwrap();
    assert!(
        m.caught.is_empty() && m.passes > 0,
        "the leaver in its last epoch {last_epoch}: {m:?}"
    );
}
