//! The validator's configuration: flags checked once, then immutable.

use std::path::PathBuf;

use anyhow::Result;
use sliver_chain::client::{Endpoint, NetUid};
use sliver_chain::wallet::Wallet;
use sliver_common::RunSpec;
use sliver_common::storage::StoreConfig;

use crate::cli::ValidatorArgs;

/// Everything the validator was told, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The subnet.
    pub netuid: NetUid,
    /// The wallet whose hotkey validates.
    pub wallet: Wallet,
    /// The chain.
    pub endpoint: Endpoint,
    /// Whether to register by burning if not registered, and how to confirm the burn.
    pub register: sliver_subnet::register::Registration,
    /// This validator's store (published spec, score tables).
    pub store: StoreConfig,
    /// State directory.
    pub dir: PathBuf,
    /// libtorch threads (0: default).
    pub threads: usize,
    /// Metrics port, if served.
    pub metrics_port: Option<u16>,
    /// How long to wait at start for the owner to publish the run spec.
    pub spec_wait: std::time::Duration,
    /// The run spec given with `--spec`, with its path.
    pub spec: Option<(RunSpec, String)>,
    /// Data source override.
    pub data: Option<String>,
    /// Held-out batches per evaluation.
    pub eval_batches: u64,
    /// Epochs to score before stopping (0: no limit).
    pub epochs: u64,
}

impl Config {
    /// Checks `args`.
    ///
    /// # Errors
    /// The first flag that is wrong, by name.
    pub fn from_args(args: &ValidatorArgs) -> Result<Self> {
        let dir = args.neuron.dir(&args.chain)?;
        let spec = sliver_subnet::args::load_spec(args.spec.as_deref())?;
        Ok(Self {
            netuid: args.chain.netuid(),
            wallet: args.chain.wallet()?,
            endpoint: args.chain.endpoint()?,
            register: args.chain.registration(),
            store: args.storage.config(&dir.join("store")),
            dir,
            threads: args.neuron.threads,
            metrics_port: args.neuron.metrics_port,
            spec_wait: std::time::Duration::from_secs(args.neuron.spec_wait_secs),
            spec,
            data: args.data.clone(),
            eval_batches: args.eval_batches,
            epochs: args.epochs,
        })
    }
}
