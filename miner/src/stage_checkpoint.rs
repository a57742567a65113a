//! The network miner's own checkpoint: its stage's weights and where it was in the run.
//!
//! Written after every merge and on shutdown, to a temporary directory that is fsynced and
//! renamed into place, so a crash leaves the old checkpoint or the new one. Only the newest is
//! kept: the one it replaces and any partial one a crash left behind are removed. On restart it is
//! used only when it is newer than the stage's latest merged weights in storage (a graceful stop
//! in the middle of the current epoch); otherwise the miner rejoins from the merged weights, as
//! every miner of the stage has them.

use sliver_common::{Epoch, StageIndex};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn;

/// Where the miner was when it saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The epoch.
    pub epoch: Epoch,
    /// The stage the weights belong to.
    pub stage: StageIndex,
    /// Whether the weights are that epoch's merged weights (saved after the merge).
    pub merged: bool,
    /// Optimizer steps taken so far.
    pub steps: u64,
    /// Micro-batches trained on so far (backwards run): the learning-rate schedule's clock.
    #[serde(default)]
    pub trained: u64,
}

/// The prefix of a save in progress: `stage-checkpoint.partial.{pid}`.
const PARTIAL: &str = "stage-checkpoint.partial.";

fn dir(root: &Path) -> PathBuf {
    root.join("stage-checkpoint")
}

/// Removes what saves that never finished left (this process's or a crashed one's, under
/// another pid): one checkpoint is kept, never a trail of partial ones.
fn remove_stale_partials(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let partial = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PARTIAL));
        if partial && let Err(e) = fs::remove_dir_all(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a partial stage checkpoint");
        }
    }
}

/// Saves `vs` with `saved` under `root`, replacing the previous checkpoint atomically.
///
/// # Errors
/// When a file cannot be written; the previous checkpoint is left intact then.
pub fn save(root: &Path, vs: &nn::VarStore, saved: Saved) -> Result<()> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    remove_stale_partials(root);
    let tmp = root.join(format!("{PARTIAL}{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    vs.save(tmp.join("weights.safetensors"))
        .context("writing stage weights")?;
    fs::write(tmp.join("state.json"), serde_json::to_vec(&saved)?)?;
    for f in ["weights.safetensors", "state.json"] {
        fs::File::open(tmp.join(f))?.sync_all()?;
    }
    let target = dir(root);
    let old = root.join("stage-checkpoint.old");
    let _ = fs::remove_dir_all(&old);
    if target.exists() {
        fs::rename(&target, &old)?;
    }
    fs::rename(&tmp, &target).context("installing the stage checkpoint")?;
    fs::File::open(root)?.sync_all()?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// What the checkpoint under `root` says, if there is one.
pub fn peek(root: &Path) -> Option<Saved> {
    let text = fs::read(dir(root).join("state.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Loads the checkpoint's weights into `vs`.
///
/// # Errors
/// A missing or unreadable checkpoint, or weights that do not fit `vs`.
pub fn load(root: &Path, vs: &mut nn::VarStore) -> Result<()> {
    let file = dir(root).join("weights.safetensors");
    vs.load(&file)
        .with_context(|| format!("loading {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_checkpoint_is_kept() {
        let root = tempfile::tempdir().unwrap();
        // A save that crashed under another pid.
        let stale = root.path().join(format!("{PARTIAL}1"));
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("weights.safetensors"), b"half").unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _w = vs.root().zeros("w", &[2]);
        for epoch in [1, 2] {
            let saved = Saved {
                epoch: Epoch(epoch),
                stage: StageIndex(0),
                merged: true,
                steps: epoch,
                trained: 0,
            };
            save(root.path(), &vs, saved).unwrap();
            assert_eq!(peek(root.path()), Some(saved));
        }
        let mut names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["stage-checkpoint"]);
    }
}
