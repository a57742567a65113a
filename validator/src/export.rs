//! The epoch's tables as Parquet: one row per miner with the raw figures, the verdicts and the
//! weight, and one row per finished sample with its path and loss.
//!
//! Written under the run in the validator's store, Hive-style so that polars, pandas and DuckDB
//! read a whole directory as one table with an `epoch` column:
//!
//! - `runs/{run}/scores/epoch=N/part.parquet`: the columns of [`SCORE_COLUMNS`];
//! - `runs/{run}/paths/epoch=N/part.parquet`: `epoch`, `sample`, `stage0`..`stage{S-1}` (the uid
//!   at each stage), `loss` (see [`crate::clasp::paths_frame`]).
//!
//! `btvalidator scores --run DIR` prints them ([`summarise`]).

use sliver_common::Epoch;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use polars::prelude::{
    Column, DataFrame, IntoLazy, NamedFrom, ParquetReader, ParquetWriter, PolarsResult, SerReader,
    Series, SortMultipleOptions, UnionArgs, col, concat, len, lit,
};

use crate::clasp::Effect;
use crate::follow::MinerWork;
use crate::scores::Judged;

/// The score table's columns, in order, with what each holds.
pub const SCORE_COLUMNS: [(&str, &str); 18] = [
    ("epoch", "u64: the epoch"),
    ("block", "u64: the block at which the validator scored it"),
    ("uid", "u16: the miner's uid"),
    ("hotkey", "str: its hotkey (SS58)"),
    ("stage", "u16: its pipeline stage"),
    (
        "samples_forward",
        "u64: forwards that verified and were consumed downstream",
    ),
    ("samples_backward", "u64: backwards that verified"),
    ("spot_checks", "u64: artifacts recomputed"),
    (
        "spot_check_failures",
        "u64: recomputations that did not match",
    ),
    (
        "clasp_effect",
        "f64: mean loss of its paths minus its peers' (positive raises the loss)",
    ),
    (
        "clasp_confidence",
        "f64: probability that the effect is above zero",
    ),
    ("clasp_flagged", "bool: CLASP found it harmful"),
    (
        "merge_ok",
        "bool: it uploaded a verified reduction of every shard it owed",
    ),
    (
        "raw_score",
        "f64: this epoch's score (0 when caught); null under commit-reveal",
    ),
    (
        "ema_score",
        "f64: the moving average after this epoch; null under commit-reveal",
    ),
    (
        "weight",
        "u16: the weight set on chain; null under commit-reveal (the timelock hides it)",
    ),
    (
        "caught",
        "str: why it was not paid (spot_check, clasp, merge, low_work; comma-separated), empty when paid",
    ),
    ("rejected", "u64: its artifacts that failed verification"),
];

/// One miner's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it verifiably did.
    pub work: MinerWork,
    /// Its CLASP attribution, if it had paths.
    pub clasp: Option<Effect>,
    /// The verdict and this epoch's score.
    pub judged: Judged,
    /// The moving average after this epoch.
    pub ema: f64,
    /// The u16 weight set on chain.
    pub weight: u16,
}

/// Whether a score table may show the weights it led to.
///
/// Where the subnet uses commit-reveal, the weights are committed timelocked at scoring time and
/// revealed by the chain rounds later; a table published at scoring time with them (or with
/// what they are computed from: `ema_score` is the weight before normalising to the largest,
/// and `raw_score` with the previous epoch's `ema_score` gives it) would undo the timelock for
/// anyone who reads this validator's store. Such a table is written [`Disclosure::Sealed`]:
/// `raw_score`, `ema_score` and `weight` are null, every other column as usual. We chose nulls
/// over publishing those columns later: the table stays one write-once object per epoch, and
/// once revealed the weights are on chain, where they are read from anyway. (The raw figures,
/// work and `caught`, remain; judging them takes this validator's rules, which a copier could
/// run: withholding those too would mean not publishing the table before the reveal at all.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    /// Weights are set in the open (`set_weights`): every column is filled.
    Public,
    /// Weights are committed, timelocked: `raw_score`, `ema_score` and `weight` are null.
    Sealed,
}

