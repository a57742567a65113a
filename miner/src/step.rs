//! One epoch of training: the loop and its arms.
//!
//! Each turn the loop starts a round of new samples (stage 0), takes the next input the
//! [`feed`](crate::feed) verified (an activation routed here, or the gradient of a sample this
//! miner forwarded) and runs it, then drops samples whose gradient is overdue. Training stops at
//! the timeline's `train_end`; samples in flight drain until `drain_end`.
//!
//! A sample forwarded and sent on is [`Pending`] until its gradient comes back: only its input
//! and the weights' [`Version`] are kept, and the backward recomputes the forward on those
//! weights ([`Held::with_version`]). Holding the first forward's graph instead is not possible
//! (optimizer steps in between change the weights in place), and recomputing on the current
//! weights would pair the downstream gradient with a different output.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use sliver_common::artifact::{ArtifactId, Header, Kind};
use sliver_common::data::Corpus;
use sliver_common::schedule::Timeline;
use sliver_common::{Batch, Epoch, RunSpec, StageIndex, WireCodec, layout, routing};
use sliver_subnet::run::Roster;
use tch::{Device, Tensor};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::adversary::Conduct;
use crate::feed::{self, Input, Received, Want};
use crate::held::{Held, Version};
use crate::node::Node;
use crate::outbox::{Claims, Outbox};
use crate::silence::Silence;
use crate::stats::EpochStats;

/// What the training loop needs of the miner besides the stage it holds.
pub(crate) struct Env<'a> {
    /// The chain view, store, hotkey, metrics, clock and shutdown.
    pub(crate) node: &'a Node,
    /// The training text.
    pub(crate) corpus: &'a Corpus,
    /// Compute device.
    pub(crate) device: Device,
    /// The feed's pause between looks for new inputs.
    pub(crate) poll: Duration,
    /// How many times slower than this machine to play (`--sim.slowdown`; 1 outside tests).
    pub(crate) slowdown: f64,
}

impl Env<'_> {
    /// The seconds of compute since `t0`, after pausing `slowdown - 1` times them when playing
    /// a slower machine (the pause counts as compute).
    fn computed(&self, t0: Instant) -> f64 {
        if self.slowdown > 1.0 {
            std::thread::sleep(t0.elapsed().mul_f64(self.slowdown - 1.0));
        }
        t0.elapsed().as_secs_f64()
    }

    /// Sample `id`'s batch, on this miner's device.
    fn batch(&self, id: u64) -> Result<Batch> {
        Ok(routing::sample_batch(
            self.node.spec(),
            self.corpus,
            id,
            self.device,
        )?)
    }
}

/// The most sample ids a stage-0 miner skips in a row because their paths go through peers it
/// routes around: with a stage never avoided whole, a path clear of them is found long before.
const MAX_SKIPS: usize = 1024;

/// The counter a stage-0 miner's next sample of `epoch` takes, after the activations it put
/// already (`keys`, listed from its store): one past the highest counter among them, so a restart
/// never starts a sample twice, even when counters were skipped.
fn next_counter(
    spec: &RunSpec,
    epoch: Epoch,
    me: &sliver_common::artifact::Hotkey,
    keys: &[String],
) -> u64 {
    let mut ids: std::collections::HashSet<u64> =
        keys.iter().filter_map(|k| layout::id_of_key(k)).collect();
    let mut next = 0;
    for counter in 0..routing::max_samples_per_origin(spec) {
        if ids.is_empty() {
            break;
        }
        if ids.remove(&routing::sample_id(&spec.name, epoch, me, counter)) {
            next = counter + 1;
        }
    }
    next
}

/// A sample forwarded and sent on, waiting for its gradient.
struct Pending {
    /// Its input activations (`None` at stage 0, which recomputes them from the sample id),
    /// with their verified header.
    input: Option<(Header, Tensor)>,
    version: Version,
    started: Instant,
}

