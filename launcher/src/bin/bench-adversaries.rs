//! `bench-adversaries`: every adversary on the real local subnet (what
//! `scripts/bench-incentives --subnet` runs).
//!
//! Each run is a local subnet (btlocalnet, the S3 test server, a validator and two stages of
//! three `btminer`s, each its own process) with two adversaries, one on each stage, so that
//! each stage keeps an honest median and the two do not mask each other; the plan
//! ([`PLAN`]) places each behaviour where it has something to do (`fake-work` past stage 0,
//! `id-squat`, `copier` and `store-equivocate` on stage 0, whose output a later stage reads).
//! After `--epochs` scored epochs it reads the validator's records and the weights on chain,
//! and writes, per behaviour, the scored epoch in which it was first caught (or "harmless":
//! never caught and paid no more than 1.25 times its stage's honest mean), the honest miners
//! zeroed (caught in any scored epoch), the honest miners' share of the weights and the
//! validator's missed epochs, to `bench/results/adversaries.{json,md}`.
//!
//! The bar: every behaviour caught or harmless within two scored epochs, no honest miner
//! zeroed, no validator epoch missed.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{Value, json};
use sliver_common::RunSpec;
use sliver_common::adversary::Behaviour;
use sliver_launcher::localnet::{EpochReport, LinkSpec, Localnet, Options, StorageKind};

/// Every adversary on the real local subnet.
#[derive(Debug, Parser)]
#[command(name = "bench-adversaries")]
struct Cli {
    /// Run spec (two stages).
    #[arg(long, default_value = "specs/bench-adversaries.toml")]
    spec: PathBuf,
    /// Training text, replacing the spec's data sources.
    #[arg(long)]
    data: Option<String>,
    /// Scored epochs per run.
    #[arg(long, default_value_t = 4)]
    epochs: u64,
    /// Milliseconds per block: 200 makes the spec's 100-block epochs 20 s. At 100 ms (10 s
    /// epochs) the 2-core machine this ran on starved the validator's audit in some epochs,
    /// and honest miners whose stores it could not read in time went unpaid.
    #[arg(long, default_value_t = 200)]
    block_time_ms: u64,
    /// Only the runs holding one of these behaviours (all when not given).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Behaviour>,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Working directory of the runs.
    #[arg(long, default_value = "runs/bench-adversaries")]
    dir: PathBuf,
}

/// Miners per stage: three, so each stage's median is honest with one adversary in it.
const MINERS_PER_STAGE: usize = 3;
/// The miner index of the adversary on stage 0 and on stage 1 (miner `i` has uid `i + 1`, and
/// a miner's stage is its uid modulo 2).
const ON_STAGE: [usize; 2] = [1, 0];
/// Scored epochs within which an adversary must be caught (or be harmless).
const WITHIN: usize = 2;
/// An adversary never caught is harmless when paid at most this many times its stage's honest
/// mean weight.
const HARMLESS_GAIN: f64 = 1.25;

