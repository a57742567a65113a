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
    /// Trains and writes as an honest miner does, but publishes a location whose store answers
    /// every reader slowly forever: the response's headers at once, then its body a byte at a
    /// time (a front the local subnet runs before its store). Readers' deadlines cut it off, so
    /// to everyone else its store is as good as down.
    StoreSlow,
    /// Trains and writes as an honest miner does, but its store shows readers different
    /// content: the first read of each activation or gradient gets the honest bytes, every
    /// later read (the validator reads after the downstream miner) another artifact under the
    /// same key, its payload negated and re-sealed with this miner's own hotkey (a front that
    /// holds its signing key).
    StoreEquivocate,
    /// Past stage 0: besides its honest work, signs and uploads a gradient for a sample routed
    /// to a stage peer for every honest one, to be credited with work that is not its own and
    /// push the peer under the low-work rule. Readers keep only ids routed to the producer.
    FakeWork,
    /// Re-commits its announcement every epoch right after the roster's cutoff, with a location
    /// that reads the same store but is spelled differently each time (the region named, then
    /// left to its default). Rosters are read at the cutoff block, so no one's stage moves.
    RosterChurn,
    /// Trains honestly and turns everything published on chain against its peers: with a
    /// peer's published read key it tries to delete and overwrite the peer's artifacts and
    /// merged shards and to pre-create the peer's next keys, tries to pre-create its own
    /// challenge in a validator's store, and writes challenges to peers as if it were a
    /// validator (it holds no permit). Each attempt is logged with its outcome.
    Griefer,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 15] = [
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
        Behaviour::StoreSlow,
        Behaviour::StoreEquivocate,
        Behaviour::FakeWork,
        Behaviour::RosterChurn,
        Behaviour::Griefer,
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
            Behaviour::StoreSlow => "store-slow",
            Behaviour::StoreEquivocate => "store-equivocate",
            Behaviour::FakeWork => "fake-work",
            Behaviour::RosterChurn => "roster-churn",
            Behaviour::Griefer => "griefer",
        }
    }

    /// Whether its store is read through a front that the local subnet runs before it
    /// (`btsubnet` starts one per such miner and passes its endpoint as
    /// `btminer --adversary.front`): `store-slow` and `store-equivocate`.
    pub fn needs_front(self) -> bool {
        matches!(self, Behaviour::StoreSlow | Behaviour::StoreEquivocate)
    }

    /// Whether it needs S3 storage on the local subnet: a front stands before an S3 endpoint,
    /// and a `griefer`'s attacks are on what an S3 read key allows (on one shared directory,
    /// every local process could write every store).
    pub fn needs_s3(self) -> bool {
        self.needs_front() || self == Behaviour::Griefer
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
        let names: std::collections::BTreeSet<&str> =
            Behaviour::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(names.len(), Behaviour::ALL.len(), "names are distinct");
        let fronted: Vec<Behaviour> = Behaviour::ALL
            .into_iter()
            .filter(|b| b.needs_front())
            .collect();
        assert_eq!(fronted, [Behaviour::StoreSlow, Behaviour::StoreEquivocate]);
        assert!(Behaviour::Griefer.needs_s3() && !Behaviour::FakeWork.needs_s3());
    }
}
