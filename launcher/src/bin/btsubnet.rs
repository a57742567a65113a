//! `btsubnet`: the one-command local subnet (what `scripts/demo` runs).
//!
//! Starts btlocalnet, the store, one validator (the subnet owner) and miners, each its own
//! process, trains for `--epochs` epochs, prints each epoch as the validator scores it and, at
//! the end, the weights read back from the chain. Ctrl-C stops every process it started.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use sliver_common::adversary::Behaviour;
use sliver_common::telemetry::LoggingArgs;
use sliver_launcher::localnet::{LinkArgs, Localnet, Options, StorageKind, check_alive};

/// A local Sliver subnet: chain, store, validator and miners as separate processes.
#[derive(Debug, Parser)]
#[command(name = "btsubnet", version)]
struct Cli {
    #[command(flatten)]
    logging: LoggingArgs,
    /// Run spec.
    #[arg(long, default_value = "specs/local.toml")]
    spec: PathBuf,
    /// Training text, replacing the spec's data sources.
    #[arg(long)]
    data: Option<String>,
    /// Working directory (wiped at start): chain state, wallets, store, logs.
    #[arg(long, default_value = "runs/localnet")]
    dir: PathBuf,
    /// Epochs to train and score.
    #[arg(long, default_value_t = 4)]
    epochs: u64,
    /// Miners per stage.
    #[arg(long, default_value_t = 2)]
    miners_per_stage: usize,
    /// Milliseconds per block.
    #[arg(long, default_value_t = 250)]
    block_time_ms: u64,
    /// Storage: one shared directory (fs) or an s3s-fs server on 127.0.0.1 (s3).
    #[arg(long, value_enum, default_value_t = StorageKind::Fs)]
    storage: StorageKind,
    /// libtorch threads per process.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Milliseconds of round trip added to every storage request of each process (its emulated
    /// link to the storage; see also the bandwidth and failure flags).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[command(flatten)]
    link: LinkArgs,
    /// Make the subnet require commit-reveal of weights (the weights read back at the end are
    /// then the last revealed ones).
    #[arg(long)]
    commit_reveal: bool,
    /// Make miner INDEX (0-based, in uid order; miners take stages in turn) cheat, to watch the
    /// validator catch it: `--adversary 0=noise`. Behaviours: noise, lazy, copier, scaled,
    /// free-rider, poison-merge, late, merge-extreme, store-denial, id-squat, store-slow,
    /// store-equivocate, fake-work, roster-churn, griefer (store-slow, store-equivocate and
    /// griefer need `--storage s3`). Repeatable.
    #[arg(long, value_parser = parse_adversary)]
    adversary: Vec<(usize, Behaviour)>,
}

/// `INDEX=NAME` of `--adversary`.
fn parse_adversary(s: &str) -> Result<(usize, Behaviour), String> {
    let (i, name) = s
        .split_once('=')
        .ok_or_else(|| format!("expected INDEX=NAME, got {s:?}"))?;
    let i = i
        .parse()
        .map_err(|_| format!("{i:?} is not a miner index"))?;
    Ok((i, name.parse()?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept until `main` returns: dropping it flushes the log files.
    let _logs = match sliver_common::telemetry::init(&cli.logging, "btsubnet") {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("btsubnet: cannot set up logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    sliver_launcher::main_with("btsubnet", run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let opts = Options {
        dir: cli.dir.clone(),
        spec: cli.spec.clone(),
        data: cli.data.clone(),
        bin_dir,
        miners_per_stage: cli.miners_per_stage,
        epochs: cli.epochs,
        block_time_ms: cli.block_time_ms,
        storage: cli.storage,
        threads: cli.threads,
        link: cli.link.spec(Duration::from_millis(cli.latency_ms)),
        miner_poll_ms: None,
        commit_reveal: cli.commit_reveal,
        miners_per_process: 1,
        adversaries: cli.adversary.clone(),
        slowdowns: Vec::new(),
        miner_flags: Vec::new(),
    };
    println!("starting the local subnet in {} ...", cli.dir.display());
    let mut net = Localnet::start(opts).await?;
    let epoch_s = net.spec.swarm.epoch_blocks * cli.block_time_ms / 1000;
    println!(
        "chain {}  |  run {}  |  {} stages x {} miners  |  storage {:?}  |  epochs of {} s",
        net.url,
        net.spec.name,
        net.spec.stages.len(),
        cli.miners_per_stage,
        cli.storage,
        epoch_s
    );
    println!(
        "logs: {}/logs   (miners join at the first epoch after they announce)",
        net.dir().display()
    );
    if let Some(url) = net.dashboard_url() {
        println!("dashboard: {url}   (the validator's page: loss, stage map, scores, bytes)");
    }
    println!();
    println!(
        "{:>5}  {:>9}  {:>11}  {:>8}  verified passes per miner (uid/stage:forward+backward)",
        "epoch", "eval loss", "bytes moved", "rejected"
    );
    let mut scored = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while scored < cli.epochs {
        tokio::select! {
            _ = &mut ctrl_c => {
                println!("\ninterrupted: stopping every process");
                net.stop();
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        check_alive(&mut net);
        while let Some(r) = net.next_report(Duration::from_millis(1)) {
            scored += 1;
            println!(
                "{:>5}  {:>9}  {:>11}  {:>8}  {}",
                r.epoch,
                r.eval_loss.map_or("-".into(), |l| format!("{l:.4}")),
                r.bytes_moved,
                r.rejected,
                r.samples()
            );
            let caught = r.caught();
            if !caught.is_empty() {
                println!("       caught (paid nothing): {caught}");
            }
            println!("       scores: {}", r.scores);
        }
        if net.validator_exited() && scored < cli.epochs {
            anyhow::bail!(
                "the validator exited early (see {}/logs/validator.log)",
                net.dir().display()
            );
        }
    }
    // The last weights land a block or two after the last report.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let weights = net.weights().await?;
    println!();
    println!(
        "weights on chain from the validator (uid {}):",
        net.validator_uid.0
    );
    for m in &net.miners {
        println!(
            "  uid {:>2}  {}  {:>5}",
            m.uid.0,
            m.hotkey.ss58_address(),
            weights.get(&m.uid.0).copied().unwrap_or(0)
        );
    }
    net.stop();
    Ok(())
}
