//! The local subnet: a chain, a store, a validator and miners, each its own process.
//!
//! [`Localnet::start`] lays out a directory, creates btcli wallets (the owner's and the
//! miners'), starts `btlocalnet` with the owner's coldkey owning the subnet and both coldkeys
//! funded, registers and stakes the validator and registers the miners, then starts
//! `btvalidator` (which publishes the run spec) and one `btminer` per slot. Everything is a real
//! process talking over the real websocket and storage; this module only launches and watches.
//! The validator appends one [`EpochReport`] per scored epoch to `epochs.jsonl` in its state
//! directory ([`sliver_validator::record`]); [`Localnet::next_report`] follows that file. Every
//! process started here is stopped on [`Localnet::stop`] and on drop.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use sliver_chain::client::{Client, Endpoint, NetUid, Uid};
use sliver_chain::wallet::{Keypair, PASSWORD_ENV, PasswordSource, Wallet};
use sliver_common::RunSpec;
use sliver_common::adversary::Behaviour;
use sliver_common::testing::S3Server;
use sliver_subnet::signer::HotkeySigner;
use sliver_validator::record::{self, Tail};
use tracing::{info, warn};

use crate::front::{self, Front};

pub use sliver_common::storage::LinkSpec;
pub use sliver_validator::record::EpochReport;

/// The subnet the local chain creates.
pub const NETUID: NetUid = NetUid(9);
const TAO: u64 = 1_000_000_000;
/// The (local, throwaway) password of the wallets this module creates.
const PASSWORD: &str = "sliver-localnet";
/// How often [`Localnet::next_report`] looks for a new line of the validator's record.
const RECORD_POLL: Duration = Duration::from_millis(50);

/// Where the miners' and validator's artifacts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// One shared directory.
    Fs,
    /// A real S3-compatible server (s3s over s3s-fs) on 127.0.0.1, with a write key and the
    /// read-only key that is published.
    S3,
}

/// How to run the local subnet.
#[derive(Debug, Clone)]
pub struct Options {
    /// Working directory (wiped at start).
    pub dir: PathBuf,
    /// Run spec.
    pub spec: PathBuf,
    /// Training text, replacing the spec's sources.
    pub data: Option<String>,
    /// Where `btlocalnet`, `btminer` and `btvalidator` are.
    pub bin_dir: PathBuf,
    /// Miners per stage.
    pub miners_per_stage: usize,
    /// Epochs for the validator to score before the run ends.
    pub epochs: u64,
    /// Milliseconds per block.
    pub block_time_ms: u64,
    /// Storage backend.
    pub storage: StorageKind,
    /// libtorch threads per process.
    pub threads: usize,
    /// The emulated link between every process and the storage (benchmarks): a round trip per
    /// request, each process's own upload and download bandwidth, a failure rate
    /// (`--storage.latency_ms`, `--storage.link_*`). Transparent by default.
    pub link: LinkSpec,
    /// How often miners look for artifacts routed to them (`btminer --miner.poll_ms`);
    /// `None` leaves btminer's default.
    pub miner_poll_ms: Option<u64>,
    /// Whether the subnet requires commit-reveal of weights.
    pub commit_reveal: bool,
    /// Miners run together in one `btminer` process (`--sim.hotkeys`): 1 runs each in its own;
    /// more is how the scale benchmark fits many miners on one machine. A group's process is
    /// held by its first miner's slot ([`Localnet::kill_miner`] of it stops the group).
    pub miners_per_process: usize,
    /// Miners (by index) that play an adversary (`btminer --adversary NAME`): tests only.
    /// `store-slow` and `store-equivocate` miners are read through a [`Front`] started here;
    /// they and `griefer` need [`StorageKind::S3`].
    pub adversaries: Vec<(usize, Behaviour)>,
    /// Miners (by index) that play a machine this many times slower (`btminer
    /// --sim.slowdown`): tests and benchmarks of routing by work rate.
    pub slowdowns: Vec<(usize, f64)>,
    /// More `btminer` flags for some miners (by index), e.g. `--availability`.
    pub miner_flags: Vec<(usize, Vec<String>)>,
}

