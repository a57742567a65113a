//! `bench-scale`: what one miner, one chain connection and the validator cost as the swarm grows
//! (what `just bench-scale` runs).
//!
//! For each swarm size asked for (`--miners-per-stage`, times the spec's stages), it runs the
//! local subnet: the real `btlocalnet` with every miner registered, a filesystem store, a
//! validator, and the miners, `--miners-per-process` of them in each `btminer` process
//! (`--sim.hotkeys`), every miner with its own hotkey, chain connection, store link and state,
//! all running the real protocol code: routing, sealed artifacts, the feed, the merge, spot
//! checks and their answers, the validator's audit, scoring and weights. The model is the
//! spec's (`specs/scale.toml`: seven stages of a model whose compute is negligible), so what is
//! measured is the protocol's own cost per participant: every storage request each miner makes,
//! by kind (its link's tally, in its `epochs.jsonl`), bytes each way, chain RPCs per connection
//! (btlocalnet's `sliver_rpcStats`), memory per miner (its processes' resident set over the
//! miners in them), and the validator's wall and CPU seconds and peak memory per scored epoch.
//! The bar: per-miner requests and RPCs flat in the swarm's size.
//!
//! What it does not model: compute at a real stage's size, and weights and shards at a real
//! stage's size (the spec's are kilobytes).
//!
//! Results go to `bench/results/scale.json` and `scale.md`.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use sliver_common::RunSpec;
use sliver_common::storage::LinkTally;
use sliver_launcher::localnet::{LinkArgs, Localnet, Options, StorageKind};

/// Benchmark the per-participant costs of the protocol as the swarm grows.
#[derive(Debug, Parser)]
#[command(name = "bench-scale")]
struct Cli {
    /// Run spec.
    #[arg(long, default_value = "specs/scale.toml")]
    spec: PathBuf,
    /// Swarm sizes to run, as miners per stage.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    miners_per_stage: Vec<usize>,
    /// Miners in each `btminer` process.
    #[arg(long, default_value_t = 8)]
    miners_per_process: usize,
    /// Scored epochs per run (the first scored epoch is left out of the per-epoch figures: the
    /// miners join during it).
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Milliseconds per block.
    #[arg(long, default_value_t = 250)]
    block_time_ms: u64,
    /// Each process's round trip to every store, in ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[command(flatten)]
    link: LinkArgs,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Working directory for the runs.
    #[arg(long, default_value = "runs/bench-scale")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = sliver_common::telemetry::init(
        &sliver_common::telemetry::LoggingArgs::default(),
        "bench-scale",
    );
    sliver_launcher::main_with("bench-scale", run(cli))
}

/// What one run measured.
#[derive(Debug)]
struct ScaleRun {
    miners: usize,
    processes: usize,
    /// Epochs the per-epoch figures are averaged over.
    epochs: u64,
    /// Per miner and epoch: storage requests by kind, and bytes each way.
    requests: BTreeMap<String, f64>,
    bytes_up: f64,
    bytes_down: f64,
    /// Samples dropped (a gradient never came back), per miner and epoch.
    dropped: f64,
    /// Last-stage tokens per second over the measured epochs.
    tokens_per_s: f64,
    /// Chain RPCs per second: mean per connection, the busiest connection's.
    rpc_mean: f64,
    rpc_max: f64,
    /// Resident memory of the miners' processes over the miners, in bytes.
    rss_per_miner: u64,
    /// The validator per scored epoch: the longest wall and CPU seconds, the peak memory.
    validator: (f64, f64, u64),
    /// The epochs scored, and of them those where a miner was caught or no loss was measured.
    scored: Vec<u64>,
    troubled: Vec<u64>,
}

