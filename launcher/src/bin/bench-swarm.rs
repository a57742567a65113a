//! `bench-swarm`: the local subnet on a fixed budget against the single-process pipeline trainer
//! on the same machine, model, tokens and threads (what `just bench-swarm` runs).
//!
//! For each storage latency asked for, it runs the local subnet (btlocalnet, a filesystem store,
//! a validator and the spec's stages x `--miners-per-stage` miners, one libtorch thread each)
//! for `--epochs` scored epochs and reads what every miner recorded per epoch (`epochs.jsonl`:
//! time in forward/backward/optimizer, samples, bytes uploaded). Then it trains the same spec in
//! one process (`Trainer::pipeline`, the same wire codecs, `--threads` libtorch threads, the
//! same learning-rate schedule as the miners: warm-up then constant) for the tokens the swarm's
//! last stage trained on in each run, and evaluates both on the same held-out batches. The
//! single-process trainer steps on the swarm's global batch: each of a stage's miners steps on
//! `optimizer.accumulate` micro-batches and the merge averages them, as data-parallel training
//! is compared with the one-process run of the same global batch. Results go to
//! `bench/results/swarm.json` and `swarm.md`.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use sliver_common::data::{Corpus, Split};
use sliver_common::{RunSpec, Trainer};
use sliver_launcher::localnet::{LinkArgs, Localnet, Options, StorageKind};

/// Benchmark the swarm against the single-process trainer.
#[derive(Debug, Parser)]
#[command(name = "bench-swarm")]
struct Cli {
    /// Run spec.
    #[arg(long, default_value = "specs/local.toml")]
    spec: PathBuf,
    /// Scored epochs per swarm run.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Miners per stage.
    #[arg(long, default_value_t = 2)]
    miners_per_stage: usize,
    /// Milliseconds per block.
    #[arg(long, default_value_t = 250)]
    block_time_ms: u64,
    /// Storage latencies to run the swarm with, in ms per request (each process's round trip
    /// to every store, its own and its peers').
    #[arg(long, value_delimiter = ',', default_value = "0,50")]
    latency_ms: Vec<u64>,
    #[command(flatten)]
    link: LinkArgs,
    /// How often miners look for artifacts routed to them, in ms (`btminer --miner.poll_ms`;
    /// btminer's default when not given). Each look is a GET per activation expected next and
    /// per gradient awaited; each upstream miner is listed every ten polls at first.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    miner_poll_ms: Option<u64>,
    /// libtorch threads of the single-process trainer (the machine's cores).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Held-out micro-batches per evaluation (the validator's default).
    #[arg(long, default_value_t = 32)]
    eval_batches: u64,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Working directory for the swarm runs.
    #[arg(long, default_value = "runs/bench-swarm")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber_init();
    sliver_launcher::main_with("bench-swarm", run(cli))
}

fn tracing_subscriber_init() -> Result<()> {
    // No log directory: the guard holds no writer.
    sliver_common::telemetry::init(
        &sliver_common::telemetry::LoggingArgs::default(),
        "bench-swarm",
    )
    .map(drop)
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What one swarm run measured.
struct SwarmRun {
    latency_ms: u64,
    miners: usize,
    tokens: u64,
    wall_s: f64,
    eval_loss: Option<f64>,
    utilisation: BTreeMap<String, f64>,
    bytes: BTreeMap<String, u64>,
    /// Chain RPCs per second: (mean per connection, the busiest connection's), and the calls
    /// by method.
    rpc: (f64, f64, Value),
    /// The validator's scoring per epoch: the longest wall seconds, the most CPU seconds, and
    /// its peak memory in bytes (from its epoch records).
    validator: (f64, f64, u64),
}

async fn swarm(cli: &Cli, spec: &RunSpec, latency_ms: u64) -> Result<SwarmRun> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let dir = cli.dir.join(format!("latency-{latency_ms}ms"));
    let mut net = Localnet::start(Options {
        dir: dir.clone(),
        spec: cli.spec.clone(),
        data: None,
        bin_dir,
        miners_per_stage: cli.miners_per_stage,
        epochs: cli.epochs,
        block_time_ms: cli.block_time_ms,
        storage: StorageKind::Fs,
        threads: 1,
        link: cli.link.spec(Duration::from_millis(latency_ms)),
        miner_poll_ms: cli.miner_poll_ms,
        commit_reveal: false,
        miners_per_process: 1,
        adversaries: Vec::new(),
        slowdowns: Vec::new(),
        miner_flags: Vec::new(),
    })
    .await?;
    let epoch_s = spec.swarm.epoch_blocks as f64 * cli.block_time_ms as f64 / 1000.0;
    let timeout = Duration::from_secs_f64(epoch_s * 3.0 + 60.0);
    let mut reports = Vec::new();
    while (reports.len() as u64) < cli.epochs {
        let r = net
            .next_report(timeout)
            .with_context(|| format!("no epoch report (logs in {})", dir.join("logs").display()))?;
        println!(
            "  latency {latency_ms} ms: epoch {} eval loss {:?}",
            r.epoch, r.eval_loss
        );
        reports.push(r);
    }
    let validator = reports.iter().fold((0.0f64, 0.0f64, 0u64), |acc, r| {
        (
            acc.0.max(r.cost.work_s),
            acc.1.max(r.cost.cpu_s.unwrap_or(0.0)),
            acc.2.max(r.cost.peak_rss_bytes.unwrap_or(0)),
        )
    });
    let stats = net.rpc_stats().await?;
    net.stop();
    let seconds = stats["seconds"].as_f64().unwrap_or(0.0).max(1.0);
    let connections = stats["connections"].as_f64().unwrap_or(0.0).max(1.0);
    let rpc = (
        stats["calls"].as_f64().unwrap_or(0.0) / connections / seconds,
        stats["max_per_connection"].as_f64().unwrap_or(0.0) / seconds,
        stats["by_method"].clone(),
    );
    let scored: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    let per_sample = (spec.optimizer.batch_size * spec.model.seq_len) as u64;
    let last_stage = spec.stages.len() - 1;
    let (mut tokens, mut utilisation, mut bytes) = (0u64, BTreeMap::new(), BTreeMap::new());
    for m in &net.miners {
        let text = std::fs::read_to_string(m.dir.join("epochs.jsonl")).unwrap_or_default();
        let (mut busy, mut wall) = (0.0, 0.0);
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            let epoch = v["epoch"].as_u64().unwrap_or(u64::MAX);
            if !scored.contains(&epoch) {
                continue;
            }
            busy += v["busy_s"].as_f64().unwrap_or(0.0);
            wall += v["wall_s"].as_f64().unwrap_or(0.0);
            if v["stage"].as_u64() == Some(last_stage as u64) {
                tokens += v["backwards"].as_u64().unwrap_or(0) * per_sample;
            }
            if let Some(up) = v["bytes_up"].as_object() {
                for (k, n) in up {
                    *bytes.entry(k.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
                }
            }
        }
        if wall > 0.0 {
            utilisation.insert(format!("uid{}", m.uid.0), busy / wall);
        }
    }
    Ok(SwarmRun {
        latency_ms,
        miners: net.miners.len(),
        tokens,
        wall_s: epoch_s * scored.len() as f64,
        eval_loss: reports.last().and_then(|r| r.eval_loss),
        utilisation,
        bytes,
        rpc,
        validator,
    })
}

