//! `btvalidator data prepare`: tokenizes a run spec's `[data]` sources into token shards in a
//! store (a directory or `s3://bucket/prefix`), for `data.shards` (see
//! `sliver_common::data::shards`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sliver_common::RunSpec;
use sliver_common::data::shards::{self, WriteOptions};
use sliver_common::storage::{Store, StoreConfig};

/// Reads the sources of the spec at `spec_path` one file at a time, writes shards of at most
/// `shard_tokens` tokens and the manifest to `out`, printing progress to stderr; returns the
/// `[data]` lines that name them.
///
/// `out` is a directory, a `file://` URL or an `s3://bucket/prefix` URL; an S3 store's endpoint,
/// region and write keys come from the usual `AWS_*` environment variables.
///
/// # Errors
/// An invalid spec, unreadable sources, or a failed write.
pub fn prepare(spec_path: &Path, out: &str, shard_tokens: u64) -> Result<String> {
    let spec =
        RunSpec::load(spec_path).with_context(|| format!("checking {}", spec_path.display()))?;
    let config = if out.contains("://") {
        StoreConfig::at(out).with_env()
    } else {
        StoreConfig::filesystem(out)
    };
    let store = Store::open(&config).with_context(|| format!("opening {config}"))?;
    let options = WriteOptions {
        shard_tokens,
        ..WriteOptions::default()
    };
    let started = Instant::now();
    let mut last = started;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (manifest, hash) = runtime
        .block_on(shards::prepare(&spec.data, store, options, |file, p| {
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                eprintln!(
                    "{} documents, {} tokens, {} shards written; read {file}",
                    p.documents, p.tokens, p.shards
                );
            }
        }))
        .with_context(|| format!("preparing token shards in {config}"))?;
    eprintln!(
        "done in {:.1} s: {} documents, {} tokens ({} train blocks, {} held out), {} shards",
        started.elapsed().as_secs_f64(),
        manifest.documents,
        manifest.tokens,
        manifest.split.blocks - manifest.split.eval_blocks,
        manifest.split.eval_blocks,
        manifest.shards.len()
    );
    let location = config
        .to_location()
        .with_context(|| format!("{config} cannot be named in a spec"))?;
    let mut lines = format!(
        "# Add to [data] in {} (participants then read these shards, not the sources):\n",
        spec_path.display()
    );
    if location.starts_with("s3://") {
        lines.push_str(
            "# Add the bucket's read-only key to the location (&key=...&secret=...) unless it is public-read.\n",
        );
    }
    lines.push_str(&format!(
        "shards = {}\nmanifest_blake3 = \"{hash}\"\n",
        toml_string(&location)
    ));
    Ok(lines)
}

/// `s` (a location: printable ASCII) as a TOML basic string; Rust's escapes of `"` and `\\`
/// are TOML's.
fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepares_a_directory_and_prints_the_spec_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::create_dir(&text).unwrap();
        for i in 0..40 {
            std::fs::write(
                text.join(format!("{i}.txt")),
                format!("{i} ").repeat(300 + i),
            )
            .unwrap();
        }
        let mut spec = sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            8,
            sliver_common::CodecKind::Fp32,
            false,
        );
        spec.data.sources = vec![text.display().to_string()];
        let path = dir.path().join("spec.toml");
        std::fs::write(&path, spec.to_toml()).unwrap();
        let out = dir.path().join("shards");
        let lines = prepare(&path, out.to_str().unwrap(), 1000).unwrap();
        assert!(lines.contains("shards = \"file://"), "{lines}");
        let hash = lines.split("manifest_blake3 = \"").nth(1).unwrap();
        assert_eq!(hash.trim_end().trim_end_matches('"').len(), 64, "{lines}");
        assert!(out.join("manifest.json").is_file());
        assert!(out.join("shards/000000.tok").is_file());
    }
}