/// Resident memory of process `pid` in bytes (Linux `/proc`), 0 when unknown.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn one(cli: &Cli, spec: &RunSpec, per_stage: usize) -> Result<ScaleRun> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let dir = cli.dir.join(format!("{per_stage}-per-stage"));
    let mut net = Localnet::start(Options {
        dir: dir.clone(),
        spec: cli.spec.clone(),
        data: None,
        bin_dir,
        miners_per_stage: per_stage,
        epochs: cli.epochs,
        block_time_ms: cli.block_time_ms,
        storage: StorageKind::Fs,
        threads: 1,
        link: cli.link.spec(Duration::from_millis(cli.latency_ms)),
        miner_poll_ms: None,
        commit_reveal: false,
        miners_per_process: cli.miners_per_process,
        adversaries: Vec::new(),
        slowdowns: Vec::new(),
        miner_flags: Vec::new(),
    })
    .await?;
    let miners = net.miners.len();
    let epoch_s = spec.swarm.epoch_blocks as f64 * cli.block_time_ms as f64 / 1000.0;
    let timeout = Duration::from_secs_f64(epoch_s * 3.0 + 60.0);
    let mut reports = Vec::new();
    let mut rss_max = 0u64;
    while (reports.len() as u64) < cli.epochs {
        let r = net
            .next_report(timeout)
            .with_context(|| format!("no epoch report (logs in {})", dir.join("logs").display()))?;
        let caught = r.miners.iter().filter(|m| !m.caught.is_empty()).count();
        println!(
            "  {miners} miners: epoch {} eval loss {:?}, {caught} caught, validator {:.1} s",
            r.epoch, r.eval_loss, r.cost.work_s
        );
        rss_max = rss_max.max(net.miner_pids().into_iter().map(rss).sum());
        reports.push(r);
    }
    let stats = net.rpc_stats().await?;
    let processes = net.miner_pids().len();
    net.stop();
    let seconds = stats["seconds"].as_f64().unwrap_or(0.0).max(1.0);
    let connections = stats["connections"].as_f64().unwrap_or(0.0).max(1.0);
    let validator = reports.iter().fold((0.0f64, 0.0f64, 0u64), |acc, r| {
        (
            acc.0.max(r.cost.work_s),
            acc.1.max(r.cost.cpu_s.unwrap_or(0.0)),
            acc.2.max(r.cost.peak_rss_bytes.unwrap_or(0)),
        )
    });
    let scored: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    let troubled: Vec<u64> = reports
        .iter()
        .filter(|r| r.eval_loss.is_none() || r.miners.iter().any(|m| !m.caught.is_empty()))
        .map(|r| r.epoch.get())
        .collect();
    // The first scored epoch is the one the miners joined during: left out.
    let measured: Vec<u64> = scored.iter().skip(1).copied().collect();
    if measured.is_empty() {
        bail!("--epochs must be at least 2: the first scored epoch is left out");
    }
    let per_sample = (spec.optimizer.batch_size * spec.model.seq_len) as u64;
    let last_stage = (spec.stages.len() - 1) as u64;
    let mut total = LinkTally::default();
    let (mut dropped, mut tokens) = (0u64, 0u64);
    for m in &net.miners {
        let text = std::fs::read_to_string(m.dir.join("epochs.jsonl")).unwrap_or_default();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if !measured.contains(&v["epoch"].as_u64().unwrap_or(u64::MAX)) {
                continue;
            }
            if let Ok(t) = serde_json::from_value::<LinkTally>(v["storage"].clone()) {
                for (k, n) in t.requests {
                    *total.requests.entry(k).or_default() += n;
                }
                total.bytes_up += t.bytes_up;
                total.bytes_down += t.bytes_down;
            }
            dropped += v["dropped"].as_u64().unwrap_or(0);
            if v["stage"].as_u64() == Some(last_stage) {
                tokens += v["backwards"].as_u64().unwrap_or(0) * per_sample;
            }
        }
    }
    let per = (miners as f64) * measured.len() as f64;
    Ok(ScaleRun {
        miners,
        processes,
        epochs: measured.len() as u64,
        requests: total
            .requests
            .iter()
            .map(|(k, n)| (k.clone(), *n as f64 / per))
            .collect(),
        bytes_up: total.bytes_up as f64 / per,
        bytes_down: total.bytes_down as f64 / per,
        dropped: dropped as f64 / per,
        tokens_per_s: tokens as f64 / (epoch_s * measured.len() as f64),
        rpc_mean: stats["calls"].as_f64().unwrap_or(0.0) / connections / seconds,
        rpc_max: stats["max_per_connection"].as_f64().unwrap_or(0.0) / seconds,
        rss_per_miner: rss_max / miners.max(1) as u64,
        validator,
        scored,
        troubled,
    })
}

