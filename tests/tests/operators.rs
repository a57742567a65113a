//! The operators' commands against a short local subnet (`btlocalnet`, a filesystem store, a
//! validator and two miners, as processes): `btminer status` and `btvalidator status`, every
//! field checked against the chain (the metagraph at the block the status was read at, the
//! roster) and the validator's published score table; `btminer doctor` and
//! `btvalidator doctor`, passing where the set-up is right and failing, non-zero, where it is
//! not. Bounded: the subnet is up for about a minute, every wait has a timeout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::short_run::{self, bin_dir};
use arrow_array::{Array, UInt16Array, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use sliver_common::artifact::Hotkey;
use sliver_common::assignment::{Assignment, Member};
use sliver_launcher::localnet::{Localnet, NETUID, Options};

fn options(dir: &Path) -> Options {
    let spec = short_run::spec("operators-test", &[[0, 1], [1, 2]], 1);
    short_run::options(dir, short_run::write(dir, &spec))
}

/// `binary` with the flags every command takes: wallet, chain, subnet.
fn command(net: &Localnet, binary: &str, sub: &str, wallet: &str, hotkey: &str) -> Command {
    let mut cmd = Command::new(bin_dir().join(binary));
    cmd.arg(sub)
        .args(["--netuid", &NETUID.0.to_string()])
        .args(["--wallet.name", wallet, "--wallet.hotkey", hotkey])
        .arg("--wallet.path")
        .arg(net.dir().join("wallets"))
        .args(["--subtensor.chain_endpoint", &net.url])
        .arg("--storage.allow_local")
        .arg("--json")
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs `cmd` (bounded: it reads the chain and a few files) and returns its output and stdout
/// as JSON.
fn json_of(mut cmd: Command) -> (Output, Value) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout}\nstderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, value)
}

/// A score table's rows: (uid, stage, forward, backward, caught).
fn table(path: &Path) -> Vec<(u16, u16, u64, u64, String)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        let (uid, stage) = (col("uid"), col("stage"));
        let uid = uid.as_any().downcast_ref::<UInt16Array>().unwrap();
        let stage = stage.as_any().downcast_ref::<UInt16Array>().unwrap();
        let (fwd, bwd) = (col("samples_forward"), col("samples_backward"));
        let fwd = fwd.as_any().downcast_ref::<UInt64Array>().unwrap();
        let bwd = bwd.as_any().downcast_ref::<UInt64Array>().unwrap();
        let caught = col("caught");
        let caught: Vec<String> = arrow_array::cast::AsArray::as_string_view_opt(caught.as_ref())
            .map(|a| (0..a.len()).map(|i| a.value(i).to_owned()).collect())
            .or_else(|| {
                arrow_array::cast::AsArray::as_string_opt::<i64>(caught.as_ref())
                    .map(|a| (0..a.len()).map(|i| a.value(i).to_owned()).collect())
            })
            .or_else(|| {
                arrow_array::cast::AsArray::as_string_opt::<i32>(caught.as_ref())
                    .map(|a| (0..a.len()).map(|i| a.value(i).to_owned()).collect())
            })
            .unwrap();
        for (i, caught) in caught.into_iter().enumerate() {
            rows.push((
                uid.value(i),
                stage.value(i),
                fwd.value(i),
                bwd.value(i),
                caught,
            ));
        }
    }
    rows
}

