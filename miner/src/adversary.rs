//! Adversarial behaviours, for the validator's tests and the incentives benchmark only.
//!
//! `btminer --adversary NAME` (a hidden flag) makes the miner cheat in one way while looking
//! like any other miner: it signs what it uploads with its own hotkey and keeps every format
//! right, so that only the validator's checks can tell. Nobody running a real miner gains from
//! these: each is what the validator must catch and pay nothing for.

use std::collections::HashSet;

use sliver_common::artifact::{ArtifactId, Hotkey, Kind};
use sliver_common::layout;
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::fetch;
use sliver_subnet::run::Roster;
use tch::Tensor;

pub use sliver_common::adversary::Behaviour as Adversary;

use crate::node::Node;

/// How this miner behaves: honestly, or as the adversary it plays. The training loop and the
/// merge ask it what to send and whether to compute or merge at all; only here do the
/// adversaries differ, so the honest path never branches on them.
#[derive(Default)]
pub(crate) struct Conduct {
    adversary: Option<Adversary>,
    /// The lazy miner's first output of the epoch.
    first: Option<Tensor>,
    /// The lazy miner's first gradient of the epoch.
    first_grad: Option<Tensor>,
    /// A copier's peer's activation keys not yet re-signed.
    peer_keys: Vec<String>,
    /// Keys a copier re-signed already.
    copied: HashSet<String>,
    /// The last peer output a copier re-signed.
    last_copy: Option<Tensor>,
}

impl Conduct {
    /// Honest when `adversary` is `None`.
    pub(crate) fn new(adversary: Option<Adversary>) -> Self {
        Self {
            adversary,
            ..Self::default()
        }
    }

    /// A new epoch: what a cheat kept of the last one is dropped.
    pub(crate) fn begin_epoch(&mut self) {
        *self = Self::new(self.adversary);
    }

    /// Whether it computes at all (a free rider does not).
    pub(crate) fn computes(&self) -> bool {
        self.adversary.is_none_or(Adversary::computes)
    }

    /// The hotkey its samples' ids derive from: its own, or (`id-squat`) another stage-0
    /// miner's, so that its activations go out under that miner's ids.
    pub(crate) fn origin(&self, me: Hotkey, roster: &Roster) -> Hotkey {
        if self.adversary == Some(Adversary::IdSquat)
            && let Some(peer) = roster
                .assignment
                .stage(StageIndex::FIRST)
                .iter()
                .find(|m| m.hotkey != me)
        {
            return peer.hotkey;
        }
        me
    }

    /// Whether it skips the merge altogether and keeps its own weights.
    pub(crate) fn skips_merge(&self) -> bool {
        self.adversary == Some(Adversary::Late)
    }

    /// The activations to upload for `honest` (computed at `stage` in `epoch`).
    pub(crate) fn activations(
        &mut self,
        honest: &Tensor,
        node: &Node,
        roster: &Roster,
        (epoch, stage): (Epoch, StageIndex),
    ) -> Tensor {
        match self.adversary {
            None => honest.shallow_clone(),
            // Re-signs a peer's output, the last one again when the peer has no new one yet.
            Some(Adversary::Copier) => match self.peer_output(node, roster, epoch, stage) {
                Some(t) => {
                    self.last_copy = Some(t.shallow_clone());
                    t
                }
                None => self.last_copy.as_ref().unwrap_or(honest).shallow_clone(),
            },
            Some(a) => a.tamper(honest, &mut self.first),
        }
    }

    /// The gradient to upload for `honest` (a copier has no peer gradient of the same sample to
    /// copy, so it sends the honest one).
    pub(crate) fn gradients(&mut self, honest: &Tensor) -> Tensor {
        match self.adversary {
            None | Some(Adversary::Copier) => honest.shallow_clone(),
            Some(a) => a.tamper(honest, &mut self.first_grad),
        }
    }

    /// This miner's copy of a merge shard to upload for `honest`.
    pub(crate) fn copy(&self, honest: &Tensor) -> Tensor {
        self.adversary
            .map_or(honest.shallow_clone(), |a| a.copy(honest))
    }

    /// The reduction of a merge shard to upload for `honest`.
    pub(crate) fn reduction(&self, honest: &Tensor) -> Tensor {
        self.adversary
            .map_or(honest.shallow_clone(), |a| a.reduction(honest))
    }

