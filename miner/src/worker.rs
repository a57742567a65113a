//! The stage worker: the miner's epochs, on their own thread, off the async runtime.
//!
//! Each epoch it checks that this release is still current (the subnet's `WeightsVersionKey`,
//! [`sliver_subnet::version`]; an outdated miner stops), reads the roster, makes sure it holds
//! its stage's weights (`held`, joining from a checkpoint or the latest merge when it has none
//! or its stage moved), trains the epoch (`step`), starts answering the epoch's spot checks,
//! runs the merge ([`crate::merge`]), starts deleting its expired epochs from its store
//! ([`sliver_common::gc`]), checkpoints, and records what the epoch did
//! ([`EpochStats`](crate::stats::EpochStats)). A
//! [`feed`](crate::feed) task on the runtime downloads and verifies what is routed here while
//! the worker computes, and uploads run on the runtime too (`outbox`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sliver_common::Stage;
use sliver_common::artifact::Kind;
use sliver_common::data::Corpus;
use sliver_common::flat::{flatten, hash_flat};
use sliver_common::gc;
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::version;
use tch::Device;
use tracing::{info, warn};

use crate::adversary::{Adversary, Conduct};
use crate::archive::{self, Archive};
use crate::availability::Plan;
use crate::held::Held;
use crate::node::Node;
use crate::stage_checkpoint::{self, Saved};
use crate::step::Env;

/// Everything the worker needs, wired by the app.
pub struct Worker {
    /// The chain, storage, hotkey, metrics, clock and shutdown.
    pub node: Node,
    /// The training text.
    pub corpus: Arc<Corpus>,
    /// Compute device.
    pub device: Device,
    /// State directory.
    pub dir: PathBuf,
    /// Pause between looks for new inputs.
    pub poll: Duration,
    /// The cheat this miner plays (tests and benchmarks only).
    pub adversary: Option<Adversary>,
    /// How many times slower than this machine to play (`--sim.slowdown`; 1 outside tests).
    pub slowdown: f64,
    /// Announces the work rate each epoch measures, when it has moved, and the epochs away.
    pub announcer: crate::commitment::Announcer,
    /// The hours it trains (`--availability`; `None`: always).
    pub availability: Option<crate::availability::Planner>,
}

