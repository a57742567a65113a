//! The stage worker: the miner's training loop, on its own thread, off the async runtime.
//!
//! Each epoch it reads the roster, makes sure it holds its stage's weights, then loops: take the
//! next input (a new sample at stage 0, an activation routed to it at later stages, or a
//! gradient for something it forwarded), run forward or backward, seal and upload the result,
//! and step AdamW every `optimizer.accumulate` backwards. A [`feed`] task on the
//! runtime lists, downloads and verifies what is routed here while the worker computes, so
//! compute does not wait on storage; uploads run on the runtime too. In the merge window it
//! drains what is in flight and runs the merge ([`crate::merge`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use sliver_common::artifact::{self, Hotkey, Kind, Signer, Unsealed};
use sliver_common::data::Corpus;
use sliver_common::metrics::Metrics;
use sliver_common::routing;
use sliver_common::storage::Store;
use sliver_common::{Batch, RunSpec, Stage, WireCodec};
use sliver_subnet::run::{Roster, RunView};
use tch::{Device, Tensor, nn};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::adversary::{Adversary, Tamper};
use crate::archive::{self, Archive};
use crate::feed::{self, Input, Want};
use crate::stage_checkpoint::{self, Saved};

/// Everything the worker needs, wired by the app.
pub struct Worker {
    /// The run, as read from chain.
    pub view: Arc<RunView>,
    /// The training text.
    pub corpus: Arc<Corpus>,
    /// This miner's store.
    pub store: Store,
    /// This miner's hotkey.
    pub signer: Arc<dyn Signer>,
    /// Compute device.
    pub device: Device,
    /// Metrics.
    pub metrics: Metrics,
    /// The latest finalized block.
    pub clock: watch::Receiver<u64>,
    /// The async runtime, for storage I/O.
    pub rt: Handle,
    /// Fires on shutdown.
    pub cancel: CancellationToken,
    /// State directory.
    pub dir: PathBuf,
    /// Pause between looks for new inputs.
    pub poll: Duration,
    /// The cheat this miner plays (tests and benchmarks only).
    pub adversary: Option<Adversary>,
}

/// The weights a sample was forwarded with: the optimizer step they follow, and how many steps
/// ahead of it they were predicted (see [`Held::forward_predicted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Version {
    steps: u64,
    ahead: u64,
}

/// The stage this miner holds, with its optimizer.
pub(crate) struct Held {
    pub(crate) index: usize,
    pub(crate) stage: Stage,
    opt: nn::Optimizer,
    steps: u64,
    /// Micro-batches trained on so far: the learning-rate schedule's clock (see `maybe_step`).
    trained: u64,
    backwards: usize,
    /// The last optimizer step's change to the weights (flat), for predicting the next ones;
    /// `None` after joining or merging.
    velocity: Option<Tensor>,
    /// Weight versions still needed by samples in flight.
    stash: HashMap<Version, Stashed>,
    /// BLAKE3 of the current weights, once computed since the last change (the last stage's
    /// header claim).
    current_hash: Option<[u8; 32]>,
    /// Every version an artifact claimed, kept for spot checks.
    pub(crate) archive: Archive,
}

/// One stashed weight version.
struct Stashed {
    /// The weights, flat.
    flat: Tensor,
    /// Samples in flight that use them.
    users: usize,
    /// Their BLAKE3 ([`sliver_common::merge::hash_flat`]): what artifacts computed with them claim.
    hash: [u8; 32],
}

