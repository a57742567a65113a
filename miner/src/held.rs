//! The stage a miner holds: its weights, its optimizer, and the weight versions samples in
//! flight were forwarded with.
//!
//! A sample's gradient comes back after the samples forwarded before it, so its backward runs
//! some optimizer steps after its forward. Two things keep that sound:
//!
//! - **Weight stashing** (as PipeDream does): the forward's weights are kept as a [`Version`]
//!   until the sample's backward, which recomputes the forward with autograd on those same
//!   weights ([`Held::with_version`]) and applies the gradient to the current ones.
//! - **Predicted weights** (as SpecTrain does): a forward that will be applied `ahead` steps from
//!   now runs on the weights predicted for that time, the current ones plus `ahead` times the
//!   last step's change ([`Held::forward_predicted`]); AdamW's momentum keeps that change smooth.
//!
//! Every version an artifact claims is hashed (and kept for spot checks by the [`Archive`]).

use std::collections::HashMap;

use anyhow::{Result, bail};
use sliver_common::flat::{WeightsHash, flatten, load_flat};
use sliver_common::spec::OptimizerSpec;
use sliver_common::{Stage, StageIndex};
use tch::{Tensor, nn};

use crate::archive::Archive;

/// The weights a sample was forwarded with: the optimizer step they follow, and how many steps
/// ahead of it they were predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Version {
    steps: u64,
    ahead: u64,
}

/// One stashed weight version.
struct Stashed {
    /// The weights, flat.
    flat: Tensor,
    /// Samples in flight that use them.
    users: usize,
    /// Their BLAKE3 ([`sliver_common::flat::hash_flat`]): what artifacts computed with them claim.
    hash: WeightsHash,
}

/// The stage this miner holds, with its optimizer.
pub(crate) struct Held {
    pub(crate) index: StageIndex,
    pub(crate) stage: Stage,
    opt: nn::Optimizer,
    /// Optimizer steps taken since the run began.
    pub(crate) steps: u64,
    /// Micro-batches trained on so far: the learning-rate schedule's clock.
    pub(crate) trained: u64,
    /// Backwards accumulated since the last step.
    pub(crate) backwards: usize,
    /// The last optimizer step's change to the weights (flat), for predicting the next ones;
    /// `None` after joining or merging.
    velocity: Option<Tensor>,
    /// Weight versions still needed by samples in flight.
    stash: HashMap<Version, Stashed>,
    /// BLAKE3 of the current weights, once computed since the last change (the last stage's
    /// header claim).
    current_hash: Option<WeightsHash>,
    /// Every version an artifact claimed, kept for spot checks.
    pub(crate) archive: Archive,
    /// The weights (flat) this stage began the epoch with, when they are what the stage's other
    /// miners began it with too: what bounds the copies this miner accepts in the merge.
    start: Option<Tensor>,
}

impl Held {
    /// Holds `stage` with a fresh AdamW, `steps` and `trained` carried over from a checkpoint.
    ///
    /// # Errors
    /// The optimizer cannot be built.
    pub(crate) fn new(
        stage: Stage,
        optimizer: &OptimizerSpec,
        (steps, trained): (u64, u64),
        archive: Archive,
    ) -> Result<Self> {
        let opt = sliver_common::train::adamw(optimizer, stage.var_store())?;
        Ok(Self {
            index: StageIndex::at(stage.index()),
            stage,
            opt,
            steps,
            trained,
            backwards: 0,
            velocity: None,
            stash: HashMap::new(),
            current_hash: None,
            archive,
            start: None,
        })
    }

    /// The weights (flat) this stage began the epoch with, when known to be the stage's: set
    /// after each merge ([`Self::replaced`]) and by the worker when it joins from merged or
    /// initial weights; `None` after resuming mid-epoch or from an older checkpoint of its own.
    pub(crate) fn start(&self) -> Option<&Tensor> {
        self.start.as_ref()
    }

    /// Takes the current weights as the epoch's start ([`Self::start`]).
    pub(crate) fn mark_start(&mut self) -> Result<()> {
        self.start = Some(flatten(self.stage.var_store())?);
        Ok(())
    }

