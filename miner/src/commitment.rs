//! What this miner's commitment says after its start: the work rate it measured and the stage it
//! trains ([`crate::rate`]), and the epochs it will be away ([`crate::availability`]).
//!
//! Each change is a transaction, sent on the runtime off the epoch's work, one at a time: a
//! change is made to the announcement the chain holds after the previous one, so a new rate and
//! a new absence never overwrite each other. A failure is a warning; the next epoch offers the
//! change again.

use std::sync::Arc;

use sliver_chain::wallet::Keypair;
use sliver_common::assignment::Declared;
use sliver_common::{Epoch, StageIndex};
use sliver_subnet::announce::Announcement;
use sliver_subnet::run;
use tokio::sync::Mutex;
use tracing::warn;

use crate::node::Node;
use crate::rate::worth_announcing;

/// Keeps this miner's announcement.
pub struct Announcer {
    keypair: Keypair,
    announced: Arc<Mutex<Announcement>>,
}

impl Announcer {
    /// An announcer for the miner whose hotkey is `keypair` and whose commitment holds
    /// `announced`.
    pub fn new(keypair: Keypair, announced: Announcement) -> Self {
        Self {
            keypair,
            announced: Arc::new(Mutex::new(announced)),
        }
    }

    /// Announces the rate `measured` on `stage` when it is worth it ([`worth_announcing`], or
    /// another stage) against what is announced, or else against `declared` (what the roster
    /// holds for it).
    pub fn offer(&self, node: &Node, declared: Declared, (measured, stage): (f64, StageIndex)) {
        self.change(node, "work rate", move |current| {
            let moved = current.stage.or(declared.stage) != Some(stage);
            (moved || worth_announcing(current.rate.or(declared.rate), measured)).then(|| {
                Announcement {
                    rate: Some(measured),
                    stage: Some(stage),
                    ..current.clone()
                }
            })
        });
    }

    /// Announces the epochs (first, last) this miner will be away, or that it will not be.
    /// Unless `exact`, an absence announced from the same first epoch is kept: the last is an
    /// estimate a day ahead, which moves a little with the chain's pace each epoch, and is
    /// announced exactly as the absence begins.
    pub fn away(&self, node: &Node, away: Option<(Epoch, Epoch)>, exact: bool) {
        self.change(node, "epochs away", move |current| {
            let close = match (current.away, away) {
                (Some((a, _)), Some((b, _))) => !exact && a == b,
                (a, b) => a == b,
            };
            (current.away != away && !close).then(|| Announcement {
                away,
                ..current.clone()
            })
        });
    }

    /// Announces what `next` makes of the current announcement, if anything, after the changes
    /// offered before it.
    fn change<F>(&self, node: &Node, what: &'static str, next: F)
    where
        F: FnOnce(&Announcement) -> Option<Announcement> + Send + 'static,
    {
        let (client, netuid) = (node.view.client.clone(), node.view.netuid);
        let (keypair, announced) = (self.keypair.clone(), self.announced.clone());
        let cancel = node.cancel.clone();
        node.shutdown.spawn("announcement", async move {
            let mut current = announced.lock().await;
            let Some(next) = next(&current) else {
                return Ok(());
            };
            tokio::select! {
                r = run::announce(&client, netuid, &keypair, &next) => match r {
                    Ok(()) => *current = next,
                    Err(e) => warn!(what, error = %format!("{e:#}"), "cannot announce; offered again next epoch"),
                },
                () = cancel.cancelled() => {}
            }
            Ok::<(), std::convert::Infallible>(())
        });
    }
}
