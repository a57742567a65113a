//! What the compression benchmark writes: `compression.json` (every run's
//! figures and held-out loss curve), `compression.md` (the same as tables) and
//! `compression.png` (loss ratio against tokens).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sliver_common::spec::BoundarySpec;

/// Held-out loss at one point of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Optimizer steps taken.
    pub step: u64,
    /// Training tokens seen.
    pub tokens: u64,
    /// Mean training loss over the steps since the previous point.
    pub train_loss: f64,
    /// Held-out loss here.
    pub eval_loss: f64,
    /// `eval_loss` ÷ the baseline's at the same step and seed.
    pub ratio: Option<f64>,
    /// How many training tokens this run is ahead of the baseline of its seed here
    /// (negative: behind), read off the two curves ([`tokens_ahead`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_ahead: Option<f64>,
    /// Gradients' relative L2 error through the wire codec, mean over the steps
    /// since the previous point (staged runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_error: Option<f64>,
    /// Share of gradient values sent nonzero and received as zero, mean over the
    /// same steps (staged runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradients_zeroed: Option<f64>,
    /// Share of the steps since the previous point in which clipping scaled a
    /// gradient (any stage's own norm, or the joint norm, above `grad_clip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped: Option<f64>,
    /// The joint gradient norm before clipping, mean over the same steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
}

/// One run of one configuration with one seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub name: String,
    pub seed: u64,
    /// The uncompressed one-stage baseline the others are compared with.
    pub monolithic: bool,
    /// Held-out loss at the end.
    pub eval_loss: f64,
    /// `eval_loss` ÷ the baseline's with the same seed.
    pub ratio: Option<f64>,
    pub tokens_per_s: f64,
    pub parameters: i64,
    /// Wire bytes per token per boundary, headers and scales included.
    pub activation_bytes_per_token: Option<f64>,
    pub gradient_bytes_per_token: Option<f64>,
    pub boundary: Option<BoundarySpec>,
    pub curve: Vec<Point>,
}

impl RunResult {
    /// The loss ratio at the middle of the run and at its end, and the largest ratio
    /// in the last half: whether the boundary's cost grows as the model learns.
    pub fn last_half(&self) -> Option<(f64, f64, f64)> {
        let ratios: Vec<f64> = self.curve.iter().filter_map(|p| p.ratio).collect();
        let tail = last_half(&ratios);
        Some((
            *tail.first()?,
            *tail.last()?,
            tail.iter().copied().fold(f64::MIN, f64::max),
        ))
    }

    /// The rise of the loss ratio (against the same seed's baseline) over the last half:
    /// the change along the least-squares line through the points from the middle on.
    pub fn rise(&self) -> Option<f64> {
        let ratios: Vec<f64> = self.curve.iter().filter_map(|p| p.ratio).collect();
        last_half_rise(&ratios)
    }

    /// How the run's lead over the same seed's baseline changes over the last half, in
    /// tokens, fitted as [`RunResult::rise`] is; `None` unless every point of the last
    /// half has a lead.
    pub fn lead_change(&self) -> Option<f64> {
        let ahead: Vec<Option<f64>> = self.curve.iter().map(|p| p.tokens_ahead).collect();
        last_half(&ahead)
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
            .and_then(|tail| fitted_change(&tail))
    }

    /// Whether this is the head-start control: the monolithic model with no boundary,
    /// measured against the baseline rather than being it. A constant lead and nothing
    /// else, it is what the others' rise and lead are read against.
    pub fn is_control(&self) -> bool {
        !self.monolithic && self.boundary.is_none()
    }

    /// Held-out loss at `step`, if the run recorded a point there.
    fn eval_at(&self, step: u64) -> Option<f64> {
        self.curve
            .iter()
            .find(|q| q.step == step)
            .map(|q| q.eval_loss)
    }
}

/// Everything in `compression.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub tokens: u64,
    pub model: String,
    pub eval_tokens: u64,
    pub fp32_boundary_bytes_per_token: f64,
    pub device: String,
    pub torch_threads: i32,
    pub command: String,
    /// The model's width, to tell which boundaries shared a scale between tokens (0 in
    /// files written before it was recorded; the bench sets it).
    #[serde(default)]
    pub d_model: usize,
    /// Runs in benchmark order, each seed after the other.
    pub results: Vec<RunResult>,
}