    /// Runs the forward `f` on the weights this stage is predicted to have `ahead` optimizer steps
    /// from now, stashes them for the sample's backward, and returns their version.
    pub(crate) fn forward_predicted<T>(
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
        let current = flatten(self.stage.var_store())?;
        let predicted = match (self.stash.get(&v), &self.velocity) {
            (Some(s), _) => s.flat.shallow_clone(),
            (None, Some(dv)) => &current + dv * (ahead as f64),
            (None, None) => current.shallow_clone(),
        };
        load_flat(self.stage.var_store_mut(), &predicted)?;
        let out = f(&self.stage);
        load_flat(self.stage.var_store_mut(), &current)?;
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
                None => flatten(self.stage.var_store())?,
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
    pub(crate) fn claim(&self, v: Version) -> Option<WeightsHash> {
        self.stash.get(&v).map(|s| s.hash)
    }

    /// The hash of the current weights, which an artifact is about to claim (kept for spot
    /// checks).
    pub(crate) fn current_claim(&mut self) -> Result<WeightsHash> {
        if let Some(h) = self.current_hash {
            return Ok(h);
        }
        let flat = flatten(self.stage.var_store())?;
        let h = self.archive.keep(&flat)?;
        self.current_hash = Some(h);
        Ok(h)
    }

    /// A sample forwarded with version `v` is done (backwarded or dropped).
    pub(crate) fn release(&mut self, v: Version) {
        if let Some(s) = self.stash.get_mut(&v) {
            s.users -= 1;
            if s.users == 0 {
                self.stash.remove(&v);
            }
        }
    }

    /// Runs `f` with the weights of version `v` loaded (weight stashing), then restores the
    /// current weights. Gradients accumulate into the variables either way.
    pub(crate) fn with_version<T>(
        &mut self,
        v: Version,
        f: impl FnOnce(&Stage) -> Result<T>,
    ) -> Result<T> {
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
        let current = flatten(self.stage.var_store())?;
        load_flat(self.stage.var_store_mut(), &stashed)?;
        let out = f(&self.stage);
        load_flat(self.stage.var_store_mut(), &current)?;
        out
    }

    /// Steps AdamW once `o.accumulate` backwards are in (or, with `flush`, whatever is in);
    /// returns whether it stepped.
    ///
    /// # Errors
    /// A libtorch failure.
    pub(crate) fn step(&mut self, o: &OptimizerSpec, flush: bool) -> Result<bool> {
        if self.backwards == 0 || (!flush && self.backwards < o.accumulate) {
            return Ok(false);
        }
        let scale = 1.0 / self.backwards as f64;
        tch::no_grad(|| {
            for v in self.stage.var_store().trainable_variables() {
                let mut g = v.grad();
                if g.defined() && self.backwards > 1 {
                    let _ = g.g_mul_scalar_(scale);
                }
            }
        });
        sliver_common::train::clip_grad_norm(self.stage.var_store(), o.grad_clip);
        self.opt
            .set_lr(o.lr_at(self.trained / o.accumulate as u64, u64::MAX));
        self.trained += self.backwards as u64;
        let before = flatten(self.stage.var_store())?;
        self.opt.step();
        self.current_hash = None;
        self.velocity = Some(flatten(self.stage.var_store())? - before);
        self.opt.zero_grad();
        self.steps += 1;
        self.backwards = 0;
        Ok(true)
    }

    /// The epoch's samples are over: no version is needed any more.
    pub(crate) fn end_epoch(&mut self) {
        self.stash.clear();
    }

    /// The weights were replaced (merged): no step's change predicts the next one, the
    /// current hash is stale, and they are the next epoch's start.
    ///
    /// # Errors
    /// A libtorch failure flattening the weights.
    pub(crate) fn replaced(&mut self) -> Result<()> {
        self.velocity = None;
        self.current_hash = None;
        self.mark_start()
    }
}

#[cfg(test)]
mod tests {
    use sliver_common::codec::CodecKind;
    use sliver_common::flat::hash_flat;
    use sliver_common::{Batch, RunSpec, routing, testing};
    use tch::Device;

    use super::*;

    fn spec() -> RunSpec {
        let mut spec = testing::tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Fp32, false);
        spec.optimizer.accumulate = 2;
        spec
    }

    fn held(spec: &RunSpec, dir: &std::path::Path) -> Held {
        let stage = Stage::new(spec, 0, Device::Cpu).unwrap();
        Held::new(stage, &spec.optimizer, (0, 0), Archive::new(dir, true)).unwrap()
    }

    fn batch(spec: &RunSpec, id: u64) -> Batch {
        let corpus = testing::small_corpus(spec);
        routing::sample_batch(spec, &corpus, id, Device::Cpu).unwrap()
    }

    fn weights(h: &Held) -> Tensor {
        flatten(h.stage.var_store()).unwrap()
    }

    /// A backward of sample `id` on the current weights, counted for the next step.
    fn backward(h: &mut Held, b: &Batch) {
        let fwd = h.stage.forward(None, b).unwrap();
        let g = Tensor::ones(fwd.output().size(), (tch::Kind::Float, Device::Cpu));
        h.stage.backward(fwd, Some(&g)).unwrap();
        h.backwards += 1;
    }