/// The single-process pipeline trainer on `tokens` tokens: (tokens/s, eval loss).
fn single(cli: &Cli, spec: &RunSpec, corpus: &Corpus, tokens: u64) -> Result<(f64, f64)> {
    tch::set_num_threads(cli.threads as i32);
    // The swarm's global batch: each stage's miners step on `accumulate` micro-batches each.
    let mut spec = spec.clone();
    spec.optimizer.accumulate *= cli.miners_per_stage;
    let spec = &spec;
    let per_step =
        (spec.optimizer.batch_size * spec.model.seq_len * spec.optimizer.accumulate) as u64;
    let steps = tokens.div_ceil(per_step).max(1);
    // Warm-up then constant, as the miners step.
    let mut trainer = Trainer::pipeline(spec, tch::Device::Cpu, u64::MAX)?;
    let started = Instant::now();
    let mut trained = 0u64;
    for step in 0..steps {
        let batches = (0..spec.optimizer.accumulate as u64)
            .map(|i| {
                trainer.batch(
                    corpus,
                    Split::Train,
                    step * spec.optimizer.accumulate as u64 + i,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        trained += trainer.step(&batches)?.tokens;
    }
    let tok_s = trained as f64 / started.elapsed().as_secs_f64();
    Ok((tok_s, trainer.eval(corpus, cli.eval_batches)?))
}

async fn run(cli: Cli) -> Result<()> {
    let spec = RunSpec::load(&cli.spec)?;
    let mut runs = Vec::new();
    for &latency in &cli.latency_ms {
        println!("swarm run, storage latency {latency} ms ...");
        runs.push(swarm(&cli, &spec, latency).await?);
    }
    if runs.is_empty() {
        bail!("no latency given");
    }
    // The single-process trainer on each run's tokens, so every run is compared at its own.
    let corpus = Corpus::load(&spec.data).await?;
    let mut singles: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for r in &runs {
        if r.tokens == 0 {
            bail!("the swarm trained no tokens at {} ms", r.latency_ms);
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = singles.entry(r.tokens) {
            println!("single-process trainer on {} tokens ...", r.tokens);
            let (cli, spec, tokens) = (&cli, &spec, r.tokens);
            slot.insert(tokio::task::block_in_place(|| {
                single(cli, spec, &corpus, tokens)
            })?);
        }
    }
    std::fs::create_dir_all(&cli.out)?;
    let results: Vec<Value> = runs
        .iter()
        .map(|r| {
            let (single_tok_s, single_loss) =
                singles.get(&r.tokens).copied().unwrap_or((f64::NAN, f64::NAN));
            let tok_s = r.tokens as f64 / r.wall_s;
            let u_mean = if r.utilisation.is_empty() {
                0.0
            } else {
                r.utilisation.values().sum::<f64>() / r.utilisation.len() as f64
            };
            let per_token = |kinds: &[&str]| {
                kinds.iter().map(|k| r.bytes.get(*k).copied().unwrap_or(0)).sum::<u64>() as f64
                    / r.tokens.max(1) as f64
            };
            json!({
                "miners": r.miners,
                "stages": spec.stages.len(),
                "tokens": r.tokens,
                "storage": "fs",
                "storage_latency_ms": r.latency_ms,
                "link_up_mbit": cli.link.up_mbit,
                "link_down_mbit": cli.link.down_mbit,
                "link_failure_rate": cli.link.failure_rate,
                "miner_poll_ms": cli.miner_poll_ms,
                "utilisation_mean": round(u_mean),
                "utilisation_per_miner": r.utilisation.iter().map(|(k, v)| (k.clone(), round(*v))).collect::<BTreeMap<_, _>>(),
                "swarm_tokens_per_s": round(tok_s),
                "single_process_tokens_per_s": round(single_tok_s),
                "eval_loss_swarm": r.eval_loss.map(round),
                "eval_loss_single": round(single_loss),
                "validator_per_epoch": {
                    "max_work_s": round(r.validator.0),
                    "max_cpu_s": round(r.validator.1),
                    "peak_rss_bytes": r.validator.2,
                },
                "chain_rpc_per_s": {
                    "mean_per_connection": round(r.rpc.0),
                    "busiest_connection": round(r.rpc.1),
                    "calls_by_method": r.rpc.2,
                },
                "bytes_per_token": {
                    "activations": round(per_token(&["act"])),
                    "gradients": round(per_token(&["grad"])),
                    "merge": round(per_token(&["shard", "merged"])),
                },
            })
        })
        .collect();
    let json_path = cli.out.join("swarm.json");
    let doc = if results.len() == 1 {
        results[0].clone()
    } else {
        let mut first = results[0].clone();
        first["with_latency"] = Value::Array(results[1..].to_vec());
        first
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")?;
    let md = markdown(&cli, &spec, &results);
    std::fs::write(cli.out.join("swarm.md"), &md)?;
    println!("\n{md}");
    println!("wrote {} and swarm.md", json_path.display());
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn markdown(cli: &Cli, spec: &RunSpec, results: &[Value]) -> String {
    let mut s = String::from(
        "# Swarm benchmark\n\nFindings and their history, kept by hand: [`swarm-history.md`](swarm-history.md).\n\n",
    );
    s += &format!(
        "`scripts/bench-swarm` (`{}`): the local subnet ({} stages x {} miners, one libtorch thread each, \
         filesystem store, {} ms blocks, epochs of {} blocks) for {} scored epochs, against the \
         single-process pipeline trainer ({} threads) on the same tokens at the swarm's global \
         batch ({} micro-batches of {} sequences per step: `optimizer.accumulate` x miners per \
         stage). Stage 0 keeps {} round(s) of {} samples in flight (`swarm.rounds`, \
         `swarm.window`); miners look for artifacts every {}. Same machine, model, data, \
         learning-rate schedule and held-out batches.\n\n",
        cli.spec.display(),
        spec.stages.len(),
        cli.miners_per_stage,
        cli.block_time_ms,
        spec.swarm.epoch_blocks,
        cli.epochs,
        cli.threads,
        spec.optimizer.accumulate * cli.miners_per_stage,
        spec.optimizer.batch_size,
        spec.swarm.rounds,
        spec.swarm.window,
        cli.miner_poll_ms
            .map_or("btminer's default interval".into(), |ms| format!("{ms} ms")),
    );
    let mbit = |m: Option<f64>| m.map_or("unlimited".to_owned(), |m| format!("{m} Mbit/s"));
    s += &format!(
        "Each process reaches the storage over an emulated link (`storage::link`): the latency below \
         as its round trip, uploads {}, downloads {}, {}% of requests failing (retried).\n\n",
        mbit(cli.link.up_mbit),
        mbit(cli.link.down_mbit),
        cli.link.failure_rate * 100.0
    );
    s += "| storage latency | tokens | swarm tok/s | single tok/s | ratio | utilisation (mean) | eval loss swarm | eval loss single | act B/tok | grad B/tok | merge B/tok | chain RPC/s per process (mean, busiest) |\n";
    s += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in results {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        s += &format!(
            "| {} ms | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} | {:.2}, {:.2} |\n",
            r["storage_latency_ms"],
            r["tokens"],
            f("swarm_tokens_per_s"),
            f("single_process_tokens_per_s"),
            f("swarm_tokens_per_s") / f("single_process_tokens_per_s"),
            f("utilisation_mean"),
            f("eval_loss_swarm"),
            f("eval_loss_single"),
            r["bytes_per_token"]["activations"].as_f64().unwrap_or(0.0),
            r["bytes_per_token"]["gradients"].as_f64().unwrap_or(0.0),
            r["bytes_per_token"]["merge"].as_f64().unwrap_or(0.0),
            r["chain_rpc_per_s"]["mean_per_connection"]
                .as_f64()
                .unwrap_or(0.0),
            r["chain_rpc_per_s"]["busiest_connection"]
                .as_f64()
                .unwrap_or(0.0),
        );
    }
    s
}
