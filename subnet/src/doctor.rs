//! `btminer doctor` and `btvalidator doctor`: checks before anything is spent, each with a
//! verdict (pass, warn, fail) and why.
//!
//! In order ([`run()`]): the chain answers; the hotkey is registered, or what registering would
//! burn (the subnet's `Burn`) against the coldkey's balance; a validator's permit; this
//! machine's clock against the chain's (`Timestamp.Now` of the latest finalized block, which
//! trails real time by up to a few blocks); the device and its memory against the stage it
//! would train (a miner's stage this epoch, else the largest: `sizing::StageMemory`); free disk
//! in the state directory; the location this neuron would publish (peers can read its store
//! through it and cannot write it: the same write probe a neuron makes at start, and one a
//! peer could reach on this network); and the upload and download speed to its own store (a
//! test object of a few MB put, read back and deleted, under `scratch/{hotkey}/`), against
//! what a miner's merge moves in its window. A check that cannot run for want of an earlier
//! one (no chain, no spec) warns, saying which. Nothing is registered, announced or paid.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;
use sliver_chain::client::{Client, Endpoint, Metagraph, NetUid};
use sliver_chain::wallet::AccountId32;
use sliver_common::artifact::Hotkey;
use sliver_common::sizing::{MergeTraffic, StageMemory, stage_parameters};
use sliver_common::storage::{Store, StoreConfig};
use sliver_common::{Epoch, RunSpec, layout};

use crate::announce::{Announcement, Role};
use crate::args::{ChainArgs, NeuronArgs, StorageArgs};
use crate::register::tao;
use crate::run::{self, RunView};

/// Flags of `btminer doctor` and `btvalidator doctor`: the running binary's, and the size of
/// the speed check's test object.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Subnet, wallet and chain (`--register` does nothing here and is refused).
    #[command(flatten)]
    pub chain: ChainArgs,
    /// This participant's storage, as the running binary takes it.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Device, state directory.
    #[command(flatten)]
    pub neuron: NeuronArgs,
    /// The run spec to size against (default: the one the subnet owner published).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Megabytes of the test object put to and read back from this participant's store.
    #[arg(long = "doctor.transfer_mb", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub transfer_mb: u64,
    /// Print one JSON object instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Works, but look at it.
    Warn,
    /// Will not work: fix before starting.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Its name: `chain`, `registration`, `permit`, `clock`, `device`, `disk`, `location`,
    /// `storage_speed`.
    pub name: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// Why, in words.
    pub detail: String,
    /// The figures it measured (for scripts), by name.
    pub facts: BTreeMap<&'static str, serde_json::Value>,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict,
            detail: detail.into(),
            facts: BTreeMap::new(),
        }
    }

    fn fact(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.facts.insert(name, value.into());
        self
    }
}

/// Every check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `miner` or `validator`.
    pub role: String,
    /// The hotkey, SS58 (`None`: unreadable).
    pub hotkey: Option<String>,
    /// The checks, in the order run.
    pub checks: Vec<Check>,
    /// Whether no check failed.
    pub ok: bool,
}

impl Report {
    /// The checks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "doctor: {} {}",
            self.role,
            self.hotkey.as_deref().unwrap_or("(hotkey unreadable)")
        )?;
        for c in &self.checks {
            writeln!(f, "{:<4}  {:<13} {}", c.verdict, c.name, c.detail)?;
        }
        let failed = self.failed().count();
        if failed == 0 {
            writeln!(f, "no check failed")
        } else {
            writeln!(f, "{failed} check(s) failed")
        }
    }
}

/// What the chain checks found, for the checks after them.
struct Chain {
    client: Arc<Client>,
    metagraph: Metagraph,
    block_time: Duration,
}

/// What `btminer doctor` and `btvalidator doctor` print (the report as text, or as JSON with
/// `--json`), and how many checks failed (the binary then exits non-zero).
///
/// # Errors
/// What [`run()`] fails with.
pub async fn answer(role: Role, args: &DoctorArgs) -> Result<(String, usize)> {
    let report = run(role, args).await?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_string()
    };
    Ok((text, report.failed().count()))
}