    #[test]
    fn a_step_waits_for_its_micro_batches_unless_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut h = held(&spec, dir.path());
        let b = batch(&spec, 1);
        assert!(!h.step(&spec.optimizer, true).unwrap(), "nothing to step");
        backward(&mut h, &b);
        assert!(!h.step(&spec.optimizer, false).unwrap(), "one of two");
        backward(&mut h, &b);
        let before = weights(&h);
        assert!(h.step(&spec.optimizer, false).unwrap());
        assert_eq!((h.steps, h.trained, h.backwards), (1, 2, 0));
        let after = weights(&h);
        assert!(!after.equal(&before));
        // The step's change is what predicts the next one.
        let dv = h.velocity.as_ref().unwrap();
        assert!((&before + dv).allclose(&after, 1e-6, 1e-6, false));
        backward(&mut h, &b);
        assert!(
            h.step(&spec.optimizer, true).unwrap(),
            "a flush steps on one"
        );
        assert_eq!((h.steps, h.trained), (2, 3));
    }

    #[test]
    fn a_forward_runs_on_predicted_weights_and_leaves_the_current_ones() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut h = held(&spec, dir.path());
        let b = batch(&spec, 2);
        // Before any step there is nothing to predict with: `ahead` is ignored.
        let ((), v0) = h.forward_predicted(3, |_| Ok(())).unwrap();
        assert_eq!(v0, Version { steps: 0, ahead: 0 });
        assert_eq!(h.claim(v0), Some(hash_flat(&weights(&h)).unwrap()));
        h.release(v0);
        backward(&mut h, &b);
        backward(&mut h, &b);
        h.step(&spec.optimizer, false).unwrap();
        let current = weights(&h);
        let predicted = &current + h.velocity.as_ref().unwrap() * 2.0;
        let (inside, v) = h
            .forward_predicted(2, |stage| Ok(flatten(stage.var_store())?))
            .unwrap();
        assert_eq!(v, Version { steps: 1, ahead: 2 });
        assert!(inside.allclose(&predicted, 1e-6, 1e-6, false));
        assert!(
            weights(&h).equal(&current),
            "the current weights are restored"
        );
        assert_eq!(h.claim(v), Some(hash_flat(&inside).unwrap()));
        // The claimed version is kept on disk for spot checks.
        let kept = h
            .archive
            .epoch_dir_of(sliver_common::Epoch(0))
            .join(h.claim(v).unwrap().to_string());
        assert!(kept.exists(), "{}", kept.display());
    }

    #[test]
    fn a_version_lives_while_a_sample_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut h = held(&spec, dir.path());
        let ((), v) = h.forward_predicted(0, |_| Ok(())).unwrap();
        let ((), again) = h.forward_predicted(0, |_| Ok(())).unwrap();
        assert_eq!(v, again);
        h.release(v);
        assert!(h.claim(v).is_some(), "one sample still uses it");
        h.release(v);
        assert!(h.claim(v).is_none());
        let ((), v) = h.forward_predicted(0, |_| Ok(())).unwrap();
        h.end_epoch();
        assert!(h.claim(v).is_none());
    }

    #[test]
    fn a_backward_recomputes_on_the_stashed_version() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut h = held(&spec, dir.path());
        let b = batch(&spec, 4);
        let (stashed, v) = h
            .forward_predicted(0, |stage| Ok(flatten(stage.var_store())?))
            .unwrap();
        backward(&mut h, &b);
        backward(&mut h, &b);
        h.step(&spec.optimizer, false).unwrap();
        let current = weights(&h);
        let inside = h
            .with_version(v, |stage| Ok(flatten(stage.var_store())?))
            .unwrap();
        assert!(inside.equal(&stashed), "ran on the forward's weights");
        assert!(weights(&h).equal(&current), "and put the current ones back");
        let unknown = Version { steps: 9, ahead: 0 };
        assert!(h.with_version(unknown, |_| Ok(())).is_err());
    }

    #[test]
    fn the_current_claim_is_cached_until_the_weights_change() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut h = held(&spec, dir.path());
        let b = batch(&spec, 5);
        let first = h.current_claim().unwrap();
        assert_eq!(first, hash_flat(&weights(&h)).unwrap());
        assert_eq!(h.current_claim().unwrap(), first);
        backward(&mut h, &b);
        h.step(&spec.optimizer, true).unwrap();
        let stepped = h.current_claim().unwrap();
        assert_ne!(stepped, first);
        assert_eq!(stepped, hash_flat(&weights(&h)).unwrap());
        assert!(h.start().is_none());
        h.replaced().unwrap();
        assert!(h.velocity.is_none());
        assert!(
            h.start().unwrap().equal(&weights(&h)),
            "the next epoch starts here"
        );
    }
}
