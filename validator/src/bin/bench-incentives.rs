//! Incentives benchmark: how well the validator's scoring catches cheating miners, with 0%, 10%,
//! 25% and 40% of them adversarial, and how long scoring a million paths takes.
//!
//! Statistical scenarios: epochs of a simulated subnet (stages x miners, each stage-0 miner
//! starting its samples, every sample routed uniformly at random to one miner of each later
//! stage) produce what the validator's audit produces — a path table (sample, miner per stage,
//! loss) and one work row per miner — and run through the real scoring code: CLASP
//! ([`clasp::attribute`]), the verdicts ([`scores::judge`]), the moving average and the u16
//! weights. What each behaviour does to those inputs is stated in [`Behaviour::effect`] and
//! [`simulate_epoch`]; the multi-process tests check the same behaviours against real miners.
//!
//! Writes `bench/results/incentives.{json,md}`.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use serde_json::{Value, json};
use sliver_chain::client::{Uid, Weights};
use sliver_common::adversary::Behaviour;
use sliver_common::spec::ValidationSpec;
use sliver_validator::clasp;
use sliver_validator::follow::{MinerWork, Path};
use sliver_validator::scores::{self, Ema};

#[derive(Debug, Parser)]
#[command(about = "Incentives benchmark: detection of adversarial miners by the real scoring code")]
struct Cli {
    /// Pipeline stages.
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Miners per stage.
    #[arg(long, default_value_t = 10)]
    miners_per_stage: usize,
    /// Samples each stage-0 miner starts per epoch (the local subnet's miners finish about 250).
    #[arg(long, default_value_t = 250)]
    samples: u64,
    /// Epochs per scenario.
    #[arg(long, default_value_t = 4)]
    epochs: u64,
    /// Independent repetitions of each scenario (different seeds).
    #[arg(long, default_value_t = 10)]
    repeats: u64,
    /// Paths in the scoring-time measurement.
    #[arg(long, default_value_t = 1_000_000)]
    timing_paths: u64,
    /// Run spec whose middle stage measures the spot checks' honest variation.
    #[arg(long, default_value = "specs/local.toml")]
    spec: PathBuf,
    /// Where to write incentives.{json,md}.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// What each behaviour does to the validator's inputs.
trait Simulated {
    /// What it adds to the loss of every path through it.
    fn effect(self) -> f64;
    /// Share of its routed samples it actually computes.
    fn work(self) -> f64;
    /// Whether the audit finds a verified, agreeing reduction of every shard it owes.
    fn merges(self) -> bool;
    /// Share of its artifacts that are not what its claimed weights compute from its inputs:
    /// what a spot check of one artifact finds wrong.
    fn wrong(self) -> f64;
    /// Whether it cheats at all on `stage`.
    fn plays_at(self, stage: usize) -> bool;
}

impl Simulated for Behaviour {
    /// What it adds to the loss of every path through it: the gap between its paths' mean loss
    /// and its honest peers', measured on the local subnet (`scripts/demo --adversary`, 3 x 2
    /// miners, `specs/local.toml`) once the model uses its context, epochs 2 to 4. Noise: 0.21
    /// then 0.37 (the later stages embed the tokens themselves, so noise costs only context);
    /// stale or copied outputs (another sample's context): 0.07; outputs x 1.1: none measurable
    /// (the next stage's RMSNorm undoes most of it). The first epoch, before the model uses
    /// context, shows none of them.
    fn effect(self) -> f64 {
        match self {
            Behaviour::Noise => 0.3,
            Behaviour::Lazy | Behaviour::Copier => 0.07,
            Behaviour::Scaled => 0.0,
            // The others upload what they computed (an equivocator shows its honest bytes to the
            // downstream miner that trains on them), or nothing anyone reads.
            Behaviour::FreeRider
            | Behaviour::PoisonMerge
            | Behaviour::MergeExtreme
            | Behaviour::StoreDenial
            | Behaviour::IdSquat
            | Behaviour::Late
            | Behaviour::StoreSlow
            | Behaviour::StoreEquivocate
            | Behaviour::FakeWork
            | Behaviour::RosterChurn
            | Behaviour::Griefer => 0.0,
        }
    }

