//! The flags both binaries share, named as Bittensor names them.
//!
//! `--wallet` is an alias of `--wallet.name`, and wallet, hotkey and path default as btcli's do,
//! so `btvalidator --wallet hot` works as written.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use sliver_chain::client::{Endpoint, NetUid};
use sliver_chain::wallet::Wallet;
use sliver_common::storage::{Link, LinkSpec, Reach, StoreConfig, Timeouts};

use crate::register::Registration;

/// Subnet, wallet and chain flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// The subnet.
    #[arg(long, default_value_t = 9)]
    pub netuid: u16,
    /// Wallet name (btcli's `--wallet.name`).
    #[arg(long = "wallet.name", alias = "wallet", default_value = Wallet::DEFAULT_NAME)]
    pub wallet_name: String,
    /// Hotkey name within the wallet.
    #[arg(long = "wallet.hotkey", default_value = Wallet::DEFAULT_HOTKEY)]
    pub wallet_hotkey: String,
    /// Directory holding the wallets.
    #[arg(long = "wallet.path", default_value = Wallet::DEFAULT_PATH)]
    pub wallet_path: PathBuf,
    /// Network: finney, test or local.
    #[arg(long = "subtensor.network")]
    pub network: Option<String>,
    /// Chain endpoint (ws:// or wss://), overriding the network's default.
    #[arg(long = "subtensor.chain_endpoint")]
    pub chain_endpoint: Option<String>,
    /// Register the hotkey by burning TAO from the coldkey if it is not registered yet, after
    /// showing the burn and the coldkey's balance and asking (see `--yes`, `--max-burn`; the
    /// coldkey password comes from `BT_COLD_PW_<WALLET>` or `SLIVER_COLDKEY_PASSWORD`, or a prompt).
    #[arg(long)]
    pub register: bool,
    /// With `--register`: burn without asking (for scripts). Without it, registering shows the
    /// burn and the coldkey's balance and asks on the terminal, and refuses with no terminal.
    #[arg(long, requires = "register")]
    pub yes: bool,
    /// With `--register`: refuse to register when the subnet's burn is above this many TAO.
    #[arg(long = "max-burn", value_name = "TAO", requires = "register", value_parser = crate::register::parse_tao)]
    pub max_burn: Option<u64>,
}

impl ChainArgs {
    /// The wallet these flags name.
    ///
    /// # Errors
    /// An invalid wallet or hotkey name.
    pub fn wallet(&self) -> Result<Wallet> {
        Wallet::new(&self.wallet_name, &self.wallet_hotkey, &self.wallet_path)
            .context("--wallet.name / --wallet.hotkey / --wallet.path")
    }

    /// The chain endpoint these flags name.
    ///
    /// # Errors
    /// An unknown network or a malformed endpoint.
    pub fn endpoint(&self) -> Result<Endpoint> {
        Endpoint::resolve(self.network.as_deref(), self.chain_endpoint.as_deref())
            .context("--subtensor.network / --subtensor.chain_endpoint")
    }

    /// Whether and how to register (`--register`, `--yes`, `--max-burn`).
    pub fn registration(&self) -> Registration {
        Registration {
            register: self.register,
            yes: self.yes,
            max_burn: self.max_burn,
        }
    }

    /// The subnet.
    pub fn netuid(&self) -> NetUid {
        NetUid(self.netuid)
    }
}

/// Where this participant's artifacts go.
#[derive(Clone, clap::Args)]
pub struct StorageArgs {
    /// Storage for this participant's artifacts: a directory, file:///dir, or s3://bucket/prefix.
    /// Default: a directory under --neuron.dir.
    #[arg(long = "storage.url")]
    pub url: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:9000.
    #[arg(long = "storage.endpoint", env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long = "storage.region", env = "AWS_REGION")]
    pub region: Option<String>,
    /// S3 access key id.
    #[arg(
        long = "storage.access_key_id",
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub access_key_id: Option<String>,
    /// S3 secret access key (prefer the environment variable: flags show in `ps`).
    #[arg(
        long = "storage.secret_access_key",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// The read-only S3 access key id published on chain for peers to read this store with
    /// (never the key above). Unset: the bucket is public-read and no key is published.
    #[arg(
        long = "storage.read_access_key_id",
        env = "SLIVER_READ_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub read_access_key_id: Option<String>,
    /// Its secret (published with it: it can only read).
    #[arg(
        long = "storage.read_secret_access_key",
        env = "SLIVER_READ_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub read_secret_access_key: Option<String>,
    /// A local subnet: publish a directory, and read peers' directories and loopback or
    /// private endpoints (refused by default: a stranger's location could point anywhere).
    #[arg(long = "storage.allow_local")]
    pub allow_local: bool,
    /// For benchmarks: an emulated link to every store this participant reads or writes (its
    /// own and its peers'): the round trip in milliseconds added to every request...
    #[arg(long = "storage.latency_ms", default_value_t = 0, hide = true)]
    pub latency_ms: u64,
    /// ...the upload bandwidth in Mbit/s its puts share (unlimited when unset)...
    #[arg(long = "storage.link_up_mbit", hide = true)]
    pub link_up_mbit: Option<f64>,
    /// ...the download bandwidth in Mbit/s its gets and listings share...
    #[arg(long = "storage.link_down_mbit", hide = true)]
    pub link_down_mbit: Option<f64>,
    /// ...and the share of requests that fail as a network error would, in [0, 1).
    #[arg(long = "storage.link_failure_rate", default_value_t = 0.0, hide = true)]
    pub link_failure_rate: f64,
    /// Seconds connecting to an S3 endpoint may take; for peers' stores at most a third of the
    /// run's sample timeout (`Timeouts::within`).
    #[arg(long = "storage.connect_timeout_secs", default_value_t = Timeouts::default().connect.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_secs: u64,
    /// Seconds one storage request (its body included) may take, each try; reads of peers are
    /// further bounded by a deadline sized to the object.
    #[arg(long = "storage.request_timeout_secs", default_value_t = Timeouts::default().request.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Milliseconds before the first retry of a failed storage request (doubled for each
    /// further one); for peers' stores capped so the waits fit in a third of a sample timeout.
    #[arg(long = "storage.retry_backoff_ms", default_value_t = Timeouts::default().backoff.as_millis() as u64)]
    pub retry_backoff_ms: u64,
}

