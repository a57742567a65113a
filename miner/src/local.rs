//! `btminer local`: every stage of a run spec trained in this process.
//!
//! The stages exchange activations and gradients as serialized wire
//! messages, exactly as miners do through storage, so this run exercises
//! the model, the codecs and the data path a miner uses, on one machine.
//! Loss is printed as it falls; held-out loss every `--eval-every` steps;
//! checkpoints go to `--out` and a second run resumes from them.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use sliver_common::data::{Corpus, Split};
use sliver_common::{RunSpec, Trainer};
use tracing::{info, warn};

use crate::checkpoint;
use crate::cli::LocalArgs;

/// Runs `btminer local`.
///
/// # Errors
/// Bad spec, unreadable data, a failed step or an unwritable `--out`.
pub fn run(args: &LocalArgs) -> Result<()> {
    let mut spec = RunSpec::load(&args.spec)
        .with_context(|| format!("loading run spec {}", args.spec.display()))?;
    if let Some(data) = &args.data {
        spec.data.sources = vec![data.clone()];
    }
    let device = args.device.0;
    if args.threads > 0 {
        tch::set_num_threads(args.threads as i32);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let corpus = runtime
        .block_on(Corpus::load(&spec.data))
        .context("loading the training text")?;
    corpus
        .check_seq_len(spec.model.seq_len)
        .context("the corpus is too small for this model")?;
    if corpus.vocab_size() > spec.model.vocab_size {
        anyhow::bail!(
            "the {:?} tokenizer has {} tokens but model.vocab_size is {}",
            corpus.tokenizer().kind(),
            corpus.vocab_size(),
            spec.model.vocab_size
        );
    }

    // Ctrl-C / SIGTERM: finish the current step, save, stop.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            shutdown_signal().await;
            stop.store(true, Ordering::SeqCst);
        });
    }

    let mut trainer = Trainer::pipeline(&spec, device, args.steps).context("building the model")?;
    info!(
        spec = %args.spec.display(),
        stages = spec.stages.len(),
        parameters = trainer.parameter_count(),
        device = ?device,
        train_tokens = corpus.tokens(Split::Train),
        eval_tokens = corpus.tokens(Split::Eval),
        "local run"
    );
    if args.fresh {
        info!(out = %args.out.display(), "--fresh: ignoring any checkpoint");
    } else if let Some(step) = checkpoint::load(&args.out, &spec, &mut trainer)? {
        info!(step, out = %args.out.display(), "resumed from checkpoint");
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let log_path = args.out.join("loss.csv");
    let new_log = !log_path.exists() || trainer.steps_done() == 0;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(!new_log)
        .write(true)
        .truncate(new_log)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    if new_log {
        writeln!(
            log,
            "step,tokens,train_loss,eval_loss,lr,activation_bytes,gradient_bytes"
        )?;
    }

    let fp32_per_token = spec.fp32_boundary_bytes_per_token() as f64;
    let boundaries = spec.stages.len().saturating_sub(1).max(1) as f64;
    let started = Instant::now();
    let first = trainer.steps_done();
    let mut tokens_done = 0u64;
    for step in first..args.steps {
        let micro: Vec<_> = (0..spec.optimizer.accumulate as u64)
            .map(|m| {
                trainer.batch(
                    &corpus,
                    Split::Train,
                    step * spec.optimizer.accumulate as u64 + m,
                )
            })
            .collect::<Result<_, _>>()?;
        let r = trainer
            .step(&micro)
            .with_context(|| format!("training step {step}"))?;
        tokens_done += r.tokens;
        let done = step + 1;
        let eval_now = done == args.steps || (args.eval_every > 0 && done % args.eval_every == 0);
        let eval = if eval_now {
            Some(trainer.eval(&corpus, args.eval_batches)?)
        } else {
            None
        };
        let per_token = r.activation_bytes as f64 / (r.tokens as f64 * boundaries);
        writeln!(
            log,
            "{done},{},{:.5},{},{:.6e},{},{}",
            done * r.tokens,
            r.loss,
            eval.map(|e| format!("{e:.5}")).unwrap_or_default(),
            r.lr,
            r.activation_bytes,
            r.gradient_bytes
        )?;
        let tok_s = tokens_done as f64 / started.elapsed().as_secs_f64();
        match eval {
            Some(e) => info!(
                step = done,
                of = args.steps,
                loss = round4(r.loss),
                eval_loss = round4(e),
                tok_per_s = tok_s.round(),
                compression = format!("{:.0}x", fp32_per_token / per_token),
                "step"
            ),
            None if done % 5 == 0 || done == first + 1 => {
                info!(
                    step = done,
                    of = args.steps,
                    loss = round4(r.loss),
                    tok_per_s = tok_s.round(),
                    "step"
                )
            }
            None => {}
        }
        let interrupted = stop.load(Ordering::SeqCst);
        if interrupted
            || (args.checkpoint_every > 0 && done % args.checkpoint_every == 0)
            || done == args.steps
        {
            checkpoint::save(&args.out, &spec, &trainer).context("saving checkpoint")?;
        }
        if interrupted {
            warn!(step = done, out = %args.out.display(), "interrupted: checkpoint saved, run again to resume");
            return Ok(());
        }
    }
    log.flush()?;
    info!(
        steps = trainer.steps_done(),
        out = %args.out.display(),
        loss_log = %log_path.display(),
        "done"
    );
    Ok(())
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
