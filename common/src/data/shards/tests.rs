use std::path::Path;

use super::*;
use crate::data::Corpus;

fn spec(tokenizer: TokenizerKind) -> DataSpec {
    DataSpec {
        sources: vec!["inline".into()],
        tokenizer,
        eval_fraction: 0.1,
        ..DataSpec::default()
    }
}

/// Documents of varied lengths, each naming itself, some empty.
fn docs(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| match i % 97 {
        0 => String::new(),
        _ => format!("<{i:06}> ").repeat(1 + (i * 7919) % 23),
    })
}

/// The spec reading the shards just written at `config` with manifest hash `hash`.
fn sharded(base: &DataSpec, config: &StoreConfig, hash: &str) -> DataSpec {
    DataSpec {
        sources: Vec::new(),
        shards: Some(config.to_location().unwrap()),
        manifest_blake3: Some(hash.to_owned()),
        ..base.clone()
    }
}

async fn write(
    store: Store,
    data: &DataSpec,
    options: WriteOptions,
    texts: impl Iterator<Item = String>,
) -> (Manifest, String) {
    let mut writer = ShardWriter::new(store, data, options).unwrap();
    for t in texts {
        writer.push(&t).await.unwrap();
    }
    writer.finish().await.unwrap()
}

fn shards_of(corpus: &Corpus) -> &Shards {
    match &corpus.tokens {
        super::super::Tokens::Shards(s) => s,
        super::super::Tokens::Memory(_) => panic!("not sharded"),
    }
}

fn small() -> WriteOptions {
    WriteOptions {
        shard_tokens: 5000,
        chunk_tokens: 64,
    }
}

/// The same documents give the same split and the same samples, in memory or from shards, for
/// a small corpus (short blocks) and one past `FULL_BLOCKS_FROM` (blocks cut while writing).
#[tokio::test]
async fn shards_give_the_in_memory_corpus_samples() {
    for (kind, n) in [
        (TokenizerKind::Byte, 400),
        (TokenizerKind::Byte, 9000),
        (TokenizerKind::Gpt2, 1500),
    ] {
        let data = spec(kind);
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::filesystem(dir.path());
        let (manifest, hash) = write(Store::open(&config).unwrap(), &data, small(), docs(n)).await;
        let memory = Corpus::from_texts(&data, docs(n).collect()).unwrap();
        let disk = Corpus::load(&sharded(&data, &config, &hash)).await.unwrap();
        assert!(disk.is_sharded() && !memory.is_sharded());
        assert_eq!(manifest.documents as usize, memory.documents());
        assert_eq!(disk.documents(), memory.documents());
        assert_eq!(manifest.token_bytes, 2);
        assert!(manifest.shards.len() > 2, "{}", manifest.shards.len());
        for split in [Split::Train, Split::Eval] {
            assert_eq!(disk.tokens(split), memory.tokens(split));
            assert_eq!(disk.layout.spans(split), memory.layout.spans(split));
        }
        assert_eq!(disk.layout.blocks(), memory.layout.blocks());
        for split in [Split::Train, Split::Eval] {
            for seed in [0, 7] {
                for index in 0..150 {
                    let seq = [1, 31, 200][index as usize % 3];
                    assert_eq!(
                        disk.sample(split, seed, index, seq).unwrap(),
                        memory.sample(split, seed, index, seq).unwrap(),
                        "{kind} {split} seed {seed} index {index}"
                    );
                }
                assert_eq!(
                    disk.batch(split, seed, 3, 4, 63).unwrap(),
                    memory.batch(split, seed, 3, 4, 63).unwrap()
                );
            }
        }
        // Every token of the stream, across every shard and chunk boundary.
        let total = manifest.tokens as usize;
        let all = shards_of(&disk).read(0..total).unwrap();
        let mut stream = Vec::new();
        let tokenizer = Tokenizer::new(kind).unwrap();
        for d in docs(n).filter(|d| !d.is_empty()) {
            stream.extend(tokenizer.encode(&d));
            stream.extend_from_slice(tokenizer.separator());
        }
        assert_eq!(all, stream);
        assert!(shards_of(&disk).read(total - 1..total + 1).is_err());
    }
}

