//! The bucket's map: every storage key the project writes or reads is built here.
//!
//! Each participant writes only to its own store; the others read it at the location its
//! commitment names. Within a store, the keys are:
//!
//! ```text
//! specs/{spec hash}.toml                              the run spec (the subnet owner's store)
//! runs/{run}/e{epoch}/s{stage}/{producer}/act/{id}    activations of sample `id`
//! runs/{run}/e{epoch}/s{stage}/{producer}/grad/{id}   input gradients of sample `id`
//! runs/{run}/e{epoch}/s{stage}/{producer}/shard/{id}  the producer's copy of merge shard `id`
//! runs/{run}/e{epoch}/s{stage}/{producer}/merged/{id} the producer's reduction of shard `id`
//! runs/{run}/e{epoch}/s{stage}/{miner}/weights/{hash}/part/{i}
//!                                                     a spot-check answer: the weights that
//!                                                     hash to `hash` (BLAKE3, hex), in parts
//!                                                     (`storage::parts`)
//! runs/{run}/challenges/e{epoch}/{miner}              a validator's challenge to `miner`
//!                                                     (the validator's store)
//! runs/{run}/scores/epoch={epoch}/part.parquet        a validator's score table
//! runs/{run}/paths/epoch={epoch}/part.parquet         a validator's path table (CLASP)
//! probes/{hotkey}/{nonce}                             a write probe through the published
//!                                                     location: must fail (removed if not)
//! scratch/{hotkey}/{nonce}/...                        `doctor`'s speed test object (deleted
//!                                                     once read back)
//! ```
//!
//! Every key names its one writer (the producer, the miner or the validator owns the store), so
//! write-once puts never race. Hotkeys are lower-case hex; a shard id packs `count << 32 | index`
//! (see [`artifact::shard_id`](crate::artifact::shard_id)). The score and path tables sit in
//! `epoch=N` folders so that Parquet readers see the epoch as a partition.
//!
//! Each owner deletes its own expired folders ([`crate::gc`]): a miner its
//! [`producer_folder`]s, a validator its [`challenges`]; the score and path tables are the record
//! and are never deleted.

use crate::artifact::{ArtifactId, Hotkey, Kind};
use crate::assignment::StageIndex;
use crate::flat::WeightsHash;
use crate::schedule::Epoch;

/// The key of a published run spec, by the BLAKE3 of its TOML.
pub fn spec(hash: &[u8; 32]) -> String {
    format!("specs/{}.toml", hex::encode(hash))
}

/// The key of `producer`'s artifact `at`.
pub fn artifact(run: &str, producer: &Hotkey, at: ArtifactId) -> String {
    format!(
        "{}{}",
        artifacts(run, at.epoch, at.stage, producer, at.kind),
        at.id
    )
}

/// The folder under which `producer` puts its artifacts of `kind` for (`epoch`, `stage`).
pub fn artifacts(
    run: &str,
    epoch: Epoch,
    stage: StageIndex,
    producer: &Hotkey,
    kind: Kind,
) -> String {
    format!("runs/{run}/e{epoch}/s{stage}/{producer}/{}/", kind.as_str())
}

/// The folder of everything `producer` puts for (`epoch`, `stage`) in its own store: its
/// artifacts of every kind and its spot-check answers ([`weights_answer`]). What its garbage
/// collection deletes once the epoch expired ([`crate::gc`]).
pub fn producer_folder(run: &str, epoch: Epoch, stage: StageIndex, producer: &Hotkey) -> String {
    format!("runs/{run}/e{epoch}/s{stage}/{producer}/")
}

/// The folder that holds a run's epoch folders (`e{epoch}/`, and beside them `challenges/`,
/// `scores/` and `paths/`): see [`epoch_of_folder`].
pub fn run_folder(run: &str) -> String {
    format!("runs/{run}/")
}

/// The folder of a validator's challenges for `epoch`, in its store.
pub fn challenges(run: &str, epoch: Epoch) -> String {
    format!("runs/{run}/challenges/e{epoch}/")
}

/// The folder that holds a validator's challenge folders, one per epoch (`e{epoch}/`).
pub fn challenge_folders(run: &str) -> String {
    format!("runs/{run}/challenges/")
}

/// The epoch an epoch folder's name (`e{epoch}`, as listed under [`run_folder`] or
/// [`challenge_folders`]) names; `None` for any other name (`challenges`, `scores`, `paths`).
pub fn epoch_of_folder(name: &str) -> Option<Epoch> {
    let digits = name.strip_prefix('e')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Epoch)
}

