//! The network miner's own checkpoint: its stage's weights and where it was in the run.
//!
//! Written after every merge and on shutdown, to a temporary directory that is fsynced and
//! renamed into place, so a crash leaves the old checkpoint or the new one. On restart it is
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

fn dir(root: &Path) -> PathBuf {
    root.join("stage-checkpoint")
}

/// Saves `vs` with `saved` under `root`, replacing the previous checkpoint atomically.
///
/// # Errors
/// When a file cannot be written; the previous checkpoint is left intact then.
pub fn save(root: &Path, vs: &nn::VarStore, saved: Saved) -> Result<()> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = root.join(format!("stage-checkpoint.partial.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
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
