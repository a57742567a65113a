//! The epoch's score table as Parquet: one row per miner with the raw figures and the weight.
//!
//! Written under the run in the validator's store, `runs/{run}/scores/epoch=N/part.parquet`
//! (Hive-style partitioning, so polars, pandas and DuckDB read the whole directory as one table
//! with an `epoch` column). Arrow and parquet are used directly: one small table per epoch
//! needs no query engine; attribution across epochs (CLASP) is where polars comes in.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt16Array, UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::follow::MinerWork;

/// One miner's row: its work, its scores and the weight set for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it verifiably did.
    pub work: MinerWork,
    /// This epoch's score.
    pub score: f64,
    /// The moving average after this epoch.
    pub ema: f64,
    /// The u16 weight set on chain.
    pub weight: u16,
}

/// The storage key of epoch `epoch`'s table.
pub fn key(run: &str, epoch: u64) -> String {
    format!("runs/{run}/scores/epoch={epoch}/part.parquet")
}

/// Encodes `rows` of `epoch` as a Parquet file.
///
/// # Errors
/// When arrow or parquet fail (they do not for well-formed rows).
pub fn encode(epoch: u64, rows: &[Row]) -> Result<Bytes> {
    let col_u64 = |f: fn(&Row) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "epoch",
            Arc::new(UInt64Array::from(vec![epoch; rows.len()])),
        ),
        (
            "uid",
            Arc::new(UInt16Array::from_iter_values(
                rows.iter().map(|r| r.work.uid),
            )),
        ),
        (
            "hotkey",
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.work.hotkey.as_str()),
            )),
        ),
        (
            "stage",
            Arc::new(UInt16Array::from_iter_values(
                rows.iter().map(|r| r.work.stage),
            )),
        ),
        ("activations", col_u64(|r| r.work.activations)),
        ("consumed", col_u64(|r| r.work.consumed)),
        ("gradients", col_u64(|r| r.work.gradients)),
        ("rejected", col_u64(|r| r.work.rejected)),
        (
            "merged",
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.work.merged).collect::<Vec<_>>(),
            )),
        ),
        ("work", col_u64(|r| r.work.work)),
        (
            "score",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.score))),
        ),
        (
            "ema",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.ema))),
        ),
        (
            "weight",
            Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.weight))),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).context("building the score table")?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn writes_a_readable_table() {
        let rows = vec![Row {
            work: MinerWork {
                uid: 3,
                hotkey: "ab".into(),
                stage: 1,
                work: 7,
                merged: true,
                ..MinerWork::default()
            },
            score: 0.5,
            ema: 0.25,
            weight: 65535,
        }];
        let bytes = encode(4, &rows).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0].num_rows(), 1);
        let weight = batches[0]
            .column_by_name("weight")
            .unwrap()
            .as_any()
            .downcast_ref::<UInt16Array>()
            .unwrap()
            .value(0);
        assert_eq!(weight, 65535);
    }
}