async fn run(cli: Cli) -> Result<()> {
    let spec = RunSpec::load(&cli.spec)?;
    if cli.miners_per_stage.is_empty() {
        bail!("no swarm size given (--miners-per-stage)");
    }
    let mut runs = Vec::new();
    for &n in &cli.miners_per_stage {
        println!(
            "{} miners ({n} a stage, {} a process) ...",
            n * spec.stages.len(),
            cli.miners_per_process
        );
        runs.push(one(&cli, &spec, n).await?);
    }
    let epoch_s = spec.swarm.epoch_blocks as f64 * cli.block_time_ms as f64 / 1000.0;
    let results: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "miners": r.miners,
                "miner_processes": r.processes,
                "epochs_measured": r.epochs,
                "requests_per_miner_epoch": r.requests,
                "requests_per_miner_s": r.requests.values().sum::<f64>() / epoch_s,
                "bytes_up_per_miner_epoch": r.bytes_up,
                "bytes_down_per_miner_epoch": r.bytes_down,
                "dropped_per_miner_epoch": r.dropped,
                "tokens_per_s": r.tokens_per_s,
                "rpc_per_connection_s": r.rpc_mean,
                "rpc_busiest_connection_s": r.rpc_max,
                "rss_per_miner_bytes": r.rss_per_miner,
                "validator_work_s": r.validator.0,
                "validator_cpu_s": r.validator.1,
                "validator_peak_rss_bytes": r.validator.2,
                "epochs_scored": r.scored,
                "epochs_with_a_miner_caught_or_no_loss": r.troubled,
            })
        })
        .collect();
    let doc = json!({
        "spec": cli.spec,
        "epoch_s": epoch_s,
        "block_time_ms": cli.block_time_ms,
        "miners_per_process": cli.miners_per_process,
        "link": {
            "latency_ms": cli.latency_ms,
            "up_mbit": cli.link.up_mbit,
            "down_mbit": cli.link.down_mbit,
            "failure_rate": cli.link.failure_rate,
        },
        "runs": results,
    });
    std::fs::create_dir_all(&cli.out)?;
    std::fs::write(
        cli.out.join("scale.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let md = report(&cli, epoch_s, &runs);
    std::fs::write(cli.out.join("scale.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// The Markdown table, one row per swarm size, and each figure's ratio largest/smallest swarm.
fn report(cli: &Cli, epoch_s: f64, runs: &[ScaleRun]) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Scale: per-participant costs as the swarm grows\n\n\
         `scripts/bench-scale --spec {} --miners-per-stage {} --miners-per-process {} --epochs {} \
         --block-time-ms {} --latency-ms {}`: {epoch_s:.0} s epochs; per-miner figures averaged \
         over the scored epochs after the first.\n",
        cli.spec.display(),
        cli.miners_per_stage
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        cli.miners_per_process,
        cli.epochs,
        cli.block_time_ms,
        cli.latency_ms,
    );
    let _ = writeln!(
        md,
        "| miners | storage requests / miner / s | get | put | list | delete | MB up / miner / epoch | MB down / miner / epoch | chain RPC / connection / s | busiest connection | MB RSS / miner | validator s / epoch | validator CPU s | validator MB | tokens / s | dropped / miner / epoch | troubled epochs |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in runs {
        let kind = |k: &str| r.requests.get(k).copied().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {:?} |",
            r.miners,
            r.requests.values().sum::<f64>() / epoch_s,
            kind("get"),
            kind("put"),
            kind("list"),
            kind("delete"),
            r.bytes_up / 1e6,
            r.bytes_down / 1e6,
            r.rpc_mean,
            r.rpc_max,
            r.rss_per_miner as f64 / 1e6,
            r.validator.0,
            r.validator.1,
            r.validator.2 as f64 / 1e6,
            r.tokens_per_s,
            r.dropped,
            r.troubled,
        );
    }
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { f64::NAN };
        let reqs = |r: &ScaleRun| r.requests.values().sum::<f64>();
        let _ = writeln!(
            md,
            "\nFrom {} to {} miners: storage requests per miner x{:.2}, chain RPCs per connection x{:.2}, memory per miner x{:.2}, validator seconds per epoch x{:.2}.",
            first.miners,
            last.miners,
            ratio(reqs(first), reqs(last)),
            ratio(first.rpc_mean, last.rpc_mean),
            ratio(first.rss_per_miner as f64, last.rss_per_miner as f64),
            ratio(first.validator.0, last.validator.0),
        );
    }
    md
}
