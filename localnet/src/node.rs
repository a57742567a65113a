//! The node around the chain: a transaction pool, a block producer (on an interval, or on demand
//! when an extrinsic arrives), notifications for head subscriptions and transaction watchers, and
//! the state file written after every block that changed something.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, broadcast, mpsc};
use tracing::{debug, error, info};

use super::block::{Hash, Header};
use super::extrinsic::{self, Extrinsic, TxError};
use super::persist;
use super::rpc_stats::RpcStats;
use super::runtime::{Chain, Outcome};

/// What a transaction watcher is told (`author_extrinsicUpdate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxStatus {
    /// In the ready queue.
    Ready,
    /// In a block.
    InBlock(Hash),
    /// In a finalized block.
    Finalized(Hash),
    /// Found invalid when its block was built.
    Invalid,
}

/// Why the pool refuses an extrinsic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolError {
    /// Not valid (see [`TxError`]).
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The same extrinsic is already pooled.
    #[error("Transaction Already Imported")]
    AlreadyImported,
    /// Another pooled transaction has the same signer and nonce.
    #[error("Priority is too low")]
    TooLowPriority,
    /// Larger than any block could hold.
    #[error("Transaction would exhaust the block limits")]
    ExhaustsResources,
    /// The pool is at its count or byte limit.
    #[error("Immediately Dropped")]
    Full,
}

/// How much the transaction pool holds before it refuses more, as a node's pool is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Transactions.
    pub count: usize,
    /// Encoded bytes of all of them.
    pub bytes: usize,
}

impl Default for PoolLimits {
    /// Substrate's default ready pool: 8192 transactions, 20 MiB.
    fn default() -> Self {
        Self {
            count: 8192,
            bytes: 20 * 1024 * 1024,
        }
    }
}

/// The largest extrinsic accepted: a block's length limit for normal extrinsics (75% of the
/// 5 MiB `BlockLength`, as in Substrate's default and subtensor's runtime). Checked before decoding.
pub const MAX_EXTRINSIC_LEN: usize = 5 * 1024 * 1024 * 3 / 4;

struct Pooled {
    xt: Extrinsic,
    len: usize,
    watcher: Option<mpsc::UnboundedSender<TxStatus>>,
}

struct Inner {
    chain: Chain,
    pool: Vec<Pooled>,
}

/// The running chain, shared by the RPC server and the block producer.
pub(crate) struct Node {
    inner: Mutex<Inner>,
    heads: broadcast::Sender<Header>,
    wake: Notify,
    state_file: Option<PathBuf>,
    limits: PoolLimits,
    /// The RPC calls served ([`crate::rpc_stats`]).
    pub(crate) rpc_stats: Arc<RpcStats>,
}

