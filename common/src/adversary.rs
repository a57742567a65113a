//! The ways of cheating that the validator's tests and benchmarks play.
//!
//! One list, shared by the miner that plays them (`btminer --adversary`, a hidden flag), the
//! local subnet that starts such miners (`btsubnet --adversary INDEX=NAME`) and the incentives
//! benchmark that simulates them. What each does to the miner's uploads is the miner's business
//! (`miner/src/adversary.rs`); nobody running a real miner gains from any of them.

use std::fmt;
use std::str::FromStr;

/// One way of cheating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behaviour {
    /// Uploads random activations of the real ones' mean and spread.
    Noise,
    /// Computes its first output of the epoch and re-uploads it for every later sample.
    Lazy,
    /// Re-signs a stage peer's activations as its own outputs.
    Copier,
    /// Uploads its outputs times 1.1: subtly wrong.
    Scaled,
    /// Computes nothing (starts no sample, drops every input) but joins the merge.
    FreeRider,
    /// Uploads wrong reductions of the shards it reduces in the merge.
    PoisonMerge,
    /// Never uploads its part of the merge in time.
    Late,
    /// Uploads merge shard copies and reductions of finite values near the float limit (a
    /// quarter of `f32::MAX`, random signs): weights that would overflow every honest miner's
    /// merge were they averaged in. The merge's bound skips them.
    MergeExtreme,
    /// Trains and writes as an honest miner does, but publishes a location its store refuses
    /// every reader (a read key the store does not know, so each read is a 403; on a filesystem
    /// store, a directory that holds nothing): to everyone else its store is down.
    StoreDenial,
    /// Stage 0: starts its samples under another stage-0 miner's sample ids (derived from that
    /// miner's hotkey), to be credited with that miner's paths. Readers re-derive each id's
    /// origin, so its activations are taken by no one and count for nothing.
    IdSquat,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 10] = [
        Behaviour::Noise,
        Behaviour::Lazy,
        Behaviour::Copier,
        Behaviour::Scaled,
        Behaviour::FreeRider,
        Behaviour::PoisonMerge,
        Behaviour::Late,
        Behaviour::MergeExtreme,
        Behaviour::StoreDenial,
        Behaviour::IdSquat,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Noise => "noise",
            Behaviour::Lazy => "lazy",
            Behaviour::Copier => "copier",
            Behaviour::Scaled => "scaled",
            Behaviour::FreeRider => "free-rider",
            Behaviour::PoisonMerge => "poison-merge",
            Behaviour::Late => "late",
            Behaviour::MergeExtreme => "merge-extreme",
            Behaviour::StoreDenial => "store-denial",
            Behaviour::IdSquat => "id-squat",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Behaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
                format!("unknown behaviour {s:?}: one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_wrong_one_lists_them() {
        for b in Behaviour::ALL {
            assert_eq!(b.name().parse::<Behaviour>(), Ok(b));
        }
        let err = "nosie".parse::<Behaviour>().unwrap_err();
        assert!(
            err.contains("nosie") && err.contains("poison-merge"),
            "{err}"
        );
        assert_eq!(
            "merge-extreme".parse::<Behaviour>(),
            Ok(Behaviour::MergeExtreme)
        );
    }
}
