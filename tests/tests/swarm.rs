//! The swarm end to end: `btlocalnet`, a store, `btvalidator` and four `btminer`s (two stages,
//! two miners each), every one its own process, on a tiny model and real text.
//!
//! One run on the filesystem store covers training (held-out loss falls), merging (both miners
//! of a stage end each epoch with identical weights), scoring (every miner has work in the
//! Parquet table and a non-zero weight on chain), a miner killed with SIGKILL and restarted
//! (it rejoins from the merged weights), a miner that never comes back (its stage still
//! merges), and a participant holding another run spec (it refuses, naming the difference).
//! A second run does the same flow against a real S3-compatible server (s3s over s3s-fs, a write
//! key per process and a published read-only key), on a subnet
//! that requires commit-reveal, so the weights read back are ones the validator revealed.
//!
//! Both are bounded: every wait has a timeout, and the processes are stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::short_run::{self, bin_dir};
use arrow_array::{Array, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sliver_common::adversary::Behaviour;
use sliver_launcher::localnet::{EpochReport, Localnet, NETUID, Options, StorageKind};

/// One local subnet at a time: two on 2 cores would starve each other's epochs.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the validator may take to score one epoch (epochs are 10 s).
const REPORT_TIMEOUT: Duration = Duration::from_secs(90);

fn write_spec(dir: &Path, seed: u64) -> PathBuf {
    short_run::write(dir, &short_run::spec("swarm-test", &[[0, 1], [1, 2]], seed))
}

fn options(dir: &Path, storage: StorageKind, epochs: u64, commit_reveal: bool) -> Options {
    Options {
        miners_per_stage: 2,
        epochs,
        storage,
        commit_reveal,
        ..short_run::options(dir, write_spec(dir, 42))
    }
}

pub(crate) fn next(net: &mut Localnet) -> EpochReport {
    net.next_report(REPORT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "no epoch report within {REPORT_TIMEOUT:?} (logs in {})",
            net.dir().join("logs").display()
        )
    })
}