/// Runs every check for `role` ([`Role::Miner`], or a validator).
///
/// # Errors
/// Flags that do not parse (a wallet name, an endpoint); every other failure is a check's.
pub async fn run(role: Role, args: &DoctorArgs) -> Result<Report> {
    let mut checks = Vec::new();
    if args.chain.register {
        anyhow::bail!("doctor does not register: run the miner or validator with --register");
    }
    let wallet = args.chain.wallet()?;
    let endpoint = args.chain.endpoint()?;
    let netuid = args.chain.netuid();
    let hotkey = match wallet.hotkeypub() {
        Ok(h) => Some(h),
        Err(e) => {
            checks.push(Check::new(
                "hotkey",
                Verdict::Fail,
                format!(
                    "cannot read the hotkey {}: {e}",
                    wallet.hotkey_path().display()
                ),
            ));
            None
        }
    };
    let chain = chain_check(&endpoint, netuid, &mut checks).await;
    let spec = spec_of(args, chain.as_ref(), netuid, &mut checks).await;
    if let (Some(chain), Some(hotkey)) = (&chain, &hotkey) {
        checks.push(registration(chain, netuid, hotkey, &wallet).await);
        if role != Role::Miner {
            checks.push(permit(&chain.metagraph, hotkey));
        }
        checks.push(clock(chain).await);
    }
    let stage = match (&chain, &hotkey, &spec) {
        (Some(chain), Some(hotkey), Some(spec)) if role == Role::Miner => {
            stage_now(chain, netuid, spec, hotkey, args).await
        }
        _ => None,
    };
    checks.push(device(role, args, spec.as_ref(), stage));
    let dir = args.neuron.dir(&args.chain)?;
    checks.push(disk(role, &dir, spec.as_ref(), stage));
    let store_config = args.storage.config(&dir.join("store"));
    checks.push(
        location(
            &endpoint,
            &store_config,
            chain.as_ref(),
            netuid,
            hotkey.as_ref(),
        )
        .await,
    );
    checks.push(
        speed(
            &store_config,
            hotkey.as_ref(),
            args.transfer_mb,
            role,
            (spec.as_ref(), stage, chain.as_ref()),
        )
        .await,
    );
    let ok = checks.iter().all(|c| c.verdict != Verdict::Fail);
    Ok(Report {
        role: if role == Role::Miner {
            "miner"
        } else {
            "validator"
        }
        .to_owned(),
        hotkey: hotkey.map(|h| h.to_string()),
        checks,
        ok,
    })
}

async fn chain_check(
    endpoint: &Endpoint,
    netuid: NetUid,
    checks: &mut Vec<Check>,
) -> Option<Chain> {
    let connected = async {
        let client = Arc::new(Client::connect(endpoint.clone()).await?);
        let metagraph = client.metagraph(netuid).await?;
        let block_time = client.block_time().await?;
        Ok::<_, sliver_chain::client::Error>(Chain {
            client,
            metagraph,
            block_time,
        })
    };
    match connected.await {
        Ok(chain) => {
            checks.push(
                Check::new(
                    "chain",
                    Verdict::Pass,
                    format!(
                        "{} ({}) answers: block {}, netuid {} has {} neurons, a block every {:.2} s",
                        endpoint.network(),
                        endpoint.as_str(),
                        chain.metagraph.block.0,
                        netuid.0,
                        chain.metagraph.len(),
                        chain.block_time.as_secs_f64()
                    ),
                )
                .fact("block", chain.metagraph.block.0)
                .fact("block_time_s", chain.block_time.as_secs_f64()),
            );
            Some(chain)
        }
        Err(e) => {
            checks.push(Check::new(
                "chain",
                Verdict::Fail,
                format!("{} on netuid {}: {e}", endpoint.as_str(), netuid.0),
            ));
            None
        }
    }
}

/// The spec given with `--spec`, else the one the owner published; a warning when neither.
async fn spec_of(
    args: &DoctorArgs,
    chain: Option<&Chain>,
    netuid: NetUid,
    checks: &mut Vec<Check>,
) -> Option<RunSpec> {
    if let Some(path) = &args.spec {
        return match RunSpec::load(path) {
            Ok(spec) => Some(spec),
            Err(e) => {
                checks.push(Check::new(
                    "spec",
                    Verdict::Fail,
                    format!("--spec {}: {e}", path.display()),
                ));
                None
            }
        };
    }
    let chain = chain?;
    let peers = (
        args.storage.config(Path::new(".")).reach,
        Default::default(),
    );
    match run::discover_spec(&chain.client, netuid, Duration::ZERO, peers).await {
        Ok(spec) => Some(spec),
        Err(e) => {
            checks.push(Check::new(
                "spec",
                Verdict::Warn,
                format!(
                    "the published run spec could not be read ({e:#}); pass --spec to size the checks against it"
                ),
            ));
            None
        }
    }
}

