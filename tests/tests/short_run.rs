//! What the whole-system tests share: a short run's spec and the local subnet's options for it.

use std::path::{Path, PathBuf};

use sliver_common::RunSpec;
use sliver_common::codec::CodecKind;
use sliver_common::testing::{text_dir, tiny_spec};
use sliver_launcher::localnet::{LinkSpec, Options, StorageKind};

/// Where the binaries under test are: target/<profile>, above this test binary's deps/.
pub(crate) fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A tiny model over `stages` (layer ranges) on the real text, in 10 s epochs at 100 ms blocks
/// (3 s of merge window), four samples a round, a 5 s sample timeout.
pub(crate) fn spec(name: &str, stages: &[[usize; 2]], seed: u64) -> RunSpec {
    let mut spec = tiny_spec(stages, 8, CodecKind::Int8, false);
    spec.name = name.into();
    spec.seed = seed;
    spec.optimizer.batch_size = 8;
    spec.swarm.epoch_blocks = 100;
    spec.swarm.merge_blocks = 30;
    spec.swarm.window = 4;
    spec.swarm.sample_timeout_secs = 5;
    spec.data.sources = vec![text_dir()];
    spec
}

/// Writes `spec` to `dir` as `spec-<name>-<seed>.toml`; its path.
pub(crate) fn write(dir: &Path, spec: &RunSpec) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("spec-{}-{}.toml", spec.name, spec.seed));
    std::fs::write(&path, spec.to_toml()).unwrap();
    path
}

/// The local subnet in `dir/net` running the spec at `spec`: one miner a stage, each its own
/// process, one libtorch thread each, 100 ms blocks, the filesystem store, no link figures,
/// four scored epochs.
pub(crate) fn options(dir: &Path, spec: PathBuf) -> Options {
    Options {
        dir: dir.join("net"),
        spec,
        data: None,
        bin_dir: bin_dir(),
        miners_per_stage: 1,
        epochs: 4,
        block_time_ms: 100,
        storage: StorageKind::Fs,
        threads: 1,
        link: LinkSpec::default(),
        miner_poll_ms: None,
        commit_reveal: false,
        miners_per_process: 1,
        adversaries: Vec::new(),
        slowdowns: Vec::new(),
        miner_flags: Vec::new(),
    }
}

/// A test's directory: removed when the test ends, unless `SLIVER_KEEP_TEST_DIR` is set (then
/// kept, its logs to read). Its path is printed.
pub(crate) fn test_dir() -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("SLIVER_KEEP_TEST_DIR").is_some())
        .tempdir()
        .unwrap();
    eprintln!("test directory: {}", tmp.path().display());
    tmp
}