    /// A store-denial or store-slow miner's work is unreadable (every read refused, or cut off
    /// at the reader's deadline) and an id squatter's under ids it did not start: none of it
    /// verifies. A fake-work miner's honest work verifies and its fakes (ids routed to a peer)
    /// are dropped, so its verified work is its honest share.
    fn work(self) -> f64 {
        match self {
            Behaviour::FreeRider => 0.05,
            Behaviour::StoreDenial | Behaviour::StoreSlow | Behaviour::IdSquat => 0.0,
            _ => 1.0,
        }
    }

    /// Merge shards that no one can read in time (store-denial, store-slow) are a missing
    /// merge like a late one's.
    fn merges(self) -> bool {
        !matches!(
            self,
            Behaviour::PoisonMerge
                | Behaviour::MergeExtreme
                | Behaviour::StoreDenial
                | Behaviour::StoreSlow
                | Behaviour::Late
        )
    }

    /// Noise, stale, copied and scaled outputs are wrong in every artifact (the lazy miner's
    /// first of the epoch excepted, about 1 in 80 on the local subnet); the others upload what
    /// they computed. Honest recomputations matched bit for bit on the local subnet, so an
    /// honest artifact never fails.
    fn wrong(self) -> f64 {
        match self {
            Behaviour::Noise | Behaviour::Copier | Behaviour::Scaled => 1.0,
            Behaviour::Lazy => 1.0 - 1.0 / 80.0,
            // Every read of an equivocator's artifact after the first (the downstream miner's)
            // gets another artifact, so what the validator recomputes is never what it holds.
            // (Its downstream miner is not blamed: the lead's input commitment and
            // equivocation proof name the equivocator; the simulation assumes them.)
            Behaviour::StoreEquivocate => 1.0,
            // Past stage 0, one fake gradient per honest one: a third of a middle-stage miner's
            // artifacts (half of a last-stage miner's), and a pick of one fails (its sample was
            // not routed to it). The lower share, a third, is simulated.
            Behaviour::FakeWork => 1.0 / 3.0,
            Behaviour::FreeRider
            | Behaviour::PoisonMerge
            | Behaviour::MergeExtreme
            | Behaviour::StoreDenial
            | Behaviour::StoreSlow
            | Behaviour::IdSquat
            | Behaviour::Late
            // A churner's every spelling names the same store and the roster is read at the
            // cutoff block; every griefer attempt is refused (published keys only read,
            // challenges are answered only to permit holders): both train as honest miners.
            | Behaviour::RosterChurn
            | Behaviour::Griefer => 0.0,
        }
    }