async fn registration(
    chain: &Chain,
    netuid: NetUid,
    hotkey: &AccountId32,
    wallet: &sliver_chain::wallet::Wallet,
) -> Check {
    let params = match chain.client.subnet_params(netuid).await {
        Ok(p) => p,
        Err(e) => {
            return Check::new(
                "registration",
                Verdict::Fail,
                format!("reading the subnet's parameters: {e}"),
            );
        }
    };
    let burn = params.burn;
    if let Some(n) = chain.metagraph.by_hotkey(hotkey) {
        return Check::new(
            "registration",
            Verdict::Pass,
            format!(
                "registered at uid {} (registering now would burn {} TAO)",
                n.uid.0,
                tao(burn)
            ),
        )
        .fact("uid", n.uid.0)
        .fact("burn_rao", burn);
    }
    let free = match wallet.coldkeypub() {
        Ok(cold) => chain.client.free_balance(&cold).await.ok(),
        Err(_) => None,
    };
    let (verdict, balance) = match free {
        Some(free) if free < burn => (
            Verdict::Fail,
            format!("the coldkey holds {} TAO, less than the burn", tao(free)),
        ),
        Some(free) => (
            Verdict::Warn,
            format!("the coldkey holds {} TAO", tao(free)),
        ),
        None => (Verdict::Warn, "the coldkey's balance is unknown".to_owned()),
    };
    let mut check = Check::new(
        "registration",
        verdict,
        format!(
            "not registered on netuid {}: --register would burn {} TAO ({} of {} uids taken); {balance}",
            netuid.0,
            tao(burn),
            params.n,
            params.max_uids
        ),
    )
    .fact("burn_rao", burn);
    if let Some(free) = free {
        check = check.fact("coldkey_free_rao", free);
    }
    check
}

fn permit(metagraph: &Metagraph, hotkey: &AccountId32) -> Check {
    match metagraph.by_hotkey(hotkey) {
        Some(n) if n.validator_permit => Check::new(
            "permit",
            Verdict::Pass,
            format!("holds a validator permit, stake {} (alpha)", tao(n.stake)),
        )
        .fact("stake_rao", n.stake),
        Some(n) => Check::new(
            "permit",
            Verdict::Warn,
            format!(
                "no validator permit (stake {}): miners answer only permitted validators; the chain gives permits to the most staked",
                tao(n.stake)
            ),
        )
        .fact("stake_rao", n.stake),
        None => Check::new("permit", Verdict::Warn, "not registered: no permit"),
    }
}

