//! Compression benchmark: the same model trained monolithic and uncompressed,
//! then staged with boundary compression at several ratios, on the same data,
//! seed and token budget. Writes `bench/results/compression.json` and a
//! markdown table beside it.
//!
//! ```text
//! cargo bench -p sliver-common --bench compression -- [--tokens N] [--out DIR] [--data PATH] [--only NAME,...]
//! ```
//!
//! `compression_ratio` = fp32 boundary bytes per token ÷ wire bytes per token,
//! where wire bytes are the serialized activation messages actually produced
//! (headers and scales included), counted over the whole run.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use sliver_common::data::{Corpus, Split};
use sliver_common::spec::BoundarySpec;
use sliver_common::{CodecKind, RunSpec, Trainer};
use tch::Device;

/// One configuration to train.
struct Run {
    name: &'static str,
    monolithic: bool,
    boundary: BoundarySpec,
}

fn compressed(bottleneck: usize, token_embedding: bool) -> BoundarySpec {
    BoundarySpec {
        bottleneck,
        codec: CodecKind::Int8,
        grad_codec: None,
        // One f32 scale per 1024 values keeps the scale overhead under 0.5%.
        codec_row: 1024,
        token_embedding,
    }
}

fn runs() -> Vec<Run> {
    vec![
        Run {
            name: "monolithic-fp32",
            monolithic: true,
            boundary: BoundarySpec::default(),
        },
        Run {
            name: "staged-k32-int8",
            monolithic: false,
            boundary: compressed(32, false),
        },
        Run {
            name: "staged-k7-int8",
            monolithic: false,
            boundary: compressed(7, false),
        },
        Run {
            name: "staged-k7-int8-token-embedding",
            monolithic: false,
            boundary: compressed(7, true),
        },
        Run {
            name: "staged-k4-int8",
            monolithic: false,
            boundary: compressed(4, false),
        },
    ]
}