    /// `fake-work` has no gradients to fake on stage 0 (stage 0 returns none): it is an honest
    /// miner there.
    fn plays_at(self, stage: usize) -> bool {
        self != Behaviour::FakeWork || stage > 0
    }
}

/// A small deterministic generator (splitmix64), so that runs are reproducible anywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The simulated subnet: uid `1 + stage * per_stage + i` is miner `i` of `stage`.
struct Subnet {
    stages: usize,
    per_stage: usize,
    adversaries: BTreeMap<u16, Behaviour>,
}

impl Subnet {
    fn uid(&self, stage: usize, i: usize) -> u16 {
        (1 + stage * self.per_stage + i) as u16
    }
    fn behaviour(&self, uid: u16) -> Option<Behaviour> {
        let stage = (usize::from(uid) - 1) / self.per_stage;
        self.adversaries
            .get(&uid)
            .copied()
            .filter(|b| b.plays_at(stage))
    }
}

/// One epoch of the subnet: the paths and work rows the audit would produce.
fn simulate_epoch(
    net: &Subnet,
    epoch: u64,
    samples: u64,
    rng: &mut Rng,
) -> (Vec<Path>, Vec<MinerWork>) {
    let mut work: BTreeMap<u16, u64> = BTreeMap::new();
    let mut paths = Vec::new();
    // The model improves across epochs; per-sample losses vary with the text (sd 0.22, as
    // measured on the local subnet, with one sample in 50 much harder).
    let base = 3.0 - 0.1 * epoch as f64;
    for first in 0..net.per_stage {
        for n in 0..samples {
            let mut uids = Vec::with_capacity(net.stages);
            let mut done = true;
            for s in 0..net.stages {
                let uid = if s == 0 {
                    net.uid(0, first)
                } else {
                    net.uid(s, rng.below(net.per_stage))
                };
                let computes = net.behaviour(uid).map_or(1.0, Behaviour::work);
                if rng.uniform() >= computes {
                    done = false;
                    break;
                }
                uids.push(uid);
            }
            if !done {
                continue;
            }
            let hard = if rng.uniform() < 0.02 { 1.0 } else { 0.0 };
            let extra: f64 = uids
                .iter()
                .filter_map(|u| net.behaviour(*u))
                .map(Behaviour::effect)
                .sum();
            let loss = (base + 0.22 * rng.normal() + hard + extra).max(0.0);
            for u in &uids {
                *work.entry(*u).or_default() += 2;
            }
            paths.push(Path {
                sample: (first as u64) << 32 | n,
                uids,
                loss: loss as f32,
            });
        }
    }
    let spot_checks = ValidationSpec::default().spot_checks as u64;
    let rows = (0..net.stages)
        .flat_map(|s| (0..net.per_stage).map(move |i| (s, i)))
        .map(|(s, i)| {
            let uid = net.uid(s, i);
            let w = work.get(&uid).copied().unwrap_or(0);
            // Spot checks: `k` of its artifacts recomputed, each wrong with its behaviour's share.
            let k = if w > 0 { spot_checks } else { 0 };
            let wrong = net.behaviour(uid).map_or(0.0, Behaviour::wrong);
            let failures = (0..k).filter(|_| rng.uniform() < wrong).count() as u64;
            MinerWork {
                uid,
                hotkey: format!("uid{uid}"),
                stage: sliver_common::StageIndex::at(s),
                samples_forward: w / 2,
                samples_backward: w / 2,
                work: w,
                merged: net.behaviour(uid).is_none_or(Behaviour::merges),
                spot_checks: k,
                spot_check_failures: failures,
                ..MinerWork::default()
            }
        })
        .collect();
    (paths, rows)
}

/// An adversary never caught is harmless when paid at most the honest miners' mean weight in
/// its stage plus three of their standard deviations, or at most this many times the best
/// paid of them (on stage 0 honest work barely varies, so a standard deviation is no measure
/// of chance there).
const HARMLESS_OVER_BEST: f64 = 1.05;

/// How the adversaries of one behaviour fared.
#[derive(Debug, Default, Clone, Copy)]
struct Fared {
    /// Adversaries playing it.
    miners: u64,
    /// Caught within two epochs.
    caught: u64,
    /// Sum of the epochs at which those were first caught.
    epochs: u64,
    /// Not caught within two epochs, and paid no more than an honest miner of their stage
    /// (at most the honest miners' mean weight plus three of their standard deviations):
    /// without effect.
    harmless: u64,
}

impl Fared {
    fn add(&mut self, o: Fared) {
        self.miners += o.miners;
        self.caught += o.caught;
        self.epochs += o.epochs;
        self.harmless += o.harmless;
    }
}

/// What one scenario run found.
#[derive(Default)]
struct Outcome {
    /// Per behaviour.
    caught: BTreeMap<Behaviour, Fared>,
    honest_epochs: u64,
    honest_flagged: u64,
    honest_weight: f64,
    total_weight: f64,
}

fn run_scenario(cli: &Cli, fraction: f64, seed: u64) -> Result<Outcome> {
    let mut rng = Rng(seed);
    let total = cli.stages * cli.miners_per_stage;
    let n_adv = (fraction * total as f64).round() as usize;
    // Adversaries at random positions, behaviours in turn.
    let mut uids: Vec<u16> = (1..=total as u16).collect();
    for i in (1..uids.len()).rev() {
        let j = rng.below(i + 1);
        uids.swap(i, j);
    }
    let offset = rng.below(Behaviour::ALL.len());
    let adversaries: BTreeMap<u16, Behaviour> = uids
        .iter()
        .take(n_adv)
        .enumerate()
        .map(|(k, u)| (*u, Behaviour::ALL[(k + offset) % Behaviour::ALL.len()]))
        .collect();
    let net = Subnet {
        stages: cli.stages,
        per_stage: cli.miners_per_stage,
        adversaries,
    };
    let mut ema = Ema::default();
    let mut first_caught: BTreeMap<u16, u64> = BTreeMap::new();
    let mut out = Outcome::default();
    let mut weights = Weights::default();
    for epoch in 1..=cli.epochs {
        let (paths, rows) = simulate_epoch(&net, epoch, cli.samples, &mut rng);
        let df = clasp::paths_frame(sliver_common::Epoch(epoch), cli.stages, &paths)?;
        let effects = clasp::attribute_by_uid(&df, cli.stages, &clasp::Config::default())?;
        let judged = scores::judge(&rows, &effects);
        for j in &judged {
            let caught = !j.caught.is_empty();
            if net.adversaries.contains_key(&j.uid) {
                if caught {
                    first_caught.entry(j.uid).or_insert(epoch);
                }
            } else {
                out.honest_epochs += 1;
                out.honest_flagged += u64::from(caught);
            }
        }
        ema.update(
            judged
                .iter()
                .zip(&rows)
                .map(|(j, r)| (j.uid, r.hotkey.as_str(), j.score)),
        );
        weights = Weights::from_scores(ema.by_uid().map(|(u, s)| (Uid(u), s)));
    }
    let weight: BTreeMap<u16, f64> = weights
        .uids()
        .iter()
        .zip(weights.values())
        .map(|(u, w)| (u.0, f64::from(*w)))
        .collect();
    // What an honest miner of each stage is paid: the honest weights' mean and spread.
    let honest_bound = |stage: usize| {
        let ws: Vec<f64> = (0..net.per_stage)
            .map(|i| net.uid(stage, i))
            .filter(|u| !net.adversaries.contains_key(u))
            .map(|u| weight.get(&u).copied().unwrap_or(0.0))
            .collect();
        let n = ws.len().max(1) as f64;
        let mean = ws.iter().sum::<f64>() / n;
        let sd = (ws.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n).sqrt();
        let best = ws.iter().copied().fold(0.0, f64::max);
        (mean + 3.0 * sd).max(HARMLESS_OVER_BEST * best)
    };
    for (uid, b) in &net.adversaries {
        let e = out.caught.entry(*b).or_default();
        e.miners += 1;
        if let Some(&at) = first_caught.get(uid).filter(|at| **at <= 2) {
            e.caught += 1;
            e.epochs += at;
        } else {
            let stage = (usize::from(*uid) - 1) / net.per_stage;
            let w = weight.get(uid).copied().unwrap_or(0.0);
            e.harmless += u64::from(w <= honest_bound(stage));
        }
    }
    for (uid, w) in &weight {
        out.total_weight += w;
        if !net.adversaries.contains_key(uid) {
            out.honest_weight += w;
        }
    }
    Ok(out)
}

/// Seconds to build the path table of `n` paths and score it (CLASP and verdicts).
fn time_scoring(cli: &Cli, n: u64) -> Result<f64> {
    let net = Subnet {
        stages: cli.stages,
        per_stage: cli.miners_per_stage,
        adversaries: BTreeMap::from([(2, Behaviour::Noise)]),
    };
    let per_first = n.div_ceil(cli.miners_per_stage as u64);
    let mut rng = Rng(99);
    let (paths, rows) = simulate_epoch(&net, 1, per_first, &mut rng);
    let started = Instant::now();
    let df = clasp::paths_frame(sliver_common::Epoch(1), cli.stages, &paths)?;
    let framed = started.elapsed().as_secs_f64();
    let effects = clasp::attribute_by_uid(&df, cli.stages, &clasp::Config::default())?;
    let judged = scores::judge(&rows, &effects);
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        judged.iter().any(|j| j.uid == 2 && !j.caught.is_empty()),
        "the timing run did not catch its adversary"
    );
    println!(
        "scored {} paths in {secs:.3} s (path table {framed:.3} s, CLASP and verdicts {:.3} s)",
        paths.len(),
        secs - framed
    );
    Ok(secs)
}