impl Report {
    /// An empty report for this budget and model.
    pub fn new(tokens: u64, model: String, eval_tokens: u64, fp32_per_token: f64) -> Self {
        Self {
            tokens,
            model,
            eval_tokens,
            fp32_boundary_bytes_per_token: fp32_per_token,
            device: "cpu".into(),
            torch_threads: tch::get_num_threads(),
            command: "cargo bench --profile dev -p sliver-common --bench compression".into(),
            d_model: 0,
            results: vec![],
        }
    }

    /// The report at `path` when it measured the same model on the same budget (so its
    /// runs compare with new ones), otherwise `fresh`.
    pub fn load_matching(path: &Path, fresh: Report) -> Report {
        let Ok(text) = std::fs::read_to_string(path) else {
            return fresh;
        };
        match serde_json::from_str::<Report>(&text) {
            Ok(old)
                if old.tokens == fresh.tokens
                    && old.model == fresh.model
                    && old.eval_tokens == fresh.eval_tokens =>
            {
                eprintln!(
                    "keeping {} earlier results from {} (same model and budget)",
                    old.results.len(),
                    path.display()
                );
                Report {
                    results: old.results,
                    ..fresh
                }
            }
            Ok(old) => {
                // Nothing measured is lost: the other budget's files move aside.
                let dir = path.parent().unwrap_or(Path::new("."));
                for ext in ["json", "md", "png"] {
                    let from = dir.join(format!("compression.{ext}"));
                    let to = dir.join(format!("compression-{}.{ext}", old.tokens));
                    if from.exists() {
                        match std::fs::rename(&from, &to) {
                            Ok(()) => eprintln!(
                                "{} measured another model or budget: moved to {}",
                                from.display(),
                                to.display()
                            ),
                            Err(e) => eprintln!("could not move {} aside: {e}", from.display()),
                        }
                    }
                }
                fresh
            }
            Err(e) => {
                eprintln!(
                    "{} is not a report this benchmark reads ({e}); it will be replaced",
                    path.display()
                );
                fresh
            }
        }
    }

    /// Adds `run`, replacing an earlier result with the same name and seed.
    pub fn insert(&mut self, run: RunResult) {
        self.results
            .retain(|r| !(r.name == run.name && r.seed == run.seed));
        self.results.push(run);
    }