impl Held {
    /// Runs the forward `f` on the weights this stage is predicted to have `ahead` optimizer steps
    /// from now, stashes them for the sample's backward, and returns their version.
    ///
    /// A sample's gradient comes back after the samples in flight before it, so it is applied
    /// `ahead` steps after its forward. Computing it on the weights of that time rather than
    /// today's (extrapolated by the last step's change, which AdamW's momentum keeps smooth, as
    /// SpecTrain does) makes it nearly the gradient a sequential trainer would apply there.
    fn forward_predicted<T>(
        &mut self,
        ahead: u64,
        f: impl FnOnce(&Stage) -> Result<T>,
    ) -> Result<(T, Version)> {
        let ahead = if self.velocity.is_some() { ahead } else { 0 };
        let v = Version {
            steps: self.steps,
            ahead,
        };
        if ahead == 0 {
            let out = f(&self.stage)?;
            self.stash_add(v, None)?;
            return Ok((out, v));
        }
        let current = sliver_common::merge::flatten(self.stage.var_store())?;
        let predicted = match (self.stash.get(&v), &self.velocity) {
            (Some(s), _) => s.flat.shallow_clone(),
            (None, Some(dv)) => &current + dv * (ahead as f64),
            (None, None) => current.shallow_clone(),
        };
        sliver_common::merge::load_flat(self.stage.var_store_mut(), &predicted)?;
        let out = f(&self.stage);
        sliver_common::merge::load_flat(self.stage.var_store_mut(), &current)?;
        self.stash_add(v, Some(predicted))?;
        Ok((out?, v))
    }

    /// Records one more sample using version `v` (its weights `flat`, or the current ones).
    fn stash_add(&mut self, v: Version, flat: Option<Tensor>) -> Result<()> {
        if let Some(s) = self.stash.get_mut(&v) {
            s.users += 1;
        } else {
            let flat = match flat {
                Some(t) => t,
                None => sliver_common::merge::flatten(self.stage.var_store())?,
            };
            let hash = self.archive.keep(&flat)?;
            self.stash.insert(
                v,
                Stashed {
                    flat,
                    users: 1,
                    hash,
                },
            );
        }
        Ok(())
    }

    /// The hash of the weights of version `v`, while a sample in flight uses them.
    fn claim(&self, v: Version) -> Option<[u8; 32]> {
        self.stash.get(&v).map(|s| s.hash)
    }

    /// The hash of the current weights, which an artifact is about to claim (kept for spot
    /// checks).
    fn current_claim(&mut self) -> Result<[u8; 32]> {
        if let Some(h) = self.current_hash {
            return Ok(h);
        }
        let flat = sliver_common::merge::flatten(self.stage.var_store())?;
        let h = self.archive.keep(&flat)?;
        self.current_hash = Some(h);
        Ok(h)
    }

    /// A sample forwarded with version `v` is done (backwarded or dropped).
    fn release(&mut self, v: Version) {
        if let Some(s) = self.stash.get_mut(&v) {
            s.users -= 1;
            if s.users == 0 {
                self.stash.remove(&v);
            }
        }
    }

    /// Runs `f` with the weights of version `v` loaded (weight stashing), then restores the
    /// current weights. Gradients accumulate into the variables either way.
    fn with_version<T>(&mut self, v: Version, f: impl FnOnce(&Stage) -> Result<T>) -> Result<T> {
        let current_version = Version {
            steps: self.steps,
            ahead: 0,
        };
        if v == current_version {
            return f(&self.stage);
        }
        let Some(stashed) = self.stash.get(&v) else {
            bail!("no stashed weights of version {v:?}");
        };
        let stashed = stashed.flat.shallow_clone();
        let current = sliver_common::merge::flatten(self.stage.var_store())?;
        sliver_common::merge::load_flat(self.stage.var_store_mut(), &stashed)?;
        let out = f(&self.stage);
        sliver_common::merge::load_flat(self.stage.var_store_mut(), &current)?;
        out
    }
}

/// What an adversarial miner keeps across an epoch (tests and benchmarks only).
#[derive(Default)]
struct CheatState {
    /// The lazy miner's first output.
    first: Option<Tensor>,
    /// The lazy miner's first gradient.
    first_grad: Option<Tensor>,
    /// A copier's peer's activation keys not yet re-signed.
    peer_keys: Vec<String>,
    /// Keys a copier re-signed already.
    copied: std::collections::HashSet<String>,
    /// The last peer output a copier re-signed.
    last_copy: Option<Tensor>,
}