/// `prepare` reads a source directory one file at a time into the same stream `Corpus::load`
/// builds from it; rerunning it is harmless; another corpus into the same place is refused.
#[tokio::test]
async fn prepare_matches_load() {
    let src = tempfile::tempdir().unwrap();
    for (i, d) in docs(300).enumerate() {
        std::fs::write(src.path().join(format!("d{i:04}.txt")), format!("{d}x")).unwrap();
    }
    let data = DataSpec {
        sources: vec![src.path().display().to_string()],
        ..spec(TokenizerKind::Byte)
    };
    let out = tempfile::tempdir().unwrap();
    let config = StoreConfig::filesystem(out.path());
    let mut lines = 0;
    let (manifest, hash) = prepare(&data, Store::open(&config).unwrap(), small(), |_, p| {
        lines += 1;
        assert!(p.documents as usize == lines);
    })
    .await
    .unwrap();
    assert_eq!(lines, 300);
    let memory = Corpus::load(&data).await.unwrap();
    let disk = Corpus::load(&sharded(&data, &config, &hash)).await.unwrap();
    assert_eq!(
        manifest.tokens as usize,
        memory.tokens(Split::Train) + memory.tokens(Split::Eval)
    );
    for index in 0..200 {
        assert_eq!(
            disk.sample(Split::Train, 1, index, 40).unwrap(),
            memory.sample(Split::Train, 1, index, 40).unwrap()
        );
    }
    let (_, again) = prepare(&data, Store::open(&config).unwrap(), small(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(again, hash);
    let other = DataSpec {
        eval_fraction: 0.2,
        ..data.clone()
    };
    let err = prepare(&other, Store::open(&config).unwrap(), small(), |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ShardExists { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// A changed chunk, a changed header, a missing shard and a manifest that is not the spec's all
/// fail with errors naming what is wrong.
#[tokio::test]
async fn bad_shards_are_named() {
    let data = spec(TokenizerKind::Byte);
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::filesystem(dir.path());
    let (manifest, hash) = write(Store::open(&config).unwrap(), &data, small(), docs(400)).await;
    let open = || async { Corpus::load(&sharded(&data, &config, &hash)).await.unwrap() };
    let shard = |i: usize| dir.path().join(&manifest.shards[i].key);
    let table = HEADER + 32 * 5000u64.div_ceil(64);
    let first = manifest.shards[0].tokens as usize;

    // A byte in shard 1's third chunk.
    flip(&shard(1), table + 2 * 64 * 2 + 5);
    let corpus = open().await;
    let s = shards_of(&corpus);
    s.read(first..first + 128).unwrap();
    let err = s.read(first + 128..first + 130).unwrap_err();
    assert!(matches!(err, Error::ShardCorrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("shards/000001.tok") && text.contains("chunk 2 "),
        "{text}"
    );

    // A byte of shard 2's chunk table.
    flip(&shard(2), HEADER + 3);
    let corpus = open().await;
    let start = first + manifest.shards[1].tokens as usize;
    let err = shards_of(&corpus).read(start..start + 1).unwrap_err();
    assert!(
        err.to_string().contains("shards/000002.tok")
            && err.to_string().contains("do not match the manifest"),
        "{err}"
    );

    // Shard 0 gone.
    std::fs::remove_file(shard(0)).unwrap();
    let err = shards_of(&corpus).read(0..1).unwrap_err();
    assert!(matches!(err, Error::ShardMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("shards/000000.tok"), "{err}");
    // Through the sample API too: every sample of a missing shard fails, none panics.
    let failed = (0..50)
        .filter(|&i| corpus.sample(Split::Train, 0, i, 16).is_err())
        .count();
    assert!(failed > 0);

    // The spec's hash must be the manifest's; the spec's tokenizer and split its own.
    let mut wrong = sharded(&data, &config, &"0".repeat(64));
    let err = Corpus::load(&wrong).await.unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
    assert!(err.to_string().contains(&hash), "{err}");
    wrong.manifest_blake3 = Some(hash.clone());
    wrong.tokenizer = TokenizerKind::Gpt2;
    let err = Corpus::load(&wrong).await.unwrap_err();
    assert!(err.to_string().contains("data.tokenizer is gpt2"), "{err}");
    std::fs::remove_file(dir.path().join(MANIFEST_KEY)).unwrap();
    let err = Corpus::load(&sharded(&data, &config, &hash))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ShardMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn the_cache_keeps_to_its_bound() {
    let mut lru = Lru::new(100);
    for i in 0..10 {
        lru.insert((0, Part::Chunk(i)), Bytes::from(vec![0u8; 30]));
        assert!(lru.bytes <= 100);
    }
    // The three most recent stay; touching one keeps it over a newer one.
    assert!(lru.get((0, Part::Chunk(6))).is_none());
    assert!(lru.get((0, Part::Chunk(7))).is_some());
    lru.insert((1, Part::Table), Bytes::from(vec![0u8; 30]));
    assert!(lru.get((0, Part::Chunk(8))).is_none());
    assert!(lru.get((0, Part::Chunk(7))).is_some());
    // What exceeds the whole bound is not kept.
    lru.insert((2, Part::Table), Bytes::from(vec![0u8; 101]));
    assert!(lru.get((2, Part::Table)).is_none());
    assert_eq!(lru.bytes, 90);
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

const CACHE_LIMIT: u64 = 1 << 20;
const ENV_LOCATION: &str = "SLIVER_SHARDS_TEST_LOCATION";
const ENV_HASH: &str = "SLIVER_SHARDS_TEST_HASH";

/// Shards of a corpus of 9 MiB on the S3 test server, read with a 1 MiB cache: the cache stays
/// under its bound, and a process that only reads them (a child of this test, so no other test
/// shares its memory) samples every shard while its resident memory grows by less than half
/// the corpus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_from_s3_in_less_memory_than_the_corpus() {
    let server = crate::testing::S3Server::spawn("sliver");
    let data = spec(TokenizerKind::Byte);
    let options = WriteOptions {
        shard_tokens: 1 << 18,
        chunk_tokens: 4096,
    };
    // 4.7 M byte tokens: 9 MiB of u16 shards.
    let texts = (0..4600).map(|i| format!("{i:08} {}\n", "lorem ipsum dolor ".repeat(55)));
    let (manifest, hash) = write(
        Store::open(&server.config("corpus")).unwrap(),
        &data,
        options,
        texts,
    )
    .await;
    let bytes = manifest.tokens * 2;
    assert!(bytes > 8 * CACHE_LIMIT, "{bytes} bytes of shards");
    assert_eq!(manifest.shards.len(), 18);
    // Readers get the read-only key, as a published location carries.
    let location = server.config("corpus").to_location().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "data::shards::tests::sample_all_shards_in_bounded_memory",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_LOCATION, location)
            .env(ENV_HASH, &hash)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// The reading half of the test above, run by it in a child process.
#[test]
#[ignore = "run by samples_from_s3_in_less_memory_than_the_corpus in a process of its own"]
fn sample_all_shards_in_bounded_memory() {
    let (Ok(location), Ok(hash)) = (std::env::var(ENV_LOCATION), std::env::var(ENV_HASH)) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = DataSpec {
        sources: Vec::new(),
        shards: Some(location),
        manifest_blake3: Some(hash),
        ..spec(TokenizerKind::Byte)
    };
    let options = ShardOptions {
        cache_bytes: CACHE_LIMIT,
    };
    let corpus = rt.block_on(Corpus::load_with(&data, options)).unwrap();
    let shards = shards_of(&corpus);
    let total = *shards.starts.last().unwrap();
    // Warm up the allocator and the connection pool, then measure.
    for i in 0..20 {
        corpus.sample(Split::Train, 0, i, 511).unwrap();
    }
    let base = rss().unwrap_or(0);
    let mut peak = base;
    let mut touched = vec![false; shards.entries.len()];
    for i in 0..1500 {
        let split = if i % 10 == 0 {
            Split::Eval
        } else {
            Split::Train
        };
        let w = corpus.layout.window(split, 1, i, 512).unwrap();
        touched[shards.starts.partition_point(|&s| s <= w.start as u64) - 1] = true;
        let s = corpus.sample(split, 1, i, 511).unwrap();
        assert_eq!(s.len(), 512);
        assert!(corpus.cached_bytes() <= CACHE_LIMIT);
        if i % 50 == 0 {
            peak = peak.max(rss().unwrap_or(0));
        }
    }
    assert!(touched.iter().all(|&t| t), "{touched:?}");
    let grew = peak.saturating_sub(base);
    eprintln!(
        "rss {base} -> peak {peak}: grew {grew} bytes over {} bytes of shards",
        total * 2
    );
    assert!(grew < total, "resident memory grew {grew} bytes");
}
