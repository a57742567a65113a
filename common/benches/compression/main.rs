//! Compression benchmark: the same model trained monolithic and uncompressed,
//! then staged with boundary compression at several ratios, on the same data,
//! seed and token budget. Writes `bench/results/compression.json`, a markdown
//! table and a plot of each run's loss ratio against the baseline as training
//! goes on (`compression.png`).
//!
//! ```text
//! cargo bench --profile dev -p sliver-common --bench compression -- [--tokens N | --long] [--seed S]
//!     [--points P] [--out DIR] [--data PATH] [--only NAME,...] [--list] [--rewrite]
//! ```
//!
//! Each run records held-out loss at `--points` evenly spaced steps (10 by
//! default), so the curve shows whether a boundary's cost grows as the model
//! learns. Results accumulate: a run (name and seed) replaces its earlier
//! result in the file and every other result with the same model and budget is
//! kept, so candidates can be measured one invocation at a time and a second
//! seed can confirm the first. `--rewrite` trains nothing: it writes the
//! markdown and the plot again from the budget's `compression.json`.
//!
//! `compression_ratio` = fp32 boundary bytes per token ÷ wire bytes per token,
//! where wire bytes are the serialized messages actually produced (headers and
//! scales included), counted over the whole run, separately for activations
//! and gradients.

#![allow(clippy::print_stdout)]

mod plot;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use sliver_common::data::{Corpus, Split};
use sliver_common::spec::BoundarySpec;
use sliver_common::{CodecKind, RunSpec, Trainer};
use tch::Device;

use report::{Point, Report, RunResult};

/// The default token budget: early in training, a few minutes per run.
const SHORT_TOKENS: u64 = 524_288;
/// `--long`: ten times the default, where a boundary's growing cost shows.
const LONG_TOKENS: u64 = 5_242_880;

/// One configuration to train.
struct Run {
    name: &'static str,
    monolithic: bool,
    boundary: BoundarySpec,
    /// Clip the stages' gradients by their joint norm, as the monolithic model does
    /// ([`Trainer::clip_jointly`]), rather than each by its own as miners do.
    joint_clip: bool,
    /// Steps trained before the measured run begins (a monolithic run only): the run
    /// trains this many more steps, its schedule spanning them all, and its points are
    /// taken this many steps later than the baseline's and compared with the baseline's
    /// at the same point. A control: the uncompressed model with a constant head start.
    head_start: u64,
}

/// A staged boundary: a `bottleneck`-wide learned projection whose output crosses as
/// `codec` (gradients as `grad_codec`) with one scale per token, for the codecs that have
/// scales (`codec_row = 0`: an activation scale shared by tokens would let the next stage
/// read later tokens, and the spec refuses it).
fn compressed(
    bottleneck: usize,
    (codec, grad_codec): (CodecKind, CodecKind),
    token_embedding: bool,
) -> BoundarySpec {
    BoundarySpec {
        bottleneck,
        codec,
        grad_codec: (grad_codec != codec).then_some(grad_codec),
        codec_row: 0,
        grad_codec_row: None,
        token_embedding,
        context_only: false,
    }
}

