//! The miner's configuration: flags checked once, then immutable.

use std::path::PathBuf;

use anyhow::Result;
use sliver_chain::client::{Endpoint, NetUid};
use sliver_chain::wallet::Wallet;
use sliver_common::RunSpec;
use sliver_common::storage::StoreConfig;
use tch::Device;

use crate::cli::MinerArgs;

/// Everything the miner was told, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The subnet.
    pub netuid: NetUid,
    /// The wallet whose hotkey mines.
    pub wallet: Wallet,
    /// The chain.
    pub endpoint: Endpoint,
    /// Whether to register by burning if not registered, and how to confirm the burn.
    pub register: sliver_subnet::register::Registration,
    /// This miner's store.
    pub store: StoreConfig,
    /// State directory.
    pub dir: PathBuf,
    /// Compute device.
    pub device: Device,
    /// libtorch threads (0: default).
    pub threads: usize,
    /// Metrics port, if served.
    pub metrics_port: Option<u16>,
    /// How long to wait at start for the owner to publish the run spec.
    pub spec_wait: std::time::Duration,
    /// The spec this miner expects, with the path it came from.
    pub expected_spec: Option<(RunSpec, String)>,
    /// Data source override.
    pub data: Option<String>,
    /// Pause between looks for new inputs.
    pub poll: std::time::Duration,
    /// Artifacts put in this miner's store at once.
    pub uploads_at_once: usize,
    /// The cheat this miner plays (tests and benchmarks only).
    pub adversary: Option<crate::adversary::Adversary>,
    /// The front before this miner's store that a fronted adversary announces.
    pub adversary_front: Option<String>,
    /// How many times slower than this machine to play (`--sim.slowdown`; 1 outside tests).
    pub slowdown: f64,
    /// The hours it trains (`--availability`; `None`: always).
    pub availability: Option<crate::availability::Availability>,
}

impl Config {
    /// The miners `args` runs: one, or one per `--sim.hotkeys` name, each in its own
    /// `<neuron.dir>/<hotkey>` (`neuron.dir` is then required).
    ///
    /// # Errors
    /// The first flag that is wrong, by name.
    pub fn all_from_args(args: &MinerArgs) -> Result<Vec<Self>> {
        if args.sim_hotkeys.is_empty() {
            return Ok(vec![Self::from_args(args)?]);
        }
        let Some(base) = &args.neuron.dir else {
            anyhow::bail!("--sim.hotkeys needs --neuron.dir (each miner runs in a folder of it)");
        };
        args.sim_hotkeys
            .iter()
            .map(|hotkey| {
                let mut one = args.clone();
                one.chain.wallet_hotkey.clone_from(hotkey);
                one.neuron.dir = Some(base.join(hotkey));
                one.sim_hotkeys.clear();
                Self::from_args(&one)
            })
            .collect()
    }

    /// Checks `args`.
    ///
    /// # Errors
    /// The first flag that is wrong, by name.
    pub fn from_args(args: &MinerArgs) -> Result<Self> {
        let dir = args.neuron.dir(&args.chain)?;
        let expected_spec = sliver_subnet::args::load_spec(args.spec.as_deref())?;
        Ok(Self {
            netuid: args.chain.netuid(),
            wallet: args.chain.wallet()?,
            endpoint: args.chain.endpoint()?,
            register: args.chain.registration(),
            store: args.storage.config(&dir.join("store")),
            dir,
            device: args.neuron.device.0,
            threads: args.neuron.threads,
            metrics_port: args.neuron.metrics_port,
            spec_wait: std::time::Duration::from_secs(args.neuron.spec_wait_secs),
            expected_spec,
            data: args.data.clone(),
            poll: std::time::Duration::from_millis(args.poll_ms),
            uploads_at_once: usize::try_from(args.uploads_at_once).unwrap_or(usize::MAX),
            adversary: args.adversary,
            adversary_front: args.adversary_front.clone(),
            slowdown: args.sim_slowdown,
            availability: args.availability.clone(),
        })
    }
}
