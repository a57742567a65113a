//! Reading other participants' artifacts: download within the size limit, open against the
//! roster, decode with the expected dims. Every rejection is a log line naming the producer and
//! the reason, and a counter; a rejected artifact is never used.

use sliver_common::WireCodec;
use sliver_common::artifact::{self, Expect};
use sliver_common::metrics::Metrics;
use sliver_common::storage::Store;
use tch::{Device, Tensor};
use tracing::warn;

use crate::run::Roster;

/// Fetches and checks one artifact; `Ok(None)` when absent, `Err(())` when rejected (logged and
/// counted here).
pub async fn fetch(
    store: &Store,
    key: &str,
    expect: &Expect<'_>,
    roster: &Roster,
    metrics: &Metrics,
    codec: &WireCodec,
) -> Result<Option<Tensor>, ()> {
    let reject = |reason: &'static str, detail: String| {
        metrics.reject(reason);
        warn!(producer = %expect.producer.short(), key, reason, detail, "rejected an artifact");
    };
    let bytes = match store.get(key, expect.max_len()).await {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(sliver_common::storage::StorageError::TooLarge { .. }) => {
            reject("size", format!("larger than {} bytes", expect.max_len()));
            return Err(());
        }
        Err(e) => {
            warn!(key, error = %e, "download failed; will retry");
            return Ok(None);
        }
    };
    metrics.add_bytes("down", expect.kind.as_str(), bytes.len() as u64);
    let opened = match artifact::open(&bytes, expect, &roster.assignment) {
        Ok(o) => o,
        Err(r) => {
            reject(r.reason(), r.to_string());
            return Err(());
        }
    };
    match codec.decode(opened.payload, Device::Cpu) {
        Ok(t) if t.size() == expect.dims => Ok(Some(t)),
        Ok(t) => {
            reject("dims", format!("payload tensor is {:?}", t.size()));
            Err(())
        }
        Err(e) => {
            reject("malformed", e.to_string());
            Err(())
        }
    }
}

/// The codec of weight shards: lossless, since merged weights must be bit-identical everywhere.
pub fn shard_codec() -> WireCodec {
    WireCodec::new(sliver_common::codec::CodecKind::Fp32, 0)
}

/// Reads shard `index` of `count` (of `len` values) of `kind` (`Shard` or `Merged`) that
/// `producer` put for (`epoch`, `stage`); `None` when absent or rejected.
#[allow(clippy::too_many_arguments)]
pub async fn shard(
    run: &str,
    roster: &Roster,
    metrics: &Metrics,
    epoch: u64,
    stage: usize,
    producer: &artifact::Hotkey,
    kind: artifact::Kind,
    (index, count, len): (usize, usize, i64),
) -> Option<Tensor> {
    let store = roster.store(producer).ok()?;
    let id = artifact::shard_id(index as u32, count as u32);
    let key = artifact::key(run, epoch, stage, producer, kind, id);
    let dims = [len];
    let codec = shard_codec();
    let expect = Expect {
        run,
        epoch,
        stage: stage as u16,
        kind,
        id: Some(id),
        producer: *producer,
        codec: codec.kind(),
        dims: &dims,
        payload_len: codec.encoded_len(&dims),
    };
    fetch(store, &key, &expect, roster, metrics, &codec)
        .await
        .ok()
        .flatten()
}

/// The merged weights of `stage` after `epoch` (flat, `total` values), assembled from every
/// shard's first reduction or its twin's; `None` if a shard has neither.
pub async fn merged_stage(
    run: &str,
    roster: &Roster,
    metrics: &Metrics,
    epoch: u64,
    stage: usize,
    total: i64,
) -> Option<Tensor> {
    use sliver_common::merge::{reducers, shard_range};
    let miners = roster.assignment.stage(stage);
    let n = miners.len();
    if n == 0 {
        return None;
    }
    let mut pieces = Vec::with_capacity(n);
    for i in 0..n {
        let (_, len) = shard_range(total, n, i);
        let mut piece = None;
        for r in reducers(i, n) {
            let producer = &miners[r].hotkey;
            piece = shard(
                run,
                roster,
                metrics,
                epoch,
                stage,
                producer,
                artifact::Kind::Merged,
                (i, n, len),
            )
            .await;
            if piece.is_some() {
                break;
            }
        }
        pieces.push(piece?);
    }
    Tensor::f_cat(&pieces, 0).ok()
}
