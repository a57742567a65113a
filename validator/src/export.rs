//! The epoch's tables as Parquet: one row per miner with the raw figures, the verdicts and the
//! weight, and one row per finished sample with its path and loss.
//!
//! Written under the run in the validator's store, Hive-style so that polars, pandas and DuckDB
//! read a whole directory as one table with an `epoch` column:
//!
//! - `runs/{run}/scores/epoch=N/part.parquet`: the columns of [`SCORE_COLUMNS`];
//! - `runs/{run}/paths/epoch=N/part.parquet`: `sample`, `stage0`..`stage{S-1}` (the uid at each
//!   stage), `loss` (see [`crate::clasp::paths_frame`]), and `epoch` from the folder.
//!
//! The files do not hold the `epoch` column: the folder name `epoch=N` ([`PARTITION_KEY`]) is
//! the only place it is written ([`encode_part`]). A file that held it too made pyarrow (so
//! `pandas.read_parquet(dir)`) refuse the folder, its `epoch` (u64) clashing with the key
//! inferred from the folder names (int32); keeping the key `epoch` rather than renaming it keeps
//! the layout the store's garbage collection and older readers know, and every reader of the
//! folder (pandas, polars with `hive_partitioning=True`, DuckDB with `hive_partitioning = true`,
//! [`summarise`]) gets one `epoch` column, from the folder. Files written before this carry their
//! own `epoch`, which [`summarise`] takes as is.
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

/// The Hive partition key of both tables: the folder `epoch=N` says the epoch, the files do not.
pub const PARTITION_KEY: &str = "epoch";

/// The score table's columns as a reader of the folder sees them, in order, with what each
/// holds: the first, [`PARTITION_KEY`], comes from the folder name, the rest from the file.
pub const SCORE_COLUMNS: [(&str, &str); 20] = [
    (
        "epoch",
        "int: the epoch, from the folder name `epoch=N` (not stored in the file)",
    ),
    ("block", "u64: the block at which the validator scored it"),
    ("uid", "u16: the miner's uid"),
    (
        "hotkey",
        "str: its hotkey as an SS58 address (prefix 42, as btcli shows it)",
    ),
    (
        "hotkey_hex",
        "str: the same hotkey as 64 hex digits (as storage keys name it)",
    ),
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
    (
        "share",
        "f64: its share of its stage's samples in the epoch's routing, from its declared work rate",
    ),
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

/// The score table of `epoch`, scored at `block`, with its `epoch` column (dropped when
/// written, [`encode_part`]); see [`Disclosure`] for `disclosure`.
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
        column(rows, "hotkey", |r| ss58(&r.work.hotkey)),
        column(rows, "hotkey_hex", |r| r.work.hotkey.as_str()),
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
        column(rows, "share", |r| r.work.share),
    ];
    DataFrame::new(rows.len(), columns)
}

/// The SS58 address (prefix 42) of a hotkey written as 64 hex digits; `None` for anything else.
pub fn ss58(hex_key: &str) -> Option<String> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    Some(sliver_chain::wallet::AccountId32(bytes).to_string())
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

/// `df` as the Parquet file of its `epoch=N` folder: without its [`PARTITION_KEY`] column,
/// which the folder name gives (see the module's documentation).
///
/// # Errors
/// When polars fails to write.
pub fn encode_part(df: &mut DataFrame) -> Result<Bytes> {
    if df.column(PARTITION_KEY).is_ok() {
        let _ = df.drop_in_place(PARTITION_KEY)?;
    }
    encode(df)
}

/// Reads every `epoch=N/part.parquet` under `dir`, each with its `epoch` (u64) from the folder
/// name (or, in a file written before the files left it out, its own), concatenated and sorted
/// by epoch.
fn read_partitions(dir: &Path) -> Result<Option<DataFrame>> {
    let mut frames = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let folder = entry?.path();
        let path = folder.join("part.parquet");
        let Some(epoch) = folder
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("epoch="))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut df = ParquetReader::new(file)
            .finish()
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        if df.column(PARTITION_KEY).is_err() {
            let key = Column::new(PARTITION_KEY.into(), vec![epoch; df.height()]);
            df.insert_column(0, key)?;
        }
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