/// One epoch's training state.
struct Training<'a> {
    w: &'a Env<'a>,
    h: &'a mut Held,
    conduct: &'a mut Conduct,
    /// The peers routed around ([`crate::silence`]).
    silence: &'a mut Silence,
    roster: &'a Roster,
    spec: &'a RunSpec,
    timeline: Timeline,
    stage: StageIndex,
    last: bool,
    act_codec: WireCodec,
    grad_codec: WireCodec,
    /// Tokens per sample.
    tokens: u64,
    stats: EpochStats,
    outbox: Outbox,
    in_flight: HashMap<u64, Pending>,
    /// Stage 0: the next sample's counter.
    counter: u64,
    /// Tells the feed which gradients to expect, and from whom.
    wants: UnboundedSender<Want>,
    /// Stops the feed at the end of the epoch.
    feed_cancel: CancellationToken,
    /// Training loss summed over the samples with one (last stage), and their count.
    loss: (f64, u64),
}

/// Trains `epoch` on the stage `h` holds until its samples are drained.
///
/// # Errors
/// A libtorch failure, a stage without miners, or the feed stopping.
pub(crate) fn train_epoch(
    w: &Env<'_>,
    h: &mut Held,
    conduct: &mut Conduct,
    silence: &mut Silence,
    epoch: Epoch,
    roster: &Roster,
) -> Result<EpochStats> {
    let node = w.node;
    let (mut e, inputs, feeder) = Training::begin(w, h, conduct, silence, epoch, roster)?;
    // A fifth of the feed's poll: the worker looks for inputs more often than they arrive.
    let wait = w.poll / 5;
    loop {
        if node.cancelled() {
            break;
        }
        let block = node.block();
        let training = e.timeline.training(block);
        if !training && (e.in_flight.is_empty() || block >= e.timeline.drain_end) {
            break;
        }
        if training && e.stage.is_first() {
            e.start_round()?;
        }
        match inputs.recv_timeout(wait) {
            Ok(Input::Act { id, header, tensor }) if training => {
                e.on_activation(id, header, &tensor)?;
            }
            Ok(Input::Act { .. }) => {}
            Ok(Input::Grad { id, header, tensor }) => e.on_gradient(id, header, &tensor)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if node.cancelled() {
                    break;
                }
                bail!("the input feed stopped");
            }
        }
        e.route_around_silence();
        e.expire();
    }
    e.finish(feeder)
}

impl<'a> Training<'a> {
    /// Sets the epoch up and starts its feed.
    fn begin(
        w: &'a Env<'a>,
        h: &'a mut Held,
        conduct: &'a mut Conduct,
        silence: &'a mut Silence,
        epoch: Epoch,
        roster: &'a Roster,
    ) -> Result<(Self, mpsc::Receiver<Input>, JoinHandle<Received>)> {
        let node = w.node;
        let spec = node.spec();
        let swarm = &spec.swarm;
        let stage = h.index;
        let me = node.me();
        let dims = spec.wire_dims();
        h.archive.begin(epoch);
        conduct.begin_epoch();
        silence.begin_epoch(node, roster, epoch);
        let (input_tx, inputs) = mpsc::channel::<Input>();
        let (wants, want_rx) = tokio::sync::mpsc::unbounded_channel::<Want>();
        let feed_cancel = node.cancel.child_token();
        let feeder = node.rt.spawn(feed::run(
            feed::Context {
                spec: spec.clone(),
                epoch,
                stage,
                me,
                roster: roster.clone(),
                metrics: node.metrics.clone(),
                dims: dims.to_vec(),
                act_codec: spec.activation_codec(),
                grad_codec: spec.gradient_codec(),
                poll: w.poll,
                // Twice what one origin can have in flight.
                lookahead: 2 * (swarm.window * swarm.rounds) as u64,
            },
            want_rx,
            input_tx,
            feed_cancel.clone(),
        ));
        // Stage 0 continues its counter after a restart: ids already used are in storage.
        let counter = if stage.is_first() {
            let prefix = layout::artifacts(&spec.name, epoch, stage, &me, Kind::Act);
            let keys = node.rt.block_on(node.store.list(&prefix))?;
            next_counter(spec, epoch, &me, &keys)
        } else {
            0
        };
        info!(
            %epoch,
            %stage,
            miners = roster.assignment.stage(stage).len(),
            "epoch starts"
        );
        let e = Training {
            w,
            h,
            conduct,
            silence,
            roster,
            spec,
            timeline: swarm.schedule().timeline(epoch),
            stage,
            last: stage.is_last(spec.stages.len()),
            act_codec: spec.activation_codec(),
            grad_codec: spec.gradient_codec(),
            tokens: (dims[0] * dims[1]) as u64,
            stats: EpochStats {
                epoch,
                stage,
                ..EpochStats::default()
            },
            outbox: Outbox::new(node),
            in_flight: HashMap::new(),
            counter,
            wants,
            feed_cancel,
            loss: (0.0, 0),
        };
        Ok((e, inputs, feeder))
    }

