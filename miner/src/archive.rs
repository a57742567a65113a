//! The weight versions this miner claimed, kept for validators' spot checks, and the task that
//! answers their challenges (see [`sliver_common::spot_check`]).
//!
//! Every artifact names the BLAKE3 of the weights it was computed with. A validator may ask for
//! any of them once the epoch's samples are done, so each version is written to disk the first
//! time an artifact claims it: `<dir>/claimed/e{epoch}/{hash}`, the flat fp32 LE bytes, written
//! to a temporary name and renamed so that a crash never leaves a truncated version behind.
//! An epoch's versions are removed once every validator's challenge is answered or the answer
//! deadline passed; at most two epochs are on disk (the one training, the one being checked).
//! Disk rather than memory: a stage steps a dozen times an epoch, and a version is a full copy
//! of the stage's weights. A challenged version goes to the miner's store in parts
//! ([`sliver_common::storage::parts`]), read from disk one part at a time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use sliver_common::artifact::Hotkey;
use sliver_common::flat::WeightsHash;
use sliver_common::layout;
use sliver_common::metrics::Metrics;
use sliver_common::spot_check::{self, max_challenge_len};
use sliver_common::storage::{Put, Store, parts};
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::run::RunView;
use tch::Tensor;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The weight versions claimed in the current and the previous epoch, on disk.
pub(crate) struct Archive {
    dir: PathBuf,
    epoch: Epoch,
    kept: HashSet<WeightsHash>,
    /// Off when the run does no spot checks: hashes are still computed, nothing is written.
    enabled: bool,
}

impl Archive {
    /// An archive under `<state dir>/claimed`.
    pub(crate) fn new(state_dir: &Path, enabled: bool) -> Self {
        Self {
            dir: state_dir.join("claimed"),
            epoch: Epoch(0),
            kept: HashSet::new(),
            enabled,
        }
    }

    fn epoch_dir(dir: &Path, epoch: Epoch) -> PathBuf {
        dir.join(format!("e{epoch}"))
    }

    /// Starts `epoch`: versions are kept under it from now on, and epochs before the previous
    /// one are removed.
    pub(crate) fn begin(&mut self, epoch: Epoch) {
        self.epoch = epoch;
        self.kept.clear();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let old = name
                .to_str()
                .and_then(|n| n.strip_prefix('e'))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n.saturating_add(1) < epoch.get());
            if old && let Err(err) = std::fs::remove_dir_all(e.path()) {
                warn!(path = %e.path().display(), error = %err, "could not remove old claimed weights");
            }
        }
    }

    /// The hash of `flat` (what an artifact computed with it claims), kept on disk if it is new.
    pub(crate) fn keep(&mut self, flat: &Tensor) -> Result<WeightsHash> {
        let bytes = sliver_common::flat::flat_bytes(flat)?;
        let hash = WeightsHash::of_bytes(&bytes);
        if self.enabled && self.kept.insert(hash) {
            // A version that cannot be kept fails its spot check later; training goes on.
            if let Err(e) = self.write(&hash, &bytes) {
                warn!(
                    error = format!("{e:#}"),
                    "could not keep a claimed weight version for spot checks"
                );
            }
        }
        Ok(hash)
    }

    fn write(&self, hash: &WeightsHash, bytes: &[u8]) -> Result<()> {
        let dir = Self::epoch_dir(&self.dir, self.epoch);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(hash.to_string());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }

    /// Where the versions claimed in `epoch` are kept, each under its hash in hex.
    pub(crate) fn epoch_dir_of(&self, epoch: Epoch) -> PathBuf {
        Self::epoch_dir(&self.dir, epoch)
    }
}

/// What [`answer`] needs.
pub(crate) struct Answering {
    pub(crate) view: Arc<RunView>,
    pub(crate) store: Store,
    pub(crate) me: Hotkey,
    pub(crate) metrics: Metrics,
    pub(crate) clock: watch::Receiver<u64>,
    pub(crate) cancel: CancellationToken,
    /// The claimed versions of the epoch, by hash: `<dir>/claimed/e{epoch}/{hash}`.
    pub(crate) claimed: PathBuf,
    pub(crate) epoch: Epoch,
    pub(crate) stage: StageIndex,
}