    /// Orders results as `order` lists the runs, fills in every ratio against the
    /// baseline of the same seed, and writes the JSON, markdown and plot into `out`.
    pub fn write(&mut self, out: &Path, order: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
        let rank = |name: &str| order.iter().position(|n| *n == name).unwrap_or(usize::MAX);
        self.results.sort_by_key(|r| (rank(&r.name), r.seed));
        let baselines: Vec<RunResult> = self
            .results
            .iter()
            .filter(|r| r.monolithic)
            .cloned()
            .collect();
        for r in &mut self.results {
            let base = baselines.iter().find(|b| b.seed == r.seed);
            r.ratio = base.map(|b| r.eval_loss / b.eval_loss);
            let ahead: Vec<Option<f64>> = match base {
                Some(b) if !r.monolithic => tokens_ahead(&r.curve, &b.curve),
                _ => vec![None; r.curve.len()],
            };
            for (p, ahead) in r.curve.iter_mut().zip(ahead) {
                p.ratio = base
                    .and_then(|b| b.eval_at(p.step))
                    .map(|q| p.eval_loss / q);
                p.tokens_ahead = ahead;
            }
        }
        std::fs::create_dir_all(out)?;
        std::fs::write(
            out.join("compression.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(out.join("compression.md"), self.markdown())?;
        if let Err(e) = crate::plot::loss_ratios(self, &out.join("compression.png")) {
            eprintln!("no plot written: {e}");
        }
        Ok(())
    }

    /// The report as markdown tables.
    pub fn markdown(&self) -> String {
        let fp32 = self.fp32_boundary_bytes_per_token;
        let mut s = format!(
            "# Compression benchmark\n\nFindings and their history, kept by hand: [`compression-history.md`](compression-history.md).\n\n{} — {} training tokens per run, held-out loss on {} tokens \
             at {} points along each run, CPU ({} threads).\nProduced by `{}` \
             (`scripts/bench-compression{}`).\n\n\
             Compression counts every byte on the wire per token per boundary, headers and scales \
             included, against the {fp32} bytes of the fp32 residual stream.\n\n\
             | run | seed | compression (activations) | compression (gradients) | bytes/token (act / grad) \
             | eval loss | vs baseline | ratio at half → end (max in last half) | tokens/s | parameters |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            self.model,
            self.tokens,
            self.eval_tokens,
            self.results.first().map_or(0, |r| r.curve.len()),
            self.torch_threads,
            self.command,
            match self.tokens {
                crate::SHORT_TOKENS => String::new(),
                crate::LONG_TOKENS => " --long".into(),
                tokens => format!(" --tokens {tokens}"),
            },
        );
        for r in &self.results {
            let (act, grad, bytes) =
                match (r.activation_bytes_per_token, r.gradient_bytes_per_token) {
                    (Some(a), Some(g)) => (
                        format!("{:.1}x", fp32 / a),
                        format!("{:.1}x", fp32 / g),
                        format!("{a:.2} / {g:.2}"),
                    ),
                    _ => ("1x".into(), "1x".into(), format!("{fp32:.0} / {fp32:.0}")),
                };
            let vs = match r.ratio {
                Some(x) if !r.monolithic => format!("{:+.1}%", (x - 1.0) * 100.0),
                _ => "—".into(),
            };
            let trend = match r.last_half() {
                Some((mid, end, max)) if !r.monolithic => {
                    format!("{mid:.3} → {end:.3} ({max:.3})")
                }
                _ => "—".into(),
            };
            let mark = if self.leaked(r) { " †" } else { "" };
            s += &format!(
                "| {}{mark} | {} | {act} | {grad} | {bytes} | {:.4} | {vs} | {trend} | {:.0} | {} |\n",
                r.name, r.seed, r.eval_loss, r.tokens_per_s, r.parameters
            );
        }
        if self.results.iter().any(|r| self.leaked(r)) {
            s += "\n† Not a valid measurement, kept for the record: one quantization scale covered \
                  several tokens (`codec_row` longer than the boundary's width), so each token's \
                  decoded activation depended on the tokens after it and the next stage could \
                  read part of what it was trained to predict. The spec now refuses such \
                  boundaries; valid runs use one scale per token.\n";
        }
        // The curves: held-out loss ratio to the baseline at each point.
        s += &curve_table(
            "Held-out loss ÷ baseline (same seed) along each run, by training tokens",
            self.results.iter().filter(|r| !r.monolithic),
            |p| p.ratio.map(|x| format!("{x:.3}")),
        );
        // Where the codec loses gradient signal, for the runs that recorded it.
        s += &curve_table(
            "Gradient values sent nonzero and received as zero (share, mean over the steps \
             before each point), by training tokens",
            self.results
                .iter()
                .filter(|r| r.curve.iter().any(|p| p.gradients_zeroed.is_some())),
            |p| p.gradients_zeroed.map(|z| format!("{:.1}%", z * 100.0)),
        );
        s += &curve_table(
            "Tokens ahead of the baseline (same seed), in millions: the run's held-out loss \
             here is the baseline's that many tokens later (negative: earlier). A run that keeps \
             a constant lead has a rising loss ratio, because the baseline's curve flattens and \
             the same lead is worth less loss; a lead that shrinks is a boundary whose cost grows. \
             — where the curve ahead was already there at its first point",
            self.results.iter().filter(|r| !r.monolithic),
            |p| p.tokens_ahead.map(|t| format!("{:+.2}", t / 1e6)),
        );
        s += &self.noise_floor();
        s += &self.rises();
        s += &self.across_seeds();
        s += &self.against_control();
        s += "\n![held-out loss ratio against tokens](compression.png)\n\n\
              Staged runs carry the boundary encoder and decoder (and, with a token embedding, \
              one more embedding table per later stage): a few percent more parameters. \
              tokens/s is wall-clock training throughput while the run was going; it is only \
              comparable between runs made on an otherwise idle machine.\n";
        s
    }

    /// Every valid run that is not a baseline (the † ones left out), grouped by
    /// configuration, each group's seeds in report order; the groups in the order of
    /// their first run.
    pub fn configurations(&self) -> Vec<Vec<&RunResult>> {
        let mut groups: Vec<Vec<&RunResult>> = vec![];
        for r in self
            .results
            .iter()
            .filter(|r| !r.monolithic && !self.leaked(r))
        {
            match groups.iter_mut().find(|g| g[0].name == r.name) {
                Some(g) => g.push(r),
                None => groups.push(vec![r]),
            }
        }
        groups
    }

    /// Whether `r`'s boundary shared a quantization scale between tokens.
    pub fn leaked(&self, r: &RunResult) -> bool {
        r.boundary
            .as_ref()
            .is_some_and(|b| b.scales_span_tokens(self.d_model))
    }

    /// Each run's rise over the last half of its ratio curve (the least-squares line
    /// through the points from the middle on, from its first to its last point), against
    /// its own seed's baseline and against the mean of every seed's baseline. The second
    /// takes one baseline's luck out of the figure; the baselines' own rows against the
    /// mean show how far a run rises or falls by chance.
    fn rises(&self) -> String {
        let baselines: Vec<&RunResult> = self.results.iter().filter(|r| r.monolithic).collect();
        if baselines.is_empty() {
            return String::new();
        }
        let mean_at = |step: u64| {
            let losses: Vec<f64> = baselines.iter().filter_map(|b| b.eval_at(step)).collect();
            (losses.len() == baselines.len())
                .then(|| losses.iter().sum::<f64>() / losses.len() as f64)
        };
        let mut s = format!(
            "\nRise of the loss ratio over the last half (least squares through the points from \
             the middle on, in points of ratio; positive: the run falls behind as it goes), \
             against the same seed's baseline and against {}:\n\n\
             | run | seed | rise (same seed) | rise (mean baseline) | end (mean baseline) \
             | change of tokens ahead over the last half |\n\
             |---|---:|---:|---:|---:|---:|\n",
            match baselines.len() {
                1 => "the one baseline".to_string(),
                n => format!("the mean of the {n} baselines"),
            }
        );
        for r in &self.results {
            let mean: Vec<f64> = r
                .curve
                .iter()
                .filter_map(|p| mean_at(p.step).map(|m| p.eval_loss / m))
                .collect();
            let fmt = |x: Option<f64>| x.map_or("—".into(), |x| format!("{:+.2}", x * 100.0));
            let lead = r
                .lead_change()
                .map_or("—".into(), |x| format!("{:+.2}M", x / 1e6));
            s += &format!(
                "| {} | {} | {} | {} | {} | {lead} |\n",
                r.name,
                r.seed,
                if r.monolithic {
                    "—".into()
                } else {
                    fmt(r.rise())
                },
                fmt(last_half_rise(&mean)),
                mean.last().map_or("—".into(), |x| format!("{x:.3}")),
            );
        }
        s
    }

    /// Every configuration measured on two seeds or more (the † ones left out): the mean
    /// and spread of its end ratio, its rise and its lead's change over the last half, so
    /// that two configurations, or one and a control, compare by more than one seed's luck.
    fn across_seeds(&self) -> String {
        let mut rows = String::new();
        for runs in self.configurations() {
            if runs.len() < 2 {
                continue;
            }
            let name = &runs[0].name;
            let stat = |f: fn(&RunResult) -> Option<f64>, scale, decimals, signed| {
                spread_cell(runs.iter().map(|r| f(r)), scale, decimals, signed, "")
            };
            let seeds: Vec<String> = runs.iter().map(|r| r.seed.to_string()).collect();
            rows += &format!(
                "| {name} | {} | {} | {} | {} |\n",
                seeds.join(", "),
                stat(|r| r.ratio, 1.0, 3, false),
                stat(RunResult::rise, 100.0, 2, true),
                stat(RunResult::lead_change, 1e-6, 2, true),
            );
        }
        if rows.is_empty() {
            return String::new();
        }
        format!(
            "\nAcross seeds: mean ± standard deviation over the seeds (standard error of the \
             mean in brackets) of the end ratio, the rise over the last half (same seed, points) \
             and the change of tokens ahead over the last half (millions):\n\n\
             | run | seeds | end ratio | rise | change of tokens ahead |\n\
             |---|---|---:|---:|---:|\n{rows}"
        )
    }

    /// Every configuration measured on two or more of the head-start control's seeds, each
    /// seed paired with the control's: how much more its ratio rises over the last half
    /// than a constant lead's does, and how much more its lead in tokens changes. Pairing
    /// takes each seed's baseline out of the comparison, since the baseline's curve is what
    /// both are divided by. A boundary whose cost does not grow rises no more than the
    /// control and loses no lead against it.
    fn against_control(&self) -> String {
        let groups = self.configurations();
        let Some(control) = groups.iter().find(|g| g[0].is_control()) else {
            return String::new();
        };
        let mut rows = String::new();
        for runs in groups.iter().filter(|g| !g[0].is_control()) {
            // (rise, lead change) of the run minus the control's, per seed both measured.
            let pairs: Vec<(u64, Option<f64>, Option<f64>)> = runs
                .iter()
                .filter_map(|r| {
                    let c = control.iter().find(|c| c.seed == r.seed)?;
                    let minus = |f: fn(&RunResult) -> Option<f64>| Some(f(r)? - f(c)?);
                    Some((
                        r.seed,
                        minus(RunResult::rise),
                        minus(RunResult::lead_change),
                    ))
                })
                .collect();
            if pairs.len() < 2 {
                continue;
            }
            let more = pairs
                .iter()
                .filter(|p| p.1.is_some_and(|d| d > 0.0))
                .count();
            let seeds: Vec<String> = pairs.iter().map(|p| p.0.to_string()).collect();
            rows += &format!(
                "| {} | {} | {} | {} | {more} of {} |\n",
                runs[0].name,
                seeds.join(", "),
                spread_cell(pairs.iter().map(|p| p.1), 100.0, 2, true, ""),
                spread_cell(pairs.iter().map(|p| p.2), 1e-6, 2, true, "M"),
                pairs.len(),
            );
        }
        if rows.is_empty() {
            return String::new();
        }
        format!(
            "\nAgainst the head-start control ({}), seed by seed: the run's rise over the last \
             half minus the control's with the same seed (points), and its change of tokens \
             ahead minus the control's (millions); mean ± standard deviation (standard error) \
             over the seeds both have. Negative rise and positive lead: the run holds its ground \
             better than a constant lead.\n\n\
             | run | seeds | rise − control's | change of tokens ahead − control's \
             | seeds rising more than the control |\n\
             |---|---|---:|---:|---:|\n{rows}",
            control[0].name
        )
    }

    /// How far two runs of one configuration drift apart along the budget: each later
    /// seed's baseline ÷ the first seed's, at every point. A staged run's ratio moving by
    /// this much over the last half is not yet a boundary whose cost grows.
    fn noise_floor(&self) -> String {
        let baselines: Vec<&RunResult> = self.results.iter().filter(|r| r.monolithic).collect();
        let Some((first, later)) = baselines.split_first() else {
            return String::new();
        };
        let drift: Vec<RunResult> = later
            .iter()
            .map(|b| RunResult {
                name: format!("{} seed {} ÷ seed {}", b.name, b.seed, first.seed),
                curve: b
                    .curve
                    .iter()
                    .zip(tokens_ahead(&b.curve, &first.curve))
                    .map(|(p, ahead)| Point {
                        ratio: first.eval_at(p.step).map(|q| p.eval_loss / q),
                        tokens_ahead: ahead,
                        ..p.clone()
                    })
                    .collect(),
                ..(*b).clone()
            })
            .collect();
        curve_table(
            "The noise floor: one configuration against itself, the baseline of one seed ÷ \
             another's, by training tokens",
            drift.iter(),
            |p| p.ratio.map(|x| format!("{x:.3}")),
        ) + &curve_table("The same, in tokens ahead (millions)", drift.iter(), |p| {
            p.tokens_ahead.map(|t| format!("{:+.2}", t / 1e6))
        })
    }
}

/// At each point of `run`, how many training tokens it is ahead of `base` at the same step:
/// where the run's held-out loss is below the baseline's, how much earlier the run's
/// curve (straight between points) first came down to the baseline's loss there; where
/// it is above, how much earlier the baseline's curve came down to the run's (a negative
/// lead). `None` where the curve that is ahead got there before its first point.
///
/// The loss ratio alone confuses a boundary whose cost grows with one that keeps a
/// constant lead: as both curves flatten, the same lead in tokens is worth less loss, so
/// the ratio of a run that stays ahead rises towards 1 and that of one that stays behind
/// falls towards it.
pub fn tokens_ahead(run: &[Point], base: &[Point]) -> Vec<Option<f64>> {
    run.iter()
        .map(|r| {
            let b = base.iter().find(|b| b.step == r.step)?;
            if r.eval_loss <= b.eval_loss {
                reached(run, b.eval_loss).map(|t| r.tokens as f64 - t)
            } else {
                reached(base, r.eval_loss).map(|t| t - r.tokens as f64)
            }
        })
        .collect()
}

/// The tokens at which `curve`, straight between its points, first comes down to `loss`.
fn reached(curve: &[Point], loss: f64) -> Option<f64> {
    curve.windows(2).find_map(|w| {
        let (a, b) = (&w[0], &w[1]);
        (a.eval_loss >= loss && loss >= b.eval_loss).then(|| {
            let span = a.eval_loss - b.eval_loss;
            let along = if span > 0.0 {
                (a.eval_loss - loss) / span
            } else {
                0.0
            };
            a.tokens as f64 + along * (b.tokens - a.tokens) as f64
        })
    })
}

/// The mean, sample standard deviation and standard error of the mean of a few figures.
struct Spread {
    mean: f64,
    sd: f64,
    se: f64,
}

impl Spread {
    /// `None` for fewer than two figures, which have no spread.
    fn of(xs: &[f64]) -> Option<Spread> {
        if xs.len() < 2 {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        Some(Spread {
            mean,
            sd,
            se: sd / n.sqrt(),
        })
    }
}

/// A table cell for one figure over several seeds, each `scale`d: "mean ± sd (se)" to
/// `decimals`, the mean with its sign if `signed` and followed by `unit`; "—" when a seed
/// lacks the figure or there are fewer than two.
fn spread_cell(
    xs: impl Iterator<Item = Option<f64>>,
    scale: f64,
    decimals: usize,
    signed: bool,
    unit: &str,
) -> String {
    let xs: Option<Vec<f64>> = xs.map(|x| x.map(|x| x * scale)).collect();
    xs.and_then(|xs| Spread::of(&xs)).map_or("—".into(), |m| {
        let mean = if signed {
            format!("{:+.decimals$}", m.mean)
        } else {
            format!("{:.decimals$}", m.mean)
        };
        format!("{mean}{unit} ± {:.decimals$} ({:.decimals$})", m.sd, m.se)
    })
}

/// The points from the middle of a curve on (the middle one included); empty for none.
fn last_half<T>(ratios: &[T]) -> &[T] {
    &ratios[ratios.len().saturating_sub(1) / 2..]
}

/// The change along the least-squares line through `ratios` from the middle point on,
/// from the first of those points to the last; `None` with fewer than two such points.
fn last_half_rise(ratios: &[f64]) -> Option<f64> {
    fitted_change(last_half(ratios))
}

/// The change along the least-squares line through evenly spaced `tail`, from its first
/// point to its last; `None` with fewer than two points.
fn fitted_change(tail: &[f64]) -> Option<f64> {
    let n = tail.len() as f64;
    if tail.len() < 2 {
        return None;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = tail.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in tail.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    Some(sxy / sxx * (n - 1.0))
}

/// A markdown table of one figure per point along each of `runs` (a column per point,
/// headed by the training tokens there), under `title`; empty when there are no runs.
fn curve_table<'a>(
    title: &str,
    runs: impl Iterator<Item = &'a RunResult>,
    cell: impl Fn(&Point) -> Option<String>,
) -> String {
    let runs: Vec<&RunResult> = runs.collect();
    let Some(points) = runs.iter().map(|r| &r.curve).max_by_key(|c| c.len()) else {
        return String::new();
    };
    let mut s = format!("\n{title}:\n\n| run | seed |");
    for p in points {
        s += &format!(" {:.2}M |", p.tokens as f64 / 1e6);
    }
    s += "\n|---|---:|";
    s += &"---:|".repeat(points.len());
    s += "\n";
    for r in runs {
        s += &format!("| {} | {} |", r.name, r.seed);
        for p in &r.curve {
            s += &format!(" {} |", cell(p).unwrap_or_else(|| "—".into()));
        }
        s += "\n";
    }
    s
}