/// How far an honest recomputation can land from the miner's artifact, against the spec's
/// tolerances: a middle stage of `spec` computes one activation and one input gradient (both
/// through the wire codecs), then again with another thread count (CPU against CPU), and with
/// every weight perturbed by a relative 5e-4 (about the rounding of TF32 matrix products on a
/// GPU, a stand-in for CPU against CUDA); outputs x 1.1 (the `scaled` cheat) for contrast.
fn spot_check_variation(spec_path: &std::path::Path) -> Result<Value> {
    use sliver_common::spot_check::Agreement;
    use sliver_common::{Batch, RunSpec, Stage, WireCodec};
    use tch::{Device, Kind, Tensor};
    let spec = RunSpec::from_toml(&std::fs::read_to_string(spec_path)?)?;
    anyhow::ensure!(
        spec.stages.len() >= 3,
        "{} has no middle stage",
        spec_path.display()
    );
    tch::manual_seed(7);
    let (b, t) = (spec.optimizer.batch_size, spec.model.seq_len);
    let wire = spec.boundary.wire_dim(spec.model.d_model) as i64;
    let dims = [b as i64, t as i64, wire];
    let x = Tensor::randn(dims, (Kind::Float, Device::Cpu));
    let g = Tensor::randn(dims, (Kind::Float, Device::Cpu)) * 1e-3;
    let tokens: Vec<i64> = Tensor::randint(
        spec.model.vocab_size as i64,
        [(b * (t + 1)) as i64],
        (Kind::Int64, Device::Cpu),
    )
    .try_into()?;
    let batch = Batch::from_tokens(&tokens, b, t, Device::Cpu)?;
    let act_codec = spec.activation_codec();
    let grad_codec = spec.gradient_codec();
    let wire_trip =
        |c: &WireCodec, t: &Tensor| -> Result<Tensor> { Ok(c.decode(&c.encode(t)?, Device::Cpu)?) };
    let run = |stage: &Stage| -> Result<(Tensor, Tensor)> {
        let act = tch::no_grad(|| stage.forward(Some(&x), &batch))?;
        let fwd = stage.forward(Some(&x), &batch)?;
        let grad = stage
            .backward(fwd, Some(&g))?
            .ok_or_else(|| anyhow::anyhow!("a middle stage returns an input gradient"))?;
        Ok((
            wire_trip(&act_codec, act.output())?,
            wire_trip(&grad_codec, &grad)?,
        ))
    };
    let stage = Stage::new(&spec, 1, Device::Cpu)?;
    let threads = tch::get_num_threads();
    tch::set_num_threads(1);
    let (a1, g1) = run(&stage)?;
    tch::set_num_threads(2);
    let (a2, g2) = run(&stage)?;
    tch::set_num_threads(threads);
    let flat = sliver_common::flat::flatten(stage.var_store())?;
    let noisy = &flat * (flat.randn_like() * 5e-4 + 1.0);
    let mut perturbed = Stage::new(&spec, 1, Device::Cpu)?;
    sliver_common::flat::load_flat(perturbed.var_store_mut(), &noisy)?;
    let (ap, gp) = run(&perturbed)?;
    // The last stage's loss (what its gradients claim), the same three ways.
    let last = Stage::new(&spec, spec.stages.len() - 1, Device::Cpu)?;
    let loss = |stage: &Stage| -> Result<f64> {
        Ok(tch::no_grad(|| stage.forward(Some(&x), &batch))?
            .output()
            .double_value(&[]))
    };
    tch::set_num_threads(1);
    let l1 = loss(&last)?;
    tch::set_num_threads(2);
    let l2 = loss(&last)?;
    tch::set_num_threads(threads);
    let flat = sliver_common::flat::flatten(last.var_store())?;
    let mut perturbed_last = Stage::new(&spec, spec.stages.len() - 1, Device::Cpu)?;
    sliver_common::flat::load_flat(
        perturbed_last.var_store_mut(),
        &(&flat * (flat.randn_like() * 5e-4 + 1.0)),
    )?;
    let lp = loss(&perturbed_last)?;
    let row = |a: Agreement| json!({"cosine": a.cosine, "norm_error": (a.norm_ratio - 1.0).abs()});
    let v = &spec.validation;
    let out = json!({
        "spec": spec_path.display().to_string(),
        "tolerance": {"min_cosine": v.min_cosine, "max_norm_error": v.max_norm_error, "max_loss_error": v.max_loss_error},
        "last_stage_loss_error": {
            "cpu_1_vs_2_threads": (l2 - l1).abs() / l1,
            "weights_perturbed_5e-4": (lp - l1).abs() / l1,
        },
        "cpu_1_vs_2_threads": {"activation": row(Agreement::of(&a2, &a1)), "gradient": row(Agreement::of(&g2, &g1))},
        "weights_perturbed_5e-4": {"activation": row(Agreement::of(&ap, &a1)), "gradient": row(Agreement::of(&gp, &g1))},
        "scaled_1.1": {"activation": row(Agreement::of(&(&a1 * 1.1), &a1)), "gradient": row(Agreement::of(&(&g1 * 1.1), &g1))},
    });
    println!("spot-check variation: {out}");
    Ok(out)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let variation = spot_check_variation(&cli.spec)?;
    let mut scenarios = Vec::new();
    let mut table = String::new();
    for fraction in [0.0, 0.1, 0.25, 0.4] {
        let mut caught: BTreeMap<Behaviour, Fared> = BTreeMap::new();
        let (mut he, mut hf, mut hw, mut tw) = (0u64, 0u64, 0.0, 0.0);
        for r in 0..cli.repeats {
            let o = run_scenario(&cli, fraction, 1000 * r + (fraction * 100.0) as u64)?;
            for (b, f) in o.caught {
                caught.entry(b).or_default().add(f);
            }
            he += o.honest_epochs;
            hf += o.honest_flagged;
            hw += o.honest_weight;
            tw += o.total_weight;
        }
        let behaviours: serde_json::Map<String, Value> = caught
            .iter()
            .map(|(b, f)| {
                let epochs = if f.caught > 0 {
                    Value::from(f.epochs as f64 / f.caught as f64)
                } else {
                    Value::Null
                };
                (
                    b.name().to_owned(),
                    json!({
                        "detected_fraction": f.caught as f64 / f.miners as f64,
                        "harmless_fraction": f.harmless as f64 / f.miners as f64,
                        "epochs_to_detect": epochs,
                        "miners": f.miners,
                    }),
                )
            })
            .collect();
        let fp = hf as f64 / he.max(1) as f64;
        let share = if tw > 0.0 { hw / tw } else { 0.0 };
        let all = caught.values().fold(Fared::default(), |mut a, f| {
            a.add(*f);
            a
        });
        let handled = if all.miners > 0 {
            (all.caught + all.harmless) as f64 / all.miners as f64
        } else {
            f64::NAN
        };
        println!(
            "{:>3.0}% adversarial: caught or harmless {handled:.3} within 2 epochs (caught {}/{}), honest flagged {fp:.4}, honest weight {share:.4}",
            fraction * 100.0,
            all.caught,
            all.miners
        );
        table.push_str(&format!(
            "| {:.0}% | {} | {} | {fp:.4} | {share:.4} |\n",
            fraction * 100.0,
            if all.miners > 0 {
                format!("{handled:.3}")
            } else {
                "-".into()
            },
            caught
                .iter()
                .map(|(b, f)| {
                    let harmless = if f.harmless > 0 {
                        format!(" (+{} harmless)", f.harmless)
                    } else {
                        String::new()
                    };
                    format!("{} {}/{}{harmless}", b.name(), f.caught, f.miners)
                })
                .collect::<Vec<_>>()
                .join(", "),
        ));
        scenarios.push(json!({
            "adversarial_fraction": fraction,
            "behaviours": behaviours,
            "caught_or_harmless_fraction": handled,
            "honest_false_positive_rate": fp,
            "honest_weight_share": share,
        }));
    }
    let secs = time_scoring(&cli, cli.timing_paths)?;
    let result = json!({
        "scenarios": scenarios,
        "score_1m_paths_seconds": secs * 1_000_000.0 / cli.timing_paths as f64,
        "spot_check_variation": variation,
        "setup": {
            "stages": cli.stages,
            "miners_per_stage": cli.miners_per_stage,
            "samples_per_stage0_miner_per_epoch": cli.samples,
            "epochs": cli.epochs,
            "repeats": cli.repeats,
            "clasp": {"z": clasp::Config::default().z, "min_effect": clasp::Config::default().min_effect},
        },
    });
    std::fs::create_dir_all(&cli.out)?;
    std::fs::write(
        cli.out.join("incentives.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    let md = format!(
        "# Incentives benchmark\n\nFindings and their history, kept by hand: [`incentives-history.md`](incentives-history.md).\n\n`scripts/bench-incentives`: {} stages x {} miners, {} samples started per stage-0 miner per epoch, {} epochs, {} seeds per scenario; simulated path tables and audit rows through the real scoring code (CLASP, verdicts, moving average, u16 weights). Adversaries are assigned the behaviours in turn. An adversary not caught within two epochs is *harmless* when it is paid no more than an honest miner of its stage can be by chance (at most their mean weight plus three standard deviations, or 1.05 times the best paid of them): `fake-work` whose spot checks happened to pick only its honest artifacts, and `roster-churn` and `griefer`, which the protocol leaves nothing to gain.\n\n| adversarial | caught or harmless within 2 epochs | caught / adversaries by behaviour | honest flagged (per miner-epoch) | honest weight share |\n|---:|---:|---|---:|---:|\n{table}\nScoring 1M paths (path table, CLASP, verdicts): {:.3} s.\n\n## Spot checks: honest variation against the tolerances\n\nA middle stage of `{}` recomputes one activation and one input gradient (through the wire codecs); each row compares a variant with the 1-thread CPU result. Tolerance: cosine >= {}, norm error <= {}.\n\n| variant | activation cosine | activation norm error | gradient cosine | gradient norm error |\n|---|---:|---:|---:|---:|\n{}",
        cli.stages,
        cli.miners_per_stage,
        cli.samples,
        cli.epochs,
        cli.repeats,
        secs * 1_000_000.0 / cli.timing_paths as f64,
        cli.spec.display(),
        variation["tolerance"]["min_cosine"],
        variation["tolerance"]["max_norm_error"],
        ["cpu_1_vs_2_threads", "weights_perturbed_5e-4", "scaled_1.1"]
            .iter()
            .map(|k| {
                let v = &variation[*k];
                let f = |p: &str, q: &str| v[p][q].as_f64().unwrap_or(f64::NAN);
                format!(
                    "| {k} | {:.7} | {:.2e} | {:.7} | {:.2e} |\n",
                    f("activation", "cosine"),
                    f("activation", "norm_error"),
                    f("gradient", "cosine"),
                    f("gradient", "norm_error")
                )
            })
            .collect::<String>()
            + &format!(
                "\nThe last stage's loss (what its gradients claim), relative error against the 1-thread CPU result: {:.1e} with 2 threads, {:.1e} with weights perturbed by 5e-4 (tolerance {}).\n",
                variation["last_stage_loss_error"]["cpu_1_vs_2_threads"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
                variation["last_stage_loss_error"]["weights_perturbed_5e-4"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
                variation["tolerance"]["max_loss_error"],
            )
    );
    std::fs::write(cli.out.join("incentives.md"), md)?;
    println!(
        "wrote {}/incentives.json and incentives.md",
        cli.out.display()
    );
    Ok(())
}