    fn at(&self, kind: Kind, id: u64) -> ArtifactId {
        ArtifactId {
            epoch: self.timeline.epoch,
            stage: self.stage,
            kind,
            id,
        }
    }

    /// Optimizer steps ahead of now at which a sample forwarded now will be applied.
    fn ahead(&self) -> u64 {
        ((self.h.backwards + self.in_flight.len()) / self.spec.optimizer.accumulate) as u64
    }

    /// Stage 0: forwards a round of `swarm.window` new samples when fewer than `swarm.rounds`
    /// rounds are in flight. With two, the next round is forwarded while the last one's
    /// gradients come back (double buffering); with one, the next waits for them.
    fn start_round(&mut self) -> Result<()> {
        let swarm = &self.spec.swarm;
        if self.in_flight.len().saturating_add(swarm.window)
            > swarm.window.saturating_mul(swarm.rounds)
        {
            return Ok(());
        }
        let origin = self.conduct.origin(self.w.node.me(), self.roster);
        for _ in 0..swarm.window {
            let id = self.next_sample(&origin);
            if !self.conduct.computes() {
                continue;
            }
            let t0 = Instant::now();
            let batch = self.w.batch(id)?;
            let ahead = self.ahead();
            let (fwd, version) = self.h.forward_predicted(ahead, |stage| {
                Ok(tch::no_grad(|| stage.forward(None, &batch))?)
            })?;
            self.forwarded(t0);
            self.send_on(id, fwd.output(), version, None)?;
        }
        Ok(())
    }

    /// Stage 0: the id of the next sample to start, skipping those whose path goes through a
    /// peer routed around ([`crate::silence`]; at most [`MAX_SKIPS`] in a row).
    fn next_sample(&mut self, origin: &sliver_common::artifact::Hotkey) -> u64 {
        let (run, epoch) = (&self.spec.name, self.timeline.epoch);
        let assignment = &self.roster.assignment;
        for _ in 0..MAX_SKIPS {
            let id = routing::sample_id(run, epoch, origin, self.counter);
            self.counter += 1;
            let path = routing::downstream(run, epoch, id, self.stage, assignment);
            if !self.silence.blocks(&path, assignment) {
                return id;
            }
            self.stats.skipped += 1;
        }
        let id = routing::sample_id(run, epoch, origin, self.counter);
        self.counter += 1;
        id
    }

    /// Counts a forward that began at `t0`.
    fn forwarded(&mut self, t0: Instant) {
        self.w.node.metrics.add_samples("forward", 1);
        let spent = self.w.computed(t0);
        self.stats.busy_s += spent;
        self.stats.compute_s += spent;
        self.stats.forwards += 1;
        self.stats.tokens += self.tokens;
    }

    /// Sends a forward's `output` on to the miner of the next stage that sample `id` is routed
    /// to, and waits for its gradient.
    fn send_on(
        &mut self,
        id: u64,
        output: &Tensor,
        version: Version,
        input: Option<(Header, Tensor)>,
    ) -> Result<()> {
        let next_stage = self.stage.next();
        let Some(next) = routing::route(
            &self.spec.name,
            self.timeline.epoch,
            id,
            next_stage,
            &self.roster.assignment,
        ) else {
            bail!("stage {next_stage} has no miner");
        };
        let out = self.conduct.activations(
            output,
            self.w.node,
            self.roster,
            (self.timeline.epoch, self.stage),
        );
        let claims = Claims {
            weights: self.h.claim(version),
            loss: None,
            inputs: input.iter().map(|(h, _)| h.clone()).collect(),
        };
        self.outbox
            .send(self.at(Kind::Act, id), &self.act_codec, &out, claims)?;
        let _ = self.wants.send(Want::Gradient {
            id,
            from: next.hotkey,
        });
        self.in_flight.insert(
            id,
            Pending {
                input,
                version,
                started: Instant::now(),
            },
        );
        Ok(())
    }

