//! Scores: verified work times quality, smoothed across epochs, as u16 weights.
//!
//! Within each stage a miner's share is its verified work over the stage's total, so every
//! stage pays the same and a stage with fewer miners pays each more (where miners are needed).
//! Quality is 1 when the miner did its part of the merge and one half when it did not. The
//! epoch's score enters an exponential moving average; a miner absent from an epoch decays.

use std::collections::BTreeMap;

use crate::follow::MinerWork;

/// Weight of the newest epoch in the moving average.
pub const EMA_ALPHA: f64 = 0.5;

/// This epoch's score of each miner (uid → score in 0..=1 per stage).
pub fn epoch_scores(rows: &[MinerWork]) -> BTreeMap<u16, f64> {
    let mut stage_work: BTreeMap<u16, f64> = BTreeMap::new();
    for r in rows {
        *stage_work.entry(r.stage).or_default() += r.work as f64;
    }
    rows.iter()
        .map(|r| {
            let total = stage_work.get(&r.stage).copied().unwrap_or(0.0);
            let share = if total > 0.0 {
                r.work as f64 / total
            } else {
                0.0
            };
            let quality = if r.merged { 1.0 } else { 0.5 };
            (r.uid, share * quality)
        })
        .collect()
}

/// Moving averages of scores by uid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ema(pub BTreeMap<u16, f64>);

impl Ema {
    /// Folds in one epoch's scores; uids without a score this epoch decay.
    pub fn update(&mut self, scores: &BTreeMap<u16, f64>) {
        for v in self.0.values_mut() {
            *v *= 1.0 - EMA_ALPHA;
        }
        for (uid, s) in scores {
            *self.0.entry(*uid).or_default() += EMA_ALPHA * s;
        }
        self.0.retain(|_, v| *v > 1e-9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: u16, stage: u16, work: u64, merged: bool) -> MinerWork {
        MinerWork {
            uid,
            stage,
            work,
            merged,
            ..MinerWork::default()
        }
    }

    #[test]
    fn shares_within_stages_and_decay() {
        let s = epoch_scores(&[
            row(1, 0, 30, true),
            row(2, 0, 10, true),
            row(3, 1, 5, false),
        ]);
        assert_eq!(s[&1], 0.75);
        assert_eq!(s[&2], 0.25);
        assert_eq!(s[&3], 0.5);
        let mut ema = Ema::default();
        ema.update(&s);
        assert_eq!(ema.0[&1], 0.375);
        ema.update(&BTreeMap::from([(2, 1.0)]));
        assert_eq!(ema.0[&1], 0.1875);
        assert_eq!(ema.0[&2], 0.0625 + 0.5);
    }
}
