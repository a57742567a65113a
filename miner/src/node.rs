//! The miner's handle on the world outside its stage: the run's view of the chain, its own store
//! and hotkey, its metrics, the chain clock and shutdown.
//!
//! The worker, the merge, the answers to spot checks and the adversaries take a [`Node`] rather
//! than the whole worker, so each sees only the I/O it needs and none reaches back into the
//! training loop.

use std::sync::Arc;

use sliver_common::RunSpec;
use sliver_common::artifact::{Hotkey, Signer};
use sliver_common::metrics::Metrics;
use sliver_common::shutdown::Shutdown;
use sliver_common::storage::Store;
use sliver_subnet::run::RunView;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The I/O a miner's tasks share; cheap to clone.
#[derive(Clone)]
pub struct Node {
    /// The run, as read from chain.
    pub view: Arc<RunView>,
    /// This miner's store.
    pub store: Store,
    /// This miner's hotkey.
    pub signer: Arc<dyn Signer>,
    /// Metrics.
    pub metrics: Metrics,
    /// The latest finalized block.
    pub clock: watch::Receiver<u64>,
    /// The async runtime, for storage I/O from the worker's thread.
    pub rt: Handle,
    /// The process's shutdown: background tasks are spawned on its tracker.
    pub shutdown: Shutdown,
    /// Fires on shutdown.
    pub cancel: CancellationToken,
    /// Puts to this miner's store allowed at once (`--miner.uploads_at_once`): every
    /// `Outbox` takes a permit per put, so the uplink is shared by a
    /// few uploads at a time, each finishing in its share of the time.
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// Set by SIGUSR1 ([`crate::app::listen_for_leave`]): finish the epoch being trained (its
    /// merge, checkpoint, record and spot-check answers), then stop.
    pub leave: Arc<std::sync::atomic::AtomicBool>,
}

impl Node {
    /// The run spec.
    pub fn spec(&self) -> &RunSpec {
        &self.view.spec
    }

    /// This miner's hotkey.
    pub fn me(&self) -> Hotkey {
        self.signer.hotkey()
    }

    /// The latest finalized block.
    pub fn block(&self) -> u64 {
        *self.clock.borrow()
    }

    /// Whether shutdown has begun.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Blocks this thread until the chain reaches `block` or shutdown; false on shutdown (or
    /// when the clock stopped).
    pub fn wait_for_block(&self, block: u64) -> bool {
        let mut clock = self.clock.clone();
        self.rt.block_on(async {
            tokio::select! {
                reached = clock.wait_for(|b| *b >= block) => reached.is_ok(),
                () = self.cancel.cancelled() => false,
            }
        }) && !self.cancelled()
    }
}
