//! `btminer local`: every stage of a run spec trained in this process.
//!
//! The stages exchange activations and gradients as serialized wire
//! messages, exactly as miners do through storage, so this run exercises
//! the model, the codecs and the data path a miner uses, on one machine.
//! Loss is printed as it falls; held-out loss every `--eval-every` steps;
//! checkpoints go to `--out` and a second run resumes from them ([`checkpoint`]).

pub mod checkpoint;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use sliver_common::data::{Corpus, Split};
use sliver_common::train::StepReport;
use sliver_common::{RunSpec, Trainer};
use tracing::{info, warn};

use crate::cli::LocalArgs;

/// Runs `btminer local`.
///
/// # Errors
/// Bad spec, unreadable data, a failed step or an unwritable `--out`.
pub fn run(args: &LocalArgs) -> Result<()> {
    let mut run = LocalRun::set_up(args)?;
    let mut progress = Progress::new(run.trainer.steps_done());
    for step in progress.first..args.steps {
        let stepped = run.step(step)?;
        progress.tokens += stepped.report.tokens;
        run.report(&stepped, &progress)?;
        if run.checkpoint(stepped.done)? {
            // Interrupted: the checkpoint is saved, a second run resumes from it.
            return Ok(());
        }
    }
    run.finish()
}

/// A local run, set up: the spec, the corpus, the trainer, the loss log and the stop flag.
struct LocalRun<'a> {
    args: &'a LocalArgs,
    spec: RunSpec,
    corpus: Corpus,
    trainer: Trainer,
    /// Set on Ctrl-C / SIGTERM: finish the current step, save, stop.
    stop: Arc<AtomicBool>,
    /// `loss.csv` under `--out`, one row per step.
    log: File,
    log_path: PathBuf,
    /// Reads the corpus and watches for the stop signals; kept for the whole run.
    _runtime: tokio::runtime::Runtime,
}

/// What one step did.
struct Stepped {
    /// Steps done, counting this one.
    done: u64,
    report: StepReport,
    /// Held-out loss, when this step evaluated.
    eval: Option<f64>,
}

/// Throughput since this process started stepping.
struct Progress {
    started: Instant,
    /// The first step this process takes (after a resume, not 0).
    first: u64,
    /// Tokens trained on since `started`.
    tokens: u64,
}

impl Progress {
    fn new(first: u64) -> Self {
        Self {
            started: Instant::now(),
            first,
            tokens: 0,
        }
    }
}

impl<'a> LocalRun<'a> {
    /// Loads the spec and the corpus, watches for Ctrl-C / SIGTERM, builds the trainer (resumed
    /// from `--out` unless `--fresh`) and opens the loss log.
    fn set_up(args: &'a LocalArgs) -> Result<Self> {
        let mut spec = RunSpec::load(&args.spec)
            .with_context(|| format!("loading run spec {}", args.spec.display()))?;
        if let Some(data) = &args.data {
            // Text to read: it replaces the sources and any prepared shards.
            spec.data.sources = vec![data.clone()];
            spec.data.shards = None;
            spec.data.manifest_blake3 = None;
        }
        if args.threads > 0 {
            tch::set_num_threads(args.threads as i32);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the I/O runtime")?;
        let corpus = load_corpus(&runtime, &spec)?;
        let stop = watch_for_stop(&runtime);
        let trainer = build_trainer(args, &spec, &corpus)?;
        let (log, log_path) = open_log(&args.out, trainer.steps_done())?;
        Ok(Self {
            args,
            spec,
            corpus,
            trainer,
            stop,
            log,
            log_path,
            _runtime: runtime,
        })
    }

    /// Trains optimizer step `step` (0-based) over its micro-batches, and evaluates when due
    /// (every `--eval-every` steps and at the last).
    fn step(&mut self, step: u64) -> Result<Stepped> {
        let accumulate = self.spec.optimizer.accumulate as u64;
        let micro: Vec<_> = (0..accumulate)
            .map(|m| {
                self.trainer
                    .batch(&self.corpus, Split::Train, step * accumulate + m)
            })
            .collect::<Result<_, _>>()?;
        let report = self
            .trainer
            .step(&micro)
            .with_context(|| format!("training step {step}"))?;
        let done = step + 1;
        let args = self.args;
        let eval_now =
            done == args.steps || (args.eval_every > 0 && done.is_multiple_of(args.eval_every));
        let eval = if eval_now {
            Some(self.trainer.eval(&self.corpus, args.eval_batches)?)
        } else {
            None
        };
        Ok(Stepped { done, report, eval })
    }

    /// Appends the step's row to the loss log, and logs it: every evaluation (with the
    /// boundary compression), the first step and every fifth.
    fn report(&mut self, stepped: &Stepped, progress: &Progress) -> Result<()> {
        let Stepped { done, eval, .. } = *stepped;
        let r = &stepped.report;
        let fp32_per_token = self.spec.fp32_boundary_bytes_per_token() as f64;
        let boundaries = self.spec.stages.len().saturating_sub(1).max(1) as f64;
        let per_token = r.activation_bytes as f64 / (r.tokens as f64 * boundaries);
        writeln!(
            self.log,
            "{done},{},{:.5},{},{:.6e},{},{}",
            done * r.tokens,
            r.loss,
            eval.map(|e| format!("{e:.5}")).unwrap_or_default(),
            r.lr,
            r.activation_bytes,
            r.gradient_bytes
        )?;
        let tok_s = progress.tokens as f64 / progress.started.elapsed().as_secs_f64();
        let of = self.args.steps;
        match eval {
            Some(e) => info!(
                step = done,
                of,
                loss = round4(r.loss),
                eval_loss = round4(e),
                tok_per_s = tok_s.round(),
                compression = format!("{:.0}x", fp32_per_token / per_token),
                "step"
            ),
            None if done % 5 == 0 || done == progress.first + 1 => {
                info!(
                    step = done,
                    of,
                    loss = round4(r.loss),
                    tok_per_s = tok_s.round(),
                    "step"
                )
            }
            None => {}
        }
        Ok(())
    }

    /// Saves a checkpoint when one is due (every `--checkpoint-every` steps, at the last step,
    /// or when interrupted); whether the run was interrupted and must stop.
    fn checkpoint(&self, done: u64) -> Result<bool> {
        let args = self.args;
        let interrupted = self.stop.load(Ordering::SeqCst);
        if interrupted
            || (args.checkpoint_every > 0 && done.is_multiple_of(args.checkpoint_every))
            || done == args.steps
        {
            checkpoint::save(&args.out, &self.spec, &self.trainer).context("saving checkpoint")?;
        }
        if interrupted {
            warn!(step = done, out = %args.out.display(), "interrupted: checkpoint saved, run again to resume");
        }
        Ok(interrupted)
    }

    /// Flushes the loss log and says where the run's output is.
    fn finish(mut self) -> Result<()> {
        self.log.flush()?;
        info!(
            steps = self.trainer.steps_done(),
            out = %self.args.out.display(),
            loss_log = %self.log_path.display(),
            "done"
        );
        Ok(())
    }
}

/// Loads the training text on `runtime` and checks that it suits the model (long enough for a
/// sample, a tokenizer no larger than the vocabulary).
fn load_corpus(runtime: &tokio::runtime::Runtime, spec: &RunSpec) -> Result<Corpus> {
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
    Ok(corpus)
}

/// A flag set on Ctrl-C / SIGTERM, watched on `runtime`.
fn watch_for_stop(runtime: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            shutdown_signal().await;
            stop.store(true, Ordering::SeqCst);
        });
    }
    stop
}