impl Worker {
    /// Runs until shutdown, then saves the stage checkpoint of an epoch left unfinished.
    ///
    /// # Errors
    /// A failure that stops the miner (storage or chain unreachable for good, a libtorch error).
    pub fn run(self) -> Result<()> {
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
            info!(%epoch, stage = %h.index, "saved the stage checkpoint");
        }
        result
    }

    fn run_epochs(&self, held: &mut Option<Held>, last: &mut Option<Epoch>) -> Result<()> {
        let node = &self.node;
        let schedule = node.spec().swarm.schedule();
        let mut conduct = Conduct::new(self.adversary);
        // The peers this miner routes around, kept from epoch to epoch ([`crate::silence`]).
        let mut silence = crate::silence::Silence::default();
        // The epoch this process last merged: once its merge is done it starts the next epoch
        // at once instead of idling until the epoch's first block (the roster of `e + 1` is
        // fixed when `e`'s merge window opens).
        let mut merged: Option<Epoch> = None;
        // Deletes this miner's expired epochs from its store, once per merge ([`gc`]).
        let collector = Arc::new(tokio::sync::Mutex::new(gc::Collector::new(
            node.store.clone(),
            &node.spec().name,
            gc::Owner::Miner {
                hotkey: node.me(),
                stages: node.spec().stages.len(),
            },
            node.metrics.clone(),
        )));
        // The epoch whose release check ([`Worker::check_release`]) is done.
        let mut checked: Option<Epoch> = None;
        loop {
            if node.cancelled() {
                return Ok(());
            }
            if node.leave.load(std::sync::atomic::Ordering::Relaxed) {
                // Asked to leave (SIGUSR1): the epoch it trained is merged, checkpointed and
                // recorded; its spot-check answers run until the epoch's `answer_end`.
                if let Some(epoch) = merged {
                    let answer_end = schedule.timeline(epoch).answer_end;
                    info!(%epoch, until_block = answer_end, "epoch finished; answering its spot checks, then stopping");
                    node.wait_for_block(answer_end);
                }
                node.shutdown
                    .trigger("asked to finish the epoch and stop (SIGUSR1)");
                return Ok(());
            }
            let block = node.block();
            let now = schedule.at(block);
            let training = now.training(block);
            let early = !training && merged == Some(now.epoch);
            let epoch = if early { now.epoch.next() } else { now.epoch };
            if !training && !early {
                // Too late to join this epoch's training: wait for the next one.
                if !node.wait_for_block(now.next) {
                    return Ok(());
                }
                continue;
            }
            match &self.availability {
                // Always available: an absence a past run announced is withdrawn.
                None => self.announcer.away(node, None, true),
                Some(planner) => {
                    let paced = planner.paced_at(node.block());
                    if node.block() < paced {
                        // The chain's pace is measured over a few blocks before the first plan.
                        if !node.wait_for_block(paced) {
                            return Ok(());
                        }
                        continue;
                    }
                    match planner.plan(&schedule, epoch, node.block()) {
                        Plan::Train { away } => self.announcer.away(node, away, false),
                        Plan::Away { away, back } => {
                            self.announcer.away(node, Some(away), true);
                            if held.take().is_some() {
                                info!(%epoch, "the availability window closes: let the stage go");
                            }
                            merged = None;
                            node.metrics.set_stage(None);
                            info!(
                                %epoch, back = %back, windows = %planner.windows(),
                                "outside the availability windows: away until epoch {back}, which it joins from the stage's latest merged weights"
                            );
                            if !node.wait_for_block(schedule.epoch_start(back)) {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                }
            }
            if checked != Some(epoch) {
                self.check_release()?;
                checked = Some(epoch);
            }
            let roster = node.rt.block_on(node.view.roster(epoch))?;
            let me = node.me();
            let moved =
                |h: &Option<Held>, stage: StageIndex| h.as_ref().is_none_or(|h| h.index != stage);
            let Some((stage, _)) = roster.assignment.position(&me) else {
                node.metrics.set_stage(None);
                info!(
                    %epoch,
                    "not on this epoch's roster yet (an announcement counts once a merge window opens after it); waiting"
                );
                if !node.wait_for_block(schedule.epoch_start(epoch.next())) {
                    return Ok(());
                }
                continue;
            };
            if early && moved(held, stage) {
                // A new stage's merged weights may still be assembling: join at the boundary.
                if !node.wait_for_block(schedule.epoch_start(epoch)) {
                    return Ok(());
                }
                merged = None;
                continue;
            }
            if !roster.assignment.is_complete() {
                let sizes: Vec<usize> = StageIndex::all(roster.assignment.stage_count())
                    .map(|s| roster.assignment.stage(s).len())
                    .collect();
                info!(%epoch, miners_per_stage = ?sizes, "a stage has no miner: the pipeline cannot run this epoch; waiting");
                if !node.wait_for_block(schedule.epoch_start(epoch.next())) {
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
            node.metrics.set_stage(Some(stage));
            node.metrics.set_training(true);
            let started = Instant::now();
            let up_before = self.bytes_up();
            let link_before = node.store.config().link.tally();
            let env = Env {
                node,
                corpus: &self.corpus,
                device: self.device,
                poll: self.poll,
                slowdown: self.slowdown,
            };
            conduct.enter(node, &roster, epoch, h.index);
            let trained =
                crate::step::train_epoch(&env, h, &mut conduct, &mut silence, epoch, &roster);
            node.metrics.set_training(false);
            let mut stats = trained?;
            if node.cancelled() {
                return Ok(());
            }
            if node.spec().validation.spot_checks > 0 {
                let answering = archive::answer(archive::Answering {
                    view: node.view.clone(),
                    store: node.store.clone(),
                    me,
                    metrics: node.metrics.clone(),
                    clock: node.clock.clone(),
                    cancel: node.cancel.clone(),
                    claimed: h.archive.epoch_dir_of(epoch),
                    epoch,
                    stage: h.index,
                });
                // On the tracker, so shutdown waits for it; a storage call that hangs then
                // does not hold the process past the grace period.
                let cancel = node.cancel.clone();
                node.shutdown.spawn("spot-check answers", async move {
                    tokio::select! {
                        () = answering => {}
                        () = cancel.cancelled() => {}
                    }
                    Ok::<(), std::convert::Infallible>(())
                });
            }
            let busy = crate::merge::run(node, h, &conduct, (epoch, &roster), self.poll)?;
            h.replaced()?;
            merged = Some(epoch);
            // Off the epoch's work, on the tracker (shutdown cancels it).
            let keep_from = gc::oldest_kept(&schedule, node.block());
            let (gc_task, cancel) = (
                gc::collect_once(collector.clone(), keep_from),
                node.cancel.clone(),
            );
            node.shutdown.spawn("storage gc", async move {
                tokio::select! {
                    () = gc_task => {}
                    () = cancel.cancelled() => {}
                }
                Ok::<(), std::convert::Infallible>(())
            });
            stats.busy_s += busy.as_secs_f64();
            stats.wall_s = started.elapsed().as_secs_f64();
            stats.merged_blake3 = hash_flat(&flatten(h.stage.var_store())?)?.to_string();
            stats.bytes_up = self
                .bytes_up()
                .into_iter()
                .map(|(k, v)| (k.clone(), v - up_before.get(&k).copied().unwrap_or(0)))
                .collect();
            stats.storage = node.store.config().link.tally().since(&link_before);
            stats.share = roster.assignment.share(&me).unwrap_or(0.0);
            let declared = roster.assignment.declared_by(&me).unwrap_or_default();
            stats.declared_rate = declared.rate;
            stats.stage_rate = roster.assignment.typical_rate(h.index);
            stats.rate =
                crate::rate::measure(node.spec(), h.index, stats.backwards, stats.compute_s);
            if let Some(rate) = stats.rate {
                self.announcer.offer(node, declared, (rate, h.index));
            }
            let saved = Saved {
                epoch,
                stage: h.index,
                merged: true,
                steps: h.steps,
                trained: h.trained,
            };
            stage_checkpoint::save(&self.dir, h.stage.var_store(), saved)?;
            stats.record(&self.dir, &node.metrics)?;
            *last = None;
        }
    }

    fn bytes_up(&self) -> std::collections::BTreeMap<String, u64> {
        Kind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_owned(),
                    self.node.metrics.bytes("up", k.as_str()),
                )
            })
            .collect()
    }

    /// Stops the miner when the subnet now requires a later release than this one (the
    /// subnet's `WeightsVersionKey`, read once per epoch); a key that cannot be read is a
    /// warning, and the epoch goes on.
    ///
    /// # Errors
    /// [`version::Outdated`], naming the release to install.
    fn check_release(&self) -> Result<()> {
        let node = &self.node;
        match node
            .rt
            .block_on(version::chain_key(&node.view.client, node.view.netuid))
        {
            Ok(key) => Ok(version::check(node.view.netuid, key)?),
            Err(e) => {
                warn!(error = %e, "cannot read the subnet's weights_version_key; checking again next epoch");
                Ok(())
            }
        }
    }

    /// Builds stage `index` and loads its newest weights: the local checkpoint when it is from
    /// the current epoch (a graceful restart), else the latest merged weights in storage, else
    /// the spec's initial weights.
    fn join(&self, index: StageIndex, epoch: Epoch) -> Result<Held> {
        let spec = self.node.spec();
        let mut stage = Stage::new(spec, index.index(), self.device)?;
        let local = stage_checkpoint::peek(&self.dir).filter(|s| s.stage == index);
        let (mut steps, mut trained) = (0, 0);
        let from_local = local.filter(|s| s.epoch == epoch && !s.merged);
        // Whether the weights loaded are what the stage's other miners begin the epoch with
        // (the latest merge, or the run's initial weights): the merge's bound is centred there.
        let mut shared_start = true;
        if let Some(saved) = from_local {
            stage_checkpoint::load(&self.dir, stage.var_store_mut())?;
            (steps, trained) = (saved.steps, saved.trained);
            shared_start = false;
            info!(
                stage = %index,
                %epoch, "resumed from the local checkpoint of this epoch"
            );
        } else if let Some(merged) = crate::merge::load_latest(&self.node, &mut stage, epoch)? {
            (steps, trained) = local.map_or((0, 0), |s| (s.steps, s.trained));
            info!(
                stage = %index,
                merged_epoch = %merged,
                "joined from the latest merged weights"
            );
        } else if let Some(saved) = local {
            stage_checkpoint::load(&self.dir, stage.var_store_mut())?;
            (steps, trained) = (saved.steps, saved.trained);
            shared_start = false;
            info!(
                stage = %index,
                epoch = %saved.epoch,
                "joined from the local checkpoint"
            );
        } else {
            info!(stage = %index, "joined with the run's initial weights");
        }
        let archive = Archive::new(&self.dir, spec.validation.spot_checks > 0);
        let mut held = Held::new(stage, &spec.optimizer, (steps, trained), archive)?;
        if shared_start {
            held.mark_start()?;
        }
        Ok(held)
    }
}