/// Answers every validator's challenge for `epoch` until the schedule's answer deadline
/// ([`Timeline::answer_end`](sliver_common::schedule::Timeline::answer_end)): puts each weight
/// version asked for in this miner's store. Only hotkeys holding a validator permit are
/// answered ([`RunView::validator_stores`]), each by its own loop, concurrently: a validator
/// whose store is slow or down delays no one else's answer.
pub(crate) async fn answer(a: Answering) {
    let validators = match a.view.validator_stores().await {
        Ok(v) => v,
        Err(e) => {
            warn!(
                epoch = %a.epoch,
                error = format!("{e:#}"),
                "cannot list the validators; no spot-check answers this epoch"
            );
            return;
        }
    };
    // Versions already in this miner's store, shared by the loops: each is put once.
    let put: Mutex<HashSet<WeightsHash>> = Mutex::default();
    futures::future::join_all(
        validators
            .iter()
            .map(|(validator, store)| answer_one(&a, validator, store, &put)),
    )
    .await;
    if !a.cancel.is_cancelled() {
        // Nobody will ask for this epoch's versions again.
        if let Err(e) = tokio::fs::remove_dir_all(&a.claimed).await {
            debug!(error = %e, "removing the epoch's claimed weights");
        }
    }
}

/// Answers `validator`'s challenge, read from its `store`, once it appears and until the
/// answer deadline.
async fn answer_one(
    a: &Answering,
    validator: &Hotkey,
    store: &Store,
    put: &Mutex<HashSet<WeightsHash>>,
) {
    let spec = &a.view.spec;
    let deadline = spec.swarm.schedule().timeline(a.epoch).answer_end;
    let key = layout::challenge(&spec.name, a.epoch, &a.me);
    loop {
        if *a.clock.borrow() >= deadline {
            return;
        }
        match store.get(&key, max_challenge_len()).await {
            Ok(Some(bytes)) => match spot_check::parse_challenge(&bytes) {
                Ok(hashes) => {
                    if put_versions(a, validator, &hashes, put).await {
                        info!(
                            epoch = %a.epoch,
                            validator = %validator.short(),
                            versions = hashes.len(),
                            "answered a spot check"
                        );
                        return;
                    }
                }
                Err(e) => {
                    warn!(validator = %validator.short(), error = %e, "ignoring a malformed challenge");
                    return;
                }
            },
            Ok(None) => {}
            Err(e) => {
                debug!(validator = %validator.short(), error = %e, "reading a challenge failed; will retry");
            }
        }
        // Looked for again at the next block: challenges are written on the chain's schedule.
        let mut clock = a.clock.clone();
        tokio::select! {
            () = a.cancel.cancelled() => return,
            changed = clock.changed() => if changed.is_err() { return },
        }
    }
}

/// Puts each version in `hashes` this miner kept in its store, in parts
/// ([`sliver_common::storage::parts`]: one at a time, each retried on its own, so a stage of
/// gigabytes crosses a slow uplink and a failure resends one part); whether all that could be
/// put are (a failed put is resumed on the next round, from the parts already there).
async fn put_versions(
    a: &Answering,
    validator: &Hotkey,
    hashes: &[WeightsHash],
    put: &Mutex<HashSet<WeightsHash>>,
) -> bool {
    let spec = &a.view.spec;
    let mut done = true;
    for hash in hashes {
        if lock(put).contains(hash) {
            continue;
        }
        let path = a.claimed.join(hash.to_string());
        let key = layout::weights_answer(&spec.name, a.epoch, a.stage, &a.me, hash);
        match put_version(&a.store, &a.metrics, &path, &key).await {
            Ok(()) => {
                lock(put).insert(*hash);
            }
            Err(Unanswered::NotKept(e)) => {
                warn!(validator = %validator.short(), hash = %hash.short(), error = %e, "challenged for weights this miner did not keep");
            }
            Err(Unanswered::Taken(part)) => {
                // The key names the weights' hash: other bytes there are not them.
                warn!(
                    key = part,
                    "the answer's key holds other bytes; the challenge cannot be answered"
                );
                lock(put).insert(*hash);
            }
            Err(Unanswered::Put(e)) => {
                warn!(error = %e, "putting challenged weights failed; will retry");
                done = false;
            }
        }
    }
    done
}