    /// An activation routed here: forward it, and either send it on (an earlier stage) or take
    /// the loss and send the input gradient back (the last stage).
    fn on_activation(&mut self, id: u64, header: Header, tensor: &Tensor) -> Result<()> {
        if !self.conduct.computes() {
            return Ok(());
        }
        let t0 = Instant::now();
        let batch = self.w.batch(id)?;
        let x = tensor.to_device(self.w.device);
        if self.last {
            let fwd = self.h.stage.forward(Some(&x), &batch)?;
            self.forwarded(t0);
            let t0 = Instant::now();
            let loss = fwd.output().double_value(&[]);
            if loss.is_finite() {
                self.loss.0 += loss;
                self.loss.1 += 1;
            }
            let g = self
                .h
                .stage
                .backward(fwd, None)?
                .context("the last stage returns an input gradient")?;
            let claim = self.h.current_claim()?;
            self.backwarded(t0)?;
            let claims = Claims {
                weights: Some(claim),
                loss: loss.is_finite().then_some(loss as f32),
                inputs: vec![header],
            };
            let g = self.conduct.gradients(&g);
            self.outbox
                .send(self.at(Kind::Grad, id), &self.grad_codec, &g, claims)?;
        } else {
            let ahead = self.ahead();
            let (fwd, version) = self.h.forward_predicted(ahead, |stage| {
                Ok(tch::no_grad(|| stage.forward(Some(&x), &batch))?)
            })?;
            self.forwarded(t0);
            self.send_on(id, fwd.output(), version, Some((header, x)))?;
        }
        Ok(())
    }

    /// Counts a backward that began at `t0` and steps the optimizer when it is due.
    fn backwarded(&mut self, t0: Instant) -> Result<()> {
        self.stats.backwards += 1;
        self.w.node.metrics.add_samples("backward", 1);
        self.h.backwards += 1;
        if self.h.step(&self.spec.optimizer, false)? {
            self.stats.steps += 1;
        }
        let spent = self.w.computed(t0);
        self.stats.busy_s += spent;
        self.stats.compute_s += spent;
        Ok(())
    }

    /// The gradient of a sample this miner forwarded: backward on the weights it was forwarded
    /// with, and send the input gradient back (every stage but the first).
    fn on_gradient(&mut self, id: u64, header: Header, tensor: &Tensor) -> Result<()> {
        let Some(p) = self.in_flight.remove(&id) else {
            return Ok(());
        };
        let t0 = Instant::now();
        let g = tensor.to_device(self.w.device);
        let batch = self.w.batch(id)?;
        let g_in = self.h.with_version(p.version, |stage| {
            let fwd = stage.forward(p.input.as_ref().map(|(_, x)| x), &batch)?;
            Ok(stage.backward(fwd, Some(&g))?)
        })?;
        // Evidence: the input activation and the gradient it was computed from (stage 0 has
        // no input and sends no gradient back).
        let claims = Claims {
            weights: self.h.claim(p.version),
            loss: None,
            inputs: p
                .input
                .into_iter()
                .map(|(h, _)| h)
                .chain([header])
                .collect(),
        };
        self.h.release(p.version);
        self.backwarded(t0)?;
        if let Some(g_in) = g_in {
            let g_in = self.conduct.gradients(&g_in);
            self.outbox
                .send(self.at(Kind::Grad, id), &self.grad_codec, &g_in, claims)?;
        }
        Ok(())
    }

    /// Drops the samples whose gradient has not come back within `swarm.sample_timeout_secs`,
    /// and looks along their paths for the peer that held them up ([`crate::silence`]).
    fn expire(&mut self) {
        let timeout = Duration::from_secs(self.spec.swarm.sample_timeout_secs);
        let overdue = self.drop_in_flight(|_, p| p.started.elapsed() >= timeout);
        if !overdue.is_empty() {
            self.stats.dropped += overdue.len() as u64;
            debug!(dropped = overdue.len(), "samples timed out");
            for id in overdue {
                self.silence
                    .overdue(self.w.node, self.roster, self.stage, id);
            }
        }
    }