    /// A stage peer's activations this copier has not re-signed yet, verified like any input.
    fn peer_output(
        &mut self,
        node: &Node,
        roster: &Roster,
        epoch: Epoch,
        stage: StageIndex,
    ) -> Option<Tensor> {
        let spec = node.spec();
        let me = node.me();
        let peer = roster
            .assignment
            .stage(stage)
            .iter()
            .find(|m| m.hotkey != me)?
            .hotkey;
        let store = roster.store(&peer).ok()?;
        if self.peer_keys.is_empty() {
            let prefix = layout::artifacts(&spec.name, epoch, stage, &peer, Kind::Act);
            let keys = node.rt.block_on(store.list(&prefix)).ok()?;
            self.peer_keys = keys
                .into_iter()
                .filter(|k| !self.copied.contains(k))
                .collect();
        }
        let key = self.peer_keys.pop()?;
        self.copied.insert(key.clone());
        let at = ArtifactId {
            epoch,
            stage,
            kind: Kind::Act,
            id: layout::id_of_key(&key)?,
        };
        node.rt
            .block_on(fetch::boundary(spec, roster, &node.metrics, at, &peer))
            .map(|(_, t)| t)
    }
}

/// What each behaviour does to what the miner uploads.
pub trait Tamper {
    /// Whether it computes at all (a free rider does not).
    fn computes(self) -> bool;
    /// The activations it uploads in place of `honest`; `first` keeps the lazy miner's first
    /// output of the epoch. (`Copier` is handled by the worker: it needs a peer's artifacts.)
    fn tamper(self, honest: &Tensor, first: &mut Option<Tensor>) -> Tensor;
    /// Its copy of a merge shard it uploads in place of `honest`.
    fn copy(self, honest: &Tensor) -> Tensor;
    /// The reduction of a shard it uploads in place of `honest`.
    fn reduction(self, honest: &Tensor) -> Tensor;
}

/// Finite values near the float limit, a quarter of `f32::MAX` with random signs, shaped as
/// `like`: what `merge-extreme` uploads.
fn extreme(like: &Tensor) -> Tensor {
    like.rand_like().lt(0.5).to_kind(tch::Kind::Float) * (f64::from(f32::MAX) / 2.0)
        - f64::from(f32::MAX) / 4.0
}

impl Tamper for Adversary {
    fn computes(self) -> bool {
        self != Adversary::FreeRider
    }

    fn tamper(self, honest: &Tensor, first: &mut Option<Tensor>) -> Tensor {
        match self {
            Adversary::Noise => {
                let (mean, std) = (honest.mean(None), honest.std(true));
                honest.randn_like() * std + mean
            }
            Adversary::Lazy => first.get_or_insert_with(|| honest.copy()).shallow_clone(),
            Adversary::Scaled => honest * 1.1,
            _ => honest.shallow_clone(),
        }
    }

    fn copy(self, honest: &Tensor) -> Tensor {
        if self == Adversary::MergeExtreme {
            extreme(honest)
        } else {
            honest.shallow_clone()
        }
    }

    fn reduction(self, honest: &Tensor) -> Tensor {
        match self {
            Adversary::PoisonMerge => honest * 0.5 + honest.randn_like() * 0.01,
            Adversary::MergeExtreme => extreme(honest),
            _ => honest.shallow_clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_change_what_they_claim_to() {
        let honest = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let mut first = None;
        let scaled = Adversary::Scaled.tamper(&honest, &mut first);
        assert!(scaled.allclose(&(&honest * 1.1), 1e-6, 1e-6, false));
        let lazy = Adversary::Lazy.tamper(&honest, &mut first);
        let later = Adversary::Lazy.tamper(&(&honest + 1.0), &mut first);
        assert!(lazy.equal(&later) && lazy.equal(&honest));
        let noise = Adversary::Noise.tamper(&honest, &mut None);
        assert!(!noise.equal(&honest));
        assert_eq!(noise.size(), honest.size());
        assert!(!Adversary::PoisonMerge.reduction(&honest).equal(&honest));
        assert!(Adversary::Late.reduction(&honest).equal(&honest));
        assert!(Adversary::PoisonMerge.copy(&honest).equal(&honest));
        for t in [
            Adversary::MergeExtreme.copy(&honest),
            Adversary::MergeExtreme.reduction(&honest),
        ] {
            let v = Vec::<f32>::try_from(&t).unwrap();
            assert!(
                v.iter().all(|x| x.is_finite() && x.abs() == f32::MAX / 4.0),
                "{v:?}"
            );
        }
        assert!(!Adversary::FreeRider.computes());
        assert!(Adversary::Noise.computes());
    }
}