/// The offset of this machine's clock from the chain's: local time minus the latest finalized
/// block's `Timestamp.Now`. That block is up to a few blocks old, so a right clock reads ahead
/// of it by up to `allowance` (four block times and 2 s); a clock behind it is wrong.
async fn clock(chain: &Chain) -> Check {
    let (block, chain_ms) = match chain.client.chain_time().await {
        Ok(t) => t,
        Err(e) => {
            return Check::new(
                "clock",
                Verdict::Warn,
                format!("reading Timestamp.Now: {e}"),
            );
        }
    };
    let local_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let offset = local_ms - chain_ms as i64;
    let allowance = 4 * chain.block_time.as_millis() as i64 + 2_000;
    let (verdict, why) = if offset < -2_000 {
        let verdict = if offset < -30_000 {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        (verdict, "this clock is behind the chain's: sync it (NTP)")
    } else if offset > allowance {
        let verdict = if offset > allowance + 60_000 {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        (
            verdict,
            "this clock is ahead of the chain's by more than a few blocks: sync it (NTP), or the node lags",
        )
    } else {
        (Verdict::Pass, "within a few blocks of the chain's")
    };
    Check::new(
        "clock",
        verdict,
        format!(
            "local time - block {} time = {:+.1} s (a finalized block trails by up to {:.1} s): {why}",
            block.0,
            offset as f64 / 1000.0,
            allowance as f64 / 1000.0
        ),
    )
    .fact("offset_ms", offset)
}

/// A miner's stage in the current epoch's roster.
async fn stage_now(
    chain: &Chain,
    netuid: NetUid,
    spec: &RunSpec,
    hotkey: &AccountId32,
    args: &DoctorArgs,
) -> Option<usize> {
    let config = args.storage.config(Path::new("."));
    let view = RunView::new(
        chain.client.clone(),
        netuid,
        spec.clone(),
        (config.reach, config.timeouts, config.link),
    );
    let epoch: Epoch = spec.swarm.schedule().epoch_of(chain.metagraph.block.0);
    let roster = view.roster(epoch).await.ok()?;
    roster
        .assignment
        .position(&Hotkey(hotkey.0))
        .map(|(s, _)| s.index())
}

/// The stage memory is checked against: the miner's stage, else the largest (stages move with
/// the roster; a validator recomputes any stage's spot checks).
fn sized_stage(spec: &RunSpec, stage: Option<usize>) -> Option<(usize, StageMemory)> {
    match stage {
        Some(s) => StageMemory::of(spec, s).map(|m| (s, m)),
        None => (0..spec.stages.len())
            .filter_map(|s| StageMemory::of(spec, s).map(|m| (s, m)))
            .max_by_key(|(_, m)| m.total()),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The device's memory: (total, available) bytes, and what was measured.
fn device_memory(device: tch::Device) -> Result<(u64, u64, &'static str)> {
    match device {
        tch::Device::Cpu => {
            let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    .map(|kb| kb * 1024)
            };
            let total = field("MemTotal:").context("no MemTotal in /proc/meminfo")?;
            let available = field("MemAvailable:").context("no MemAvailable in /proc/meminfo")?;
            Ok((total, available, "system memory"))
        }
        tch::Device::Cuda(n) => {
            let out = std::process::Command::new("nvidia-smi")
                .args([
                    "--query-gpu=memory.total,memory.free",
                    "--format=csv,noheader,nounits",
                    "-i",
                    &n.to_string(),
                ])
                .output()
                .context("running nvidia-smi")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut figures = text
                .trim()
                .split(',')
                .map(|v| v.trim().parse::<u64>().map(|mib| mib << 20));
            match (figures.next(), figures.next()) {
                (Some(Ok(total)), Some(Ok(free))) => Ok((total, free, "GPU memory")),
                _ => anyhow::bail!("nvidia-smi answered {text:?}"),
            }
        }
        other => anyhow::bail!("cannot measure the memory of {other:?}"),
    }
}

fn device(role: Role, args: &DoctorArgs, spec: Option<&RunSpec>, stage: Option<usize>) -> Check {
    let device = args.neuron.device.0;
    let Some(spec) = spec else {
        return Check::new(
            "device",
            Verdict::Warn,
            format!("{device:?}: the run spec is unknown, so what a stage needs is too"),
        );
    };
    let Some((index, need)) = sized_stage(spec, stage) else {
        return Check::new("device", Verdict::Warn, "the run spec has no stage");
    };
    let which = match (role, stage) {
        (Role::Miner, Some(_)) => format!("stage {index} (this epoch's)"),
        (Role::Miner, None) => format!("stage {index}, the largest (not on the roster yet)"),
        _ => format!("stage {index}, the largest (spot checks recompute any stage)"),
    };
    let need = need.total();
    match device_memory(device) {
        Ok((total, available, what)) => {
            let verdict = if available >= need.saturating_mul(5) / 4 {
                Verdict::Pass
            } else if total >= need {
                Verdict::Warn
            } else {
                Verdict::Fail
            };
            Check::new(
                "device",
                verdict,
                format!(
                    "{device:?}: {} of {} {what} free; {which} needs about {} to train (weights, gradients, AdamW, one micro-batch)",
                    gib(available),
                    gib(total),
                    gib(need)
                ),
            )
            .fact("device", format!("{device:?}"))
            .fact("stage", index)
            .fact("memory_needed_bytes", need)
            .fact("memory_total_bytes", total)
            .fact("memory_available_bytes", available)
        }
        Err(e) => Check::new(
            "device",
            Verdict::Warn,
            format!(
                "{device:?}: {e:#}; {which} needs about {} to train",
                gib(need)
            ),
        )
        .fact("memory_needed_bytes", need),
    }
}

/// Free bytes on the filesystem holding `dir` (or its nearest existing ancestor).
fn free_disk(dir: &Path) -> Result<(PathBuf, u64)> {
    let mut at = dir.to_path_buf();
    while !at.exists() {
        if !at.pop() {
            at = PathBuf::from(".");
            break;
        }
    }
    let stat =
        nix::sys::statvfs::statvfs(&at).with_context(|| format!("statvfs {}", at.display()))?;
    #[allow(
        clippy::useless_conversion,
        reason = "fsblkcnt_t and c_ulong are u64 on 64-bit Linux, narrower elsewhere"
    )]
    let free = u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size()));
    Ok((at, free))
}