/// The id at the end of a key listed under [`artifacts`], if it is one.
pub fn id_of_key(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.parse().ok()
}

/// The key under which `miner` answers a challenge for the weights hashing to `hash`, in its own
/// store: the weights are kept in parts under it ([`crate::storage::parts`]).
pub fn weights_answer(
    run: &str,
    epoch: Epoch,
    stage: StageIndex,
    miner: &Hotkey,
    hash: &WeightsHash,
) -> String {
    format!("runs/{run}/e{epoch}/s{stage}/{miner}/weights/{hash}")
}

/// The key of the challenge to `miner` for `epoch`, in the validator's store.
pub fn challenge(run: &str, epoch: Epoch, miner: &Hotkey) -> String {
    format!("runs/{run}/challenges/e{epoch}/{miner}")
}

/// The key a participant's published location must fail to write
/// ([`Store::verify_published`](crate::storage::Store::verify_published)).
pub fn probe(participant: &Hotkey, nonce: u64) -> String {
    format!("probes/{participant}/{nonce}")
}

/// The folder of `doctor`'s test objects, in the participant's own store (deleted once read
/// back).
pub fn scratch(participant: &Hotkey, nonce: u64) -> String {
    format!("scratch/{participant}/{nonce}")
}

/// The key of epoch `epoch`'s score table, in the validator's store.
pub fn scores(run: &str, epoch: Epoch) -> String {
    format!("runs/{run}/scores/epoch={epoch}/part.parquet")
}

/// The key of epoch `epoch`'s path table, in the validator's store.
pub fn paths(run: &str, epoch: Epoch) -> String {
    format!("runs/{run}/paths/epoch={epoch}/part.parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_matches_the_map() {
        let h = Hotkey([0xab; 32]);
        let hx = "ab".repeat(32);
        let at = ArtifactId {
            epoch: Epoch(3),
            stage: StageIndex(1),
            kind: Kind::Grad,
            id: 42,
        };
        assert_eq!(artifact("r", &h, at), format!("runs/r/e3/s1/{hx}/grad/42"));
        assert!(artifact("r", &h, at).starts_with(&artifacts(
            "r",
            Epoch(3),
            StageIndex(1),
            &h,
            Kind::Grad
        )));
        assert_eq!(id_of_key(&artifact("r", &h, at)), Some(42));
        assert_eq!(id_of_key("runs/r/e3/s1/x/grad/"), None);
        assert_eq!(
            weights_answer("r", Epoch(3), StageIndex(1), &h, &WeightsHash([1; 32])),
            format!("runs/r/e3/s1/{hx}/weights/{}", "01".repeat(32))
        );
        assert_eq!(
            challenge("r", Epoch(3), &h),
            format!("runs/r/challenges/e3/{hx}")
        );
        assert_eq!(scores("r", Epoch(3)), "runs/r/scores/epoch=3/part.parquet");
        assert_eq!(paths("r", Epoch(3)), "runs/r/paths/epoch=3/part.parquet");
        assert_eq!(spec(&[0; 32]), format!("specs/{}.toml", "00".repeat(32)));
        assert_eq!(probe(&h, 7), format!("probes/{hx}/7"));
        let folder = producer_folder("r", Epoch(3), StageIndex(1), &h);
        assert!(artifact("r", &h, at).starts_with(&folder));
        assert!(
            weights_answer("r", Epoch(3), StageIndex(1), &h, &WeightsHash([1; 32]))
                .starts_with(&folder)
        );
        assert!(folder.starts_with(&run_folder("r")));
        assert!(challenge("r", Epoch(3), &h).starts_with(&challenges("r", Epoch(3))));
        assert!(challenges("r", Epoch(3)).starts_with(&challenge_folders("r")));
    }

    #[test]
    fn only_epoch_folders_name_an_epoch() {
        assert_eq!(epoch_of_folder("e0"), Some(Epoch(0)));
        assert_eq!(epoch_of_folder("e12"), Some(Epoch(12)));
        for other in [
            "challenges",
            "scores",
            "paths",
            "e",
            "e-1",
            "e+1",
            "e1x",
            "x1",
            "epoch=3",
        ] {
            assert_eq!(epoch_of_folder(other), None, "{other}");
        }
    }

    #[test]
    fn a_miners_answers_never_fall_under_its_artifact_folders() {
        let h = Hotkey([7; 32]);
        let answer = weights_answer("r", Epoch(0), StageIndex(0), &h, &WeightsHash([9; 32]));
        for kind in Kind::ALL {
            assert!(!answer.starts_with(&artifacts("r", Epoch(0), StageIndex(0), &h, kind)));
        }
    }
}
