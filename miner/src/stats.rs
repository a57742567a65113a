//! What one epoch did, for the log, the metrics, `epochs.jsonl` and the benchmarks.
//!
//! Each finished epoch appends one JSON object (a line) to `<state dir>/epochs.jsonl`; the
//! swarm benchmark and the whole-system tests read it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use sliver_common::metrics::Metrics;
use sliver_common::{Epoch, StageIndex};
use tracing::info;

/// The file each finished epoch is appended to, in the miner's state directory.
pub const EPOCHS_FILE: &str = "epochs.jsonl";

/// What one epoch did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EpochStats {
    /// The epoch.
    pub epoch: Epoch,
    /// The stage.
    pub stage: StageIndex,
    /// Forwards run.
    pub forwards: u64,
    /// Backwards run.
    pub backwards: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Samples dropped because their gradient did not come back (within the sample timeout, or
    /// by the drain's end).
    pub dropped: u64,
    /// Samples in flight dropped at once because their path went through a peer found holding
    /// samples up (`crate::silence`); at stage 0 the window they freed started new ones.
    pub rerouted: u64,
    /// Stage 0: sample counters skipped because their path went through a peer routed around.
    pub skipped: u64,
    /// Peers routed around at the epoch's end (suspect or silent).
    pub avoided: u64,
    /// Seconds in forward, backward and optimizer, the merge's included.
    pub busy_s: f64,
    /// Seconds in the forwards and backwards alone: what the work rate is measured over.
    pub compute_s: f64,
    /// This miner's share of its stage's samples in the epoch's routing (0 to 1).
    pub share: f64,
    /// The work rate this epoch measured (giga parameter-tokens a second of compute,
    /// `crate::rate`); `None` when it trained too little to tell.
    pub rate: Option<f64>,
    /// The work rate the epoch's roster held for this miner (what it had announced by the
    /// roster's cutoff); `None` when it had announced none.
    pub declared_rate: Option<f64>,
    /// The typical (median) declared work rate of its stage in the roster.
    pub stage_rate: Option<f64>,
    /// Seconds of the epoch this miner took part in.
    pub wall_s: f64,
    /// Tokens forwarded.
    pub tokens: u64,
    /// Mean training loss (last stage only).
    pub loss: Option<f64>,
    /// Bytes this miner uploaded in the epoch, by kind (`act`, `grad`, `shard`, `merged`).
    pub bytes_up: BTreeMap<String, u64>,
    /// BLAKE3 of the merged stage weights (flat fp32, little-endian): equal across a stage's
    /// miners when the merge worked.
    pub merged_blake3: String,
    /// Activations received by name (the feed asked for their keys).
    pub activations_by_name: u64,
    /// Activations received only because a listing of their producer's store found them.
    pub activations_by_listing: u64,
    /// Listings of previous-stage miners' activations the feed made (each returns one
    /// producer's epoch so far).
    pub listings: u64,
    /// Every storage request this miner made in the epoch (to its own store and its peers'),
    /// by kind, and the bytes each way.
    pub storage: sliver_common::storage::LinkTally,
}

impl EpochStats {
    /// Busy time over the epoch's wall time.
    pub fn utilisation(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.busy_s / self.wall_s
        } else {
            0.0
        }
    }

    /// Logs the epoch, sets its gauges, and appends it to `<dir>/epochs.jsonl` in one write.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn record(&self, dir: &Path, metrics: &Metrics) -> Result<()> {
        let utilisation = self.utilisation();
        metrics.set_utilisation(utilisation);
        metrics.set_epoch(self.epoch);
        info!(
            epoch = %self.epoch,
            stage = %self.stage,
            forwards = self.forwards,
            backwards = self.backwards,
            steps = self.steps,
            dropped = self.dropped,
            rerouted = self.rerouted,
            avoided = self.avoided,
            activations_by_name = self.activations_by_name,
            activations_by_listing = self.activations_by_listing,
            listings = self.listings,
            loss = self.loss.map(|l| format!("{l:.4}")),
            utilisation = format!("{utilisation:.2}"),
            share = format!("{:.3}", self.share),
            rate = self.rate.map(|r| format!("{r:.3e}")),
            stage_rate = self.stage_rate.map(|r| format!("{r:.3e}")),
            "epoch done"
        );
        metrics.set_share(self.share);
        for (which, rate) in [
            ("measured", self.rate),
            ("declared", self.declared_rate),
            ("stage", self.stage_rate),
        ] {
            if let Some(rate) = rate {
                metrics.set_work_rate(which, rate);
            }
        }
        let mut v = serde_json::to_value(self)?;
        v["utilisation"] = serde_json::json!(utilisation);
        let path = dir.join(EPOCHS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        f.write_all(format!("{v}\n").as_bytes())
            .with_context(|| format!("appending to {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_is_one_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new("miner");
        for epoch in [3, 4].map(Epoch) {
            let s = EpochStats {
                epoch,
                busy_s: 1.0,
                wall_s: 4.0,
                ..EpochStats::default()
            };
            s.record(dir.path(), &metrics).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(EPOCHS_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["epoch"], 4);
        assert_eq!(lines[0]["utilisation"], 0.25);
        assert!(text.ends_with('\n'));
    }
}
