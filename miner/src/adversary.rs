//! Adversarial behaviours, for the validator's tests and the incentives benchmark only.
//!
//! `btminer --adversary NAME` (a hidden flag) makes the miner cheat in one way while looking
//! like any other miner: it signs what it uploads with its own hotkey and keeps every format
//! right, so that only the validator's checks can tell. Nobody running a real miner gains from
//! these: each is what the validator must catch and pay nothing for.

use tch::Tensor;

pub use sliver_common::adversary::Behaviour as Adversary;

/// What each behaviour does to what the miner uploads.
pub trait Tamper {
    /// Whether it computes at all (a free rider does not).
    fn computes(self) -> bool;
    /// The activations it uploads in place of `honest`; `first` keeps the lazy miner's first
    /// output of the epoch. (`Copier` is handled by the worker: it needs a peer's artifacts.)
    fn tamper(self, honest: &Tensor, first: &mut Option<Tensor>) -> Tensor;
    /// The reduction of a shard it uploads in place of `honest`.
    fn reduction(self, honest: &Tensor) -> Tensor;
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

    fn reduction(self, honest: &Tensor) -> Tensor {
        if self == Adversary::PoisonMerge {
            honest * 0.5 + honest.randn_like() * 0.01
        } else {
            honest.shallow_clone()
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
        assert!(!Adversary::FreeRider.computes());
        assert!(Adversary::Noise.computes());
    }
}