/// The score columns [`summarise`] reads: every table written since the score table had them.
const SUMMARISED: [&str; 14] = [
    "epoch",
    "uid",
    "stage",
    "samples_forward",
    "samples_backward",
    "spot_checks",
    "spot_check_failures",
    "clasp_effect",
    "clasp_confidence",
    "merge_ok",
    "raw_score",
    "ema_score",
    "weight",
    "caught",
];

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
    for name in SUMMARISED {
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
    use std::str::FromStr;

    fn row(uid: u16, weight: u16, caught: Vec<Caught>) -> Row {
        Row {
            work: MinerWork {
                uid,
                hotkey: hex::encode([uid as u8; 32]),
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
        let bytes = encode_part(&mut df).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
            .finish()
            .unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|s| s.as_str()).collect();
        // The file holds every documented column but the epoch, which its folder gives.
        let documented: Vec<&str> = SCORE_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(documented[0], PARTITION_KEY);
        assert_eq!(names, documented[1..]);
        let hotkey = back.column("hotkey").unwrap().str().unwrap();
        let hex_key = back.column("hotkey_hex").unwrap().str().unwrap();
        assert_eq!(hex_key.get(0), Some("03".repeat(32).as_str()));
        let address = hotkey.get(0).unwrap();
        assert!(address.starts_with('5') && address.len() == 48, "{address}");
        assert_eq!(
            sliver_chain::wallet::AccountId32::from_str(address)
                .unwrap()
                .0,
            [3; 32]
        );
        assert_eq!(
            ss58(&"00".repeat(32)).as_deref(),
            Some("5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM")
        );
        assert_eq!(ss58("hk3"), None);
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
        let bytes = encode_part(&mut df).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
            .finish()
            .unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|s| s.as_str()).collect();
        let documented: Vec<&str> = SCORE_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented[1..]);
        for sealed in ["weight", "ema_score", "raw_score"] {
            let c = back.column(sealed).unwrap();
            assert_eq!(c.null_count(), rows.len(), "{sealed} shows values: {c:?}");
        }
        assert_eq!(back.column("weight").unwrap().u16().unwrap().get(0), None);
        assert!(back.column("ema_score").unwrap().f64().is_ok());
        // The rest is as in the open table.
        let open = scores_frame(Epoch(4), 1234, &rows, Disclosure::Public).unwrap();
        for (name, _) in &SCORE_COLUMNS[1..] {
            if !["weight", "ema_score", "raw_score"].contains(name) {
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

    /// The README's section on score tables: its Python block and its SQL block.
    fn readme_snippets() -> (String, String) {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Score tables").unwrap()..];
        let block = |fence: &str| {
            let start = section.find(fence).unwrap() + fence.len();
            let len = section[start..].find("```").unwrap();
            section[start..start + len].to_owned()
        };
        (block("```python\n"), block("```sql\n"))
    }

    /// Checks run after the README's Python block, on what it read (`scores`, `paths` with
    /// polars, `table` with pandas), and the README's SQL block through DuckDB. `expected` is
    /// JSON: the columns, the epochs, the rows per table and one hotkey's SS58 address.
    const READERS_CHECK: &str = r#"
import json, sys
expected = json.loads(sys.argv[1])
snippet, sql = open(sys.argv[2]).read(), open(sys.argv[3]).read()
names = set(expected["columns"])
exec(compile(snippet, "README.md (python)", "exec"))
import duckdb, pandas as pd, polars as pl

def same(what, got, want):
    assert got == want, f"{what}: got {got!r}, expected {want!r}"

same("polars columns", set(scores.columns), names)
same("polars rows", scores.height, expected["scores"])
same("polars epochs", sorted(scores["epoch"].unique().to_list()), expected["epochs"])
same("polars hotkey", scores.filter(pl.col("uid") == 3)["hotkey"][0], expected["hotkey3"])
same("polars path epochs", sorted(paths["epoch"].unique().to_list()), expected["epochs"])
same("polars path rows", paths.height, expected["paths"])
folder = pl.read_parquet(f"{run}/scores", hive_partitioning=True)
same("polars folder columns", set(folder.columns), names)
same("pandas columns", set(table.columns), names)
same("pandas rows", len(table), expected["scores"])
same("pandas epochs", sorted(int(e) for e in table["epoch"].unique()), expected["epochs"])
same("pandas hotkey", table[table["uid"] == 3]["hotkey"].iloc[0], expected["hotkey3"])
rows = duckdb.sql(sql).fetchall()
same("duckdb rows", len(rows), expected["scores"])
same("duckdb epochs", sorted({r[0] for r in rows}), expected["epochs"])
source = sql.split("FROM", 1)[1].split("ORDER BY", 1)[0]
described = duckdb.sql("DESCRIBE SELECT * FROM " + source).fetchall()
same("duckdb columns", {r[0] for r in described}, names)
print("pandas", pd.__version__, "polars", pl.__version__, "duckdb", duckdb.__version__, "read", len(rows), "rows")
"#;

    /// pandas, polars and DuckDB read real exported folders as the README shows: the README's
    /// own snippets, run on tables written as the validator writes them. Needs `python3` with
    /// pandas, pyarrow, polars and duckdb, which `scripts/setup.sh` installs into the cache and
    /// names in `SLIVER_PYTHON_TABLES`; skipped, saying so, only when there is no `python3`.
    #[test]
    fn pandas_polars_and_duckdb_read_the_exported_folders_as_the_readme_shows() {
        use std::process::Command;
        if Command::new("python3").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED pandas_polars_and_duckdb_read_the_exported_folders_as_the_readme_shows: \
                 no python3 on PATH to run pandas, polars and DuckDB with"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/local");
        let epochs = [1u64, 2, 3];
        let mut paths_written = 0;
        for (i, epoch) in epochs.iter().copied().enumerate() {
            let rows = vec![
                row(3, 65535, vec![]),
                row(4, 0, vec![Caught::Clasp]),
                row(5, 100, vec![]),
            ];
            let disclosure = if i == 1 {
                Disclosure::Sealed
            } else {
                Disclosure::Public
            };
            let mut scores = scores_frame(Epoch(epoch), 100 * epoch, &rows, disclosure).unwrap();
            let paths: Vec<crate::follow::Path> = (0..4 + epoch)
                .map(|sample| crate::follow::Path {
                    sample,
                    uids: vec![3, 4, 5],
                    loss: 2.5,
                })
                .collect();
            paths_written += paths.len();
            let mut paths = crate::clasp::paths_frame(Epoch(epoch), 3, &paths).unwrap();
            for (table, df) in [("scores", &mut scores), ("paths", &mut paths)] {
                let file = run.join(format!("{table}/epoch={epoch}/part.parquet"));
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, encode_part(df).unwrap()).unwrap();
            }
        }
        let (python, sql) = readme_snippets();
        let here = run.to_str().unwrap();
        let placeholder = "runs/localnet/store/runs/local";
        assert!(python.contains(placeholder) && sql.contains(placeholder));
        std::fs::write(
            dir.path().join("readme.py"),
            python.replace(placeholder, here),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("readme.sql"),
            sql.replace(placeholder, here),
        )
        .unwrap();
        let expected = serde_json::json!({
            "columns": SCORE_COLUMNS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "epochs": epochs,
            "scores": 3 * epochs.len(),
            "paths": paths_written,
            "hotkey3": ss58(&hex::encode([3u8; 32])),
        });
        let mut python = Command::new("python3");
        if let Some(tables) = std::env::var_os("SLIVER_PYTHON_TABLES") {
            python.env("PYTHONPATH", tables);
        }
        let out = python
            .args(["-c", READERS_CHECK, &expected.to_string()])
            .arg(dir.path().join("readme.py"))
            .arg(dir.path().join("readme.sql"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "the README's snippets failed on exported tables (pandas, pyarrow, polars and duckdb \
             come from scripts/setup.sh, through SLIVER_PYTHON_TABLES={:?}):\n{stdout}\n{stderr}",
            std::env::var_os("SLIVER_PYTHON_TABLES")
        );
        eprintln!("{}", stdout.lines().last().unwrap_or_default());
        // And `btvalidator scores` reads the same folders, its epochs from the folder names.
        let text = summarise(&run).unwrap();
        for epoch in epochs {
            assert!(
                text.contains(&format!("epoch {epoch}: {} finished paths", 4 + epoch)),
                "{text}"
            );
        }
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
            std::fs::write(&path, encode_part(&mut df).unwrap()).unwrap();
        }
        // A table written before the files left out their `epoch` is read with its own.
        let mut old = scores_frame(Epoch(3), 30, &[row(3, 1, vec![])], Disclosure::Public).unwrap();
        let path = dir.path().join("scores/epoch=3/part.parquet");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, encode(&mut old).unwrap()).unwrap();
        let text = summarise(dir.path()).unwrap();
        assert!(text.contains("\nepoch 3\n"), "{text}");
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