struct Args {
    tokens: u64,
    out: PathBuf,
    data: Option<String>,
    only: Option<Vec<String>>,
    eval_batches: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tokens: 524_288,
        out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/results")),
        data: std::env::var("SLIVER_TEXT_DIR").ok(),
        only: None,
        eval_batches: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--tokens" => {
                args.tokens = value("--tokens")?
                    .parse()
                    .map_err(|e| format!("--tokens: {e}"))?
            }
            "--eval-batches" => {
                args.eval_batches = value("--eval-batches")?
                    .parse()
                    .map_err(|e| format!("--eval-batches: {e}"))?
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--data" => args.data = Some(value("--data")?),
            "--only" => args.only = Some(value("--only")?.split(',').map(str::to_string).collect()),
            // cargo bench passes --bench to harness-less benchmarks.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
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
    let data = args.data.clone().ok_or(
        "no text corpus: set SLIVER_TEXT_DIR or pass --data (scripts/setup.sh fetches one)",
    )?;
    base.data.sources = vec![data];
    let corpus = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(Corpus::load(&base.data))?;
    corpus.check_seq_len(base.model.seq_len)?;

    let tokens_per_step = (base.optimizer.batch_size * base.model.seq_len) as u64;
    let steps = args.tokens.div_ceil(tokens_per_step);
    let fp32_per_token = base.fp32_boundary_bytes_per_token() as f64;
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
        "{model}; {steps} steps x {tokens_per_step} tokens; torch threads {}",
        tch::get_num_threads()
    );

    let mut baseline = None;
    let mut results = vec![];
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
        let mut trainer = if run.monolithic {
            Trainer::monolithic(&spec, Device::Cpu, steps)?
        } else {
            Trainer::pipeline(&spec, Device::Cpu, steps)?
        };
        let params = trainer.parameter_count();
        let (mut act_bytes, mut grad_bytes, mut tokens) = (0u64, 0u64, 0u64);
        let mut curve = vec![];
        let started = Instant::now();
        let mut train_secs = 0.0;
        for step in 0..steps {
            let batch = trainer.batch(&corpus, Split::Train, step)?;
            let t0 = Instant::now();
            let r = trainer.step(&[batch])?;
            train_secs += t0.elapsed().as_secs_f64();
            act_bytes += r.activation_bytes;
            grad_bytes += r.gradient_bytes;
            tokens += r.tokens;
            if step % 25 == 0 || step + 1 == steps {
                eprintln!(
                    "  {:<36} step {:>5}/{steps}  loss {:.4}  {:.0} tok/s",
                    run.name,
                    step + 1,
                    r.loss,
                    tokens as f64 / train_secs
                );
                curve.push(json!({"step": step + 1, "tokens": tokens, "train_loss": r.loss}));
            }
        }
        let eval_loss = trainer.eval(&corpus, args.eval_batches)?;
        let tokens_per_s = tokens as f64 / train_secs;
        eprintln!(
            "  {:<36} eval loss {eval_loss:.4}, {tokens_per_s:.0} tok/s, {:.0}s",
            run.name,
            started.elapsed().as_secs_f64()
        );
        if run.monolithic {
            baseline = Some(json!({
                "name": run.name,
                "eval_loss": eval_loss,
                "tokens_per_s": tokens_per_s,
                "parameters": params,
                "curve": curve,
            }));
            continue;
        }
        let boundaries = (spec.stages.len() - 1) as f64;
        let act_per_token = act_bytes as f64 / (tokens as f64 * boundaries);
        let grad_per_token = grad_bytes as f64 / (tokens as f64 * boundaries);
        results.push(json!({
            "name": run.name,
            "compression_ratio": fp32_per_token / act_per_token,
            "gradient_compression_ratio": fp32_per_token / grad_per_token,
            "eval_loss": eval_loss,
            "tokens_per_s": tokens_per_s,
            "wire_bytes_per_token": act_per_token,
            "bottleneck": spec.boundary.bottleneck,
            "codec": spec.boundary.codec.to_string(),
            "codec_row": spec.boundary.codec_row,
            "token_embedding": spec.boundary.token_embedding,
            "parameters": params,
            "curve": curve,
        }));
    }

    let report = json!({
        "tokens": steps * tokens_per_step,
        "model": model,
        "eval_tokens": args.eval_batches * tokens_per_step,
        "fp32_boundary_bytes_per_token": fp32_per_token,
        "device": "cpu",
        "torch_threads": tch::get_num_threads(),
        "command": "cargo bench -p sliver-common --bench compression",
        "baseline": baseline,
        "runs": results,
    });
    std::fs::create_dir_all(&args.out)?;
    let json_path = args.out.join("compression.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    let md_path = args.out.join("compression.md");
    std::fs::write(&md_path, markdown(&report))?;
    println!("{}", markdown(&report));
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

fn markdown(report: &serde_json::Value) -> String {
    let mut s = format!(
        "# Compression benchmark\n\n{} — {} training tokens per run, eval on {} held-out tokens, CPU ({} threads).\n\
         Produced by `{}`.\n\n\
         | run | compression (activations) | compression (gradients) | eval loss | vs baseline | tokens/s | parameters |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        report["model"].as_str().unwrap_or_default(),
        report["tokens"],
        report["eval_tokens"],
        report["torch_threads"],
        report["command"].as_str().unwrap_or_default(),
    );
    let base_loss = report["baseline"]["eval_loss"].as_f64();
    if let Some(b) = report["baseline"].as_object() {
        s += &format!(
            "| {} | 1x | 1x | {:.4} | — | {:.0} | {} |\n",
            b["name"].as_str().unwrap_or_default(),
            b["eval_loss"].as_f64().unwrap_or(f64::NAN),
            b["tokens_per_s"].as_f64().unwrap_or(f64::NAN),
            b["parameters"]
        );
    }
    for r in report["runs"].as_array().into_iter().flatten() {
        let loss = r["eval_loss"].as_f64().unwrap_or(f64::NAN);
        let vs = base_loss
            .map(|b| format!("{:+.1}%", (loss / b - 1.0) * 100.0))
            .unwrap_or_default();
        s += &format!(
            "| {} | {:.1}x | {:.1}x | {:.4} | {} | {:.0} | {} |\n",
            r["name"].as_str().unwrap_or_default(),
            r["compression_ratio"].as_f64().unwrap_or(f64::NAN),
            r["gradient_compression_ratio"].as_f64().unwrap_or(f64::NAN),
            loss,
            vs,
            r["tokens_per_s"].as_f64().unwrap_or(f64::NAN),
            r["parameters"],
        );
    }
    s += "\nStaged runs carry the boundary encoder and decoder (a few percent more parameters). \
          tokens/s is wall-clock training throughput on this machine while the run was going; \
          it is only comparable between runs made on an otherwise idle machine.\n";
    s
}