/// A sample forwarded and sent on, waiting for its gradient.
///
/// Only the input and the weights' version are kept: when the gradient arrives, the forward runs
/// again with autograd on the weights it first ran with (weight stashing, as PipeDream does), and
/// the resulting gradient is applied to the current weights. Holding the first forward's graph
/// instead is not possible: optimizer steps in between change the weights in place. Recomputing
/// on the current weights instead would pair the downstream gradient with a different output,
/// which measurably stalls training (held-out loss stuck near 3.0 on the local spec).
struct Pending {
    input: Option<Tensor>,
    version: Version,
    started: Instant,
}

/// What one epoch did, for the log, the metrics and the benchmark.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EpochStats {
    /// The epoch.
    pub epoch: u64,
    /// The stage.
    pub stage: usize,
    /// Forwards run.
    pub forwards: u64,
    /// Backwards run.
    pub backwards: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Samples dropped because their gradient never came back.
    pub dropped: u64,
    /// Seconds in forward, backward and optimizer.
    pub busy_s: f64,
    /// Seconds of the epoch this miner took part in.
    pub wall_s: f64,
    /// Tokens forwarded.
    pub tokens: u64,
    /// Mean training loss (last stage only).
    pub loss: Option<f64>,
    /// Bytes this miner uploaded in the epoch, by kind (`act`, `grad`, `shard`, `merged`).
    pub bytes_up: std::collections::BTreeMap<String, u64>,
    /// BLAKE3 of the merged stage weights (flat fp32, little-endian): equal across a stage's
    /// miners when the merge worked.
    pub merged_blake3: String,
    /// Activations received by name (the feed asked for their keys).
    pub activations_by_name: u64,
    /// Activations received only because the feed's once-a-second listing found them.
    pub activations_by_listing: u64,
}

impl Worker {
    fn spec(&self) -> &RunSpec {
        &self.view.spec
    }

    pub(crate) fn block(&self) -> u64 {
        *self.clock.borrow()
    }

    fn me(&self) -> Hotkey {
        self.signer.hotkey()
    }

