//! The per-epoch record: one JSON object per scored epoch, appended to `epochs.jsonl` in the
//! validator's state directory (`--neuron.dir`), as miners record theirs in their own.
//!
//! The `epoch scored` log line says the same for a person; this file is the form for programs
//! (the local subnet's launcher, scripts, tests): typed, one line per epoch, whatever the logging
//! format. Each line is written with one `write_all` to a file opened for append, so a reader
//! sees whole lines and, last, perhaps a line still being written: [`Tail`] and [`read`] leave
//! out a last line without its newline until it has one. Nothing is fsynced: after a crash the
//! last line may be missing or cut short, never a line in the middle.

use sliver_common::{Epoch, StageIndex};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::export::Row;

/// The record's file name, in the validator's state directory.
pub const FILE: &str = "epochs.jsonl";

/// One epoch as the validator scored it: one line of `epochs.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: Epoch,
    /// The chain's block when it was scored.
    pub block: u64,
    /// Held-out loss of the merged model; `None` when it could not be evaluated (a stage
    /// without merged weights, or a loss that is not finite).
    pub eval_loss: Option<f64>,
    /// Bytes the validator downloaded to check the epoch.
    pub bytes_moved: u64,
    /// Every miner of the epoch's roster, in the score table's order.
    pub miners: Vec<MinerRecord>,
    /// Finished samples whose path was attributed.
    pub paths: u64,
    /// The spot checks of the epoch.
    pub spot_checks: SpotChecks,
    /// Artifacts rejected, over all miners.
    pub rejected: u64,
    /// Where the Parquet score table is (`<storage url>/<key>`).
    pub scores: String,
    /// What scoring the epoch cost the validator (absent from records written before).
    #[serde(default)]
    pub cost: Cost,
}

/// What scoring one epoch cost the validator: from `score_at` to the record, the wall time, the
/// process's CPU seconds (every thread, the miners' answers it waited for included), and its peak
/// resident memory so far ([`sliver_common::process`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Wall seconds from the start of the audit to the record.
    pub work_s: f64,
    /// CPU seconds the process used meanwhile; `None` where the system does not say.
    pub cpu_s: Option<f64>,
    /// The process's peak resident memory so far, in bytes; `None` where the system does not
    /// say.
    pub peak_rss_bytes: Option<u64>,
}

/// One miner's line of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerRecord {
    /// Its uid.
    pub uid: u16,
    /// Its stage.
    pub stage: StageIndex,
    /// Verified passes: forwards plus backwards.
    pub passes: u64,
    /// Why it was not paid this epoch (`spot_check`, `clasp`, ...); empty when paid.
    pub caught: Vec<String>,
}

/// The epoch's spot checks, over all miners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotChecks {
    /// Artifacts recomputed.
    pub checked: u64,
    /// Recomputations that did not match.
    pub failed: u64,
    /// The lowest cosine similarity of a check that passed (1 when none did).
    pub worst_cosine: f64,
    /// The largest relative norm error of a check that passed.
    pub worst_norm_error: f64,
    /// The largest weight drift of a check that passed, as a share of the steps' reach.
    pub worst_drift: f64,
}

impl EpochReport {
    /// Verified passes per miner, `uid<N>/s<stage>:<passes>` separated by spaces (as logged).
    pub fn samples(&self) -> String {
        let v: Vec<String> = self
            .miners
            .iter()
            .map(|m| format!("uid{}/s{}:{}", m.uid, m.stage, m.passes))
            .collect();
        v.join(" ")
    }

    /// Miners not paid and why, `uid<N>:<reasons>` separated by spaces (as logged); empty when
    /// every miner was paid.
    pub fn caught(&self) -> String {
        let v: Vec<String> = self
            .miners
            .iter()
            .filter(|m| !m.caught.is_empty())
            .map(|m| format!("uid{}:{}", m.uid, m.caught.join(",")))
            .collect();
        v.join(" ")
    }
}

impl MinerRecord {
    /// A miner's line of the score table, as recorded.
    pub fn of(row: &Row) -> MinerRecord {
        MinerRecord {
            uid: row.work.uid,
            stage: row.work.stage,
            passes: row.work.work,
            caught: row
                .judged
                .caught
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        }
    }
}

/// The record's path in the state directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Appends `report` to the record in `dir` (created if missing) as one line, written whole by
/// one `write_all`.
///
/// # Errors
/// The directory or file cannot be created, opened or written.
pub fn append(dir: &Path, report: &EpochReport) -> io::Result<()> {
    let mut line = serde_json::to_string(report)?;
    line.push('\n');
    std::fs::create_dir_all(dir)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(dir))?
        .write_all(line.as_bytes())
}

