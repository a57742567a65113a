//! A miner that trains only in an availability window (`btminer --availability`): out of it at
//! the start, it announces the epochs it will be away and sleeps; it joins at the first epoch
//! of its window from its stage's merged weights, trains whole epochs, announces ahead that it
//! will be away again, finishes its last epoch (merged with its twin's) before the window
//! closes, and is paid for the epochs it trained. No roster holds it once it left, so no peer
//! routes to it or waits for it.

use std::time::Duration;

use sliver_launcher::localnet::{Localnet, Options};

use crate::short_run;
use crate::swarm::{SERIAL, count, epochs_by_number, next, wait_recorded};

/// Scored epochs (10 s each).
const EPOCHS: usize = 9;
/// The windowed miner (uid 3).
const WINDOWED: usize = 2;
/// Its window opens this long after the test starts, and closes this long after.
const OPENS: Duration = Duration::from_secs(40);
const CLOSES: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_trains_in_its_window_and_leaves_cleanly() {
    let _serial = SERIAL.lock().await;
    let tmp = short_run::test_dir();
    let spec = short_run::spec("windows-test", &[[0, 1], [1, 2]], 44);
    let path = short_run::write(tmp.path(), &spec);
    let now = chrono::Utc::now();
    let at = |d: Duration| (now + d).format("%H:%M:%S").to_string();
    let window = format!("{}-{} UTC", at(OPENS), at(CLOSES));
    eprintln!("the windowed miner's window: {window}");
    let mut net = Localnet::start(Options {
        miners_per_stage: 2,
        epochs: EPOCHS as u64,
        miner_flags: vec![(WINDOWED, vec!["--availability".into(), window.clone()])],
        ..short_run::options(tmp.path(), path)
    })
    .await
    .unwrap();
    let reports: Vec<_> = (0..EPOCHS).map(|_| next(&mut net)).collect();
    let last = reports.last().unwrap().epoch.get();
    let others = [0, 1, 3];
    wait_recorded(&net, &others, last).await;
    let logs = net.dir().join("logs");
    let by_epoch = |m: usize| epochs_by_number(&net, m);
    let windowed = by_epoch(WINDOWED);
    let uid = net.miners[WINDOWED].uid.0;
    let mut table = format!(
        "window {window}; it recorded epochs {:?}\n",
        windowed.keys()
    );
    for r in &reports {
        table += &format!(
            "epoch {}: on the roster: {:?} | others (rerouted, avoided) {:?}\n",
            r.epoch,
            r.miners.iter().find(|m| m.uid == uid),
            others
                .iter()
                .map(|&m| by_epoch(m)
                    .get(&r.epoch.get())
                    .map(|v| (count(v, "rerouted"), count(v, "avoided"))))
                .collect::<Vec<_>>()
        );
    }
    eprintln!("{table}");

    // It trained a run of whole epochs, joining after the run began and leaving before it
    // ended: the window, not the run, bounded its work.
    let trained: Vec<u64> = windowed.keys().copied().collect();
    let (first, final_) = (trained[0], *trained.last().unwrap());
    assert!(
        trained.len() >= 2 && trained.windows(2).all(|w| w[1] == w[0] + 1),
        "it should train a run of epochs in its window (logs in {}):\n{table}",
        logs.display()
    );
    let scored: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    assert!(
        scored[0] < first && final_ < *scored.last().unwrap(),
        "the run went on before and after its window:\n{table}"
    );

    // Each epoch it trained merged with its stage's other miner's, the last one included, and
    // the validator paid it for its work.
    for (&e, v) in &windowed {
        let twin = others
            .iter()
            .filter_map(|&m| by_epoch(m).remove(&e))
            .find(|t| t["stage"] == v["stage"])
            .unwrap_or_else(|| panic!("epoch {e}: no other miner on its stage:\n{table}"));
        assert_eq!(
            v["merged_blake3"], twin["merged_blake3"],
            "epoch {e}: its merge differs from its twin's:\n{table}"
        );
        assert!(
            count(v, "backwards") > 0,
            "epoch {e}: it trained nothing:\n{table}"
        );
        if let Some(r) = reports.iter().find(|r| r.epoch.get() == e) {
            let m = r.miners.iter().find(|m| m.uid == uid).unwrap();
            assert!(
                m.caught.is_empty() && m.passes > 0,
                "epoch {e}: the validator did not pay it: {m:?}\n{table}"
            );
        }
    }

    // After its last epoch no roster holds it (it announced the epochs it is away before
    // their cutoffs), so no peer had to find it silent.
    for r in reports.iter().filter(|r| r.epoch.get() > final_) {
        assert!(
            !r.miners.iter().any(|m| m.uid == uid),
            "epoch {}: it is on the roster after its window:\n{table}",
            r.epoch
        );
        for &m in &others {
            if let Some(v) = by_epoch(m).get(&r.epoch.get()) {
                assert_eq!(
                    (count(v, "rerouted"), count(v, "avoided")),
                    (0, 0),
                    "epoch {}: miner {m} routed to it:\n{table}",
                    r.epoch
                );
            }
        }
    }
    // It still runs, asleep until its next window.
    assert!(
        net.miner_exit(WINDOWED).is_none(),
        "it should sleep, not exit, out of its window"
    );
}
