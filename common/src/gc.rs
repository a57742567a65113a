//! Garbage collection: each participant deletes, from its own store, what no reader needs any
//! more. Nobody deletes from anyone else's store (a published location only reads).
//!
//! What is deleted, by whom ([`Owner`]):
//!
//! - a **miner**, its folders of expired epochs, one per stage
//!   ([`layout::producer_folder`]): activations, gradients, merge shards, reductions and
//!   spot-check answers;
//! - a **validator**, its challenges of expired epochs ([`layout::challenges`]).
//!
//! The run spec, the score and path tables (the run's record) and anything outside these folders
//! are never deleted.
//!
//! # When an epoch expires
//!
//! At a block of epoch `C`, a store keeps the epochs from `C − KEPT_EPOCHS` on
//! ([`oldest_kept`]). Nothing reads older ones, by the timeline ([`crate::schedule`]); with
//! `E` = `swarm.epoch_blocks` and `M` = `swarm.merge_blocks` (`M < E`, checked by the spec):
//!
//! - epoch `x`'s own training, merge and spot checks end by its `answer_end`, `M` blocks into
//!   `x + 1`; the validator's audit of `x` ends by its `audit_end`, also inside `x + 1`;
//! - a miner that joins in epoch `x + 1` (new, moved to another stage, or restarted) reads the
//!   newest merge, `x`'s; one that joins in `x + 2` reads `x + 1`'s, and `x`'s only when `x + 1`'s
//!   does not assemble (its reductions are missing or disagree past repair): it tries older
//!   merges in turn. That fallback is what `KEPT_EPOCHS` = 2 keeps (1 would already cover every
//!   deadline of the timeline).
//!
//! So epoch `x` is deleted from epoch `x + 3` on, a whole epoch after its last deadline. The
//! collection runs once an epoch, after the miner's merge or the validator's scoring, as a task
//! of its own, so it never holds the epoch's work up; what it costs an epoch is a listing and a
//! delete batch per stage of the epoch that expired (a validator: one of each). After a gap
//! (the first collection of a process, or epochs in which none ran) one listing of the run's
//! epoch folders finds what expired in between. A store that refuses deletes, or fails, costs a
//! warning: the epoch is not tried again by this process (its next start finds it again).
//!
//! A stage whose merges stopped (no complete pipeline) runs no collection either, so its last
//! merge stays for a joiner; once merges resume, merges older than two epochs are deleted.

use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::artifact::Hotkey;
use crate::assignment::StageIndex;
use crate::layout;
use crate::metrics::Metrics;
use crate::schedule::{Epoch, Schedule};
use crate::storage::{StorageError, Store};

/// How many epochs before the current one a store keeps. Two: the previous epoch's merge, spot
/// checks and audit all end within the current epoch's first `swarm.merge_blocks` blocks (its
/// `answer_end`), and a joiner reads the previous epoch's merge or, when that one does not
/// assemble, the one before (see the [module docs](self) for the timeline behind it).
pub const KEPT_EPOCHS: u64 = 2;

/// The oldest epoch a store keeps at `block`: [`KEPT_EPOCHS`] before the epoch `block` falls in.
/// Everything older may be deleted by its owner.
pub fn oldest_kept(schedule: &Schedule, block: u64) -> Epoch {
    Epoch(schedule.epoch_of(block).get().saturating_sub(KEPT_EPOCHS))
}

/// Whose objects a [`Collector`] deletes from the store it holds (its owner's own).
#[derive(Debug, Clone)]
pub enum Owner {
    /// A miner: its folder of every stage, for each expired epoch.
    Miner {
        /// The miner's hotkey: in a store shared with others (a local subnet), their folders
        /// stand.
        hotkey: Hotkey,
        /// The run's stage count: a miner may have held any stage.
        stages: usize,
    },
    /// A validator: its challenges of each expired epoch.
    Validator,
}

/// What one [`Collector::collect`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The expired epochs swept, in order.
    pub swept: Vec<Epoch>,
    /// Objects deleted.
    pub deleted: u64,
    /// The expired epochs whose sweep failed (each a warning): not tried again by this
    /// collector.
    pub failed: Vec<Epoch>,
}

/// One owner's garbage collection over its store; remembers how far it has swept.
#[derive(Debug)]
pub struct Collector {
    store: Store,
    run: String,
    owner: Owner,
    metrics: Metrics,
    /// Every epoch before this one has been swept (or tried) by this collector; `None` until
    /// its first collection, which finds expired folders by listing them.
    swept_below: Option<Epoch>,
}