/// The score table of `epoch`, scored at `block`; see [`Disclosure`] for `disclosure`.
///
/// # Errors
/// When polars fails (it does not for well-formed rows).
pub fn scores_frame(
    epoch: Epoch,
    block: u64,
    rows: &[Row],
    disclosure: Disclosure,
) -> PolarsResult<DataFrame> {
    let open = disclosure == Disclosure::Public;
    let columns = vec![
        column(rows, "epoch", |_| epoch.get()),
        column(rows, "block", |_| block),
        column(rows, "uid", |r| r.work.uid),
        column(rows, "hotkey", |r| r.work.hotkey.as_str()),
        column(rows, "stage", |r| r.work.stage.0),
        column(rows, "samples_forward", |r| r.work.samples_forward),
        column(rows, "samples_backward", |r| r.work.samples_backward),
        column(rows, "spot_checks", |r| r.work.spot_checks),
        column(rows, "spot_check_failures", |r| r.work.spot_check_failures),
        column(rows, "clasp_effect", |r| {
            r.clasp.as_ref().map_or(0.0, |c| c.effect)
        }),
        column(rows, "clasp_confidence", |r| {
            r.clasp.as_ref().map_or(0.5, |c| c.confidence)
        }),
        column(rows, "clasp_flagged", |r| {
            r.clasp.as_ref().is_some_and(|c| c.flagged)
        }),
        column(rows, "merge_ok", |r| r.work.merged),
        column(rows, "raw_score", |r| open.then_some(r.judged.score)),
        column(rows, "ema_score", |r| open.then_some(r.ema)),
        column(rows, "weight", |r| open.then_some(r.weight)),
        column(rows, "caught", |r| r.judged.reasons()),
        column(rows, "rejected", |r| r.work.rejected),
    ];
    DataFrame::new(rows.len(), columns)
}

/// A column of `f` over `rows`.
fn column<'a, T, P: ?Sized>(rows: &'a [Row], name: &str, f: impl Fn(&'a Row) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, P>,
{
    Column::new(name.into(), rows.iter().map(f).collect::<Vec<T>>())
}

/// `df` as Parquet (zstd).
///
/// # Errors
/// When polars fails to write.
pub fn encode(df: &mut DataFrame) -> Result<Bytes> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .finish(df)
        .context("writing Parquet")?;
    Ok(Bytes::from(out))
}