/// Why a version was not put.
enum Unanswered {
    /// Not on disk.
    NotKept(std::io::Error),
    /// A part's key holds other bytes.
    Taken(String),
    /// A put failed through its retries.
    Put(sliver_common::storage::StorageError),
}

/// Puts the version on disk at `path` under `key` in `store`, part by part, reading one part at
/// a time.
async fn put_version(
    store: &Store,
    metrics: &Metrics,
    path: &Path,
    key: &str,
) -> Result<(), Unanswered> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(Unanswered::NotKept)?;
    let len = file.metadata().await.map_err(Unanswered::NotKept)?.len();
    for (i, range) in parts::ranges(len, parts::PART_LEN).enumerate() {
        let mut buf = vec![0; (range.end - range.start) as usize];
        file.read_exact(&mut buf)
            .await
            .map_err(Unanswered::NotKept)?;
        let n = buf.len() as u64;
        let part = parts::key(key, i);
        match store.put_once(&part, Bytes::from(buf)).await {
            Ok(Put::Created) => metrics.add_bytes("up", "weights", n),
            Ok(Put::Same) => {}
            Ok(Put::Exists) => return Err(Unanswered::Taken(part)),
            Err(e) => return Err(Unanswered::Put(e)),
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_claimed_version_once_and_prunes_old_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut archive = Archive::new(dir.path(), true);
        archive.begin(Epoch(5));
        let flat = Tensor::from_slice(&[1.0f32, -2.0, 3.5]);
        let hash = archive.keep(&flat).unwrap();
        assert_eq!(hash, sliver_common::flat::hash_flat(&flat).unwrap());
        let path = archive.epoch_dir_of(Epoch(5)).join(hash.to_string());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(WeightsHash::of_bytes(&bytes), hash);
        assert!(
            sliver_common::flat::flat_from_bytes(&bytes)
                .unwrap()
                .equal(&flat)
        );
        assert_eq!(archive.keep(&flat).unwrap(), hash);
        archive.begin(Epoch(6));
        assert!(path.exists(), "the previous epoch is still being checked");
        archive.begin(Epoch(7));
        assert!(!path.exists(), "two epochs back is removed");

        let mut off = Archive::new(dir.path(), false);
        off.begin(Epoch(8));
        off.keep(&flat).unwrap();
        assert!(!off.epoch_dir_of(Epoch(8)).exists());
    }

    /// A version larger than a part goes up as parts that hold it in order; put again (a
    /// resumed answer), nothing is sent twice; a part's key holding other bytes refuses.
    #[tokio::test]
    async fn a_version_goes_up_in_parts_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&sliver_common::storage::StoreConfig::filesystem(
            dir.path().join("store"),
        ))
        .unwrap();
        let metrics = Metrics::new("miner");
        let len = 2 * parts::PART_LEN as usize + 12_345;
        let version: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let path = dir.path().join("version");
        std::fs::write(&path, &version).unwrap();
        assert!(put_version(&store, &metrics, &path, "v").await.is_ok());
        let mut back = Vec::new();
        for (i, range) in parts::ranges(len as u64, parts::PART_LEN).enumerate() {
            let part = store
                .get(&parts::key("v", i), parts::PART_LEN)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(part.len() as u64, range.end - range.start);
            back.extend_from_slice(&part);
        }
        assert_eq!(back, version);
        assert_eq!(store.list("v").await.unwrap().len(), 3);
        assert_eq!(metrics.bytes("up", "weights"), len as u64);
        assert!(put_version(&store, &metrics, &path, "v").await.is_ok());
        assert_eq!(metrics.bytes("up", "weights"), len as u64, "resent a part");
        let other = dir.path().join("other");
        std::fs::write(&other, vec![1u8; len]).unwrap();
        assert!(matches!(
            put_version(&store, &metrics, &other, "v").await,
            Err(Unanswered::Taken(k)) if k == parts::key("v", 0)
        ));
    }
}