impl Node {
    /// A node over `chain`, saving to `state_file` if given.
    pub(crate) fn new(chain: Chain, state_file: Option<PathBuf>, limits: PoolLimits) -> Arc<Self> {
        let (heads, _) = broadcast::channel(256);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                chain,
                pool: Vec::new(),
            }),
            heads,
            wake: Notify::new(),
            state_file,
            limits,
            rpc_stats: Arc::new(RpcStats::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is a whole block),
        // so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the chain.
    pub(crate) fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        f(&self.lock().chain)
    }

    /// New heads, as they are built (every one is final).
    pub(crate) fn subscribe_heads(&self) -> broadcast::Receiver<Header> {
        self.heads.subscribe()
    }

    /// The nonce `who` should sign next, counting pooled transactions.
    pub(crate) fn next_nonce(&self, who: &[u8; 32]) -> u32 {
        let inner = self.lock();
        let pending = inner
            .pool
            .iter()
            .filter(|p| p.xt.signed.signer == *who)
            .count();
        inner
            .chain
            .account_nonce(who)
            .saturating_add(u32::try_from(pending).unwrap_or(u32::MAX))
    }

    /// Hashes of pooled extrinsics, with their bytes.
    pub(crate) fn pending(&self) -> Vec<Vec<u8>> {
        self.lock()
            .pool
            .iter()
            .map(|p| p.xt.bytes.clone())
            .collect()
    }

    /// Validates and pools an extrinsic; with `watch`, returns a receiver of its status (which
    /// already holds [`TxStatus::Ready`]).
    pub(crate) fn submit(
        &self,
        bytes: &[u8],
        watch: bool,
    ) -> Result<(Hash, Option<mpsc::UnboundedReceiver<TxStatus>>), PoolError> {
        if bytes.len() > MAX_EXTRINSIC_LEN {
            return Err(PoolError::ExhaustsResources);
        }
        let xt = extrinsic::decode(bytes)?;
        let mut inner = self.lock();
        let pooled_bytes: usize = inner.pool.iter().map(|p| p.len).sum();
        if inner.pool.len() >= self.limits.count
            || pooled_bytes.saturating_add(bytes.len()) > self.limits.bytes
        {
            return Err(PoolError::Full);
        }
        if inner.pool.iter().any(|p| p.xt.hash == xt.hash) {
            return Err(PoolError::AlreadyImported);
        }
        let signer = xt.signed.signer;
        if inner
            .pool
            .iter()
            .any(|p| p.xt.signed.signer == signer && p.xt.signed.nonce == xt.signed.nonce)
        {
            return Err(PoolError::TooLowPriority);
        }
        let pending = inner
            .pool
            .iter()
            .filter(|p| p.xt.signed.signer == signer)
            .count();
        let valid = inner
            .chain
            .validate(&xt, u32::try_from(pending).unwrap_or(u32::MAX))?;
        let hash = xt.hash;
        let (watcher, rx) = if watch {
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(TxStatus::Ready);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        debug!(hash = %hex::encode(hash), nonce = valid.nonce, "extrinsic pooled");
        inner.pool.push(Pooled {
            xt,
            len: bytes.len(),
            watcher,
        });
        drop(inner);
        self.wake.notify_one();
        Ok((hash, rx))
    }

    /// Builds one block from the pool.
    ///
    /// With a state file, the block's state is written (fsynced) before anyone hears of the
    /// block: watchers see `InBlock`/`Finalized` and subscribers the head only once it is durable.
    ///
    /// # Errors
    /// When the state file cannot be written; the block is then not announced.
    pub(crate) fn produce(&self) -> Result<(), persist::PersistError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        let mut pooled = std::mem::take(&mut inner.pool);
        // Per signer, nonces in order; otherwise first come, first served.
        pooled.sort_by_key(|p| p.xt.signed.nonce);
        let xts: Vec<Extrinsic> = pooled.iter().map(|p| p.xt.clone()).collect();
        let (outcomes, changed) = inner.chain.build_block(&xts, now);
        let head = inner.chain.head_block().header.clone();
        let hash = head.hash();
        let snapshot = match (&self.state_file, changed) {
            (Some(_), true) => Some(persist::snapshot(&inner.chain)),
            _ => None,
        };
        drop(inner);
        if let (Some(path), Some(bytes)) = (&self.state_file, snapshot) {
            persist::write(path, &bytes)?;
        }
        for (p, outcome) in pooled.iter().zip(&outcomes) {
            let Some(w) = &p.watcher else { continue };
            match outcome {
                Outcome::Included(index) => {
                    debug!(tx = %hex::encode(p.xt.hash), index, "extrinsic included");
                    let _ = w.send(TxStatus::InBlock(hash));
                    let _ = w.send(TxStatus::Finalized(hash));
                }
                Outcome::Invalid(e) => {
                    debug!(tx = %hex::encode(p.xt.hash), error = %e, "extrinsic dropped");
                    let _ = w.send(TxStatus::Invalid);
                }
            }
        }
        debug!(number = head.number, hash = %hex::encode(hash), extrinsics = outcomes.len(), "block built");
        let _ = self.heads.send(head);
        Ok(())
    }

    /// Saves the state file now (at shutdown).
    pub(crate) fn save(&self) {
        if let Some(path) = &self.state_file {
            let bytes = persist::snapshot(&self.lock().chain);
            match persist::write(path, &bytes) {
                Ok(()) => info!(path = %path.display(), "state saved"),
                Err(e) => error!(error = %e, "saving the state file failed"),
            }
        }
    }

    /// Produces blocks every `block_time`, or with `Duration::ZERO` whenever extrinsics arrive,
    /// until `stop` resolves.
    ///
    /// # Errors
    /// The first block that could not be made durable: production stops there.
    pub(crate) async fn run_producer(
        self: Arc<Self>,
        block_time: Duration,
        stop: Arc<Notify>,
    ) -> Result<(), persist::PersistError> {
        if block_time.is_zero() {
            loop {
                tokio::select! {
                    () = stop.notified() => break,
                    () = self.wake.notified() => {
                        while !self.lock().pool.is_empty() {
                            self.produce()?;
                        }
                    }
                }
            }
        } else {
            let mut tick = tokio::time::interval(block_time);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = stop.notified() => break,
                    _ = tick.tick() => self.produce()?,
                }
            }
        }
        Ok(())
    }
}
