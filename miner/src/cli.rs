//! The `btminer` command line (clap), with Bittensor-style dotted flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sliver_common::device::DeviceSpec;
use sliver_common::telemetry::LoggingArgs;
use sliver_subnet::args::{ChainArgs, NeuronArgs, StorageArgs};

/// Sliver miner: trains one pipeline stage of a language model shared across a Bittensor subnet.
///
/// Without a subcommand it joins the subnet: `btminer --netuid 9 --wallet.name W --wallet.hotkey H`.
#[derive(Debug, Parser)]
#[command(
    name = "btminer",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Logging flags.
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// What to do; none runs the miner.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The miner's flags.
    #[command(flatten)]
    pub miner: MinerArgs,
}

/// `btminer` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train every stage of a run spec in this process, passing activations and
    /// gradients between stages through the real wire codecs.
    ///
    /// Prints training and held-out loss as it goes, checkpoints to --out, and
    /// resumes from there when run again (Ctrl-C saves and stops).
    Local(LocalArgs),
    /// Where this miner stands, from the chain and the validators' published score tables:
    /// registered and at which uid, its stage this epoch, whether it is training (its latest
    /// verified work and throughput against its stage's), what each validator scored it last
    /// epoch and why it was caught if it was, its incentive and emission.
    ///
    /// Takes the running miner's wallet and chain flags; `--json` prints one JSON object.
    Status(sliver_subnet::status::StatusArgs),
    /// Checks before anything is spent, each pass, warn or fail with why: the chain, the
    /// registration and its burn, the clock against the chain's, the device's memory against
    /// the stage, free disk in the state dir, the published location (peers read it and
    /// cannot write with it), and upload and download speed to this miner's store.
    ///
    /// Takes the running miner's flags; exits non-zero when a check fails; `--json` for scripts.
    Doctor(Box<sliver_subnet::doctor::DoctorArgs>),
}

/// Flags of the network miner.
#[derive(Debug, Clone, clap::Args)]
pub struct MinerArgs {
    /// Subnet, wallet and chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Where this miner's artifacts go.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Device, state directory, threads, metrics.
    #[command(flatten)]
    pub neuron: NeuronArgs,
    /// The run spec you expect to train: the miner refuses to start when the subnet owner
    /// published a different one. Without it, the published spec is used as is.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Where to read the training text from, replacing the spec's data sources (a local copy
    /// of the same text).
    #[arg(long)]
    pub data: Option<String>,
    /// Milliseconds between looks for new inputs: each pipeline hop waits about half of it on
    /// top of storage. Each look is a GET per activation expected next (the oldest 4 per upstream
    /// stream, at most 32) and per gradient awaited, so raise it on a paid S3 endpoint; each
    /// upstream miner's activations are listed every ten polls, less often while its listings
    /// find nothing the names missed. The merge waits
    /// as long between looks for its peers' shards, and the training loop a fifth of it for its
    /// next input.
    #[arg(long = "miner.poll_ms", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub poll_ms: u64,
    /// Artifacts this miner puts in its store at once; the rest wait their turn. Every upload
    /// shares the uplink: a merge puts a copy of every shard of the stage, and all at once on a
    /// slow link each would take as long as the whole stage and pass the storage request
    /// timeout; with k at once each takes about k x shard / uplink. Raise it on a fast link to
    /// a distant store, where each put waits more on round trips than on bandwidth.
    #[arg(long = "miner.uploads_at_once", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub uploads_at_once: u64,
    /// The hours this miner trains, as windows of the day in local time (or UTC, ending in UTC):
    /// `22:00-06:00`, `22:00-06:00,12:00-13:30`, `09:00:00-17:30:00 UTC`. It trains the whole
    /// epochs that end in a window, announces the epochs it will be away so that no peer routes
    /// to it, and out of a window sleeps until the first epoch of the next, which it joins from
    /// its stage's latest merged weights. Unset: always.
    #[arg(long, value_parser = parse_availability)]
    pub availability: Option<crate::availability::Availability>,
    /// For the validator's tests and benchmarks only: cheat in this way (see `adversary.rs`).
    #[arg(long, hide = true)]
    pub adversary: Option<crate::adversary::Adversary>,
    /// For the tests' `store-slow` and `store-equivocate` only: the endpoint of the front
    /// before this miner's S3 store, announced in place of the store's own.
    #[arg(long = "adversary.front", hide = true, requires = "adversary")]
    pub adversary_front: Option<String>,
    /// Runs one miner per hotkey named here (of the same wallet), all in this process, each in
    /// `<neuron.dir>/<hotkey>` with its own link and chain connection: the scale benchmark's way
    /// of running many miners on one machine (`scripts/bench-scale`). Not for production: one
    /// process's failure stops them all.
    #[arg(
        long = "sim.hotkeys",
        hide = true,
        value_delimiter = ',',
        conflicts_with = "adversary"
    )]
    pub sim_hotkeys: Vec<String>,
    /// For tests and benchmarks: play a machine this many times slower than this one (each
    /// forward and backward is followed by a pause of `slowdown - 1` times its compute, counted
    /// as compute), so that a throttled miner measures, declares and is routed as a slow one.
    #[arg(long = "sim.slowdown", hide = true, default_value_t = 1.0, value_parser = parse_slowdown)]
    pub sim_slowdown: f64,
}

fn parse_availability(s: &str) -> Result<crate::availability::Availability, String> {
    s.parse()
        .map_err(|e: crate::availability::ParseError| e.to_string())
}

fn parse_slowdown(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (1.0..=1000.0).contains(&x) => Ok(x),
        _ => Err(format!("must be a number from 1 to 1000, got {s}")),
    }
}

/// Flags of `btminer local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Run spec (TOML).
    #[arg(long, default_value = "specs/local.toml")]
    pub spec: PathBuf,
    /// Text to train on, replacing the spec's data sources: a file, a directory or an object_store URL.
    #[arg(long)]
    pub data: Option<String>,
    /// Compute device: cpu, cuda, cuda:N or mps.
    #[arg(long = "neuron.device", default_value = "cpu")]
    pub device: DeviceSpec,
    /// Optimizer steps to train for in total (a resumed run counts the steps already done).
    #[arg(long, default_value_t = 300)]
    pub steps: u64,
    /// Evaluate on held-out text every this many steps (0: only at the end).
    #[arg(long, default_value_t = 25)]
    pub eval_every: u64,
    /// Held-out micro-batches per evaluation.
    #[arg(long, default_value_t = 8)]
    pub eval_batches: u64,
    /// Directory for checkpoints and the loss log.
    #[arg(long, default_value = "runs/local")]
    pub out: PathBuf,
    /// Save a checkpoint every this many steps (0: only at the end and on Ctrl-C).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: u64,
    /// Start from scratch even if --out holds a checkpoint of this run.
    #[arg(long)]
    pub fresh: bool,
    /// libtorch threads (0: libtorch's default).
    #[arg(long = "neuron.threads", default_value_t = 0)]
    pub threads: usize,
}