/// Every complete line of the record at `path`, in order; none when there is no file yet.
///
/// # Errors
/// The file cannot be read, or a complete line is not a report.
pub fn read(path: &Path) -> io::Result<Vec<EpochReport>> {
    let mut tail = Tail::new(path);
    let mut out = Vec::new();
    while let Some(r) = tail.next_report()? {
        out.push(r);
    }
    Ok(out)
}

/// Follows a record being written: each call to [`Tail::next_report`] returns the next
/// complete line, if there is one yet.
#[derive(Debug, Clone)]
pub struct Tail {
    path: PathBuf,
    /// Bytes of the file already returned (or skipped as unreadable).
    offset: u64,
}

impl Tail {
    /// Follows the record at `path` from its start (the file need not exist yet).
    pub fn new(path: &Path) -> Tail {
        Tail {
            path: path.to_owned(),
            offset: 0,
        }
    }

    /// The next complete line as a report; `None` when there is no file yet, nothing new, or
    /// only a last line still without its newline.
    ///
    /// # Errors
    /// The file cannot be read; or the next complete line is not a report, in which case that
    /// line is passed over and the next call goes on after it.
    pub fn next_report(&mut self) -> io::Result<Option<EpochReport>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut line = Vec::new();
        BufReader::new(file).read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Ok(None);
        }
        self.offset += line.len() as u64;
        serde_json::from_slice(&line).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: a line that is not an epoch report: {e}",
                    self.path.display()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(epoch: u64) -> EpochReport {
        EpochReport {
            epoch: Epoch(epoch),
            block: 100 + epoch,
            eval_loss: Some(3.25),
            bytes_moved: 1234,
            miners: vec![
                MinerRecord {
                    uid: 1,
                    stage: StageIndex(0),
                    passes: 40,
                    caught: Vec::new(),
                },
                MinerRecord {
                    uid: 2,
                    stage: StageIndex(1),
                    passes: 0,
                    caught: vec!["spot_check".into(), "clasp".into()],
                },
            ],
            paths: 20,
            spot_checks: SpotChecks {
                checked: 4,
                failed: 1,
                worst_cosine: 0.999_999_9,
                worst_norm_error: 1e-6,
                worst_drift: 0.01,
            },
            rejected: 3,
            scores: "/tmp/store/scores/run/00000001.parquet".into(),
            cost: Cost::default(),
        }
    }

    #[test]
    fn appended_reports_read_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("not/yet");
        assert!(read(&path(&dir)).unwrap().is_empty());
        append(&dir, &report(1)).unwrap();
        append(&dir, &report(2)).unwrap();
        assert_eq!(read(&path(&dir)).unwrap(), [report(1), report(2)]);
    }

    #[test]
    fn the_log_strings_come_from_the_miners() {
        let r = report(1);
        assert_eq!(r.samples(), "uid1/s0:40 uid2/s1:0");
        assert_eq!(r.caught(), "uid2:spot_check,clasp");
        let mut paid = r;
        paid.miners[1].caught.clear();
        assert_eq!(paid.caught(), "");
    }

    #[test]
    fn a_loss_that_is_not_finite_reads_back_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = report(1);
        r.eval_loss = Some(f64::NAN);
        append(dir.path(), &r).unwrap();
        assert_eq!(read(&path(dir.path())).unwrap()[0].eval_loss, None);
    }

    #[test]
    fn a_line_without_its_newline_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        let mut tail = Tail::new(&file);
        assert_eq!(tail.next_report().unwrap(), None, "no file yet");
        append(dir.path(), &report(1)).unwrap();
        let second = serde_json::to_string(&report(2)).unwrap();
        let (head, rest) = second.split_at(second.len() / 2);
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(head.as_bytes()).unwrap();
        assert_eq!(tail.next_report().unwrap(), Some(report(1)));
        assert_eq!(tail.next_report().unwrap(), None, "half a line");
        assert_eq!(read(&file).unwrap(), [report(1)]);
        f.write_all(rest.as_bytes()).unwrap();
        assert_eq!(tail.next_report().unwrap(), None, "still no newline");
        f.write_all(b"\n").unwrap();
        assert_eq!(tail.next_report().unwrap(), Some(report(2)));
        assert_eq!(tail.next_report().unwrap(), None);
    }

    #[test]
    fn a_line_that_is_not_a_report_is_an_error_then_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        std::fs::write(&file, "{\"epoch\": \"not a report\"}\n").unwrap();
        append(dir.path(), &report(3)).unwrap();
        let mut tail = Tail::new(&file);
        let e = tail.next_report().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(tail.next_report().unwrap(), Some(report(3)));
        assert!(read(&file).is_err());
    }
}