    /// Sleeps until the chain reaches `block` or shutdown; returns false on shutdown.
    pub(crate) fn wait_for_block(&self, block: u64) -> bool {
        while self.block() < block {
            if self.cancel.is_cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        !self.cancel.is_cancelled()
    }

    /// Runs until shutdown.
    ///
    /// # Errors
    /// A failure that stops the miner (storage or chain unreachable for good, a libtorch error).
    pub fn run(mut self) -> Result<()> {
        let mut held: Option<Held> = None;
        let mut last_epoch = None;
        let result = self.run_epochs(&mut held, &mut last_epoch);
        if let (Some(h), Some(epoch)) = (&held, last_epoch) {
            let saved = Saved {
                epoch,
                stage: h.index,
                merged: false,
                steps: h.steps,
                trained: h.trained,
            };
            stage_checkpoint::save(&self.dir, h.stage.var_store(), saved)
                .context("saving the stage checkpoint at shutdown")?;
            info!(epoch, stage = h.index, "saved the stage checkpoint");
        }
        result
    }

    fn run_epochs(&mut self, held: &mut Option<Held>, last: &mut Option<u64>) -> Result<()> {
        let swarm = self.spec().swarm.clone();
        // The epoch this process last merged: once its merge is done it starts the next epoch
        // at once instead of idling until the epoch's first block (the roster of `e + 1` is
        // fixed when `e`'s merge window opens).
        let mut merged: Option<u64> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            let mut epoch = swarm.epoch_of(self.block());
            let early = self.block() >= swarm.merge_start(epoch) && merged == Some(epoch);
            if early {
                epoch += 1;
            } else if self.block() >= swarm.merge_start(epoch) {
                // Too late to join this epoch's training: wait for the next one.
                if !self.wait_for_block(swarm.epoch_start(epoch + 1)) {
                    return Ok(());
                }
                continue;
            }
            let roster = self.rt.block_on(self.view.roster(epoch))?;
            let me = self.me();
            let moved =
                |h: &Option<Held>, stage: usize| h.as_ref().is_none_or(|h| h.index != stage);
            if let Some((stage, _)) = roster.assignment.position(&me)
                && early
                && moved(held, stage)
            {
                // A new stage's merged weights may still be assembling: join at the boundary.
                if !self.wait_for_block(swarm.epoch_start(epoch)) {
                    return Ok(());
                }
                merged = None;
                continue;
            }
            let Some((stage, _)) = roster.assignment.position(&me) else {
                info!(
                    epoch,
                    "not on this epoch's roster yet (an announcement counts once a merge window opens after it); waiting"
                );
                if !self.wait_for_block(swarm.epoch_start(epoch + 1)) {
                    return Ok(());
                }
                continue;
            };
            if !roster.assignment.is_complete() {
                let sizes: Vec<usize> = (0..roster.assignment.stage_count())
                    .map(|s| roster.assignment.stage(s).len())
                    .collect();
                info!(epoch, miners_per_stage = ?sizes, "a stage has no miner: the pipeline cannot run this epoch; waiting");
                if !self.wait_for_block(swarm.epoch_start(epoch + 1)) {
                    return Ok(());
                }
                continue;
            }
            if moved(held, stage) {
                *held = Some(self.join(stage, epoch)?);
            }
            let Some(h) = held.as_mut() else {
                bail!("no stage held after joining");
            };
            *last = Some(epoch);
            let started = Instant::now();
            let up_before = self.bytes_up();
            let mut stats = self.train_epoch(h, epoch, &roster)?;
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            if self.spec().validation.spot_checks > 0 {
                self.rt.spawn(archive::answer(archive::Answering {
                    view: self.view.clone(),
                    store: self.store.clone(),
                    me,
                    metrics: self.metrics.clone(),
                    clock: self.clock.clone(),
                    cancel: self.cancel.clone(),
                    claimed: h.archive.epoch_dir_of(epoch),
                    epoch,
                    stage: h.index,
                }));
            }
            let busy = crate::merge::run(self, h, epoch, &roster)?;
            merged = Some(epoch);
            h.velocity = None;
            h.current_hash = None;
            stats.busy_s += busy.as_secs_f64();
            stats.wall_s = started.elapsed().as_secs_f64();
            stats.merged_blake3 = hex::encode(sliver_common::merge::hash_flat(
                &sliver_common::merge::flatten(h.stage.var_store())?,
            )?);
            stats.bytes_up = self
                .bytes_up()
                .into_iter()
                .map(|(k, v)| (k.clone(), v - up_before.get(&k).copied().unwrap_or(0)))
                .collect();
            let saved = Saved {
                epoch,
                stage: h.index,
                merged: true,
                steps: h.steps,
                trained: h.trained,
            };
            stage_checkpoint::save(&self.dir, h.stage.var_store(), saved)?;
            self.report(&stats)?;
            *last = None;
        }
    }