/// What the state directory must hold: a miner its stage checkpoint, the previous one and the
/// weight versions it keeps to answer spot checks (about three copies of its weights); a
/// validator the stages it rebuilds for spot checks; 1 GiB of room besides.
fn disk(role: Role, dir: &Path, spec: Option<&RunSpec>, stage: Option<usize>) -> Check {
    let weights = spec
        .and_then(|s| sized_stage(s, stage))
        .map_or(0, |(_, m)| m.weights);
    let copies = if role == Role::Miner { 3 } else { 2 };
    let need = weights.saturating_mul(copies).saturating_add(1 << 30);
    match free_disk(dir) {
        Ok((at, free)) => {
            let verdict = if free >= need.saturating_mul(2) {
                Verdict::Pass
            } else if free >= need {
                Verdict::Warn
            } else {
                Verdict::Fail
            };
            Check::new(
                "disk",
                verdict,
                format!(
                    "{} free at {} (the state dir {}); about {} needed",
                    gib(free),
                    at.display(),
                    dir.display(),
                    gib(need)
                ),
            )
            .fact("free_bytes", free)
            .fact("needed_bytes", need)
        }
        Err(e) => Check::new("disk", Verdict::Warn, format!("{e:#}")),
    }
}

/// The location this neuron would publish: announceable on this network, and through it peers
/// can list the store and cannot write it ([`Store::verify_published`], a write probe with the
/// published read credential).
async fn location(
    endpoint: &Endpoint,
    config: &StoreConfig,
    chain: Option<&Chain>,
    netuid: NetUid,
    hotkey: Option<&AccountId32>,
) -> Check {
    let network = endpoint.network();
    let location = match config.to_location() {
        Ok(l) => l,
        Err(e) => return Check::new("location", Verdict::Fail, format!("{config}: {e}")),
    };
    let shown = run::redact(&location);
    if let Err(e) = crate::neuron::check_announceable(network, &location)
        .and_then(|()| crate::neuron::check_reach(network, config.reach))
    {
        return Check::new("location", Verdict::Fail, format!("{e:#}"));
    }
    let store = match Store::open(config) {
        Ok(s) => s,
        Err(e) => {
            return Check::new("location", Verdict::Fail, format!("opening {config}: {e}"));
        }
    };
    let participant = hotkey.map_or(Hotkey([0; 32]), |h| Hotkey(h.0));
    let probe = layout::probe(&participant, nonce());
    if let Err(e) = store
        .verify_published(&location, config.reach, &probe)
        .await
    {
        return Check::new("location", Verdict::Fail, format!("{shown}: {e}"));
    }
    let directory = !location.starts_with("s3://");
    let mut detail = if directory {
        format!("{shown}: a directory, readable by processes on this machine only (a local subnet)")
    } else if config.read_access_key_id.is_some() {
        format!(
            "{shown}: peers can list the store with the published read-only key, and a write with it was refused"
        )
    } else {
        format!(
            "{shown}: public-read: peers can list the store without a key, and an anonymous write was refused"
        )
    };
    let mut verdict = Verdict::Pass;
    if let (Some(chain), Some(hotkey)) = (chain, hotkey) {
        match chain.client.commitment(netuid, hotkey).await {
            Ok(Some(c)) => match Announcement::parse(&c.data) {
                Ok(a) if a.location == location => detail.push_str("; the chain announces it"),
                Ok(a) => {
                    verdict = Verdict::Warn;
                    detail.push_str(&format!(
                        "; the chain announces another location ({}), which the neuron replaces when it starts",
                        run::redact(&a.location)
                    ));
                }
                Err(_) => {
                    detail.push_str("; the hotkey's commitment is not a Sliver announcement yet")
                }
            },
            Ok(None) => {
                detail.push_str("; not announced yet (the neuron announces it when it starts)")
            }
            Err(e) => detail.push_str(&format!("; its commitment could not be read: {e}")),
        }
    }
    Check::new("location", verdict, detail).fact("directory", directory)
}