impl Collector {
    /// A collector of `owner`'s objects of run `run` in `store` (the owner's own), counting what
    /// it deletes in `metrics`.
    pub fn new(store: Store, run: &str, owner: Owner, metrics: Metrics) -> Self {
        Self {
            store,
            run: run.to_string(),
            owner,
            metrics,
            swept_below: None,
        }
    }

    /// Deletes this owner's folders of every epoch before `keep_from` ([`oldest_kept`]) not yet
    /// swept. Never fails: a listing or delete that fails is a warning.
    pub async fn collect(&mut self, keep_from: Epoch) -> Collected {
        let mut done = Collected::default();
        let Some(expired) = self.expired(keep_from).await else {
            return done;
        };
        for epoch in expired {
            match self.sweep(epoch).await {
                Ok(n) => {
                    done.swept.push(epoch);
                    done.deleted += n;
                }
                Err(e) => {
                    warn!(
                        %epoch,
                        store = %self.store.config(),
                        error = %e,
                        "storage gc: could not delete an expired epoch's objects; they stay"
                    );
                    done.failed.push(epoch);
                }
            }
        }
        self.swept_below = Some(self.swept_below.map_or(keep_from, |b| b.max(keep_from)));
        self.metrics.add_deleted(done.deleted);
        if done.swept.is_empty() && done.failed.is_empty() {
            debug!(%keep_from, "storage gc: nothing expired");
        } else {
            info!(
                %keep_from,
                swept = ?done.swept,
                deleted = done.deleted,
                failed = ?done.failed,
                "storage gc: deleted the expired epochs' objects"
            );
        }
        done
    }

    /// The epochs before `keep_from` still to sweep: the one after the last collection's, or,
    /// after a gap, those whose folders a listing finds. `None` when that listing fails.
    async fn expired(&self, keep_from: Epoch) -> Option<Vec<Epoch>> {
        match self.swept_below {
            Some(below) if below >= keep_from => Some(Vec::new()),
            Some(below) if below.next() == keep_from => Some(vec![below]),
            _ => {
                let parent = match self.owner {
                    Owner::Miner { .. } => layout::run_folder(&self.run),
                    Owner::Validator => layout::challenge_folders(&self.run),
                };
                match self.store.list_folders(&parent).await {
                    Ok(names) => {
                        let mut epochs: Vec<Epoch> = names
                            .iter()
                            .filter_map(|n| layout::epoch_of_folder(n))
                            .filter(|e| *e < keep_from)
                            .collect();
                        epochs.sort_unstable();
                        Some(epochs)
                    }
                    Err(e) => {
                        warn!(
                            store = %self.store.config(),
                            error = %e,
                            "storage gc: cannot list the epoch folders; trying again next epoch"
                        );
                        None
                    }
                }
            }
        }
    }

    /// Deletes this owner's folders of `epoch`; stops at the first failure.
    async fn sweep(&self, epoch: Epoch) -> Result<u64, StorageError> {
        match &self.owner {
            Owner::Miner { hotkey, stages } => {
                let mut deleted = 0;
                for stage in StageIndex::all(*stages) {
                    let folder = layout::producer_folder(&self.run, epoch, stage, hotkey);
                    deleted += self.store.delete_prefix(&folder).await?;
                }
                Ok(deleted)
            }
            Owner::Validator => {
                self.store
                    .delete_prefix(&layout::challenges(&self.run, epoch))
                    .await
            }
        }
    }
}