fn runs() -> Vec<Run> {
    use CodecKind::{Fp32, Int2, Int2Log, Int4, Int4Log, Int4Unit, Int8};
    let staged = |name, k, codecs, token_embedding| Run {
        name,
        monolithic: false,
        boundary: compressed(k, codecs, token_embedding),
        joint_clip: false,
        head_start: 0,
    };
    let jointly = |run: Run| Run {
        joint_clip: true,
        ..run
    };
    // Gradients sharing a scale among `row` values: across tokens when `row` exceeds the
    // width, which gradients may (they never reach a prediction).
    let grad_rows = |row, run: Run| Run {
        boundary: BoundarySpec {
            grad_codec_row: Some(row),
            ..run.boundary
        },
        ..run
    };
    // Only what stage 0's layers computed crosses: the token embedding is subtracted
    // before the encoder, and the next stage adds its own.
    let context_only = |run: Run| Run {
        boundary: BoundarySpec {
            context_only: true,
            ..run.boundary
        },
        ..run
    };
    vec![
        Run {
            name: "monolithic-fp32",
            monolithic: true,
            boundary: BoundarySpec::default(),
            joint_clip: false,
            head_start: 0,
        },
        // The baseline itself, 256 steps (a tenth of the long budget) ahead: what a constant
        // lead, and nothing else, does to the loss ratio as training goes on.
        Run {
            name: "monolithic-fp32-256-steps-ahead",
            monolithic: true,
            boundary: BoundarySpec::default(),
            joint_clip: false,
            head_start: 256,
        },
        // The staged model with nothing compressed: the monolithic model but for each
        // stage clipping its own gradient norm (and, jointly clipped, not even that), then
        // with a token embedding per stage.
        staged("staged-fp32", 0, (Fp32, Fp32), false),
        jointly(staged("staged-fp32-joint-clip", 0, (Fp32, Fp32), false)),
        staged("staged-fp32-token-embedding", 0, (Fp32, Fp32), true),
        context_only(staged("staged-fp32-context-only", 0, (Fp32, Fp32), true)),
        // The bottleneck's layers at full width and the 7-wide bottleneck, both in fp32:
        // what the layers add, and what width costs without rounding.
        staged("staged-k256-fp32-token-embedding", 256, (Fp32, Fp32), true),
        staged("staged-k7-fp32-token-embedding", 7, (Fp32, Fp32), true),
        // One f32 scale per token costs 4 bytes, so at 128x (8 bytes a token) 4 bytes are
        // left for the values: 7 as int4 or 14 as int2 (7.5 bytes with the scale, 136x).
        staged("staged-k7-int4-token-embedding", 7, (Int4, Int4), true),
        // A one-byte scale leaves more of the budget for values: 7 codes in 4.5 bytes (227x),
        // 5 in 3.5 (292x, past 256x).
        staged(
            "staged-k7-int4log-token-embedding",
            7,
            (Int4Log, Int4Log),
            true,
        ),
        // The default, its stages clipped by their joint norm: what per-stage clipping
        // costs the compressed pipeline.
        jointly(staged(
            "staged-k7-int4log-token-embedding-joint-clip",
            7,
            (Int4Log, Int4Log),
            true,
        )),
        staged(
            "staged-k5-int4log-token-embedding",
            5,
            (Int4Log, Int4Log),
            true,
        ),
        staged("staged-k14-int2-token-embedding", 14, (Int2, Int2), true),
        // Four times the default's width at half its bits, each token's scale in one byte:
        // 26 values in 6.5 bytes and a scale byte (7.5 bytes, 136x); 11 in 3.75 (273x).
        staged(
            "staged-k26-int2log-token-embedding",
            26,
            (Int2Log, Int2Log),
            true,
        ),
        staged(
            "staged-k11-int2log-token-embedding",
            11,
            (Int2Log, Int2Log),
            true,
        ),
        // Past 256x both ways with 7 codes: activations scaled to unit RMS need no scale
        // (3.5 bytes, 292x); gradients share a one-byte scale among 3 tokens (3.83 bytes, 267x),
        // which cannot leak: gradients never reach a prediction.
        grad_rows(
            21,
            staged(
                "staged-k7-int4unit-token-embedding",
                7,
                (Int4Unit, Int4Log),
                true,
            ),
        ),
        // The same codes, twice as wide, at 128x: 14 values in 7 bytes (146x); gradients share
        // a one-byte scale between 2 tokens (7.5 bytes, 136x). Twice the default's bits.
        grad_rows(
            28,
            staged(
                "staged-k14-int4unit-token-embedding",
                14,
                (Int4Unit, Int4Log),
                true,
            ),
        ),
        context_only(staged("staged-k7-int4-context-only", 7, (Int4, Int4), true)),
        // Wider, under 128x: 28 values as int2 (11 bytes, 93x), 7 as int8 (11 bytes), 32 as
        // int8 (36 bytes, 28x).
        staged("staged-k28-int2-token-embedding", 28, (Int2, Int2), true),
        staged("staged-k7-int8-token-embedding", 7, (Int8, Int8), true),
        staged("staged-k32-int8", 32, (Int8, Int8), false),
    ]
}