impl std::fmt::Debug for StorageArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageArgs")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("secret_access_key", &"[redacted]")
            .field("read_access_key_id", &self.read_access_key_id)
            .field("allow_local", &self.allow_local)
            .finish_non_exhaustive()
    }
}

impl StorageArgs {
    /// The store configuration, defaulting to `default_dir` on the filesystem.
    pub fn config(&self, default_dir: &std::path::Path) -> StoreConfig {
        let mut c = match &self.url {
            Some(url) => StoreConfig::filesystem(url),
            None => StoreConfig::filesystem(default_dir),
        };
        if let Some(url) = &self.url {
            c.url.clone_from(url);
        }
        c.endpoint.clone_from(&self.endpoint);
        c.region.clone_from(&self.region);
        c.access_key_id.clone_from(&self.access_key_id);
        c.secret_access_key.clone_from(&self.secret_access_key);
        c.read_access_key_id.clone_from(&self.read_access_key_id);
        c.read_secret_access_key
            .clone_from(&self.read_secret_access_key);
        c.reach = if self.allow_local {
            Reach::Local
        } else {
            Reach::Public
        };
        let bps = |mbit: Option<f64>| {
            mbit.filter(|m| m.is_finite() && *m > 0.0)
                .map(|m| (m * 1e6) as u64)
        };
        c.link = Link::new(LinkSpec {
            rtt: Duration::from_millis(self.latency_ms),
            up_bps: bps(self.link_up_mbit),
            down_bps: bps(self.link_down_mbit),
            // Out of range (or NaN): clamped into [0, 0.99].
            failure_rate: if self.link_failure_rate.is_nan() {
                0.0
            } else {
                self.link_failure_rate.clamp(0.0, 0.99)
            },
        });
        c.timeouts = Timeouts {
            connect: Duration::from_secs(self.connect_timeout_secs),
            request: Duration::from_secs(self.request_timeout_secs),
            backoff: Duration::from_millis(self.retry_backoff_ms),
        };
        c
    }
}

/// Process flags: device, state directory, threads, metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct NeuronArgs {
    /// Compute device: cpu, cuda, cuda:N or mps.
    #[arg(long = "neuron.device", default_value = "cpu")]
    pub device: sliver_common::device::DeviceSpec,
    /// Directory for this neuron's checkpoints, state and (by default) storage.
    /// Default: `~/.sliver/<wallet>/<hotkey>/netuid<N>`.
    #[arg(long = "neuron.dir")]
    pub dir: Option<PathBuf>,
    /// libtorch threads for this process (0: libtorch's default).
    #[arg(long = "neuron.threads", default_value_t = 0)]
    pub threads: usize,
    /// Serve Prometheus metrics and /health on 127.0.0.1:PORT (off by default).
    #[arg(long = "metrics.port")]
    pub metrics_port: Option<u16>,
    /// Seconds to wait at start for the subnet owner to publish the run spec (it is not known
    /// yet, so neither is its epoch: a flag, ten minutes by default).
    #[arg(long = "neuron.spec_wait_secs", default_value_t = 600)]
    pub spec_wait_secs: u64,
}

impl NeuronArgs {
    /// The state directory for `chain`'s wallet and subnet.
    ///
    /// # Errors
    /// When the default needs a home directory and there is none.
    pub fn dir(&self, chain: &ChainArgs) -> Result<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let home = std::env::var_os("HOME").context("no HOME: pass --neuron.dir")?;
        Ok(PathBuf::from(home)
            .join(".sliver")
            .join(&chain.wallet_name)
            .join(&chain.wallet_hotkey)
            .join(format!("netuid{}", chain.netuid)))
    }
}

/// Reads the run spec given with `--spec`, if any, with the path it came from (for errors that
/// name it).
///
/// # Errors
/// An unreadable or invalid spec, naming the file and the field.
pub fn load_spec(
    path: Option<&std::path::Path>,
) -> Result<Option<(sliver_common::RunSpec, String)>> {
    path.map(|p| {
        sliver_common::RunSpec::load(p)
            .with_context(|| format!("--spec {}", p.display()))
            .map(|s| (s, p.display().to_string()))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        chain: ChainArgs,
    }

    fn parse(args: &[&str]) -> Result<Registration, String> {
        Flags::try_parse_from(std::iter::once("btminer").chain(args.iter().copied()))
            .map(|f| f.chain.registration())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn registration_flags_parse_and_need_register() {
        assert_eq!(parse(&[]), Ok(Registration::default()));
        assert_eq!(
            parse(&["--register", "--yes", "--max-burn", "0.5"]),
            Ok(Registration {
                register: true,
                yes: true,
                max_burn: Some(500_000_000),
            })
        );
        let err = parse(&["--yes"]).unwrap_err();
        assert!(err.contains("--register"), "{err}");
        let err = parse(&["--register", "--max-burn", "lots"]).unwrap_err();
        assert!(err.contains("not an amount of TAO"), "{err}");
    }
}