/// Reads every `epoch=N/part.parquet` under `dir`, concatenated and sorted by epoch.
fn read_partitions(dir: &Path) -> Result<Option<DataFrame>> {
    let mut frames = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path().join("part.parquet");
        if !path.is_file() {
            continue;
        }
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let df = ParquetReader::new(file)
            .finish()
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        frames.push(df.lazy());
    }
    if frames.is_empty() {
        return Ok(None);
    }
    let all = concat(frames, UnionArgs::default())?
        .sort(
            ["epoch"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    Ok(Some(all))
}

/// `btvalidator scores --run DIR`: the score tables under `DIR/scores`, one table per epoch,
/// caught miners first, then by weight; with each epoch's path count and mean loss when the
/// path tables are there.
///
/// # Errors
/// `DIR` holds no score tables, or one is not a score table.
pub fn summarise(run_dir: &Path) -> Result<String> {
    use std::fmt::Write;
    let Some(scores) = read_partitions(&run_dir.join("scores"))? else {
        bail!(
            "no score tables under {} (expected scores/epoch=N/part.parquet; \
             DIR is the run's directory in the validator's store, e.g. .../store/runs/local)",
            run_dir.display()
        );
    };
    for (name, _) in SCORE_COLUMNS {
        if scores.column(name).is_err() {
            bail!(
                "the score tables under {} have no column {name}",
                run_dir.display()
            );
        }
    }
    let paths: BTreeMap<u64, (u32, f64)> = match read_partitions(&run_dir.join("paths"))? {
        Some(p) => {
            let per = p
                .lazy()
                .group_by([col("epoch")])
                .agg([len().alias("n"), col("loss").mean().alias("mean")])
                .collect()?;
            let e = per.column("epoch")?.u64()?;
            let n = per.column("n")?.u32()?;
            let m = per.column("mean")?.f64()?;
            (0..per.height())
                .filter_map(|i| Some((e.get(i)?, (n.get(i)?, m.get(i)?))))
                .collect()
        }
        None => BTreeMap::new(),
    };
    let sorted = scores
        .lazy()
        .with_column(col("caught").neq(lit("")).alias("is_caught"))
        .sort_by_exprs(
            [col("epoch"), col("is_caught"), col("weight"), col("uid")],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true, true, false])
                .with_maintain_order(true),
        )
        .collect()?;
    let epoch = sorted.column("epoch")?.u64()?;
    let uid = sorted.column("uid")?.u16()?;
    let stage = sorted.column("stage")?.u16()?;
    let fwd = sorted.column("samples_forward")?.u64()?;
    let bwd = sorted.column("samples_backward")?.u64()?;
    let spot = sorted.column("spot_checks")?.u64()?;
    let spot_bad = sorted.column("spot_check_failures")?.u64()?;
    let effect = sorted.column("clasp_effect")?.f64()?;
    let conf = sorted.column("clasp_confidence")?.f64()?;
    let merge = sorted.column("merge_ok")?.bool()?;
    let raw = sorted.column("raw_score")?.f64()?;
    let ema = sorted.column("ema_score")?.f64()?;
    let weight = sorted.column("weight")?.u16()?;
    let caught = sorted.column("caught")?.str()?;
    let mut out = String::new();
    let mut current = None;
    for i in 0..sorted.height() {
        let e = epoch.get(i).unwrap_or(0);
        if current != Some(e) {
            current = Some(e);
            let _ = write!(out, "\nepoch {e}");
            if let Some((n, mean)) = paths.get(&e) {
                let _ = write!(out, ": {n} finished paths, mean loss {mean:.4}");
            }
            let _ = writeln!(
                out,
                "\n{:>5} {:>5} {:>7} {:>7} {:>9} {:>9} {:>6} {:>5} {:>6} {:>6} {:>6}  caught",
                "uid",
                "stage",
                "fwd",
                "bwd",
                "spot",
                "effect",
                "conf",
                "merge",
                "score",
                "ema",
                "weight"
            );
        }
        let _ = writeln!(
            out,
            "{:>5} {:>5} {:>7} {:>7} {:>9} {:>+9.4} {:>6.3} {:>5} {:>6.3} {:>6.3} {:>6}  {}",
            uid.get(i).unwrap_or(0),
            stage.get(i).unwrap_or(0),
            fwd.get(i).unwrap_or(0),
            bwd.get(i).unwrap_or(0),
            format!(
                "{}/{}",
                spot_bad.get(i).unwrap_or(0),
                spot.get(i).unwrap_or(0)
            ),
            effect.get(i).unwrap_or(0.0),
            conf.get(i).unwrap_or(0.0),
            if merge.get(i).unwrap_or(false) {
                "ok"
            } else {
                "no"
            },
            raw.get(i).unwrap_or(0.0),
            ema.get(i).unwrap_or(0.0),
            weight.get(i).unwrap_or(0),
            caught.get(i).unwrap_or(""),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::Caught;

    fn row(uid: u16, weight: u16, caught: Vec<Caught>) -> Row {
        Row {
            work: MinerWork {
                uid,
                hotkey: format!("hk{uid}"),
                stage: sliver_common::StageIndex(1),
                samples_forward: 7,
                samples_backward: 7,
                work: 14,
                merged: true,
                ..MinerWork::default()
            },
            clasp: None,
            judged: Judged {
                uid,
                score: if caught.is_empty() { 0.5 } else { 0.0 },
                caught,
            },
            ema: 0.25,
            weight,
        }
    }

    #[test]
    fn the_score_table_reads_back_with_the_documented_schema() {
        let rows = vec![
            row(3, 65535, vec![]),
            row(4, 0, vec![Caught::Clasp, Caught::Merge]),
        ];
        let mut df = scores_frame(Epoch(4), 1234, &rows, Disclosure::Public).unwrap();
        let bytes = encode(&mut df).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
            .finish()
            .unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|s| s.as_str()).collect();
        let documented: Vec<&str> = SCORE_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented);
        assert_eq!(
            back.column("weight").unwrap().u16().unwrap().get(0),
            Some(65535)
        );
        assert_eq!(
            back.column("block").unwrap().u64().unwrap().get(1),
            Some(1234)
        );
        assert_eq!(
            back.column("caught").unwrap().str().unwrap().get(1),
            Some("clasp,merge")
        );
        assert_eq!(back, df);
    }

    /// Under commit-reveal the table written at scoring time holds no weight, nor what gives it
    /// (the moving average, the epoch's score): null, with the documented schema and types.
    #[test]
    fn a_sealed_score_table_shows_no_weights() {
        let rows = vec![
            row(3, 65535, vec![]),
            row(4, 0, vec![Caught::Clasp, Caught::Merge]),
        ];
        let mut df = scores_frame(Epoch(4), 1234, &rows, Disclosure::Sealed).unwrap();
        let bytes = encode(&mut df).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
            .finish()
            .unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|s| s.as_str()).collect();
        let documented: Vec<&str> = SCORE_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented);
        for sealed in ["weight", "ema_score", "raw_score"] {
            let c = back.column(sealed).unwrap();
            assert_eq!(c.null_count(), rows.len(), "{sealed} shows values: {c:?}");
        }
        assert_eq!(back.column("weight").unwrap().u16().unwrap().get(0), None);
        assert!(back.column("ema_score").unwrap().f64().is_ok());
        // The rest is as in the open table.
        let open = scores_frame(Epoch(4), 1234, &rows, Disclosure::Public).unwrap();
        for (name, _) in SCORE_COLUMNS {
            if !["weight", "ema_score", "raw_score"].contains(&name) {
                assert_eq!(
                    back.column(name).unwrap(),
                    open.column(name).unwrap(),
                    "{name}"
                );
            }
        }
        // And `btvalidator scores` still reads a run of sealed tables.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores/epoch=4/part.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert!(summarise(dir.path()).unwrap().contains("epoch 4"));
    }

    #[test]
    fn the_readme_documents_every_score_column() {
        let readme = include_str!("../../README.md");
        for (name, desc) in SCORE_COLUMNS {
            let (ty, meaning) = desc.split_once(": ").unwrap();
            let row = format!("| `{name}` | {ty} | {meaning} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }

    #[test]
    fn scores_summarises_a_run_directory_caught_first() {
        let dir = tempfile::tempdir().unwrap();
        for epoch in [1u64, 2] {
            let rows = vec![row(3, 65535, vec![]), row(4, 0, vec![Caught::LowWork])];
            let mut df = scores_frame(Epoch(epoch), 10 * epoch, &rows, Disclosure::Public).unwrap();
            let path = dir
                .path()
                .join(format!("scores/epoch={epoch}/part.parquet"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, encode(&mut df).unwrap()).unwrap();
        }
        let text = summarise(dir.path()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("epoch 1"), "{text}");
        assert!(
            lines[2].trim_start().starts_with('4') && lines[2].ends_with("low_work"),
            "{text}"
        );
        assert!(lines[3].trim_start().starts_with('3'), "{text}");
        assert!(lines[4].starts_with("epoch 2"), "{text}");
        let err = summarise(&dir.path().join("nothing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no score tables"), "{err}");
    }
}
