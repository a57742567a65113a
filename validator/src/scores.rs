//! Scores: verified work times quality, smoothed across epochs, as u16 weights.
//!
//! Within each stage a miner's share is its verified work over the stage's total, so every
//! stage pays the same and a stage with fewer miners pays each more (where miners are needed).
//! Quality is 1, or zero when the miner was caught: a failed spot check (tolerances come from
//! measured honest variation, so one failure is not bad luck), flagged by CLASP, no verified reduction of the shards it owed
//! the merge, or verified work for its routing share under [`LOW_WORK`] of its stage's median
//! (a free rider that joins merges without training, or a miner that declared a work rate it
//! does not deliver: each miner's work is measured against the share of samples routed to it). A miner caught gets nothing for the epoch, and its moving
//! average decays. The epoch's score enters an exponential moving average ([`Ema`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sliver_common::StageIndex;

use crate::clasp::Effect;
use crate::follow::MinerWork;

/// Weight of the newest epoch in the moving average.
pub const EMA_ALPHA: f64 = 0.5;

/// Verified work per routing share under this fraction of the stage's median is not paid.
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
    // Work for the share of the stage's samples routed to the miner: a miner routed a fifth of
    // a peer's samples does a fifth of its work, and is paid so, not caught.
    let per_share = |r: &MinerWork| {
        if r.share > 0.0 {
            r.work as f64 / r.share
        } else {
            r.work as f64
        }
    };
    let mut stage_work: BTreeMap<StageIndex, (u64, Vec<f64>)> = BTreeMap::new();
    for r in rows {
        let e = stage_work.entry(r.stage).or_default();
        e.0 += r.work;
        e.1.push(per_share(r));
    }
    // Per stage: total verified work and the median of work per share.
    let stage_stats: BTreeMap<StageIndex, (u64, f64)> = stage_work
        .into_iter()
        .map(|(stage, (total, mut w))| {
            w.sort_unstable_by(f64::total_cmp);
            let n = w.len();
            let median = if n % 2 == 1 {
                w[n / 2]
            } else {
                (w[n / 2 - 1] + w[n / 2]) / 2.0
            };
            (stage, (total, median))
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
            if per_share(r) < LOW_WORK * median {
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

/// The moving averages' file name, in the validator's state directory (beside
/// [`crate::record::FILE`]).
pub const EMA_FILE: &str = "ema.json";

/// One miner's moving average: whose it is, and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The uid the weight goes to.
    pub uid: u16,
    /// The hotkey that earned it: a uid re-registered under another hotkey starts from zero.
    pub hotkey: String,
    /// The moving average.
    pub score: f64,
}

/// Moving averages of scores, one per uid, each belonging to the hotkey that earned it.
///
/// Kept across restarts in [`EMA_FILE`] ([`Ema::load`], [`Ema::save`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ema(pub BTreeMap<u16, Held>);

/// The file's form: a version, then one entry per hotkey.
#[derive(Serialize, Deserialize)]
struct EmaFile {
    version: u32,
    miners: Vec<Held>,
}

impl Ema {
    /// Folds in one epoch's scores, `(uid, hotkey, score)`: a uid now held by another hotkey
    /// than the one that earned its average starts from zero; uids without a score this epoch
    /// decay.
    pub fn update<'a>(&mut self, scores: impl IntoIterator<Item = (u16, &'a str, f64)>) {
        let scores: Vec<(u16, &str, f64)> = scores.into_iter().collect();
        for (uid, hotkey, _) in &scores {
            if self.0.get(uid).is_some_and(|h| h.hotkey != *hotkey) {
                self.0.remove(uid);
            }
        }
        for h in self.0.values_mut() {
            h.score *= 1.0 - EMA_ALPHA;
        }
        for (uid, hotkey, s) in scores {
            self.0
                .entry(uid)
                .or_insert_with(|| Held {
                    uid,
                    hotkey: hotkey.to_owned(),
                    score: 0.0,
                })
                .score += EMA_ALPHA * s;
        }
        self.0.retain(|_, h| h.score > 1e-9);
    }

    /// The moving average of `uid`, if it has one.
    pub fn score(&self, uid: u16) -> Option<f64> {
        self.0.get(&uid).map(|h| h.score)
    }

    /// Every uid's moving average, by uid.
    pub fn by_uid(&self) -> impl Iterator<Item = (u16, f64)> + '_ {
        self.0.iter().map(|(u, h)| (*u, h.score))
    }

    /// The file in the state directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(EMA_FILE)
    }

    /// The moving averages saved in `dir`: empty when there is no file yet. A file that cannot
    /// be parsed is not trusted and not lost: it is renamed aside (`ema.json.corrupt-<unix
    /// seconds>`), the averages start from zero, and the returned warning says so, naming both
    /// files.
    ///
    /// # Errors
    /// The file exists but cannot be read, or a corrupt one cannot be moved aside.
    pub fn load(dir: &Path) -> std::io::Result<(Ema, Option<String>)> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Ema::default(), None));
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", path.display()),
                ));
            }
        };
        match serde_json::from_slice::<EmaFile>(&bytes) {
            Ok(f) if f.version == 1 && f.miners.iter().all(|h| h.score.is_finite()) => Ok((
                Ema(f.miners.into_iter().map(|h| (h.uid, h)).collect()),
                None,
            )),
            parsed => {
                let why = match parsed {
                    Err(e) => e.to_string(),
                    Ok(f) if f.version != 1 => format!("unknown version {}", f.version),
                    Ok(_) => "a score that is not finite".to_owned(),
                };
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = dir.join(format!("{EMA_FILE}.corrupt-{secs}"));
                std::fs::rename(&path, &aside).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "{} is corrupt ({why}) and could not be moved aside: {e}",
                            path.display()
                        ),
                    )
                })?;
                Ok((
                    Ema::default(),
                    Some(format!(
                        "{} is corrupt ({why}): moved to {}; moving averages start from zero",
                        path.display(),
                        aside.display()
                    )),
                ))
            }
        }
    }

    /// Saves the moving averages in `dir` (created if missing) atomically: written to a
    /// temporary file, synced, then renamed over [`EMA_FILE`], so a crash leaves the old file
    /// or the new one, never a part.
    ///
    /// # Errors
    /// The directory or file cannot be created, written, synced or renamed.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let file = EmaFile {
            version: 1,
            miners: self.0.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{EMA_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, Self::path(dir))
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
        ema.update(s.iter().map(|(u, s)| (*u, "hk", *s)));
        assert_eq!(ema.score(1), Some(0.375));
        ema.update([(2, "hk", 1.0)]);
        assert_eq!(ema.score(1), Some(0.1875));
        assert_eq!(ema.score(2), Some(0.0625 + 0.5));
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
        let mut ema = Ema::default();
        ema.update([(1, "hk", 1.0)]);
        for _ in 0..40 {
            ema.update(scores(&j).into_iter().map(|(u, s)| (u, "hk", s)));
        }
        assert!(ema.score(1).is_none());
    }

    /// A slow miner routed a fifth of its peer's samples is paid for the work it did, not caught;
    /// one that does a fifth of its share is caught.
    #[test]
    fn work_is_judged_against_the_share_routed() {
        let shared = |uid, work, share| MinerWork {
            share,
            ..row(uid, 0, work, true)
        };
        let rows = [
            shared(1, 80, 0.4),
            shared(2, 80, 0.4),
            shared(3, 20, 0.1),
            shared(4, 2, 0.1),
        ];
        let j = judge(&rows, &BTreeMap::new());
        let caught: Vec<bool> = j.iter().map(|j| !j.caught.is_empty()).collect();
        assert_eq!(caught, vec![false, false, false, true]);
        assert_eq!(j[2].score, 20.0 / 182.0);
        assert_eq!(j[3].caught, vec![Caught::LowWork]);
    }

    /// The moving averages survive a restart: saved atomically, loaded as they were.
    #[test]
    fn the_moving_average_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ema::load(dir.path()).unwrap(), (Ema::default(), None));
        let mut ema = Ema::default();
        ema.update([(1, "hk1", 0.75), (2, "hk2", 0.25)]);
        ema.update([(1, "hk1", 0.5)]);
        ema.save(dir.path()).unwrap();
        assert!(!dir.path().join(format!("{EMA_FILE}.tmp")).exists());
        let (back, warning) = Ema::load(dir.path()).unwrap();
        assert_eq!(warning, None);
        assert_eq!(back, ema);
        assert_eq!(back.score(1), Some(0.5 * 0.75 * 0.5 + 0.25));
        // Saved again over the first file.
        let mut later = back.clone();
        later.update([(2, "hk2", 1.0)]);
        later.save(dir.path()).unwrap();
        assert_eq!(Ema::load(dir.path()).unwrap().0, later);
    }

    /// A uid re-registered under another hotkey does not inherit the leaver's average.
    #[test]
    fn a_new_hotkey_on_a_uid_starts_from_zero() {
        let mut ema = Ema::default();
        ema.update([(7, "old", 1.0)]);
        ema.update([(7, "old", 1.0)]);
        assert_eq!(ema.score(7), Some(0.75));
        ema.update([(7, "new", 0.0), (8, "other", 1.0)]);
        assert_eq!(ema.score(7), None);
        ema.update([(7, "new", 1.0)]);
        assert_eq!(ema.score(7), Some(0.5));
        assert_eq!(ema.0[&7].hotkey, "new");
    }

    /// A corrupt file is neither trusted nor lost: moved aside, named in the warning.
    #[test]
    fn a_corrupt_file_is_set_aside_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Ema::path(dir.path()), b"{ not json").unwrap();
        let (ema, warning) = Ema::load(dir.path()).unwrap();
        assert_eq!(ema, Ema::default());
        let warning = warning.unwrap();
        assert!(
            warning.contains(EMA_FILE) && warning.contains("corrupt"),
            "{warning}"
        );
        assert!(!Ema::path(dir.path()).exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(
            warning.contains(&aside[0].display().to_string()),
            "{warning}"
        );
        assert_eq!(std::fs::read(&aside[0]).unwrap(), b"{ not json");
        // A later save starts a sound file again.
        Ema::default().save(dir.path()).unwrap();
        assert_eq!(Ema::load(dir.path()).unwrap(), (Ema::default(), None));
    }
}