/// Runs one collection of `collector` up to `keep_from`, unless the previous one is still
/// running: then this one is skipped (the next one sweeps what it would have). For a task of
/// its own, off the epoch's work.
pub async fn collect_once(collector: Arc<Mutex<Collector>>, keep_from: Epoch) {
    let Ok(mut collector) = collector.try_lock() else {
        debug!(%keep_from, "storage gc: the previous collection is still running; skipped");
        return;
    };
    collector.collect(keep_from).await;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::artifact::{ArtifactId, Kind};
    use crate::flat::WeightsHash;
    use crate::spec::SwarmSpec;
    use crate::storage::StoreConfig;
    use crate::testing::S3Server;

    const RUN: &str = "r";
    const STAGES: usize = 2;
    const ME: Hotkey = Hotkey([0xaa; 32]);
    const PEER: Hotkey = Hotkey([0xbb; 32]);

    fn schedule(epoch_blocks: u64, merge_blocks: u64) -> Schedule {
        Schedule::new(&SwarmSpec {
            epoch_blocks,
            merge_blocks,
            ..SwarmSpec::default()
        })
    }

    /// The last block at which anyone reads epoch `x`'s objects: its own deadlines (merge,
    /// answers by `answer_end`, the audit by `audit_end`), and a joiner in `x + 2` falling back past
    /// `x + 1`'s merge to `x`'s, which may read until `x + 3` begins.
    fn last_read(s: &Schedule, x: Epoch) -> u64 {
        let t = s.timeline(x);
        let joiner_fallback = s.epoch_start(x.next().next().next()) - 1;
        t.answer_end
            .max(t.assemble_end)
            .max(t.audit_end)
            .max(joiner_fallback)
    }

    #[test]
    fn no_epoch_expires_while_a_reader_may_need_it() {
        for epoch_blocks in [2, 3, 10, 20, 100, 240] {
            // Every merge window the spec accepts: 0 < M < E.
            for merge_blocks in 1..epoch_blocks {
                let s = schedule(epoch_blocks, merge_blocks);
                for x in [0, 1, 5, 1000].map(Epoch) {
                    let last = last_read(&s, x);
                    // `x` is kept at every block up to its last read...
                    assert!(
                        oldest_kept(&s, last) <= x,
                        "E={epoch_blocks} M={merge_blocks}"
                    );
                    // ...and expires the block after (nothing is kept longer than needed).
                    assert!(
                        oldest_kept(&s, last + 1) > x,
                        "E={epoch_blocks} M={merge_blocks}"
                    );
                }
            }
        }
        assert_eq!(oldest_kept(&schedule(240, 40), 5 * 240 + 7), Epoch(3));
        assert_eq!(oldest_kept(&schedule(240, 40), 239), Epoch(0));
    }

    /// Every kind of object a participant writes, for epochs 1..=5: this miner's and a peer's
    /// artifacts and answers (a shared store, as on the local subnet), the validator's
    /// challenges and its tables.
    async fn fill(store: &Store) -> Vec<(Epoch, String)> {
        let mut keys = Vec::new();
        for e in (1..=5).map(Epoch) {
            for producer in [ME, PEER] {
                for stage in StageIndex::all(STAGES) {
                    for kind in Kind::ALL {
                        let at = ArtifactId {
                            epoch: e,
                            stage,
                            kind,
                            id: 7,
                        };
                        keys.push((e, layout::artifact(RUN, &producer, at)));
                    }
                    let hash = WeightsHash([3; 32]);
                    keys.push((e, layout::weights_answer(RUN, e, stage, &producer, &hash)));
                }
                keys.push((e, layout::challenge(RUN, e, &producer)));
            }
            keys.push((e, layout::scores(RUN, e)));
            keys.push((e, layout::paths(RUN, e)));
        }
        keys.push((Epoch(0), layout::spec(&[1; 32])));
        for (_, key) in &keys {
            store.put_once(key, Bytes::from_static(b"x")).await.unwrap();
        }
        keys
    }

    fn is_mine(key: &str) -> bool {
        key.contains(&format!("/{ME}/"))
    }

    fn is_challenge(key: &str) -> bool {
        key.contains("/challenges/")
    }

    /// Fills `store`, collects at epoch 5 as the miner and as the validator, and checks that
    /// exactly the expired objects of each are gone.
    async fn collects_exactly_the_expired(store: Store) {
        let keys = fill(&store).await;
        let metrics = Metrics::new("miner");
        let keep_from = oldest_kept(&schedule(20, 4), 5 * 20 + 3);
        assert_eq!(keep_from, Epoch(3));
        let mut miner = Collector::new(
            store.clone(),
            RUN,
            Owner::Miner {
                hotkey: ME,
                stages: STAGES,
            },
            metrics.clone(),
        );
        let done = miner.collect(keep_from).await;
        // Per epoch and stage: four artifact kinds and an answer.
        let per_epoch = (STAGES * (Kind::ALL.len() + 1)) as u64;
        assert_eq!(
            done,
            Collected {
                swept: vec![Epoch(1), Epoch(2)],
                deleted: 2 * per_epoch,
                failed: Vec::new(),
            }
        );
        assert_eq!(metrics.deleted(), 2 * per_epoch);
        let mut validator = Collector::new(store.clone(), RUN, Owner::Validator, metrics.clone());
        let done = validator.collect(keep_from).await;
        // Two challenges an epoch (one to each miner).
        assert_eq!(
            (done.swept.clone(), done.deleted),
            (vec![Epoch(1), Epoch(2)], 4)
        );

        let left = store.list("").await.unwrap();
        for (epoch, key) in &keys {
            let expired = *epoch < keep_from && (is_mine(key) || is_challenge(key));
            assert_eq!(left.contains(key), !expired, "{key} (epoch {epoch})");
        }
        assert_eq!(left.len(), keys.len() - 2 * per_epoch as usize - 4);

        // The next epoch: only epoch 3 expires, found without a listing of the run.
        assert_eq!(miner.collect(Epoch(4)).await.swept, vec![Epoch(3)]);
        assert_eq!(validator.collect(Epoch(4)).await.swept, vec![Epoch(3)]);
        // Again at the same epoch: nothing to do.
        assert_eq!(miner.collect(Epoch(4)).await, Collected::default());
        let left = store.list("").await.unwrap();
        for (epoch, key) in &keys {
            let expired = *epoch < Epoch(4) && (is_mine(key) || is_challenge(key));
            assert_eq!(left.contains(key), !expired, "{key} (epoch {epoch})");
        }
        // The score and path tables of every epoch stand.
        for e in (1..=5).map(Epoch) {
            assert!(left.contains(&layout::scores(RUN, e)));
            assert!(left.contains(&layout::paths(RUN, e)));
        }
    }

    #[tokio::test]
    async fn the_filesystem_store_loses_exactly_the_expired_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::filesystem(dir.path())).unwrap();
        collects_exactly_the_expired(store.clone()).await;
        // Emptied folders go too: the miner's own folder of an expired epoch, the validator's
        // challenge folder.
        let stage0 = format!("runs/{RUN}/e1/s0");
        assert_eq!(
            store.list_folders(&stage0).await.unwrap(),
            vec![PEER.to_string()]
        );
        let challenges = store
            .list_folders(&layout::challenge_folders(RUN))
            .await
            .unwrap();
        assert_eq!(challenges, ["e4", "e5"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_s3_store_loses_exactly_the_expired_epochs() {
        let server = S3Server::spawn("sliver");
        let store = Store::open(&server.config("local")).unwrap();
        collects_exactly_the_expired(store).await;
    }

    /// Through its published (read-only) location the store refuses every delete: the
    /// collection warns, counts nothing and deletes nothing, and does not try those epochs
    /// again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_refuses_deletes_only_warns() {
        let server = S3Server::spawn("sliver");
        let store = Store::open(&server.config("local")).unwrap();
        let keys = fill(&store).await;
        let location = server.config("local").to_location().unwrap();
        let read_only = Store::open(&StoreConfig::from_location(&location).unwrap()).unwrap();
        let metrics = Metrics::new("miner");
        let owners = [
            Owner::Miner {
                hotkey: ME,
                stages: STAGES,
            },
            Owner::Validator,
        ];
        for owner in owners {
            let mut gc = Collector::new(read_only.clone(), RUN, owner, metrics.clone());
            let done = gc.collect(Epoch(3)).await;
            assert_eq!(
                done,
                Collected {
                    swept: Vec::new(),
                    deleted: 0,
                    failed: vec![Epoch(1), Epoch(2)],
                }
            );
            assert_eq!(gc.collect(Epoch(3)).await, Collected::default());
        }
        assert!(read_only.delete_prefix("runs").await.is_err());
        assert_eq!(metrics.deleted(), 0);
        let left = store.list("").await.unwrap();
        assert_eq!(left.len(), keys.len());
    }

    /// A store that cannot even be listed: the collection warns and tries the listing again
    /// next time.
    #[tokio::test]
    async fn an_unreachable_store_only_warns() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let config = StoreConfig {
            endpoint: Some(endpoint),
            timeouts: crate::storage::Timeouts {
                connect: std::time::Duration::from_millis(200),
                request: std::time::Duration::from_secs(1),
                backoff: std::time::Duration::from_millis(1),
            },
            ..StoreConfig::at("s3://bkt")
        };
        let store = Store::open(&config).unwrap();
        let collector = Arc::new(Mutex::new(Collector::new(
            store,
            RUN,
            Owner::Validator,
            Metrics::new("validator"),
        )));
        collect_once(collector.clone(), Epoch(3)).await;
        let gc = collector.lock().await;
        assert_eq!(gc.swept_below, None, "the listing is tried again");
    }
}