/// The pipeline trainer for `spec`, resumed from the checkpoint under `--out` unless `--fresh`.
fn build_trainer(args: &LocalArgs, spec: &RunSpec, corpus: &Corpus) -> Result<Trainer> {
    let device = args.device.0;
    let mut trainer = Trainer::pipeline(spec, device, args.steps).context("building the model")?;
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
    } else if let Some(step) = checkpoint::load(&args.out, spec, &mut trainer)? {
        info!(step, out = %args.out.display(), "resumed from checkpoint");
    }
    Ok(trainer)
}

/// Opens `loss.csv` under `out` (creating `out`): started afresh with its header when no step
/// is done (or there is no log yet); when resuming from a checkpoint at `steps_done`, cut back
/// to the rows of steps up to it, so the steps a crash (even SIGKILL) undid are logged once,
/// when they are redone, and a row torn by the crash is dropped.
fn open_log(out: &Path, steps_done: u64) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let log_path = out.join("loss.csv");
    let new_log = !log_path.exists() || steps_done == 0;
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
    } else {
        let text =
            std::fs::read(&log_path).with_context(|| format!("reading {}", log_path.display()))?;
        let keep = log_prefix_through(&text, steps_done);
        if keep < text.len() {
            info!(
                log = %log_path.display(),
                dropped_bytes = text.len() - keep,
                "dropping loss rows past the checkpoint (step {steps_done})"
            );
            log.set_len(keep as u64)
                .and_then(|()| log.sync_all())
                .with_context(|| format!("truncating {}", log_path.display()))?;
        }
    }
    Ok((log, log_path))
}

/// Length of the part of a `loss.csv` to keep when resuming at `steps_done`: the header and
/// every complete row up to the first whose step is past `steps_done` or does not parse.
fn log_prefix_through(text: &[u8], steps_done: u64) -> usize {
    let mut keep = 0;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            break;
        }
        if i > 0 {
            let step = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split(',').next())
                .and_then(|s| s.parse::<u64>().ok());
            match step {
                Some(step) if step <= steps_done => {}
                _ => break,
            }
        }
        keep += line.len();
    }
    keep
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

#[cfg(test)]
mod tests {
    use super::log_prefix_through;

    #[test]
    fn a_resumed_log_keeps_the_rows_up_to_the_checkpoint() {
        let header = "step,tokens,train_loss,eval_loss,lr,activation_bytes,gradient_bytes\n";
        let rows = "1,64,5.1,,0.1,10,10\n2,128,5.0,,0.1,10,10\n3,192,4.9,,0.1,10,10\n";
        let text = format!("{header}{rows}");
        let through = |steps| log_prefix_through(text.as_bytes(), steps);
        assert_eq!(through(3), text.len());
        assert_eq!(through(2), text.find("3,192").unwrap());
        assert_eq!(through(0), header.len());
        // A row torn by SIGKILL (no newline) is dropped, whatever its step.
        let torn = format!("{text}4,25");
        assert_eq!(log_prefix_through(torn.as_bytes(), 9), text.len());
        // So is everything from a row that does not parse.
        let garbage = format!("{header}1,64,5.1,,0.1,10,10\n\u{0}\u{0}\n3,192\n");
        assert_eq!(
            log_prefix_through(garbage.as_bytes(), 9),
            header.len() + "1,64,5.1,,0.1,10,10\n".len()
        );
    }
}