/// Every epoch a miner recorded in its `epochs.jsonl`, one JSON object each. A miner may be
/// appending while this reads: a last line without its newline is not complete yet and is left
/// out.
pub(crate) fn recorded_epochs(net: &Localnet, miner: usize) -> Vec<serde_json::Value> {
    let path = net.miners[miner].dir.join("epochs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Every epoch a miner recorded, by epoch number.
pub(crate) fn epochs_by_number(
    net: &Localnet,
    miner: usize,
) -> std::collections::BTreeMap<u64, serde_json::Value> {
    recorded_epochs(net, miner)
        .into_iter()
        .filter_map(|v| Some((v["epoch"].as_u64()?, v)))
        .collect()
}

/// A count of a recorded epoch (`epochs.jsonl`), 0 when absent.
pub(crate) fn count(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// `(epoch, merged_blake3)` of every epoch a miner finished.
fn merged_hashes(net: &Localnet, miner: usize) -> Vec<(u64, String)> {
    recorded_epochs(net, miner)
        .iter()
        .map(|v| {
            (
                v["epoch"].as_u64().unwrap(),
                v["merged_blake3"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits (a bounded while) until each of `miners` has recorded `epoch`. A miner records an epoch
/// once its merge is assembled, which the validator's report of that epoch need not wait for.
pub(crate) async fn wait_recorded(net: &Localnet, miners: &[usize], epoch: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let recorded = |m: usize| merged_hashes(net, m).iter().any(|(e, _)| *e >= epoch);
        if miners.iter().all(|m| recorded(*m)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks that two miners of a stage hold identical merged weights after every epoch both have
/// recorded, and returns those epochs. One of them may already have recorded an epoch more than
/// the other: only what both recorded is compared.
fn twins_agree(net: &Localnet, a: usize, b: usize) -> Vec<u64> {
    let (ha, hb) = (merged_hashes(net, a), merged_hashes(net, b));
    let mut common = Vec::new();
    for (epoch, hash) in &ha {
        if let Some((_, other)) = hb.iter().find(|(e, _)| e == epoch) {
            assert_eq!(hash, other, "miners {a} and {b} differ after epoch {epoch}");
            common.push(*epoch);
        }
    }
    common
}

/// Per row of a score table: uid, verified samples (forward + backward), and why it was not
/// paid (empty when paid).
fn work_in_table(path: &str) -> Vec<(u64, u64, String)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{path} has no column {name}"))
                .clone()
        };
        let uid = column("uid");
        let uid = uid
            .as_any()
            .downcast_ref::<arrow_array::UInt16Array>()
            .unwrap();
        let (fwd, bwd) = (column("samples_forward"), column("samples_backward"));
        let fwd = fwd.as_any().downcast_ref::<UInt64Array>().unwrap();
        let bwd = bwd.as_any().downcast_ref::<UInt64Array>().unwrap();
        let caught = column("caught");
        let caught = arrow_array::cast::AsArray::as_string_view_opt(caught.as_ref())
            .map(|a| {
                (0..a.len())
                    .map(|i| a.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .or_else(|| {
                arrow_array::cast::AsArray::as_string_opt::<i64>(caught.as_ref())
                    .map(|a| (0..a.len()).map(|i| a.value(i).to_owned()).collect())
            })
            .or_else(|| {
                arrow_array::cast::AsArray::as_string_opt::<i32>(caught.as_ref())
                    .map(|a| (0..a.len()).map(|i| a.value(i).to_owned()).collect())
            })
            .unwrap_or_else(|| panic!("{path}: caught is not a string column"));
        for (i, caught) in caught.into_iter().enumerate() {
            out.push((u64::from(uid.value(i)), fwd.value(i) + bwd.value(i), caught));
        }
    }
    out
}

/// Miners of the stage of `miner` (positions in `net.miners`): the localnet registers them in
/// order, and the assignment is by uid, so miners alternate stages.
fn stage_pairs() -> [(usize, usize); 2] {
    [(0, 2), (1, 3)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_subnet_trains_merges_survives_kills_and_pays() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut net = Localnet::start(options(tmp.path(), StorageKind::Fs, 3, false))
        .await
        .unwrap();

    // A participant holding another run spec refuses to start and says where they differ.
    let other = write_spec(tmp.path(), 7);
    let out = Command::new(bin_dir().join("btminer"))
        .args(["--netuid", &NETUID.0.to_string()])
        .args(["--wallet.name", "miners", "--wallet.hotkey", "m0"])
        .arg("--wallet.path")
        .arg(net.dir().join("wallets"))
        .args(["--subtensor.chain_endpoint", &net.url])
        .arg("--storage.allow_local")
        .arg("--neuron.dir")
        .arg(tmp.path().join("mismatch"))
        .arg("--spec")
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("run spec mismatch") && stderr.contains("seed"),
        "{stderr}"
    );

    // Epoch 1 trains undisturbed.
    let first = next(&mut net);
    // Epoch 2: a miner is killed without warning and comes back.
    net.kill_miner(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    net.start_miner(0).unwrap();
    let second = next(&mut net);
    // Epoch 3: a miner dies for good; its stage must still merge.
    net.kill_miner(3);
    let third = next(&mut net);
    let reports = [first, second, third];
    let epochs: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    assert_eq!(
        epochs.windows(2).filter(|w| w[1] == w[0] + 1).count(),
        2,
        "{reports:#?}"
    );

    // Held-out loss of the merged model falls.
    let losses: Vec<f64> = reports.iter().filter_map(|r| r.eval_loss).collect();
    assert_eq!(losses.len(), 3, "{reports:#?}");
    assert!(
        losses[2] < losses[0],
        "held-out loss did not fall: {losses:?}"
    );

    // Both miners of a stage end each epoch with identical merged weights.
    for (a, b) in stage_pairs() {
        let common = twins_agree(&net, a, b);
        assert!(
            !common.is_empty(),
            "miners {a} and {b} share no finished epoch: {:?} {:?}",
            merged_hashes(&net, a),
            merged_hashes(&net, b)
        );
    }
    // The killed miner rejoined from the merged weights and finished an epoch after.
    wait_recorded(&net, &[0], reports[1].epoch.get()).await;
    wait_recorded(&net, &[1], reports[2].epoch.get()).await;
    let log = std::fs::read_to_string(net.dir().join("logs/miner-m0.log")).unwrap();
    assert!(
        log.contains("joined from the latest merged weights"),
        "{log}"
    );
    assert!(
        merged_hashes(&net, 0)
            .iter()
            .any(|(e, _)| *e >= reports[1].epoch.get()),
        "the restarted miner finished no epoch"
    );
    // The miner that never came back did not stall its stage's merge.
    assert!(
        merged_hashes(&net, 1)
            .iter()
            .any(|(e, _)| *e == reports[2].epoch.get()),
        "the surviving miner of stage 1 did not merge epoch {}",
        reports[2].epoch.get()
    );

    // Every miner has work in the first epoch's table, none is caught in this clean epoch (no
    // CLASP flag, merge done, work near its peers'), and each has a weight on chain.
    let table = work_in_table(&reports[0].scores);
    assert_eq!(table.len(), 4, "{table:?}");
    assert!(table.iter().all(|(_, w, _)| *w > 0), "{table:?}");
    assert!(table.iter().all(|(_, _, c)| c.is_empty()), "{table:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let weights = net.weights().await.unwrap();
    for m in &net.miners {
        assert!(
            weights.get(&m.uid.0).is_some_and(|w| *w > 0),
            "miner uid {} has no weight: {weights:?}",
            m.uid.0
        );
    }
    net.stop();
}

/// Two of the four miners are strangers who train honestly but turn on the others: a
/// `griefer` (stage 1) tries to delete, overwrite and pre-create its peers' artifacts and
/// merged shards with the read keys they published, to pre-create its own challenge in the
/// validator's store and to challenge its peers as if it were a validator; a `roster-churn`
/// miner (stage 0) re-commits its announcement after every roster cutoff. Neither changes
/// anything: the flow, the twins' agreement and every miner's weight are as without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_flow_runs_against_s3() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), StorageKind::S3, 2, true);
    opts.adversaries = vec![(0, Behaviour::Griefer), (1, Behaviour::RosterChurn)];
    let mut net = Localnet::start(opts).await.unwrap();
    let first = next(&mut net);
    let second = next(&mut net);
    let (l1, l2) = (first.eval_loss.unwrap(), second.eval_loss.unwrap());
    assert!(l2 < l1, "held-out loss did not fall: {l1} -> {l2}");
    assert_eq!(first.rejected + second.rejected, 0);
    for (a, b) in stage_pairs() {
        wait_recorded(&net, &[a, b], second.epoch.get()).await;
        let common = twins_agree(&net, a, b);
        assert!(
            common.contains(&second.epoch.get()),
            "miners {a} and {b} did not both record epoch {}: {:?} vs {:?}",
            second.epoch.get(),
            merged_hashes(&net, a),
            merged_hashes(&net, b)
        );
    }
    // Later-stage miners ask for what is routed to them by key; the once-a-second listing is
    // only the fallback.
    let (by_name, by_listing) = activations_received(&net);
    assert!(
        by_name > 0 && by_listing * 10 <= by_name,
        "activations by name {by_name}, by listing {by_listing}"
    );
    // The reveal of the last commit lands a tempo (1 s) later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let weights = net.weights().await.unwrap();
    assert!(
        net.miners
            .iter()
            .all(|m| weights.get(&m.uid.0).is_some_and(|w| *w > 0)),
        "{weights:?}"
    );
    for r in [&first, &second] {
        assert!(
            r.miners.iter().all(|m| m.caught.is_empty()),
            "epoch {}: a miner caught: {:?}\nthe validator's warnings:\n{}",
            r.epoch,
            r.miners,
            validator_warnings(&net)
        );
    }
    // The griefer tried, and every attempt was refused; the churner re-committed.
    let log = |i: usize| {
        std::fs::read_to_string(
            net.dir()
                .join(format!("logs/miner-{}.log", net.miners[i].hotkey_name)),
        )
        .unwrap_or_default()
    };
    let griefer = log(0);
    assert!(
        griefer.contains("griefer: the attempt was refused"),
        "the griefer made no attempt:\n{griefer}"
    );
    assert!(
        !griefer.contains("griefer: the attempt LANDED"),
        "a griefer attempt landed:\n{griefer}"
    );
    assert!(
        log(1).contains("roster-churn: re-committed"),
        "the churner never re-committed"
    );
    net.stop();
}

/// Activations the miners received by name and by listing, summed over the epochs each
/// recorded (`epochs.jsonl`).
fn activations_received(net: &Localnet) -> (u64, u64) {
    let mut total = (0, 0);
    for m in 0..net.miners.len() {
        for v in recorded_epochs(net, m) {
            total.0 += v["activations_by_name"].as_u64().unwrap();
            total.1 += v["activations_by_listing"].as_u64().unwrap();
        }
    }
    total
}

/// The validator's warnings so far (why a miner was caught), for a failing assertion.
fn validator_warnings(net: &Localnet) -> String {
    let log = std::fs::read_to_string(net.dir().join("logs/validator.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("WARN"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts two stages of three miners with `cheats` (miner index, behaviour; miner `i` has uid
/// `i + 1` and a miner's stage is its uid modulo 2, so indices 1, 3, 5 are stage 0 and 0, 2, 4
/// stage 1), scores three epochs, and checks that every cheat is caught in
/// every epoch from the `from`-th report on, that no honest miner is ever caught, and that the
/// cheats end with little weight on chain.
async fn cheats_are_caught(cheats: &[(usize, Behaviour)], from: usize) {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), StorageKind::Fs, 3, false);
    opts.miners_per_stage = 3;
    opts.adversaries = cheats.to_vec();
    let mut net = Localnet::start(opts).await.unwrap();
    let reports = [next(&mut net), next(&mut net), next(&mut net)];
    let cheat_uids: Vec<(u64, Behaviour)> = cheats
        .iter()
        .map(|(i, b)| (u64::from(net.miners[*i].uid.0), *b))
        .collect();
    for (n, r) in reports.iter().enumerate() {
        let table = work_in_table(&r.scores);
        assert_eq!(table.len(), 6, "{table:?}");
        for (uid, _, caught) in &table {
            match cheat_uids.iter().find(|(u, _)| u == uid) {
                Some((_, b)) if n >= from => assert!(
                    !caught.is_empty(),
                    "epoch {}: {b} (uid {uid}) not caught: {table:?}",
                    r.epoch
                ),
                Some(_) => {}
                None => assert!(
                    caught.is_empty(),
                    "epoch {}: honest uid {uid} caught: {table:?}\nthe validator's warnings:\n{}",
                    r.epoch,
                    validator_warnings(&net)
                ),
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let weights = net.weights().await.unwrap();
    for (uid, b) in &cheat_uids {
        let w = weights.get(&(*uid as u16)).copied().unwrap_or(0);
        // Caught in the last two epochs: its average halved twice from at most its first share.
        let honest_max = weights.values().copied().max().unwrap_or(0);
        assert!(
            u32::from(w) * 3 < u32::from(honest_max),
            "{b} (uid {uid}) kept weight {w} of {honest_max}: {weights:?}"
        );
    }
    net.stop();
}

/// Miners that cheat on the merge or on their work are caught and end with no weight, and no
/// honest miner is caught. Three miners per stage, so each stage's median miner is honest:
/// stage 0 holds `noise` and `free-rider` (too little work), stage 1 `poison-merge` and `late`
/// (the merge checks). Caught from the second epoch (the first may be scored before a
/// validator's challenge reaches the miners).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversaries_are_caught_and_honest_miners_are_not() {
    cheats_are_caught(
        &[
            (1, Behaviour::Noise),
            (3, Behaviour::FreeRider),
            (0, Behaviour::PoisonMerge),
            (2, Behaviour::Late),
        ],
        1,
    )
    .await;
}

/// Strangers who break only their own part, on S3: a `store-denial` miner (stage 0: its store
/// refuses every reader), an `id-squat` miner (stage 0: its samples go out under the honest
/// stage-0 miner's ids), a `merge-extreme` miner (stage 1: merge copies near the float limit)
/// and a `fake-work` miner (stage 1: gradients for samples routed to its peers) beside honest
/// ones. The validator scores every epoch; the store-denial and merge-extreme
/// miners are caught and the squatter's work counts for nothing; no honest miner is caught or
/// left without weight, and the merged model's held-out loss still falls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_store_and_an_extreme_merge_cost_only_their_miners() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), StorageKind::S3, 3, false);
    opts.miners_per_stage = 3;
    let cheats = [
        (1, Behaviour::StoreDenial),
        (3, Behaviour::IdSquat),
        (2, Behaviour::MergeExtreme),
        (0, Behaviour::FakeWork),
    ];
    opts.adversaries = cheats.to_vec();
    let mut net = Localnet::start(opts).await.unwrap();
    let reports = [next(&mut net), next(&mut net), next(&mut net)];
    let epochs: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    assert!(
        epochs.windows(2).all(|w| w[1] == w[0] + 1),
        "the validator missed an epoch: {epochs:?}"
    );
    let uid_of = |b: Behaviour| {
        let (i, _) = cheats.iter().find(|(_, x)| *x == b).unwrap();
        u64::from(net.miners[*i].uid.0)
    };
    let squatter = uid_of(Behaviour::IdSquat);
    let faker = uid_of(Behaviour::FakeWork);
    let cheat_uids: Vec<u64> = cheats.iter().map(|(_, b)| uid_of(*b)).collect();
    for r in &reports[1..] {
        // The epoch's record (the score table itself sits in the S3 server's bucket).
        let table: Vec<(u64, u64, Vec<String>)> = r
            .miners
            .iter()
            .map(|m| (u64::from(m.uid), m.passes, m.caught.clone()))
            .collect();
        assert_eq!(table.len(), 6, "{table:?}");
        for (uid, passes, caught) in &table {
            // Caught or not (when a spot check picks a fake), the faker's fakes are refused
            // (below); its honest stage peer is never caught, so never pushed under the
            // low-work rule.
            if *uid == faker {
                continue;
            }
            if *uid == squatter {
                assert_eq!(
                    *passes, 0,
                    "epoch {}: the squatter's work counted: {table:?}",
                    r.epoch
                );
            } else if cheat_uids.contains(uid) {
                assert!(
                    !caught.is_empty(),
                    "epoch {}: cheat uid {uid} not caught: {table:?}",
                    r.epoch
                );
            } else {
                assert!(
                    caught.is_empty(),
                    "epoch {}: honest uid {uid} caught: {table:?}\nthe validator's warnings:\n{}",
                    r.epoch,
                    validator_warnings(&net)
                );
            }
        }
    }
    // Every reader refuses the faker's fakes: the validator names it in a rejection.
    let faker_short: String = net.miners[0].hotkey.account_id().0[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let refused = std::fs::read_to_string(net.dir().join("logs/validator.log"))
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.contains(&faker_short)
                && (l.contains("rejected an artifact") || l.contains("not their producer's"))
        });
    assert!(
        refused,
        "no fake of the faker ({faker_short}) was refused:\n{}",
        validator_warnings(&net)
    );
    let losses: Vec<f64> = reports.iter().filter_map(|r| r.eval_loss).collect();
    assert_eq!(losses.len(), 3, "{reports:#?}");
    assert!(
        losses[2] < losses[0],
        "held-out loss did not fall: {losses:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let weights = net.weights().await.unwrap();
    for m in &net.miners {
        if !cheat_uids.contains(&u64::from(m.uid.0)) {
            assert!(
                weights.get(&m.uid.0).is_some_and(|w| *w > 0),
                "honest miner uid {} has no weight: {weights:?}",
                m.uid.0
            );
        }
    }
    net.stop();
}

/// The subtle cheats only spot checks see: `lazy` and `copier` upload activations that are not
/// what their weights compute from their inputs, and `scaled` on the last stage uploads its
/// input gradients times 1.1 (a last-stage cheat, which CLASP cannot see: that stage reports
/// the losses itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_checks_catch_what_the_loss_does_not_show() {
    cheats_are_caught(
        &[
            (1, Behaviour::Lazy),
            (3, Behaviour::Copier),
            (0, Behaviour::Scaled),
        ],
        1,
    )
    .await;
}
