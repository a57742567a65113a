//! `btlocalnet`: a local finney-compatible chain on 127.0.0.1 for tests and the local subnet.
//!
//! Prints `listening on ws://127.0.0.1:PORT` on stdout once it serves (test harnesses wait for
//! that line), and stops on Ctrl-C or SIGTERM after saving its state file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use sliver_chain::wallet::AccountId32;
use sliver_localnet::{GenesisConfig, LocalChain, PoolLimits, ServerConfig, SubnetParamsConfig};
use sliver_shutdown::Shutdown;

/// A local subtensor-compatible chain.
#[derive(Debug, Parser)]
#[command(
    name = "btlocalnet",
    version,
    about = "A local subtensor-compatible chain on 127.0.0.1: finney's layout for the calls, storage and runtime APIs Sliver uses, for tests and the local subnet"
)]
struct Cli {
    /// Port on 127.0.0.1 (0 picks a free one and prints it).
    #[arg(long, default_value_t = 9944)]
    port: u16,
    /// Milliseconds between blocks; 0 builds a block whenever an extrinsic arrives.
    #[arg(long = "block-time", default_value_t = 250)]
    block_time_ms: u64,
    /// Save the chain here after each block that changes it, and resume from it at start.
    #[arg(long = "state")]
    state: Option<PathBuf>,
    /// Subnets to create at genesis (repeatable).
    #[arg(long = "netuid", default_values_t = [9u16])]
    netuids: Vec<u16>,
    /// Tempo of the subnets created, in blocks.
    #[arg(long, default_value_t = sliver_localnet::metadata::DEFAULT_TEMPO)]
    tempo: u16,
    /// `WeightsSetRateLimit` of the subnets created, in blocks.
    #[arg(long = "weights-rate-limit", default_value_t = 100)]
    weights_rate_limit: u64,
    /// Whether commit-reveal of weights is enabled on the subnets created.
    #[arg(long = "commit-reveal", default_value_t = true, action = clap::ArgAction::Set)]
    commit_reveal: bool,
    /// `RevealPeriodEpochs` of the subnets created.
    #[arg(long = "reveal-period", default_value_t = 1)]
    reveal_period: u64,
    /// Registration burn, in rao.
    #[arg(long, default_value_t = 100_000_000)]
    burn: u64,
    /// `WeightsVersionKey` of the subnets created: the least version key weights must carry,
    /// and the release Sliver's neurons must run (`major*1000000 + minor*1000 + patch`; 0: any).
    #[arg(long = "weights-version-key", default_value_t = 0)]
    weights_version_key: u64,
    /// How many dev accounts (//Alice, //Bob, ...) to fund.
    #[arg(long = "dev-accounts", default_value_t = 6)]
    dev_accounts: usize,
    /// The coldkey (SS58) that owns the subnets created at genesis; default //Alice.
    #[arg(long)]
    owner: Option<AccountId32>,
    /// Also fund this account (SS58) at genesis with --dev-balance (repeatable).
    #[arg(long = "fund")]
    fund: Vec<AccountId32>,
    /// Free balance of each dev account, in rao.
    #[arg(long = "dev-balance", default_value_t = 1_000_000_000_000_000)]
    dev_balance: u64,
    /// Most transactions the pool holds; more are refused (1016, as a node's full pool).
    #[arg(long = "pool-limit", default_value_t = PoolLimits::default().count)]
    pool_limit: usize,
    /// Most bytes the pool holds, in KiB.
    #[arg(long = "pool-kbytes", default_value_t = PoolLimits::default().bytes / 1024)]
    pool_kbytes: usize,
    /// For tests only: also list these method names in `rpc_methods` without serving them, to
    /// look like a node that offers `chainHead_v1_*` (the client must not take that path).
    #[arg(long = "advertise-unserved", hide = true, value_delimiter = ',')]
    advertise_unserved: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jsonrpsee=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("btlocalnet: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btlocalnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = ServerConfig {
        port: cli.port,
        block_time: Duration::from_millis(cli.block_time_ms),
        state_file: cli.state,
        advertise_unserved: cli.advertise_unserved,
        pool: PoolLimits {
            count: cli.pool_limit,
            bytes: cli.pool_kbytes.saturating_mul(1024),
        },
        genesis: GenesisConfig {
            netuids: cli.netuids,
            subnet: SubnetParamsConfig {
                tempo: cli.tempo,
                weights_rate_limit: cli.weights_rate_limit,
                commit_reveal: cli.commit_reveal,
                reveal_period: cli.reveal_period,
                burn: cli.burn,
                weights_version_key: cli.weights_version_key,
            },
            owner: cli.owner.map(|a| a.0),
            funded: cli.fund.iter().map(|a| a.0).collect(),
            dev_accounts: cli.dev_accounts,
            dev_balance: cli.dev_balance,
        },
    };
    let chain = LocalChain::start(config)
        .await
        .context("starting btlocalnet")?;
    // The one line harnesses read; everything else goes to stderr.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on ws://{}", chain.local_addr());
    }
    // The same shutdown path as btminer and btvalidator: the first SIGINT/SIGTERM stops the
    // chain after saving its state, a second exits at once.
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let token = shutdown.token();
    chain.run_until(token.cancelled()).await?;
    Ok(())
}