/// The flags of `btsubnet` and `bench-swarm` that shape each process's emulated link to the
/// storage, besides its round trip ([`Options::link`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LinkArgs {
    /// Each process's upload bandwidth to the storage in Mbit/s, shared by all its puts
    /// (unlimited when unset).
    #[arg(long)]
    pub up_mbit: Option<f64>,
    /// Each process's download bandwidth from the storage in Mbit/s, shared by all its reads.
    #[arg(long)]
    pub down_mbit: Option<f64>,
    /// The share of storage requests that fail as a network error would (and are retried).
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
}

impl LinkArgs {
    /// The link these flags describe, with the round trip `rtt`.
    pub fn spec(&self, rtt: Duration) -> LinkSpec {
        LinkSpec {
            rtt,
            up_bps: self.up_mbit.map(|m| (m * 1e6) as u64),
            down_bps: self.down_mbit.map(|m| (m * 1e6) as u64),
            failure_rate: self.failure_rate,
        }
    }
}

/// A miner slot of the local subnet.
#[derive(Debug)]
pub struct MinerSlot {
    /// Its hotkey name in the `miners` wallet.
    pub hotkey_name: String,
    /// Its hotkey.
    pub hotkey: Keypair,
    /// Its uid.
    pub uid: Uid,
    /// Its state directory.
    pub dir: PathBuf,
    child: Option<Child>,
}

/// A running local subnet.
pub struct Localnet {
    opts: Options,
    /// The chain's websocket URL.
    pub url: String,
    /// A client of the chain.
    pub client: Client,
    /// The miners.
    pub miners: Vec<MinerSlot>,
    /// The validator's uid.
    pub validator_uid: Uid,
    /// The run spec.
    pub spec: RunSpec,
    chain: Option<Child>,
    validator: Option<Child>,
    s3: Option<S3Server>,
    /// The fronts before the stores of `store-slow` and `store-equivocate` miners, by index.
    fronts: BTreeMap<usize, Front>,
    storage_args: Vec<String>,
    /// The validator's `epochs.jsonl`, followed.
    reports: Mutex<Tail>,
    /// Where the validator serves `/metrics`, `/health` and its dashboard (`--metrics.port`).
    dashboard: Option<std::net::SocketAddr>,
    validator_done: Arc<Mutex<bool>>,
}

/// A port on 127.0.0.1 that is free now (bound, then released for a child to bind).
fn free_port() -> Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .context("finding a free port for the validator's dashboard")?;
    Ok(listener.local_addr()?)
}

fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Localnet {
    fn binary(&self, name: &str) -> PathBuf {
        self.opts.bin_dir.join(name)
    }

    /// Starts everything and returns once the processes are launched.
    ///
    /// # Errors
    /// A missing binary, a process that does not start, a chain call that fails.
    pub async fn start(opts: Options) -> Result<Localnet> {
        for bin in ["btlocalnet", "btminer", "btvalidator"] {
            let p = opts.bin_dir.join(bin);
            if !p.exists() {
                bail!(
                    "{} not found: build the binaries first (`cargo build --bins`)",
                    p.display()
                );
            }
        }
        let spec = RunSpec::load(&opts.spec)?;
        let _ = fs::remove_dir_all(&opts.dir);
        for sub in ["logs", "wallets", "neurons"] {
            fs::create_dir_all(opts.dir.join(sub))?;
        }
        let dir = fs::canonicalize(&opts.dir)?;

        // Wallets: the owner's (validator) and one coldkey for all miners.
        let wallets = dir.join("wallets");
        let password = PasswordSource::given(PASSWORD);
        let owner = Wallet::new("owner", "default", &wallets)?;
        let owner_cold = owner.create_coldkey(&password, false)?;
        let owner_hot = owner.create_hotkey(false)?;
        let miners_cold =
            Wallet::new("miners", "m0", &wallets)?.create_coldkey(&password, false)?;
        let stages = spec.stages.len();
        if let Some((i, _)) = opts
            .adversaries
            .iter()
            .find(|(i, _)| *i >= stages * opts.miners_per_stage)
        {
            bail!(
                "--adversary names miner {i}, but there are only {} (indices from 0)",
                stages * opts.miners_per_stage
            );
        }
        if opts.storage != StorageKind::S3
            && let Some((i, b)) = opts.adversaries.iter().find(|(_, b)| b.needs_s3())
        {
            bail!("--adversary {i}={b} needs --storage s3");
        }
        let mut slots = Vec::new();
        for i in 0..stages * opts.miners_per_stage {
            let name = format!("m{i}");
            let hotkey = Wallet::new("miners", &name, &wallets)?.create_hotkey(false)?;
            slots.push((name, hotkey));
        }
        info!(miners = slots.len(), "created wallets");

        // The chain, owned and funded as the operator's own keys.
        let mut chain_cmd = Command::new(opts.bin_dir.join("btlocalnet"));
        chain_cmd
            .args(["--port", "0", "--netuid", &NETUID.0.to_string()])
            .args(["--block-time", &opts.block_time_ms.to_string()])
            .args([
                "--tempo",
                "10",
                "--weights-rate-limit",
                "5",
                "--commit-reveal",
                if opts.commit_reveal { "true" } else { "false" },
            ])
            .args([
                "--owner",
                &owner_cold.ss58_address(),
                "--fund",
                &owner_cold.ss58_address(),
            ])
            .args(["--fund", &miners_cold.ss58_address()])
            .arg("--state")
            .arg(dir.join("chain.json"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(dir.join("logs/btlocalnet.log"))?));
        let mut chain = chain_cmd.spawn().context("starting btlocalnet")?;
        let url = {
            let stdout = chain.stdout.take().context("btlocalnet's stdout")?;
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(url) => url,
                Err(_) => {
                    let _ = chain.kill();
                    bail!(
                        "btlocalnet did not start within 30 s (see {}/logs/btlocalnet.log)",
                        dir.display()
                    );
                }
            }
        };
        let client = Client::connect(Endpoint::url(&url)?).await?;
        info!(%url, "local chain up");

        let validator_uid = client
            .burned_register(NETUID, &owner_cold, &owner_hot.account_id())
            .await
            .context("registering the validator")?;
        client
            .add_stake(NETUID, &owner_cold, &owner_hot.account_id(), 100 * TAO)
            .await
            .context("staking the validator")?;
        let mut miners = Vec::new();
        for (name, hotkey) in slots {
            let uid = client
                .burned_register(NETUID, &miners_cold, &hotkey.account_id())
                .await
                .with_context(|| format!("registering miner {name}"))?;
            miners.push(MinerSlot {
                dir: dir.join("neurons").join(&name),
                hotkey_name: name,
                hotkey,
                uid,
                child: None,
            });
        }
        info!(
            validator = validator_uid.0,
            miners = miners.len(),
            "registered"
        );

        let (s3, storage_args) = match opts.storage {
            StorageKind::Fs => (
                None,
                vec![
                    "--storage.url".into(),
                    dir.join("store").display().to_string(),
                    "--storage.allow_local".into(),
                ],
            ),
            StorageKind::S3 => {
                let server = S3Server::spawn("sliver");
                let args = vec![
                    "--storage.url".into(),
                    format!("s3://{}/local", server.bucket),
                    "--storage.endpoint".into(),
                    server.endpoint.clone(),
                    "--storage.region".into(),
                    "us-east-1".into(),
                    "--storage.allow_local".into(),
                ];
                (Some(server), args)
            }
        };

        let mut fronts = BTreeMap::new();
        if let Some(server) = &s3 {
            for (i, b) in &opts.adversaries {
                let conduct = match b {
                    Behaviour::StoreSlow => front::Conduct::Slow {
                        per_byte: slow_byte(&spec),
                    },
                    Behaviour::StoreEquivocate => front::Conduct::Equivocate {
                        signer: Arc::new(HotkeySigner(miners[*i].hotkey.clone())),
                    },
                    _ => continue,
                };
                fronts.insert(*i, Front::spawn(&server.endpoint, conduct)?);
            }
        }

        let reports = Mutex::new(Tail::new(&record::path(&dir.join("neurons/validator"))));
        let mut net = Localnet {
            opts,
            dashboard: None,
            url,
            client,
            miners,
            validator_uid,
            spec,
            chain: Some(chain),
            validator: None,
            s3,
            fronts,
            storage_args,
            reports,
            validator_done: Arc::new(Mutex::new(false)),
        };
        net.start_validator()?;
        let per = net.opts.miners_per_process.max(1);
        if per == 1 {
            for i in 0..net.miners.len() {
                net.start_miner(i)?;
            }
        } else {
            if !net.opts.adversaries.is_empty()
                || !net.opts.slowdowns.is_empty()
                || !net.opts.miner_flags.is_empty()
            {
                bail!(
                    "adversaries, slowed miners and miners' own flags run one miner per process: set miners_per_process to 1"
                );
            }
            let n = net.miners.len();
            for first in (0..n).step_by(per) {
                net.start_group(first..(first + per).min(n))?;
            }
        }
        Ok(net)
    }

    fn common_args(&self, cmd: &mut Command, wallet: &str, hotkey: &str, dir: &Path) {
        let wallets = self.opts.dir.join("wallets");
        cmd.args(["--netuid", &NETUID.0.to_string()])
            .args(["--wallet.name", wallet, "--wallet.hotkey", hotkey])
            .arg("--wallet.path")
            .arg(&wallets)
            .args(["--subtensor.chain_endpoint", &self.url])
            .args(&self.storage_args)
            .arg("--neuron.dir")
            .arg(dir)
            .args(["--neuron.threads", &self.opts.threads.to_string()])
            .env(PASSWORD_ENV, PASSWORD);
        if let Some(s3) = &self.s3 {
            // The write pair stays in the environment; the read-only pair is what is published.
            cmd.env("AWS_ACCESS_KEY_ID", &s3.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
                .env("SLIVER_READ_ACCESS_KEY_ID", &s3.read_key)
                .env("SLIVER_READ_SECRET_ACCESS_KEY", &s3.read_secret);
        }
        let link = self.opts.link;
        if !link.rtt.is_zero() {
            cmd.args(["--storage.latency_ms", &link.rtt.as_millis().to_string()]);
        }
        let mbit = |bps: u64| (bps as f64 / 1e6).to_string();
        if let Some(up) = link.up_bps {
            cmd.args(["--storage.link_up_mbit", &mbit(up)]);
        }
        if let Some(down) = link.down_bps {
            cmd.args(["--storage.link_down_mbit", &mbit(down)]);
        }
        if link.failure_rate > 0.0 {
            cmd.args([
                "--storage.link_failure_rate",
                &link.failure_rate.to_string(),
            ]);
        }
        if let Some(d) = &self.opts.data {
            cmd.args(["--data", d]);
        }
    }

    fn start_validator(&mut self) -> Result<()> {
        let dir = self.opts.dir.join("neurons/validator");
        let mut cmd = Command::new(self.binary("btvalidator"));
        self.common_args(&mut cmd, "owner", "default", &dir);
        // Its admin port, for the dashboard: one free now (the validator binds it within seconds).
        let admin = free_port()?;
        cmd.args(["--metrics.port", &admin.port().to_string()]);
        self.dashboard = Some(admin);
        cmd.arg("--spec")
            .arg(&self.opts.spec)
            .args(["--epochs", &self.opts.epochs.to_string()])
            .args(["--logging.format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting btvalidator")?;
        let stderr = child.stderr.take().context("btvalidator's stderr")?;
        let mut log = File::create(self.opts.dir.join("logs/validator.log"))?;
        let done = self.validator_done.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
            *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        });
        self.validator = Some(child);
        Ok(())
    }

    /// Starts (or restarts) miner `i`.
    ///
    /// # Errors
    /// The process does not start.
    pub fn start_miner(&mut self, i: usize) -> Result<()> {
        let slot = &self.miners[i];
        let mut cmd = Command::new(self.binary("btminer"));
        self.common_args(
            &mut cmd,
            "miners",
            &slot.hotkey_name.clone(),
            &slot.dir.clone(),
        );
        if let Some(ms) = self.opts.miner_poll_ms {
            cmd.args(["--miner.poll_ms", &ms.to_string()]);
        }
        if let Some((_, b)) = self.opts.adversaries.iter().find(|(m, _)| *m == i) {
            cmd.args(["--adversary", b.name()]);
        }
        if let Some(front) = self.fronts.get(&i) {
            cmd.args(["--adversary.front", &front.endpoint]);
        }
        if let Some((_, f)) = self.opts.slowdowns.iter().find(|(m, _)| *m == i) {
            cmd.args(["--sim.slowdown", &f.to_string()]);
        }
        for (_, flags) in self.opts.miner_flags.iter().filter(|(m, _)| *m == i) {
            cmd.args(flags);
        }
        let log = self
            .opts
            .dir
            .join(format!("logs/miner-{}.log", slot.hotkey_name));
        // Append across restarts.
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        cmd.stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .stdin(Stdio::null());
        let child = cmd.spawn().context("starting btminer")?;
        self.miners[i].child = Some(child);
        Ok(())
    }

    /// Starts the miners `group` in one `btminer` process (`--sim.hotkeys`), held by the first
    /// one's slot.
    fn start_group(&mut self, group: std::ops::Range<usize>) -> Result<()> {
        let names: Vec<String> = self.miners[group.clone()]
            .iter()
            .map(|m| m.hotkey_name.clone())
            .collect();
        let mut cmd = Command::new(self.binary("btminer"));
        let base = self.opts.dir.join("neurons");
        self.common_args(&mut cmd, "miners", &names[0], &base);
        cmd.args(["--sim.hotkeys", &names.join(",")]);
        if let Some(ms) = self.opts.miner_poll_ms {
            cmd.args(["--miner.poll_ms", &ms.to_string()]);
        }
        let log = File::create(self.opts.dir.join(format!(
            "logs/miners-{}-{}.log",
            group.start,
            group.end - 1
        )))?;
        cmd.stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .context("starting btminer for a group of miners")?;
        self.miners[group.start].child = Some(child);
        Ok(())
    }

    /// The process ids of the miners' processes (one per group when grouped).
    pub fn miner_pids(&self) -> Vec<u32> {
        self.miners
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// Asks miner `i` to finish its epoch and stop (SIGUSR1; `kill -USR1`).
    ///
    /// # Errors
    /// The miner is not running, or `kill` cannot be run.
    pub fn ask_miner_to_leave(&self, i: usize) -> Result<()> {
        let pid = self.miners[i]
            .child
            .as_ref()
            .map(Child::id)
            .with_context(|| format!("miner {i} is not running"))?;
        let status = Command::new("kill")
            .args(["-USR1", &pid.to_string()])
            .status()
            .context("running kill -USR1")?;
        ensure!(status.success(), "kill -USR1 {pid} failed: {status}");
        Ok(())
    }

    /// How miner `i`'s process ended, once it has; `None` while it runs (or was never started).
    pub fn miner_exit(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.miners[i].child.as_mut()?.try_wait().ok().flatten()
    }

    /// Kills miner `i` with SIGKILL (no chance to save).
    pub fn kill_miner(&mut self, i: usize) {
        if let Some(mut c) = self.miners[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The next epoch report, waiting at most `timeout`; `None` when the validator is gone (and
    /// every epoch it recorded has been returned) or the time ran out.
    pub fn next_report(&self, timeout: Duration) -> Option<EpochReport> {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let gone = || {
            *self
                .validator_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        follow(&mut reports, gone, timeout)
    }

    /// Whether the validator process has exited.
    pub fn validator_exited(&mut self) -> bool {
        self.validator
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The weights the validator has on chain, by miner uid.
    ///
    /// # Errors
    /// A chain error.
    pub async fn weights(&self) -> Result<BTreeMap<u16, u16>> {
        Ok(self
            .client
            .weights_of(NETUID, self.validator_uid)
            .await?
            .into_iter()
            .map(|(u, w)| (u.0, w))
            .collect())
    }

    /// The JSON-RPC calls the local chain has served so far, in all, by method and per
    /// connection (btlocalnet's `sliver_rpcStats`; this launcher's own connection included).
    ///
    /// # Errors
    /// A chain error.
    pub async fn rpc_stats(&self) -> Result<serde_json::Value> {
        Ok(self.client.request_json("sliver_rpcStats").await?)
    }

    /// What the front before miner `i`'s store has done, if it has one.
    pub fn front_stats(&self, i: usize) -> Option<front::FrontStats> {
        self.fronts.get(&i).map(Front::stats)
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// The validator's dashboard, `http://127.0.0.1:PORT/` (its metrics port, which also serves
    /// `/metrics`, `/health` and `/api/epochs`).
    pub fn dashboard_url(&self) -> Option<String> {
        self.dashboard.map(|a| format!("http://{a}/"))
    }

    /// Stops every process: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        let grace = Duration::from_secs(20);
        let mut children: Vec<Child> = self
            .miners
            .iter_mut()
            .filter_map(|m| m.child.take())
            .collect();
        children.extend(self.validator.take());
        for c in &mut children {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for c in &mut children {
            terminate(c, grace);
        }
        if let Some(mut c) = self.chain.take() {
            terminate(&mut c, grace);
        }
        self.fronts.clear();
        self.s3.take();
    }
}

/// The pause before each byte a `store-slow` front sends: a sixteenth of the spec's sample
/// timeout, so that sixteen bytes already take a reader's whole deadline for one artifact, and
/// every artifact, listing and shard (hundreds of bytes at least) many times that.
fn slow_byte(spec: &RunSpec) -> Duration {
    Duration::from_secs(spec.swarm.sample_timeout_secs) / 16
}

impl Drop for Localnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The next complete line of a record being written, looking every [`RECORD_POLL`] for at most
/// `timeout`; `None` when the time ran out, or when `gone` (its writer has exited) and nothing
/// is left to read.
fn follow(tail: &mut Tail, gone: impl Fn() -> bool, timeout: Duration) -> Option<EpochReport> {
    let deadline = Instant::now() + timeout;
    loop {
        // Read after seeing the writer gone: it appends before it exits, so this read sees its
        // last line.
        let gone = gone();
        match tail.next_report() {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "reading the validator's epoch record");
                if e.kind() == std::io::ErrorKind::InvalidData {
                    // That line is passed over: go on with the next.
                    continue;
                }
            }
        }
        let now = Instant::now();
        if gone || now >= deadline {
            return None;
        }
        std::thread::sleep(RECORD_POLL.min(deadline - now));
    }
}

/// Logs a warning when a process of the subnet has died.
pub fn check_alive(net: &mut Localnet) {
    for m in &mut net.miners {
        if let Some(c) = m.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            warn!(miner = m.hotkey_name, %status, "a miner exited");
            m.child = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use sliver_validator::record::{MinerRecord, SpotChecks};

    use super::*;

    fn report(epoch: u64) -> EpochReport {
        EpochReport {
            epoch: sliver_common::Epoch(epoch),
            block: 10 * epoch,
            eval_loss: Some(4.5),
            bytes_moved: 100,
            miners: vec![MinerRecord {
                uid: 1,
                stage: sliver_common::StageIndex(0),
                passes: 8,
                caught: Vec::new(),
            }],
            paths: 4,
            spot_checks: SpotChecks {
                checked: 1,
                failed: 0,
                worst_cosine: 1.0,
                worst_norm_error: 0.0,
                worst_drift: 0.0,
            },
            rejected: 0,
            scores: "store/scores.parquet".into(),
            cost: Default::default(),
        }
    }

    #[test]
    fn follow_waits_for_the_next_line_and_stops_when_the_writer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = Tail::new(&record::path(dir.path()));
        let short = Duration::from_millis(120);
        assert_eq!(follow(&mut tail, || false, short), None, "no file yet");

        let writer = {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                record::append(&dir, &report(1)).unwrap();
                record::append(&dir, &report(2)).unwrap();
            })
        };
        let long = Duration::from_secs(20);
        assert_eq!(follow(&mut tail, || false, long), Some(report(1)));
        writer.join().unwrap();
        assert_eq!(follow(&mut tail, || false, long), Some(report(2)));
        assert_eq!(follow(&mut tail, || false, short), None, "nothing new");

        // A writer gone: what it left is still returned, then `None` at once.
        record::append(dir.path(), &report(3)).unwrap();
        assert_eq!(follow(&mut tail, || true, long), Some(report(3)));
        let start = Instant::now();
        assert_eq!(follow(&mut tail, || true, long), None);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
