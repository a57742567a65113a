//! Reading other participants' artifacts: download within the size limit, open against the
//! roster, decode with the expected dims. Every rejection is a log line naming the producer and
//! the reason, and a counter; a rejected artifact is never used.

use sliver_common::artifact::{self, ArtifactId, Expect, Hotkey, Kind};
use sliver_common::codec::CodecError;
use sliver_common::layout;
use sliver_common::metrics::Metrics;
use sliver_common::storage::Store;
use sliver_common::{Epoch, RunSpec, StageIndex, WireCodec};
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
    Ok(fetch_opened(store, key, expect, roster, metrics, codec)
        .await?
        .map(|(_, t)| t))
}

/// [`fetch`], keeping the verified header (its weights and loss claims).
pub async fn fetch_opened(
    store: &Store,
    key: &str,
    expect: &Expect<'_>,
    roster: &Roster,
    metrics: &Metrics,
    codec: &WireCodec,
) -> Result<Option<(artifact::Header, Tensor)>, ()> {
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
            // The producer's failure (its store is down, denies or stalls), counted; the read
            // is tried again later, as an object not there yet would be.
            metrics.reject("download");
            warn!(producer = %expect.producer.short(), key, error = %e, "download failed; will retry");
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
    let limit = codec.encoded_len(expect.dims);
    match codec.decode_expected(opened.payload, expect.dims, limit, Device::Cpu) {
        Ok(t) => Ok(Some((opened.header, t))),
        Err(e @ (CodecError::Unexpected { .. } | CodecError::WrongCodec { .. })) => {
            reject("dims", e.to_string());
            Err(())
        }
        Err(e) => {
            reject("malformed", e.to_string());
            Err(())
        }
    }
}

/// Fetches and checks `producer`'s activation or gradient `at`, with the run's wire dims and
/// codec; `None` when absent or rejected.
pub async fn boundary(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    at: ArtifactId,
    producer: &Hotkey,
) -> Option<(artifact::Header, Tensor)> {
    let store = roster.store(producer).ok()?;
    let codec = if at.kind == Kind::Grad {
        spec.gradient_codec()
    } else {
        spec.activation_codec()
    };
    let dims = spec.wire_dims();
    let expect = Expect::of(&roster.run, at, *producer, &codec, &dims);
    let key = layout::artifact(&spec.name, producer, at);
    fetch_opened(store, &key, &expect, roster, metrics, &codec)
        .await
        .ok()
        .flatten()
}

/// How long one read of a peer's store may take: a sample's timeout
/// (`swarm.sample_timeout_secs`), since a sample not received by then is dropped upstream
/// anyway. Every reader of a peer (the feed, the audit, the spot checks) bounds each read by it,
/// and a merge shard by a multiple of it ([`crate::merged::shard_deadline`]): a store that
/// answers slowly, or never, costs its own owner's work, not the reader's.
pub fn peer_deadline(spec: &RunSpec) -> std::time::Duration {
    std::time::Duration::from_secs(spec.swarm.sample_timeout_secs)
}

/// The codec of weight shards: lossless, since merged weights must be bit-identical everywhere.
pub fn shard_codec() -> WireCodec {
    WireCodec::new(sliver_common::codec::CodecKind::Fp32, 0)
}