/// The newest epoch folder of the score tables in `store`.
fn latest_scored(store: &Path) -> u64 {
    std::fs::read_dir(store.join("runs/operators-test/scores"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("epoch=")?
                .parse()
                .ok()
        })
        .max()
        .unwrap()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_doctor_answer_from_the_chain_and_the_tables() {
    let _serial = crate::swarm::SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut net = Localnet::start(options(tmp.path())).await.unwrap();
    let store = net.dir().join("store");
    let first = net
        .next_report(Duration::from_secs(120))
        .unwrap_or_else(|| {
            panic!(
                "no epoch scored (logs in {})",
                net.dir().join("logs").display()
            )
        });

    // The miner's status.
    let miner = &net.miners[0];
    let (out, s) = json_of(command(
        &net,
        "btminer",
        "status",
        "miners",
        &miner.hotkey_name,
    ));
    assert!(out.status.success(), "{s:#}");
    let block = s["chain"]["block"].as_u64().unwrap();
    let mut at = net.client.metagraph(NETUID).await.unwrap().block;
    at.0 = block;
    let metagraph = net.client.metagraph_at(NETUID, at).await.unwrap();
    let me = metagraph.neuron(miner.uid).unwrap();
    assert_eq!(s["hotkey"], miner.hotkey.ss58_address(), "{s:#}");
    assert_eq!(s["registered"], true, "{s:#}");
    assert_eq!(s["uid"], miner.uid.0, "{s:#}");
    assert_eq!(s["emission_rao"], me.emission, "{s:#}");
    let incentive = s["incentive"].as_f64().unwrap();
    assert!(
        (incentive - f64::from(me.incentive) / 65535.0).abs() < 1e-12,
        "{s:#}"
    );
    assert_eq!(s["announced"], "miner", "{s:#}");
    assert_eq!(s["announced_this_run"], true, "{s:#}");
    assert_eq!(s["run"]["name"], "operators-test", "{s:#}");
    let epoch = net.spec.swarm.schedule().epoch_of(block).get();
    assert_eq!(s["run"]["epoch"], epoch, "{s:#}");
    // Its stage is the assignment of this epoch's roster: every miner announced long before.
    let members: Vec<Member> = net
        .miners
        .iter()
        .map(|m| Member {
            uid: m.uid.0,
            hotkey: Hotkey(m.hotkey.account_id().0),
        })
        .collect();
    let assignment = Assignment::new(net.spec.stages.len(), &members);
    let (stage, _) = assignment
        .position(&Hotkey(miner.hotkey.account_id().0))
        .unwrap();
    assert_eq!(s["stage"], stage.0, "{s:#}");
    assert_eq!(s["stage_miners"], 1, "{s:#}");
    // What the validator scored it, from its latest table.
    let validators = s["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 1, "{s:#}");
    let verdict = &validators[0];
    assert_eq!(verdict["validator_uid"], net.validator_uid.0, "{s:#}");
    let scored = verdict["epoch"].as_u64().unwrap();
    assert!(scored >= first.epoch.get(), "{s:#}");
    let rows = table(&store.join(format!(
        "runs/operators-test/scores/epoch={scored}/part.parquet"
    )));
    let row = rows
        .iter()
        .find(|r| r.0 == miner.uid.0)
        .unwrap_or_else(|| panic!("uid {} not in {rows:?}", miner.uid.0));
    let caught: Vec<&str> = row.4.split(',').filter(|c| !c.is_empty()).collect();
    assert_eq!(verdict["row"]["stage"], row.1, "{s:#}");
    assert_eq!(verdict["row"]["samples_forward"], row.2, "{s:#}");
    assert_eq!(verdict["row"]["samples_backward"], row.3, "{s:#}");
    assert_eq!(verdict["row"]["caught"], serde_json::json!(caught), "{s:#}");
    assert_eq!(s["work"]["epoch"], scored, "{s:#}");
    assert_eq!(s["work"]["samples_forward"], row.2, "{s:#}");
    assert!(row.2 + row.3 > 0, "{rows:?}");
    assert!(s["work"]["samples_per_s"].as_f64().unwrap() > 0.0, "{s:#}");
    // Alone at its stage: no peers to set it against.
    assert_eq!(s["work"]["stage_samples_per_s"], Value::Null, "{s:#}");
    // ... and routed all of its stage's samples.
    assert_eq!(s["work"]["share"], 1.0, "{s:#}");
    assert_eq!(s["training"], true, "{s:#}");
    // The text form says the same.
    let mut text = Command::new(bin_dir().join("btminer"));
    text.args(["status", "--netuid", &NETUID.0.to_string()])
        .args([
            "--wallet.name",
            "miners",
            "--wallet.hotkey",
            &miner.hotkey_name,
        ])
        .arg("--wallet.path")
        .arg(net.dir().join("wallets"))
        .args([
            "--subtensor.chain_endpoint",
            &net.url,
            "--storage.allow_local",
        ]);
    let text = String::from_utf8(text.output().unwrap().stdout).unwrap();
    assert!(
        text.contains(&format!("registered  yes, uid {}", miner.uid.0))
            && text.contains(&format!("validator   uid {}", net.validator_uid.0)),
        "{text}"
    );

    // The validator's status.
    let (out, v) = json_of(command(&net, "btvalidator", "status", "owner", "default"));
    assert!(out.status.success(), "{v:#}");
    let mut at = metagraph.block;
    at.0 = v["chain"]["block"].as_u64().unwrap();
    let metagraph = net.client.metagraph_at(NETUID, at).await.unwrap();
    let me = metagraph.neuron(net.validator_uid).unwrap();
    assert_eq!(v["registered"], true, "{v:#}");
    assert_eq!(v["uid"], net.validator_uid.0, "{v:#}");
    assert_eq!(v["validator_permit"], me.validator_permit, "{v:#}");
    assert_eq!(v["validator_permit"], true, "{v:#}");
    assert_eq!(v["stake_rao"], me.stake, "{v:#}");
    assert_eq!(v["last_weights_block"], me.last_update.0, "{v:#}");
    assert!(me.last_update.0 > 0, "the validator set no weights: {v:#}");
    assert_eq!(v["announced"], "owner", "{v:#}");
    let last = v["last_epoch_scored"].as_u64().unwrap();
    assert!(last >= scored && last <= latest_scored(&store), "{v:#}");
    let rows = table(&store.join(format!(
        "runs/operators-test/scores/epoch={last}/part.parquet"
    )));
    assert_eq!(v["miners_scored"], rows.len(), "{v:#}");
    assert_eq!(
        v["miners_caught"],
        rows.iter().filter(|r| !r.4.is_empty()).count(),
        "{v:#}"
    );

    // The miner's doctor, with the miner's own flags: every check runs and none fails.
    let mut cmd = command(&net, "btminer", "doctor", "miners", &miner.hotkey_name);
    cmd.arg("--storage.url")
        .arg(&store)
        .arg("--neuron.dir")
        .arg(&miner.dir)
        .args(["--doctor.transfer_mb", "2"]);
    let (out, d) = json_of(cmd);
    assert!(out.status.success(), "{d:#}");
    assert_eq!(d["ok"], true, "{d:#}");
    for name in [
        "chain",
        "registration",
        "clock",
        "device",
        "disk",
        "location",
        "storage_speed",
    ] {
        let c = check(&d, name);
        assert_ne!(c["verdict"], "fail", "{d:#}");
    }
    let registration = check(&d, "registration");
    assert_eq!(registration["verdict"], "pass", "{d:#}");
    assert_eq!(registration["facts"]["uid"], miner.uid.0, "{d:#}");
    let burn = net.client.subnet_params(NETUID).await.unwrap().burn;
    assert_eq!(registration["facts"]["burn_rao"], burn, "{d:#}");
    // The local chain stamps blocks with this machine's clock.
    assert_eq!(check(&d, "clock")["verdict"], "pass", "{d:#}");
    assert_eq!(check(&d, "location")["verdict"], "pass", "{d:#}");
    assert_eq!(check(&d, "location")["facts"]["directory"], true, "{d:#}");
    assert_eq!(check(&d, "device")["facts"]["stage"], stage.0, "{d:#}");
    let speed = check(&d, "storage_speed");
    assert_eq!(speed["facts"]["bytes"], 2 << 20, "{d:#}");
    assert!(speed["facts"]["up_mbit"].as_f64().unwrap() > 0.0, "{d:#}");
    // Its test object is gone.
    let scratch = store.join("scratch");
    let left = walk(&scratch);
    assert!(left.is_empty(), "{left:?}");

    // The validator's doctor, with storage that cannot be opened: a failure, and a non-zero exit.
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let mut cmd = command(&net, "btvalidator", "doctor", "owner", "default");
    cmd.arg("--storage.url")
        .arg(blocker.join("store"))
        .arg("--neuron.dir")
        .arg(tmp.path().join("validator-doctor"))
        .args(["--doctor.transfer_mb", "1"]);
    let (out, d) = json_of(cmd);
    assert!(!out.status.success(), "{d:#}");
    assert_eq!(d["ok"], false, "{d:#}");
    assert_eq!(check(&d, "permit")["verdict"], "pass", "{d:#}");
    assert_eq!(check(&d, "storage_speed")["verdict"], "fail", "{d:#}");
    net.stop();
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}