/// The runs: the adversary on stage 0, and the one on stage 1 (if any).
const PLAN: [[Option<Behaviour>; 2]; 8] = [
    [Some(Behaviour::Noise), Some(Behaviour::PoisonMerge)],
    [Some(Behaviour::Lazy), Some(Behaviour::Late)],
    [Some(Behaviour::Copier), Some(Behaviour::Scaled)],
    [Some(Behaviour::IdSquat), Some(Behaviour::MergeExtreme)],
    [Some(Behaviour::StoreDenial), Some(Behaviour::FakeWork)],
    [
        Some(Behaviour::StoreEquivocate),
        Some(Behaviour::RosterChurn),
    ],
    [Some(Behaviour::StoreSlow), Some(Behaviour::FreeRider)],
    [Some(Behaviour::Griefer), None],
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No log directory: the guard holds no writer.
    if let Err(e) = sliver_common::telemetry::init(
        &sliver_common::telemetry::LoggingArgs::default(),
        "bench-adversaries",
    )
    .map(drop)
    {
        eprintln!("bench-adversaries: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    sliver_launcher::main_with("bench-adversaries", run(cli))
}

/// One adversary's outcome.
struct Verdict {
    behaviour: Behaviour,
    uid: u16,
    stage: usize,
    /// The scored epoch (1-based) in which it was first caught, and why.
    caught: Option<(usize, Vec<String>)>,
    weight: u16,
    /// Its weight over its stage's honest mean.
    gain: f64,
    notes: Vec<String>,
}

impl Verdict {
    fn outcome(&self) -> String {
        match &self.caught {
            Some((n, why)) => format!("caught in epoch {n} ({})", why.join(",")),
            None if self.gain <= HARMLESS_GAIN => "harmless".into(),
            None => format!("escaped (paid {:.2}x an honest miner)", self.gain),
        }
    }
    fn ok(&self) -> bool {
        match &self.caught {
            Some((n, _)) => *n <= WITHIN,
            None => self.gain <= HARMLESS_GAIN,
        }
    }
}

/// One run's findings.
struct RunResult {
    /// Its number in [`PLAN`] (from 1).
    number: usize,
    behaviours: Vec<Behaviour>,
    verdicts: Vec<Verdict>,
    /// Honest miners caught in any scored epoch: (uid, epoch, why).
    honest_zeroed: Vec<(u16, u64, Vec<String>)>,
    honest_share: f64,
    missed: u64,
    epochs: Vec<u64>,
    wall_s: f64,
}

async fn run(cli: Cli) -> Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let spec = RunSpec::load(&cli.spec)?;
    anyhow::ensure!(
        spec.stages.len() == 2,
        "{} must have two stages (the plan places one adversary on each)",
        cli.spec.display()
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for (n, plan) in PLAN.iter().enumerate() {
        let behaviours: Vec<Behaviour> = plan.iter().flatten().copied().collect();
        if !cli.only.is_empty() && !behaviours.iter().any(|b| cli.only.contains(b)) {
            continue;
        }
        let names: Vec<&str> = behaviours.iter().map(|b| b.name()).collect();
        println!("run {}: {}", n + 1, names.join(" + "));
        let r = one_run(&cli, &spec, &bin_dir, n, plan).await?;
        for v in &r.verdicts {
            println!(
                "  {} (uid {}, stage {}): {}",
                v.behaviour,
                v.uid,
                v.stage,
                v.outcome()
            );
        }
        println!(
            "  honest zeroed {}, honest weight share {:.3}, validator epochs missed {}, {:.0} s",
            r.honest_zeroed.len(),
            r.honest_share,
            r.missed,
            r.wall_s
        );
        results.push(r);
    }
    let wall = started.elapsed().as_secs_f64();
    write(&cli, &results, wall)?;
    let pass = results
        .iter()
        .all(|r| r.verdicts.iter().all(Verdict::ok) && r.honest_zeroed.is_empty() && r.missed == 0);
    println!(
        "{} runs in {:.1} min; bar {}",
        results.len(),
        wall / 60.0,
        if pass { "met" } else { "NOT met" }
    );
    Ok(())
}

async fn one_run(
    cli: &Cli,
    spec: &RunSpec,
    bin_dir: &Path,
    n: usize,
    plan: &[Option<Behaviour>; 2],
) -> Result<RunResult> {
    let started = Instant::now();
    let adversaries: Vec<(usize, Behaviour)> = plan
        .iter()
        .zip(ON_STAGE)
        .filter_map(|(b, i)| b.map(|b| (i, b)))
        .collect();
    let dir = cli.dir.join(format!("run-{}", n + 1));
    let mut net = Localnet::start(Options {
        dir: dir.clone(),
        spec: cli.spec.clone(),
        data: cli.data.clone(),
        bin_dir: bin_dir.to_path_buf(),
        miners_per_stage: MINERS_PER_STAGE,
        epochs: cli.epochs,
        block_time_ms: cli.block_time_ms,
        storage: StorageKind::S3,
        threads: 1,
        link: LinkSpec::default(),
        miner_poll_ms: None,
        commit_reveal: false,
        miners_per_process: 1,
        adversaries: adversaries.clone(),
        slowdowns: Vec::new(),
        miner_flags: Vec::new(),
    })
    .await?;
    let epoch_s = spec.swarm.epoch_blocks as f64 * cli.block_time_ms as f64 / 1000.0;
    // The first report waits for the miners to register, announce and join.
    let timeout = Duration::from_secs_f64(epoch_s * 4.0 + 60.0);
    let mut reports: Vec<EpochReport> = Vec::new();
    while (reports.len() as u64) < cli.epochs {
        match net.next_report(timeout) {
            Some(r) => {
                println!("  epoch {} scored: {}", r.epoch, r.samples());
                reports.push(r);
            }
            None => break,
        }
    }
    // The last weights land a block or two after the last report: ten blocks leave room.
    tokio::time::sleep(Duration::from_millis(cli.block_time_ms * 10)).await;
    let weights = net.weights().await.unwrap_or_default();
    let fronts: BTreeMap<usize, _> = adversaries
        .iter()
        .filter_map(|(i, _)| net.front_stats(*i).map(|s| (*i, s)))
        .collect();
    net.stop();

    let epochs: Vec<u64> = reports.iter().map(|r| r.epoch.get()).collect();
    let gaps: u64 = epochs
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).saturating_sub(1))
        .sum();
    let missed = cli.epochs.saturating_sub(reports.len() as u64) + gaps;
    let adversary_uid = |i: usize| net.miners[i].uid.0;
    let adv_uids: Vec<u16> = adversaries.iter().map(|(i, _)| adversary_uid(*i)).collect();
    let stage_of = |uid: u16| usize::from(uid) % 2;
    let weight = |uid: u16| weights.get(&uid).copied().unwrap_or(0);
    let mut honest_zeroed = Vec::new();
    for r in &reports {
        for m in &r.miners {
            if !adv_uids.contains(&m.uid) && !m.caught.is_empty() {
                honest_zeroed.push((m.uid, r.epoch.get(), m.caught.clone()));
            }
        }
    }
    let honest: Vec<u16> = net
        .miners
        .iter()
        .map(|m| m.uid.0)
        .filter(|u| !adv_uids.contains(u))
        .collect();
    let total: f64 = net.miners.iter().map(|m| f64::from(weight(m.uid.0))).sum();
    let honest_share = if total > 0.0 {
        honest.iter().map(|u| f64::from(weight(*u))).sum::<f64>() / total
    } else {
        0.0
    };
    let mut verdicts = Vec::new();
    for (i, b) in &adversaries {
        let uid = adversary_uid(*i);
        let stage = stage_of(uid);
        let caught = reports.iter().enumerate().find_map(|(k, r)| {
            r.miners
                .iter()
                .find(|m| m.uid == uid && !m.caught.is_empty())
                .map(|m| (k + 1, m.caught.clone()))
        });
        let peers: Vec<f64> = honest
            .iter()
            .filter(|u| stage_of(**u) == stage)
            .map(|u| f64::from(weight(*u)))
            .collect();
        let mean = peers.iter().sum::<f64>() / peers.len().max(1) as f64;
        let gain = if mean > 0.0 {
            f64::from(weight(uid)) / mean
        } else {
            f64::INFINITY
        };
        let mut notes = Vec::new();
        if let Some(s) = fronts.get(i) {
            notes.push(format!(
                "front: {} requests, {} trickled, {} first reads honest, {} equivocated",
                s.requests, s.trickled, s.honest, s.equivocated
            ));
        }
        let log = std::fs::read_to_string(
            dir.join(format!("logs/miner-{}.log", net.miners[*i].hotkey_name)),
        )
        .unwrap_or_default();
        let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
        match b {
            Behaviour::Griefer => notes.push(format!(
                "attempts refused {}, landed {}",
                count("griefer: the attempt was refused"),
                count("griefer: the attempt LANDED")
            )),
            Behaviour::RosterChurn => notes.push(format!(
                "re-commits after the cutoff: {}",
                count("roster-churn: re-committed")
            )),
            _ => {}
        }
        verdicts.push(Verdict {
            behaviour: *b,
            uid,
            stage,
            caught,
            weight: weight(uid),
            gain,
            notes,
        });
    }
    Ok(RunResult {
        number: n + 1,
        behaviours: adversaries.iter().map(|(_, b)| *b).collect(),
        verdicts,
        honest_zeroed,
        honest_share,
        missed,
        epochs,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

fn write(cli: &Cli, results: &[RunResult], wall: f64) -> Result<()> {
    let mut rows = String::new();
    let mut json_runs = Vec::new();
    for r in results {
        let zeroed: Vec<String> = r
            .honest_zeroed
            .iter()
            .map(|(u, e, why)| format!("uid {u} in epoch {e} ({})", why.join(",")))
            .collect();
        for v in &r.verdicts {
            rows.push_str(&format!(
                "| {} | {} | uid {} / stage {} | {} | {} | {} | {:.3} | {} | {} |\n",
                v.behaviour,
                r.number,
                v.uid,
                v.stage,
                v.outcome(),
                if v.ok() { "yes" } else { "**no**" },
                if zeroed.is_empty() {
                    "0".to_string()
                } else {
                    format!("**{}**: {}", zeroed.len(), zeroed.join("; "))
                },
                r.honest_share,
                r.missed,
                v.notes.join("; "),
            ));
        }
        json_runs.push(json!({
            "run": r.number,
            "behaviours": r.behaviours.iter().map(|b| b.name()).collect::<Vec<_>>(),
            "scored_epochs": r.epochs,
            "validator_epochs_missed": r.missed,
            "honest_miners_zeroed": r.honest_zeroed.iter().map(|(u, e, why)| json!({"uid": u, "epoch": e, "caught": why})).collect::<Vec<_>>(),
            "honest_weight_share": r.honest_share,
            "wall_s": r.wall_s,
            "adversaries": r.verdicts.iter().map(|v| json!({
                "behaviour": v.behaviour.name(),
                "uid": v.uid,
                "stage": v.stage,
                "epochs_to_catch": v.caught.as_ref().map(|(n, _)| *n),
                "caught": v.caught.as_ref().map(|(_, why)| why.clone()),
                "outcome": v.outcome(),
                "weight": v.weight,
                "gain_over_honest_mean": if v.gain.is_finite() { Value::from(v.gain) } else { Value::Null },
                "within_bar": v.ok(),
                "notes": v.notes,
            })).collect::<Vec<_>>(),
        }));
    }
    let pass = results
        .iter()
        .all(|r| r.verdicts.iter().all(Verdict::ok) && r.honest_zeroed.is_empty() && r.missed == 0);
    let out = json!({
        "setup": {
            "spec": cli.spec.display().to_string(),
            "stages": 2,
            "miners_per_stage": MINERS_PER_STAGE,
            "scored_epochs_per_run": cli.epochs,
            "block_time_ms": cli.block_time_ms,
            "storage": "s3",
        },
        "runs": json_runs,
        "wall_minutes": wall / 60.0,
        "bar_met": pass,
    });
    std::fs::create_dir_all(&cli.out)?;
    std::fs::write(
        cli.out.join("adversaries.json"),
        serde_json::to_string_pretty(&out)? + "\n",
    )?;
    let md = format!(
        "# Adversaries on the local subnet\n\n`scripts/bench-incentives --subnet`: each run is a local subnet (btlocalnet, the S3 test server, one validator, 2 stages x {MINERS_PER_STAGE} `btminer`s, each its own process) on `{}` with two adversaries, one per stage, scored for {} epochs of {} blocks at {} ms. *Caught in epoch N*: the N-th scored epoch is the first in which the validator paid it nothing; *harmless*: never caught and paid at most {HARMLESS_GAIN}x its stage's honest mean. *Honest miners zeroed*: honest miners of the run caught in any scored epoch. Bar: every behaviour caught within {WITHIN} epochs or harmless, no honest miner zeroed, no validator epoch missed: **{}**. {} runs in {:.1} minutes.\n\n| behaviour | run | miner | outcome | within bar | honest miners zeroed (run) | honest weight share (run) | validator epochs missed (run) | notes |\n|---|---:|---|---|---|---|---:|---:|---|\n{rows}",
        cli.spec.display(),
        cli.epochs,
        RunSpec::load(&cli.spec)?.swarm.epoch_blocks,
        cli.block_time_ms,
        if pass { "met" } else { "not met" },
        results.len(),
        wall / 60.0,
    );
    std::fs::write(cli.out.join("adversaries.md"), md)?;
    println!(
        "wrote {}/adversaries.json and adversaries.md",
        cli.out.display()
    );
    Ok(())
}