struct Args {
    tokens: u64,
    seed: Option<u64>,
    points: u64,
    out: PathBuf,
    data: Option<String>,
    only: Option<Vec<String>>,
    rewrite: bool,
    eval_batches: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tokens: SHORT_TOKENS,
        seed: None,
        points: 10,
        out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/results")),
        data: std::env::var("SLIVER_TEXT_DIR").ok(),
        only: None,
        rewrite: false,
        eval_batches: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        let number = |flag: &str, v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match a.as_str() {
            "--tokens" => args.tokens = number("--tokens", value("--tokens")?)?,
            "--long" => args.tokens = LONG_TOKENS,
            "--seed" => args.seed = Some(number("--seed", value("--seed")?)?),
            "--points" => args.points = number("--points", value("--points")?)?.max(1),
            "--eval-batches" => {
                args.eval_batches = number("--eval-batches", value("--eval-batches")?)?
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--data" => args.data = Some(value("--data")?),
            "--only" => args.only = Some(value("--only")?.split(',').map(str::to_string).collect()),
            "--rewrite" => args.rewrite = true,
            "--list" => {
                for run in runs() {
                    println!("{}", run.name);
                }
                std::process::exit(0);
            }
            // cargo bench passes --bench to harness-less benchmarks.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(only) = &args.only {
        let known: Vec<_> = runs().iter().map(|r| r.name).collect();
        if let Some(bad) = only.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(format!(
                "--only: no run named {bad:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("compression benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let spec_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/bench-compression.toml"
    );
    let mut base = RunSpec::load(std::path::Path::new(spec_path))?;
    if let Some(seed) = args.seed {
        base.seed = seed;
    }

    let tokens_per_step = (base.optimizer.batch_size * base.model.seq_len) as u64;
    let steps = args.tokens.div_ceil(tokens_per_step);
    let model = format!(
        "llama d{} L{} H{}/{} ffn{} seq{} vocab{} (byte), {} stages",
        base.model.d_model,
        base.model.n_layers,
        base.model.n_heads,
        base.model.n_kv_heads,
        base.model.ffn_hidden,
        base.model.seq_len,
        base.model.vocab_size,
        base.stages.len()
    );
    eprintln!(
        "{model}; {steps} steps x {tokens_per_step} tokens; seed {}; torch threads {}",
        base.seed,
        tch::get_num_threads()
    );
    let json_path = args.out.join("compression.json");
    let mut report = Report::load_matching(
        &json_path,
        Report::new(
            steps * tokens_per_step,
            model,
            args.eval_batches * tokens_per_step,
            base.fp32_boundary_bytes_per_token() as f64,
        ),
    );
    report.d_model = base.model.d_model;
    let order: Vec<&str> = runs().iter().map(|r| r.name).collect();
    if args.rewrite {
        report.write(&args.out, &order)?;
        println!("{}", report.markdown());
        return Ok(());
    }
    let data = args.data.clone().ok_or(
        "no text corpus: set SLIVER_TEXT_DIR or pass --data (scripts/setup.sh fetches one)",
    )?;
    base.data.sources = vec![data];
    let corpus = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(Corpus::load(&base.data))?;
    corpus.check_seq_len(base.model.seq_len)?;

    // Held-out loss at `points` evenly spaced steps, the last one at the end.
    let eval_at: Vec<u64> = (1..=args.points)
        .map(|i| (steps * i / args.points).max(1))
        .collect();

    for run in runs() {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == run.name))
        {
            continue;
        }
        let mut spec = base.clone();
        spec.boundary = run.boundary.clone();
        spec.validate()?;
        // A run with a head start is measured against the baseline, not one itself.
        let baseline = run.monolithic && run.head_start == 0;
        let lead = run.head_start;
        let mut trainer = if run.monolithic {
            Trainer::monolithic(&spec, Device::Cpu, lead + steps)?
        } else {
            Trainer::pipeline(&spec, Device::Cpu, steps)?
        };
        trainer.clip_jointly(run.joint_clip);
        trainer.measure_gradient_wire(!run.monolithic);
        let params = trainer.parameter_count();
        let (mut act_bytes, mut grad_bytes, mut tokens) = (0u64, 0u64, 0u64);
        let (mut train_sum, mut train_n) = (0.0, 0u32);
        let (mut grad_error, mut grad_zeroed) = (0.0, 0.0);
        let (mut clipped, mut grad_norm) = (0u32, 0.0);
        let mut curve = vec![];
        let started = Instant::now();
        let mut train_secs = 0.0;
        for step in 0..lead + steps {
            let batch = trainer.batch(&corpus, Split::Train, step)?;
            let t0 = Instant::now();
            let r = trainer.step(&[batch])?;
            train_secs += t0.elapsed().as_secs_f64();
            act_bytes += r.activation_bytes;
            grad_bytes += r.gradient_bytes;
            tokens += r.tokens;
            train_sum += r.loss;
            train_n += 1;
            if let Some(wire) = r.gradient_wire {
                grad_error += wire.relative_error;
                grad_zeroed += wire.zeroed;
            }
            clipped += u32::from(r.clipped);
            grad_norm += r.grad_norms.iter().map(|n| n * n).sum::<f64>().sqrt();
            // Points at the baseline's steps, `lead` steps later; the head start's own
            // steps are not a point, nor in the first point's means.
            if lead > 0 && step + 1 == lead {
                (train_sum, train_n, grad_error, grad_zeroed) = (0.0, 0, 0.0, 0.0);
                (clipped, grad_norm) = (0, 0.0);
            }
            let at = (step + 1).checked_sub(lead).filter(|s| eval_at.contains(s));
            if let Some(at) = at {
                let eval_loss = trainer.eval(&corpus, args.eval_batches)?;
                let n = f64::from(train_n);
                let wire = (!run.monolithic).then_some((grad_error / n, grad_zeroed / n));
                let clipped_share = f64::from(clipped) / n;
                eprintln!(
                    "  {:<34} step {:>5}/{steps}  train {:.4}  eval {eval_loss:.4}  {:.0} tok/s  grad norm {:.3}, {:.0}% of steps clipped{}",
                    run.name,
                    at,
                    train_sum / n,
                    tokens as f64 / train_secs,
                    grad_norm / n,
                    clipped_share * 100.0,
                    wire.map_or(String::new(), |(e, z)| format!(
                        "  gradient error {e:.4}, zeroed {:.1}%",
                        z * 100.0
                    ))
                );
                curve.push(Point {
                    step: at,
                    tokens: at * tokens_per_step,
                    train_loss: train_sum / n,
                    eval_loss,
                    ratio: None,
                    tokens_ahead: None,
                    gradient_error: wire.map(|w| w.0),
                    gradients_zeroed: wire.map(|w| w.1),
                    clipped: Some(clipped_share),
                    grad_norm: Some(grad_norm / n),
                });
                (train_sum, train_n, grad_error, grad_zeroed) = (0.0, 0, 0.0, 0.0);
                (clipped, grad_norm) = (0, 0.0);
            }
        }
        let eval_loss = curve.last().map_or(f64::NAN, |p| p.eval_loss);
        let tokens_per_s = tokens as f64 / train_secs;
        eprintln!(
            "  {:<34} eval loss {eval_loss:.4}, {tokens_per_s:.0} tok/s, {:.0}s",
            run.name,
            started.elapsed().as_secs_f64()
        );
        let boundaries = (spec.stages.len() - 1).max(1) as f64;
        let per_token = |bytes: u64| bytes as f64 / (tokens as f64 * boundaries);
        report.insert(RunResult {
            name: run.name.to_string(),
            seed: spec.seed,
            monolithic: baseline,
            eval_loss,
            tokens_per_s,
            parameters: params,
            activation_bytes_per_token: (!run.monolithic).then(|| per_token(act_bytes)),
            gradient_bytes_per_token: (!run.monolithic).then(|| per_token(grad_bytes)),
            boundary: (!run.monolithic).then(|| spec.boundary.clone()),
            curve,
            ratio: None,
        });
        // Written after every run, so an interrupted sweep keeps what it measured.
        report.write(&args.out, &order)?;
    }
    println!("{}", report.markdown());
    eprintln!(
        "wrote {} and compression.md, compression.png beside it",
        json_path.display()
    );
    Ok(())
}