    /// Drops the samples in flight whose path goes through a peer newly found holding samples
    /// up: their gradients are not waited for, and at stage 0 the window they free starts new
    /// samples routed around it.
    fn route_around_silence(&mut self) {
        let suspects = self.silence.take(self.w.node, self.roster);
        if suspects.is_empty() {
            return;
        }
        let (spec, roster) = (self.spec, self.roster);
        let (run, epoch, stage) = (&spec.name, self.timeline.epoch, self.stage);
        let assignment = &roster.assignment;
        let rerouted = self.drop_in_flight(|&id, _| {
            routing::downstream(run, epoch, id, stage, assignment)
                .iter()
                .any(|(_, m)| suspects.contains(&m.hotkey))
        });
        if !rerouted.is_empty() {
            self.stats.rerouted += rerouted.len() as u64;
            debug!(
                rerouted = rerouted.len(),
                "dropped the samples in flight through a suspect peer"
            );
        }
    }

    /// Drops the samples in flight that `drop` picks: their weight versions are released and the
    /// feed stops asking for their gradients. Their ids.
    fn drop_in_flight(&mut self, mut drop: impl FnMut(&u64, &Pending) -> bool) -> Vec<u64> {
        let mut ids = Vec::new();
        let h = &mut *self.h;
        self.in_flight.retain(|id, p| {
            if drop(id, p) {
                h.release(p.version);
                ids.push(*id);
                false
            } else {
                true
            }
        });
        for &id in &ids {
            let _ = self.wants.send(Want::Abandon { id });
        }
        ids
    }

    /// Steps on what was accumulated, stops the feed and waits for the uploads.
    fn finish(mut self, feeder: JoinHandle<Received>) -> Result<EpochStats> {
        // Samples still waiting for their gradient when the drain ends are dropped with the
        // epoch: every sample taken on is trained or counted as dropped.
        let left = self.in_flight.len();
        if left > 0 {
            for (_, p) in std::mem::take(&mut self.in_flight) {
                self.h.release(p.version);
            }
            self.stats.dropped += left as u64;
            debug!(dropped = left, "samples in flight at the drain's end");
        }
        let t0 = Instant::now();
        if self.h.step(&self.spec.optimizer, true)? {
            self.stats.steps += 1;
        }
        self.stats.busy_s += t0.elapsed().as_secs_f64();
        self.h.end_epoch();
        self.stats.avoided = self.silence.avoided() as u64;
        self.feed_cancel.cancel();
        let node = self.w.node;
        let mut outbox = self.outbox;
        let mut stats = self.stats;
        node.rt.block_on(async {
            if let Ok(received) = feeder.await {
                stats.activations_by_name = received.by_name;
                stats.activations_by_listing = received.by_listing;
                stats.listings = received.listings;
            }
            outbox.flushed().await;
        });
        if self.loss.1 > 0 {
            let loss = self.loss.0 / self.loss.1 as f64;
            stats.loss = Some(loss);
            node.metrics.set_loss("train", loss);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restarted stage-0 miner continues one past the highest counter it used, skipped
    /// counters or not.
    #[test]
    fn the_counter_continues_past_skipped_samples() {
        let spec = sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            8,
            sliver_common::codec::CodecKind::Int8,
            false,
        );
        let me = sliver_common::artifact::Hotkey([7; 32]);
        let key = |c| {
            let id = routing::sample_id(&spec.name, Epoch(2), &me, c);
            format!("runs/x/e2/s0/me/act/{id}")
        };
        assert_eq!(next_counter(&spec, Epoch(2), &me, &[]), 0);
        let keys: Vec<String> = [0, 1, 4, 9].into_iter().map(key).collect();
        assert_eq!(next_counter(&spec, Epoch(2), &me, &keys), 10);
        // An id of another epoch is not this one's.
        let other = routing::sample_id(&spec.name, Epoch(3), &me, 20);
        let mut keys = keys;
        keys.push(format!("runs/x/e2/s0/me/act/{other}"));
        assert_eq!(next_counter(&spec, Epoch(2), &me, &keys), 10);
    }
}