    fn bytes_up(&self) -> std::collections::BTreeMap<String, u64> {
        Kind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), self.metrics.bytes("up", k.as_str())))
            .collect()
    }

    fn report(&self, s: &EpochStats) -> Result<()> {
        let utilisation = if s.wall_s > 0.0 {
            s.busy_s / s.wall_s
        } else {
            0.0
        };
        self.metrics.set_utilisation(utilisation);
        self.metrics.set_epoch(s.epoch);
        info!(
            epoch = s.epoch,
            stage = s.stage,
            forwards = s.forwards,
            backwards = s.backwards,
            steps = s.steps,
            dropped = s.dropped,
            activations_by_name = s.activations_by_name,
            activations_by_listing = s.activations_by_listing,
            loss = s.loss.map(|l| format!("{l:.4}")),
            utilisation = format!("{utilisation:.2}"),
            "epoch done"
        );
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("epochs.jsonl"))?;
        let mut v = serde_json::to_value(s)?;
        v["utilisation"] = serde_json::json!(utilisation);
        writeln!(f, "{v}")?;
        Ok(())
    }

    /// Builds stage `index` and loads its newest weights: the local checkpoint when it is from
    /// the current epoch (a graceful restart), else the latest merged weights in storage, else
    /// the spec's initial weights.
    fn join(&self, index: usize, epoch: u64) -> Result<Held> {
        let spec = self.spec();
        let mut stage = Stage::new(spec, index, self.device)?;
        let local = stage_checkpoint::peek(&self.dir).filter(|s| s.stage == index);
        let (mut steps, mut trained) = (0, 0);
        let from_local = local.filter(|s| s.epoch == epoch && !s.merged);
        if let Some(saved) = from_local {
            stage_checkpoint::load(&self.dir, stage.var_store_mut())?;
            (steps, trained) = (saved.steps, saved.trained);
            info!(
                stage = index,
                epoch, "resumed from the local checkpoint of this epoch"
            );
        } else if let Some(merged) = crate::merge::load_latest(self, &mut stage, epoch)? {
            (steps, trained) = local.map_or((0, 0), |s| (s.steps, s.trained));
            info!(
                stage = index,
                merged_epoch = merged,
                "joined from the latest merged weights"
            );
        } else if let Some(saved) = local {
            stage_checkpoint::load(&self.dir, stage.var_store_mut())?;
            (steps, trained) = (saved.steps, saved.trained);
            info!(
                stage = index,
                epoch = saved.epoch,
                "joined from the local checkpoint"
            );
        } else {
            info!(stage = index, "joined with the run's initial weights");
        }
        let opt = sliver_common::train::adamw(&spec.optimizer, stage.var_store())?;
        Ok(Held {
            index,
            stage,
            opt,
            steps,
            trained,
            backwards: 0,
            velocity: None,
            stash: HashMap::new(),
            current_hash: None,
            archive: Archive::new(&self.dir, spec.validation.spot_checks > 0),
        })
    }

    fn batch(&self, id: u64) -> Result<Batch> {
        Ok(routing::sample_batch(
            self.spec(),
            &self.corpus,
            id,
            self.device,
        )?)
    }

    /// Seals `tensor` as an artifact and uploads it in the background. `weights` is the hash of
    /// the weights it was computed with; `loss` the sample's loss (the last stage's gradients).
    fn upload(
        &self,
        (epoch, stage, kind, id): (u64, usize, Kind, u64),
        (codec, tensor): (&WireCodec, &Tensor),
        (weights, loss): (Option<[u8; 32]>, Option<f32>),
        uploads: &mut Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<()> {
        let payload = codec.encode(tensor)?;
        let dims = tensor.size();
        let run = &self.spec().name;
        let bytes = artifact::seal(
            Unsealed {
                run,
                epoch,
                stage: stage as u16,
                kind,
                id,
                codec: codec.kind(),
                dims: &dims,
                weights,
                loss,
            },
            &payload,
            self.signer.as_ref(),
        )?;
        let key = artifact::key(run, epoch, stage, &self.me(), kind, id);
        uploads.push(spawn_put(
            &self.rt,
            self.store.clone(),
            key,
            bytes,
            kind,
            self.metrics.clone(),
        ));
        uploads.retain(|h| !h.is_finished());
        Ok(())
    }

    fn train_epoch(&self, h: &mut Held, epoch: u64, roster: &Roster) -> Result<EpochStats> {
        let spec = self.spec().clone();
        let swarm = &spec.swarm;
        let act_codec = spec.activation_codec();
        let grad_codec = spec.gradient_codec();
        let me = self.me();
        let s = h.index;
        let last = s + 1 == spec.stages.len();
        let dims = spec.wire_dims();
        let mut stats = EpochStats {
            epoch,
            stage: s,
            ..EpochStats::default()
        };
        h.archive.begin(epoch);
        let epoch_cancel = self.cancel.child_token();
        let (input_tx, input_rx) = mpsc::channel::<Input>();
        let (want_tx, want_rx) = tokio::sync::mpsc::unbounded_channel::<Want>();
        let feeder = self.rt.spawn(feed::run(
            feed::Context {
                spec: spec.clone(),
                epoch,
                stage: s,
                me,
                roster: roster.clone(),
                metrics: self.metrics.clone(),
                dims: dims.to_vec(),
                act_codec,
                grad_codec,
                poll: self.poll,
                // Twice what one origin can have in flight.
                lookahead: 2 * (swarm.window * swarm.rounds) as u64,
            },
            want_rx,
            input_tx,
            epoch_cancel.clone(),
        ));
        let mut uploads = Vec::new();
        let mut in_flight: HashMap<u64, Pending> = HashMap::new();
        // Stage 0 continues its counter after a restart: ids already used are in storage.
        let mut counter = if s == 0 {
            self.rt
                .block_on(
                    self.store
                        .list(&artifact::prefix(&spec.name, epoch, 0, &me, Kind::Act)),
                )?
                .len() as u64
        } else {
            0
        };
        let timeout = Duration::from_secs(swarm.sample_timeout_secs);
        let accumulate = spec.optimizer.accumulate;
        let drain_end = swarm.merge_start(epoch) + swarm.merge_blocks / 4;
        let (mut loss_sum, mut loss_n) = (0.0, 0u64);
        // Tests and benchmarks: what a cheating miner keeps, and whether it computes at all.
        let mut cheat_state = CheatState::default();
        let computes = self.adversary.is_none_or(Adversary::computes);
        info!(
            epoch,
            stage = s,
            miners = roster.assignment.stage(s).len(),
            "epoch starts"
        );
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let block = self.block();
            let training = block < swarm.merge_start(epoch);
            if !training && (in_flight.is_empty() || block >= drain_end) {
                break;
            }
            if s == 0 && training {
                // Rounds of a window of samples, `swarm.rounds` in flight at most: with two, the
                // next round is forwarded while the last one's gradients come back (double
                // buffering); with one, the next waits for them.
                if in_flight.len().saturating_add(swarm.window)
                    <= swarm.window.saturating_mul(swarm.rounds)
                {
                    for _ in 0..swarm.window {
                        let id = routing::sample_id(&spec.name, epoch, &me, counter);
                        counter += 1;
                        if !computes {
                            continue;
                        }
                        let Some(next) =
                            routing::route(&spec.name, epoch, id, 1, roster.assignment.stage(1))
                        else {
                            bail!("stage 1 has no miner");
                        };
                        let t0 = Instant::now();
                        let batch = self.batch(id)?;
                        let ahead = ((h.backwards + in_flight.len()) / accumulate) as u64;
                        let (fwd, version) = h.forward_predicted(ahead, |stage| {
                            Ok(tch::no_grad(|| stage.forward(None, &batch))?)
                        })?;
                        self.metrics.add_samples("forward", 1);
                        stats.busy_s += t0.elapsed().as_secs_f64();
                        stats.forwards += 1;
                        stats.tokens += (dims[0] * dims[1]) as u64;
                        let out = self.outgoing(fwd.output(), &mut cheat_state, roster, epoch, 0);
                        self.upload(
                            (epoch, 0, Kind::Act, id),
                            (&act_codec, &out),
                            (h.claim(version), None),
                            &mut uploads,
                        )?;
                        let _ = want_tx.send(Want {
                            id,
                            from: next.hotkey,
                        });
                        in_flight.insert(
                            id,
                            Pending {
                                input: None,
                                version,
                                started: Instant::now(),
                            },
                        );
                    }
                }
            }
            match input_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Input::Act { id, tensor }) => {
                    if !training {
                        continue;
                    }
                    if !computes {
                        continue;
                    }
                    let t0 = Instant::now();
                    let batch = self.batch(id)?;
                    let x = tensor.to_device(self.device);
                    let (fwd, version) = if last {
                        (h.stage.forward(Some(&x), &batch)?, None)
                    } else {
                        let ahead = ((h.backwards + in_flight.len()) / accumulate) as u64;
                        let (fwd, version) = h.forward_predicted(ahead, |stage| {
                            Ok(tch::no_grad(|| stage.forward(Some(&x), &batch))?)
                        })?;
                        (fwd, Some(version))
                    };
                    stats.forwards += 1;
                    stats.tokens += (dims[0] * dims[1]) as u64;
                    self.metrics.add_samples("forward", 1);
                    if last {
                        let loss = fwd.output().double_value(&[]);
                        if loss.is_finite() {
                            loss_sum += loss;
                            loss_n += 1;
                        }
                        let g = h
                            .stage
                            .backward(fwd, None)?
                            .context("the last stage returns an input gradient")?;
                        stats.backwards += 1;
                        self.metrics.add_samples("backward", 1);
                        h.backwards += 1;
                        let claim = h.current_claim()?;
                        self.maybe_step(h, &mut stats, false)?;
                        stats.busy_s += t0.elapsed().as_secs_f64();
                        let g = self.outgoing_grad(&g, &mut cheat_state);
                        self.upload(
                            (epoch, s, Kind::Grad, id),
                            (&grad_codec, &g),
                            (Some(claim), loss.is_finite().then_some(loss as f32)),
                            &mut uploads,
                        )?;
                    } else {
                        let version =
                            version.context("a forward of an earlier stage is stashed")?;
                        stats.busy_s += t0.elapsed().as_secs_f64();
                        let Some(next) = routing::route(
                            &spec.name,
                            epoch,
                            id,
                            s + 1,
                            roster.assignment.stage(s + 1),
                        ) else {
                            bail!("stage {} has no miner", s + 1);
                        };
                        let out = self.outgoing(fwd.output(), &mut cheat_state, roster, epoch, s);
                        self.upload(
                            (epoch, s, Kind::Act, id),
                            (&act_codec, &out),
                            (h.claim(version), None),
                            &mut uploads,
                        )?;
                        let _ = want_tx.send(Want {
                            id,
                            from: next.hotkey,
                        });
                        in_flight.insert(
                            id,
                            Pending {
                                input: Some(x),
                                version,
                                started: Instant::now(),
                            },
                        );
                    }
                }
                Ok(Input::Grad { id, tensor }) => {
                    let Some(p) = in_flight.remove(&id) else {
                        continue;
                    };
                    let t0 = Instant::now();
                    let g = tensor.to_device(self.device);
                    let batch = self.batch(id)?;
                    let g_in = h.with_version(p.version, |stage| {
                        let fwd = stage.forward(p.input.as_ref(), &batch)?;
                        Ok(stage.backward(fwd, Some(&g))?)
                    })?;
                    let claim = h.claim(p.version);
                    h.release(p.version);
                    stats.backwards += 1;
                    self.metrics.add_samples("backward", 1);
                    h.backwards += 1;
                    self.maybe_step(h, &mut stats, false)?;
                    stats.busy_s += t0.elapsed().as_secs_f64();
                    if let Some(g_in) = g_in {
                        let g_in = self.outgoing_grad(&g_in, &mut cheat_state);
                        self.upload(
                            (epoch, s, Kind::Grad, id),
                            (&grad_codec, &g_in),
                            (claim, None),
                            &mut uploads,
                        )?;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if self.cancel.is_cancelled() {
                        break;
                    }
                    bail!("the input feed stopped");
                }
            }
            let before = in_flight.len();
            let expired: Vec<u64> = in_flight
                .iter()
                .filter(|(_, p)| p.started.elapsed() >= timeout)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                if let Some(p) = in_flight.remove(&id) {
                    h.release(p.version);
                }
            }
            if in_flight.len() < before {
                stats.dropped += (before - in_flight.len()) as u64;
                debug!(dropped = before - in_flight.len(), "samples timed out");
            }
        }
        // Whatever gradient was accumulated still counts.
        let t0 = Instant::now();
        self.maybe_step(h, &mut stats, true)?;
        stats.busy_s += t0.elapsed().as_secs_f64();
        h.stash.clear();
        epoch_cancel.cancel();
        self.rt.block_on(async {
            if let Ok(received) = feeder.await {
                stats.activations_by_name = received.by_name;
                stats.activations_by_listing = received.by_listing;
            }
            for u in uploads {
                let _ = u.await;
            }
        });
        if loss_n > 0 {
            let loss = loss_sum / loss_n as f64;
            stats.loss = Some(loss);
            self.metrics.set_loss("train", loss);
        }
        Ok(stats)
    }

    /// The activations to upload for `honest`: the honest ones, or what the adversary this
    /// miner plays puts in their place (tests and benchmarks only).
    fn outgoing(
        &self,
        honest: &Tensor,
        state: &mut CheatState,
        roster: &Roster,
        epoch: u64,
        stage: usize,
    ) -> Tensor {
        match self.adversary {
            None => honest.shallow_clone(),
            // Re-signs a peer's output, the last one again when the peer has no new one yet.
            Some(Adversary::Copier) => match self.peer_output(state, roster, epoch, stage) {
                Some(t) => {
                    state.last_copy = Some(t.shallow_clone());
                    t
                }
                None => state.last_copy.as_ref().unwrap_or(honest).shallow_clone(),
            },
            Some(a) => a.tamper(honest, &mut state.first),
        }
    }

    /// The gradient to upload for `honest`: what [`Self::outgoing`] is for activations (a
    /// copier has no peer gradient of the same sample to copy, so it sends the honest one).
    fn outgoing_grad(&self, honest: &Tensor, state: &mut CheatState) -> Tensor {
        match self.adversary {
            None | Some(Adversary::Copier) => honest.shallow_clone(),
            Some(a) => a.tamper(honest, &mut state.first_grad),
        }
    }

    /// A stage peer's activations this copier has not re-signed yet, verified like any input.
    fn peer_output(
        &self,
        state: &mut CheatState,
        roster: &Roster,
        epoch: u64,
        stage: usize,
    ) -> Option<Tensor> {
        let spec = self.spec();
        let me = self.me();
        let peer = roster
            .assignment
            .stage(stage)
            .iter()
            .find(|m| m.hotkey != me)?
            .hotkey;
        let store = roster.store(&peer).ok()?;
        if state.peer_keys.is_empty() {
            let prefix = artifact::prefix(&spec.name, epoch, stage, &peer, Kind::Act);
            let keys = self.rt.block_on(store.list(&prefix)).ok()?;
            state.peer_keys = keys
                .into_iter()
                .filter(|k| !state.copied.contains(k))
                .collect();
        }
        let key = state.peer_keys.pop()?;
        state.copied.insert(key.clone());
        let id = artifact::id_of_key(&key)?;
        self.rt
            .block_on(sliver_subnet::fetch::boundary(
                spec,
                roster,
                &self.metrics,
                (epoch, stage, Kind::Act, id),
                &peer,
            ))
            .map(|(_, t)| t)
    }

    /// Steps AdamW once `optimizer.accumulate` backwards are in (or, with `flush`, whatever is in).
    fn maybe_step(&self, h: &mut Held, stats: &mut EpochStats, flush: bool) -> Result<()> {
        let o = &self.spec().optimizer;
        if h.backwards == 0 || (!flush && h.backwards < o.accumulate) {
            return Ok(());
        }
        let scale = 1.0 / h.backwards as f64;
        tch::no_grad(|| {
            for v in h.stage.var_store().trainable_variables() {
                let mut g = v.grad();
                if g.defined() && h.backwards > 1 {
                    let _ = g.g_mul_scalar_(scale);
                }
            }
        });
        sliver_common::train::clip_grad_norm(h.stage.var_store(), o.grad_clip);
        h.opt
            .set_lr(o.lr_at(h.trained / o.accumulate as u64, u64::MAX));
        h.trained += h.backwards as u64;
        let before = sliver_common::merge::flatten(h.stage.var_store())?;
        h.opt.step();
        h.current_hash = None;
        h.velocity = Some(sliver_common::merge::flatten(h.stage.var_store())? - before);
        h.opt.zero_grad();
        h.steps += 1;
        h.backwards = 0;
        stats.steps += 1;
        Ok(())
    }
}

/// Uploads `bytes` at `key` on the runtime; counts them once the put is durable.
pub(crate) fn spawn_put(
    rt: &Handle,
    store: Store,
    key: String,
    bytes: Vec<u8>,
    kind: Kind,
    metrics: Metrics,
) -> tokio::task::JoinHandle<()> {
    rt.spawn(async move {
        let n = bytes.len() as u64;
        match store.put_once(&key, Bytes::from(bytes)).await {
            Ok(_) => metrics.add_bytes("up", kind.as_str(), n),
            Err(e) => warn!(key, error = %e, "upload failed"),
        }
    })
}
