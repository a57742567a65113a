//! The `btvalidator` command line (clap), with Bittensor-style dotted flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sliver_common::telemetry::LoggingArgs;
use sliver_subnet::args::{ChainArgs, NeuronArgs, StorageArgs};

/// Sliver validator: checks miners' work, scores them and sets weights on a Bittensor subnet.
///
/// Without a subcommand it validates: `btvalidator --netuid 9 --wallet.name W --wallet.hotkey H`
/// (`--wallet` is an alias of `--wallet.name`).
#[derive(Debug, Parser)]
#[command(
    name = "btvalidator",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Logging flags.
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// What to do; none runs the validator.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The validator's flags.
    #[command(flatten)]
    pub validator: ValidatorArgs,
}

/// `btvalidator` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a run spec and size it: per stage its parameters, memory, boundary bytes and
    /// merge traffic, and the merge window and epoch its merge needs at a given link speed.
    ///
    /// Nothing is built: every number is arithmetic on the spec (`sliver_common::sizing`).
    /// Exits non-zero, naming the offending field, when the spec is invalid.
    Spec {
        /// Run spec (TOML).
        file: PathBuf,
        /// The link and swarm to size the merge for.
        #[command(flatten)]
        sizing: crate::spec::SizingArgs,
    },
    /// Print a run's score tables: one table per epoch, caught miners first.
    ///
    /// DIR is the run's directory in the validator's store (it holds `scores/epoch=N/` and
    /// `paths/epoch=N/`), e.g. `runs/demo/neurons/validator/store/runs/local` after the demo.
    Scores {
        /// The run's directory.
        #[arg(long = "run")]
        run: PathBuf,
    },
    /// Work on a run's training text.
    #[command(subcommand)]
    Data(DataCommand),
    /// Where this validator stands, from the chain and its published score tables:
    /// registered and at which uid, its validator permit and stake, the block it last set
    /// weights, and the last epoch it scored.
    ///
    /// Takes the running validator's wallet and chain flags; `--json` prints one JSON object.
    Status(sliver_subnet::status::StatusArgs),
    /// Checks before anything is spent, each pass, warn or fail with why: the chain, the
    /// registration and its burn, the validator permit, the clock against the chain's, the
    /// device's memory against the largest stage, free disk in the state dir, the published
    /// location (peers read it and cannot write with it), and upload and download speed to this
    /// validator's store.
    ///
    /// Takes the running validator's flags; exits non-zero when a check fails; `--json` for
    /// scripts.
    Doctor(Box<sliver_subnet::doctor::DoctorArgs>),
}

/// `btvalidator data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Tokenize the spec's `[data]` sources into token shards and a manifest, one file at a
    /// time, and print the `shards` and `manifest_blake3` lines that make participants read them
    /// (by ranged GETs, never the whole corpus) instead of the sources.
    ///
    /// An `s3://` output takes its endpoint, region and write keys from `AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. Rerunning over the same
    /// sources rewrites nothing; other sources into the same place are refused.
    Prepare {
        /// Run spec (TOML) whose `[data]` is tokenized.
        #[arg(long)]
        spec: PathBuf,
        /// Where the shards go: a directory, `file://` URL or `s3://bucket/prefix`.
        #[arg(long)]
        out: String,
        /// Most tokens per shard.
        #[arg(long, default_value_t = 1 << 22)]
        shard_tokens: u64,
    },
}

/// Flags of the network validator.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidatorArgs {
    /// Subnet, wallet and chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Where this validator publishes the spec (as subnet owner) and its score tables.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Device, state directory, threads, metrics.
    #[command(flatten)]
    pub neuron: NeuronArgs,
    /// The run spec. The subnet owner's validator publishes it; any other validator refuses to
    /// start when the owner published a different one.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Where to read the held-out text from, replacing the spec's data sources (and its
    /// prepared shards).
    #[arg(long)]
    pub data: Option<String>,
    /// Held-out micro-batches per evaluation of the merged model.
    #[arg(long, default_value_t = 32)]
    pub eval_batches: u64,
    /// Stop after scoring this many epochs (0: run until stopped).
    #[arg(long, default_value_t = 0)]
    pub epochs: u64,
}