/// Reads shard `index` of `count` (of `len` values) of `kind` (`Shard` or `Merged`) that
/// `producer` put for (`epoch`, `stage`); `None` when absent or rejected.
pub async fn shard(
    roster: &Roster,
    metrics: &Metrics,
    (epoch, stage): (Epoch, StageIndex),
    producer: &Hotkey,
    kind: Kind,
    (index, count, len): (usize, usize, i64),
) -> Option<Tensor> {
    let store = roster.store(producer).ok()?;
    let at = ArtifactId {
        epoch,
        stage,
        kind,
        id: artifact::shard_id(index as u32, count as u32),
    };
    let key = layout::artifact(&roster.run.name, producer, at);
    let dims = [len];
    let codec = shard_codec();
    let expect = Expect::of(&roster.run, at, *producer, &codec, &dims);
    fetch(store, &key, &expect, roster, metrics, &codec)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sliver_common::artifact::{Hotkey, Kind, RunId, Signer, Unsealed};
    use sliver_common::assignment::{Assignment, Member};
    use sliver_common::codec::CodecKind;
    use sliver_common::storage::StoreConfig;
    use tch::Kind as TKind;

    use super::*;

    // The artifact signer the neurons use: a wallet hotkey.
    use crate::signer::HotkeySigner as Key;

    const DIMS: [i64; 3] = [2, 4, 8];

    fn run() -> RunId {
        RunId {
            name: "r".into(),
            netuid: 1,
            spec: [1; 32],
        }
    }

    fn seal(signer: &Key, stage: u16, t: &Tensor, claimed_dims: &[i64]) -> Vec<u8> {
        let codec = WireCodec::new(CodecKind::Int8, 0);
        let payload = codec.encode(t).unwrap();
        artifact::seal(
            Unsealed {
                run: &run(),
                at: ArtifactId {
                    epoch: Epoch(1),
                    stage: StageIndex(stage),
                    kind: Kind::Act,
                    id: 7,
                },
                codec: CodecKind::Int8,
                dims: claimed_dims,
                weights: None,
                loss: None,
                inputs: &[],
            },
            &payload,
            signer,
        )
        .unwrap()
    }

    /// Every kind of bad artifact is refused before use, counted under its reason.
    #[tokio::test]
    async fn bad_artifacts_are_rejected_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::filesystem(dir.path())).unwrap();
        let keys: Vec<Key> = (0..3)
            .map(|_| Key(sliver_chain::wallet::Keypair::generate()))
            .collect();
        let [good, staged1, stranger] = [&keys[0], &keys[1], &keys[2]];
        // `good` mines stage 0, `staged1` stage 1; `stranger` is not on the roster.
        let members = [
            Member {
                uid: 0,
                hotkey: good.hotkey(),
            },
            Member {
                uid: 1,
                hotkey: staged1.hotkey(),
            },
        ];
        let roster = Roster {
            run: run(),
            epoch: Epoch(1),
            assignment: Assignment::new(2, &members),
            stores: HashMap::from([
                (good.hotkey(), store.clone()),
                (staged1.hotkey(), store.clone()),
                (stranger.hotkey(), store.clone()),
            ]),
        };
        let metrics = Metrics::new("miner");
        let codec = WireCodec::new(CodecKind::Int8, 0);
        let t = Tensor::randn(DIMS, (TKind::Float, Device::Cpu));
        let run = run();
        let expect = |producer: Hotkey| Expect {
            run: &run,
            epoch: Epoch(1),
            stage: StageIndex(0),
            kind: Kind::Act,
            id: Some(7),
            producer,
            codec: CodecKind::Int8,
            dims: &DIMS,
            payload_len: codec.encoded_len(&DIMS),
        };
        let check = |name: &'static str, bytes: Vec<u8>, producer: Hotkey| {
            let store = store.clone();
            let roster = roster.clone();
            let metrics = metrics.clone();
            async move {
                let key = format!("t/{name}");
                store.put_once(&key, bytes.into()).await.unwrap();
                fetch(&store, &key, &expect(producer), &roster, &metrics, &codec).await
            }
        };

        // A good one opens and decodes.
        let ok = check("good", seal(good, 0, &t, &DIMS), good.hotkey()).await;
        assert_eq!(ok.unwrap().unwrap().size(), DIMS.to_vec());

        let mut forged = seal(good, 0, &t, &DIMS);
        forged[30] ^= 0xff; // inside the producer field: signed by nobody it names
        assert!(check("forged", forged, good.hotkey()).await.is_err());
        assert_eq!(metrics.rejections("signature"), 1);

        let unregistered = seal(stranger, 0, &t, &DIMS);
        assert!(
            check("stranger", unregistered, stranger.hotkey())
                .await
                .is_err()
        );
        assert_eq!(metrics.rejections("unregistered"), 1);

        let wrong_stage = seal(staged1, 0, &t, &DIMS);
        assert!(
            check("staged", wrong_stage, staged1.hotkey())
                .await
                .is_err()
        );
        assert_eq!(metrics.rejections("wrong_stage"), 1);

        let mut bad_hash = seal(good, 0, &t, &DIMS);
        let last = bad_hash.len() - 1;
        bad_hash[last] ^= 1;
        assert!(check("hash", bad_hash, good.hotkey()).await.is_err());
        assert_eq!(metrics.rejections("hash"), 1);

        let other = Tensor::randn([4, 2, 8], (TKind::Float, Device::Cpu));
        let wrong_dims = seal(good, 0, &other, &[4, 2, 8]);
        assert!(check("dims", wrong_dims, good.hotkey()).await.is_err());
        assert_eq!(metrics.rejections("dims"), 1);

        let big = Tensor::randn([2, 4, 512], (TKind::Float, Device::Cpu));
        let oversize = seal(good, 0, &big, &[2, 4, 512]);
        assert!(check("size", oversize, good.hotkey()).await.is_err());
        assert_eq!(metrics.rejections("size"), 1);

        assert_eq!(metrics.rejections_total(), 6);
        assert!(metrics.bytes("down", "act") > 0);
    }
}
