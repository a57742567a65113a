//! Scores: verified work times quality, smoothed across epochs, as u16 weights.
//!
//! Within each stage a miner's share is its verified work over the stage's total, so every
//! stage pays the same and a stage with fewer miners pays each more (where miners are needed).
//! Quality is 1, or zero when the miner was caught: a failed spot check (tolerances come from
//! measured honest variation, so one failure is not bad luck), flagged by CLASP, no verified reduction of the shards it owed
//! the merge, or verified work under [`LOW_WORK`] of its stage's median (a free rider that
//! joins merges without training). A miner caught gets nothing for the epoch, and its moving
//! average decays. The epoch's score enters an exponential moving average ([`Ema`]).

use std::collections::BTreeMap;

use sliver_common::StageIndex;

use crate::clasp::Effect;
use crate::follow::MinerWork;

/// Weight of the newest epoch in the moving average.
pub const EMA_ALPHA: f64 = 0.5;

/// Verified work under this fraction of the stage's median is not paid.
pub const LOW_WORK: f64 = 0.2;

/// Why a miner got nothing this epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Caught {
    /// A recomputed artifact did not match.
    SpotCheck,
    /// CLASP found it raises the loss of its paths.
    Clasp,
    /// It did not upload a verified reduction of every shard it reduces.
    Merge,
    /// It did too little verified work for its stage.
    LowWork,
}

impl Caught {
    /// The label in score tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Caught::SpotCheck => "spot_check",
            Caught::Clasp => "clasp",
            Caught::Merge => "merge",
            Caught::LowWork => "low_work",
        }
    }
}

/// One miner's epoch, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The miner.
    pub uid: u16,
    /// Its share of its stage's verified work, or zero when caught.
    pub score: f64,
    /// Every reason it was caught (empty when paid).
    pub caught: Vec<Caught>,
}

impl Judged {
    /// Why it was caught, comma-separated (`clasp,merge`); empty when paid.
    pub fn reasons(&self) -> String {
        let why: Vec<&str> = self.caught.iter().map(|c| c.as_str()).collect();
        why.join(",")
    }
}

/// Judges every miner of the epoch: `rows` from the audit, `clasp` its attribution by uid.
pub fn judge(rows: &[MinerWork], clasp: &BTreeMap<u16, Effect>) -> Vec<Judged> {
    let mut stage_work: BTreeMap<StageIndex, Vec<u64>> = BTreeMap::new();
    for r in rows {
        stage_work.entry(r.stage).or_default().push(r.work);
    }
    // Per stage: total and median verified work.
    let stage_stats: BTreeMap<StageIndex, (u64, f64)> = stage_work
        .into_iter()
        .map(|(stage, mut w)| {
            w.sort_unstable();
            let n = w.len();
            let median = if n % 2 == 1 {
                w[n / 2] as f64
            } else {
                (w[n / 2 - 1] + w[n / 2]) as f64 / 2.0
            };
            (stage, (w.iter().sum(), median))
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut caught = Vec::new();
            if r.spot_check_failures > 0 {
                caught.push(Caught::SpotCheck);
            }
            if clasp.get(&r.uid).is_some_and(|e| e.flagged) {
                caught.push(Caught::Clasp);
            }
            if !r.merged {
                caught.push(Caught::Merge);
            }
            let (total, median) = stage_stats.get(&r.stage).copied().unwrap_or((0, 0.0));
            if (r.work as f64) < LOW_WORK * median {
                caught.push(Caught::LowWork);
            }
            let share = if total > 0 {
                r.work as f64 / total as f64
            } else {
                0.0
            };
            let score = if caught.is_empty() { share } else { 0.0 };
            Judged {
                uid: r.uid,
                score,
                caught,
            }
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
            stage: StageIndex(stage),
            work,
            merged,
            ..MinerWork::default()
        }
    }

    fn scores(j: &[Judged]) -> BTreeMap<u16, f64> {
        j.iter().map(|j| (j.uid, j.score)).collect()
    }

    #[test]
    fn shares_within_stages_and_decay() {
        let s = scores(&judge(
            &[row(1, 0, 30, true), row(2, 0, 10, true), row(3, 1, 5, true)],
            &BTreeMap::new(),
        ));
        assert_eq!(s[&1], 0.75);
        assert_eq!(s[&2], 0.25);
        assert_eq!(s[&3], 1.0);
        let mut ema = Ema::default();
        ema.update(&s);
        assert_eq!(ema.0[&1], 0.375);
        ema.update(&BTreeMap::from([(2, 1.0)]));
        assert_eq!(ema.0[&1], 0.1875);
        assert_eq!(ema.0[&2], 0.0625 + 0.5);
    }

    #[test]
    fn caught_miners_get_nothing_and_say_why() {
        let mut failed = row(4, 0, 40, true);
        failed.spot_checks = 4;
        failed.spot_check_failures = 1;
        let mut partial = row(5, 0, 40, true);
        partial.spot_checks = 0;
        let rows = [
            row(1, 0, 40, false), // missed the merge
            row(2, 0, 40, true),  // flagged by CLASP
            row(3, 0, 5, true),   // a free rider: 5 < 0.2 x median 40
            failed,
            partial,
        ];
        let clasp = BTreeMap::from([(
            2,
            Effect {
                uid: 2,
                stage: StageIndex(0),
                paths: 100,
                effect: 0.4,
                confidence: 1.0,
                flagged: true,
            },
        )]);
        let j = judge(&rows, &clasp);
        let caught: Vec<(u16, Vec<Caught>)> = j.iter().map(|j| (j.uid, j.caught.clone())).collect();
        assert_eq!(
            caught,
            vec![
                (1, vec![Caught::Merge]),
                (2, vec![Caught::Clasp]),
                (3, vec![Caught::LowWork]),
                (4, vec![Caught::SpotCheck]),
                (5, vec![]),
            ]
        );
        let s = scores(&j);
        assert_eq!((s[&1], s[&2], s[&3], s[&4]), (0.0, 0.0, 0.0, 0.0));
        assert_eq!(s[&5], 40.0 / 165.0);
        // Its average decays to nothing once it stops being paid.
        let mut ema = Ema(BTreeMap::from([(1, 0.5)]));
        for _ in 0..40 {
            ema.update(&scores(&j));
        }
        assert!(!ema.0.contains_key(&1));
    }
}