fn nonce() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn mbit_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 * 8.0 / 1e6 / took.as_secs_f64().max(1e-6)
}

/// Puts a test object of `mb` MB in this participant's own store, reads it back and deletes it,
/// timing both; a miner's speeds are set against what its merge moves in the merge window.
async fn speed(
    config: &StoreConfig,
    hotkey: Option<&AccountId32>,
    mb: u64,
    role: Role,
    (spec, stage, chain): (Option<&RunSpec>, Option<usize>, Option<&Chain>),
) -> Check {
    let store = match Store::open(config) {
        Ok(s) => s,
        Err(e) => {
            return Check::new(
                "storage_speed",
                Verdict::Fail,
                format!("opening {config}: {e}"),
            );
        }
    };
    let participant = hotkey.map_or(Hotkey([0; 32]), |h| Hotkey(h.0));
    let folder = layout::scratch(&participant, nonce());
    let key = format!("{folder}/speed");
    let len = mb << 20;
    // Not compressible, so a store or link that compresses does not flatter the figure.
    let body: Vec<u8> = {
        let mut x = nonce() | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let body = Bytes::from(body);
    // Each transfer is bounded as the store bounds a request (`--storage.request_timeout_secs`).
    let bound = store.config().timeouts.request;
    let started = Instant::now();
    let put = tokio::time::timeout(bound, store.put_once(&key, body.clone())).await;
    let up = started.elapsed();
    let measured = match put {
        Ok(Ok(_)) => {
            let started = Instant::now();
            let got = tokio::time::timeout(bound, store.get(&key, len)).await;
            let down = started.elapsed();
            match got {
                Ok(Ok(Some(b))) if b == body => Ok((up, down)),
                Ok(Ok(Some(_))) => Err("the object read back differs from the one put".to_owned()),
                Ok(Ok(None)) => Err("the object put is not there to read back".to_owned()),
                Ok(Err(e)) => Err(format!("reading the test object back: {e}")),
                Err(_) => Err(format!("reading the test object back took over {bound:?}")),
            }
        }
        Ok(Err(e)) => Err(format!("putting a test object: {e}")),
        Err(_) => Err(format!("putting a test object took over {bound:?}")),
    };
    let cleaned = store.delete_prefix(&folder).await;
    let (up, down) = match measured {
        Ok(t) => t,
        Err(e) => return Check::new("storage_speed", Verdict::Fail, format!("{config}: {e}")),
    };
    let (up_mbit, down_mbit) = (mbit_per_s(len, up), mbit_per_s(len, down));
    let mut verdict = Verdict::Pass;
    let mut detail = format!(
        "{mb} MB to {config}: up {up_mbit:.1} Mbit/s ({:.2} s), down {down_mbit:.1} Mbit/s ({:.2} s)",
        up.as_secs_f64(),
        down.as_secs_f64()
    );
    if let Err(e) = cleaned {
        verdict = Verdict::Warn;
        detail.push_str(&format!(
            "; the test object could not be deleted ({e}): remove {folder}/ by hand"
        ));
    }
    let mut check = Check::new("storage_speed", verdict, String::new())
        .fact("bytes", len)
        .fact("up_mbit", up_mbit)
        .fact("down_mbit", down_mbit);
    if let (Role::Miner, Some(spec), Some(chain)) = (role, spec, chain)
        && let Some((index, _)) = sized_stage(spec, stage)
        && let Some(params) = stage_parameters(spec, index)
    {
        // Two miners a stage at least: what the merge moves with one peer (more peers, more).
        let traffic = MergeTraffic::of(params.total(), 2);
        let window = chain.block_time.as_secs_f64() * spec.swarm.merge_blocks as f64;
        if window > 0.0 {
            let need_up = traffic.up() as f64 * 8.0 / 1e6 / window;
            let need_down = traffic.down() as f64 * 8.0 / 1e6 / window;
            detail.push_str(&format!(
                "; stage {index}'s merge with one peer needs at least {need_up:.1} up and {need_down:.1} down over its {window:.0} s window"
            ));
            if up_mbit < need_up || down_mbit < need_down {
                check.verdict = check.verdict.max(Verdict::Warn);
                detail.push_str(": this link is slower");
            }
            check = check
                .fact("merge_needs_up_mbit", need_up)
                .fact("merge_needs_down_mbit", need_down);
        }
    }
    check.detail = detail;
    check
}
