//! This miner's work rate: measured on each epoch's training, and announced on chain when it
//! has moved, so that its share of its stage's samples follows its speed
//! ([`sliver_common::assignment::Declared`]).
//!
//! The rate is the work of the samples it trained ([`sizing::work_per_sample`]: parameters a
//! token passes through, times a sample's tokens) over the seconds its forwards and backwards
//! took: waiting for inputs does not lower it, and it compares machines on any stage. It is
//! announced in the miner's commitment (`rate=`), which the next roster read at a later cutoff
//! takes up; every participant so routes by the same figures. The stage it trained goes with
//! it, so that later rosters keep it there whatever its uid (a newcomer is placed where
//! throughput is short, `sliver_common::assignment`). A rate within [`ANNOUNCE_FACTOR`] of the
//! one announced, on the stage announced, is not announced again: a commitment is a
//! transaction, and rates measured on a busy machine wander.

use std::sync::{Arc, Mutex};

use sliver_chain::wallet::Keypair;
use sliver_common::assignment::Declared;
use sliver_common::sizing;
use sliver_common::{RunSpec, StageIndex};
use sliver_subnet::announce::Announcement;
use sliver_subnet::run;
use tracing::{info, warn};

use crate::node::Node;

/// An epoch with fewer trained samples than this measures no rate.
pub const MIN_SAMPLES: u64 = 8;

/// A measured rate at least this factor away from the announced one (either way) is announced.
pub const ANNOUNCE_FACTOR: f64 = 1.25;

/// The work rate of `samples` trained on `stage` in `compute_s` seconds of compute; `None`
/// under [`MIN_SAMPLES`], or without compute time.
pub fn measure(spec: &RunSpec, stage: StageIndex, samples: u64, compute_s: f64) -> Option<f64> {
    let work = sizing::work_per_sample(spec, stage.index())?;
    (samples >= MIN_SAMPLES && compute_s > 0.0)
        .then(|| work * samples as f64 / compute_s)
        .filter(|r| r.is_finite() && *r > 0.0)
}

/// Whether `measured` is far enough from `announced` (or nothing announced) to announce it.
pub fn worth_announcing(announced: Option<f64>, measured: f64) -> bool {
    announced.is_none_or(|a| {
        let ratio = measured / a;
        !(1.0 / ANNOUNCE_FACTOR..ANNOUNCE_FACTOR).contains(&ratio)
    })
}

/// Announces this miner's measured rate, keeping the rest of its announcement.
pub struct Announcer {
    keypair: Keypair,
    announced: Arc<Mutex<Announcement>>,
}

impl Announcer {
    /// An announcer for the miner whose hotkey is `keypair` and which announced `announced`.
    pub fn new(keypair: Keypair, announced: Announcement) -> Self {
        Self {
            keypair,
            announced: Arc::new(Mutex::new(announced)),
        }
    }

    /// Announces the rate `measured` on `stage` when it is worth it ([`worth_announcing`], or
    /// another stage) against what this process announced, or else against `declared` (what the
    /// roster holds for it, which a restart keeps): on the runtime, off the epoch's work; a
    /// failure is a warning, and the next epoch tries again.
    pub fn offer(&self, node: &Node, declared: Declared, (measured, stage): (f64, StageIndex)) {
        let current = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let moved = current.stage.or(declared.stage) != Some(stage);
        if !moved && !worth_announcing(current.rate.or(declared.rate), measured) {
            return;
        }
        let next = Announcement {
            rate: Some(measured),
            stage: Some(stage),
            ..current
        };
        let (client, netuid) = (node.view.client.clone(), node.view.netuid);
        let (keypair, announced) = (self.keypair.clone(), self.announced.clone());
        let cancel = node.cancel.clone();
        node.shutdown.spawn("rate announcement", async move {
            tokio::select! {
                r = run::announce(&client, netuid, &keypair, &next) => match r {
                    Ok(()) => {
                        info!(rate = format!("{measured:.3e}"), %stage, "announced this miner's measured work rate and stage");
                        *announced.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                    }
                    Err(e) => warn!(error = %format!("{e:#}"), "cannot announce the measured work rate; trying again next epoch"),
                },
                () = cancel.cancelled() => {}
            }
            Ok::<(), std::convert::Infallible>(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_work_over_compute_and_announces_only_moves() {
        let spec = sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            8,
            sliver_common::codec::CodecKind::Int8,
            false,
        );
        let work = sizing::work_per_sample(&spec, 1).unwrap();
        assert!(work > 0.0);
        let rate = measure(&spec, StageIndex(1), 40, 2.0).unwrap();
        assert!((rate - work * 20.0).abs() < 1e-12 * rate);
        assert_eq!(measure(&spec, StageIndex(1), MIN_SAMPLES - 1, 2.0), None);
        assert_eq!(measure(&spec, StageIndex(1), 40, 0.0), None);
        assert_eq!(measure(&spec, StageIndex(5), 40, 2.0), None);

        assert!(worth_announcing(None, 1.0));
        assert!(!worth_announcing(Some(1.0), 1.2));
        assert!(!worth_announcing(Some(1.0), 0.81));
        assert!(worth_announcing(Some(1.0), 1.3));
        assert!(worth_announcing(Some(1.0), 0.25));
    }
}
