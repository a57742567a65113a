//! This miner's work rate: measured on each epoch's training, and announced on chain when it
//! has moved, so that its share of its stage's samples follows its speed
//! ([`sliver_common::assignment::Declared`]); [`crate::commitment`] announces it.
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

use sliver_common::sizing;
use sliver_common::{RunSpec, StageIndex};

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
