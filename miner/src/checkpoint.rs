//! Crash-safe checkpoints of a local run: every stage's weights, the run spec
//! and the step reached.
//!
//! A checkpoint is a directory `checkpoint/` holding `spec.toml`,
//! `state.json` and `stage-{i}.safetensors`. It is written to a fresh
//! temporary directory and swapped in by rename, so a crash at any moment
//! leaves either the previous checkpoint or the new one, never a mix. The
//! AdamW moments are not saved (tch exposes no optimizer state): a resumed
//! run re-warms them, which costs a few steps of loss, not correctness.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sliver_common::{RunSpec, Trainer};

const DIR: &str = "checkpoint";
const PREVIOUS: &str = "checkpoint.previous";

#[derive(Debug, Serialize, Deserialize)]
struct State {
    step: u64,
    spec_blake3: String,
    stages: usize,
}

fn spec_hash(spec: &RunSpec) -> String {
    blake3::hash(spec.to_toml().as_bytes()).to_hex().to_string()
}

fn stage_file(dir: &Path, stage: usize) -> PathBuf {
    dir.join(format!("stage-{stage}.safetensors"))
}

/// Writes a checkpoint of `trainer` under `out`, replacing any previous one atomically.
///
/// # Errors
/// When a file cannot be written; the previous checkpoint is then left intact.
pub fn save(out: &Path, spec: &RunSpec, trainer: &Trainer) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tmp = out.join(format!("{DIR}.partial-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing stale {}", tmp.display()))?;
    }
    fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for stage in trainer.stages() {
        let path = stage_file(&tmp, stage.index());
        stage
            .var_store()
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    fs::write(tmp.join("spec.toml"), spec.to_toml()).context("writing spec.toml")?;
    let state = State {
        step: trainer.steps_done(),
        spec_blake3: spec_hash(spec),
        stages: trainer.stages().len(),
    };
    fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(&state)?)
        .context("writing state.json")?;
    // The files' contents must be on disk before the rename makes them the checkpoint.
    for entry in fs::read_dir(&tmp).with_context(|| format!("listing {}", tmp.display()))? {
        let path = entry?.path();
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    sync_dir(&tmp)?;

    let dir = out.join(DIR);
    let previous = out.join(PREVIOUS);
    if previous.exists() {
        fs::remove_dir_all(&previous)
            .with_context(|| format!("removing {}", previous.display()))?;
    }
    if dir.exists() {
        fs::rename(&dir, &previous).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    fs::rename(&tmp, &dir).with_context(|| format!("installing {}", dir.display()))?;
    if previous.exists() {
        fs::remove_dir_all(&previous)
            .with_context(|| format!("removing {}", previous.display()))?;
    }
    sync_dir(out)
}

/// Loads the checkpoint under `out` into `trainer` if there is one; returns the step it reached.
///
/// # Errors
/// When a checkpoint exists but belongs to another run spec or cannot be read.
pub fn load(out: &Path, spec: &RunSpec, trainer: &mut Trainer) -> Result<Option<u64>> {
    // A crash between the two renames in `save` leaves only the previous checkpoint.
    let dir = [out.join(DIR), out.join(PREVIOUS)]
        .into_iter()
        .find(|d| d.join("state.json").exists());
    let Some(dir) = dir else { return Ok(None) };
    let state_path = dir.join("state.json");
    let state: State = serde_json::from_slice(
        &fs::read(&state_path).with_context(|| format!("reading {}", state_path.display()))?,
    )
    .with_context(|| format!("parsing {}", state_path.display()))?;
    if state.spec_blake3 != spec_hash(spec) || state.stages != trainer.stages().len() {
        bail!(
            "the checkpoint in {} was written for a different run spec; pass --fresh to start over or choose another --out",
            dir.display()
        );
    }
    for i in 0..trainer.stages().len() {
        let path = stage_file(&dir, i);
        trainer
            .stage_mut(i)
            .var_store_mut()
            .load(&path)
            .with_context(|| format!("loading {}", path.display()))?;
    }
    trainer.set_steps_done(state.step);
    Ok(Some(state.step))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn spec() -> RunSpec {
        sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            4,
            sliver_common::CodecKind::Int8,
            false,
        )
    }

    #[test]
    fn save_then_load_restores_weights_and_step() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut a = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        a.set_steps_done(7);
        // Perturb a weight so the loaded value is distinguishable from a fresh init.
        tch::no_grad(|| {
            for (_, mut v) in a.stages()[1].var_store().variables() {
                let _ = v.g_add_scalar_(0.5);
            }
        });
        save(dir.path(), &spec, &a).unwrap();
        save(dir.path(), &spec, &a).unwrap(); // replacing an existing checkpoint works too

        let mut b = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        assert_eq!(load(dir.path(), &spec, &mut b).unwrap(), Some(7));
        assert_eq!(b.steps_done(), 7);
        for (name, v) in a.stages()[1].var_store().variables() {
            let w = &b.stages()[1].var_store().variables()[&name];
            assert!(v.equal(w), "{name} not restored");
        }

        let mut other = spec.clone();
        other.seed = 4;
        let mut c = Trainer::pipeline(&other, Device::Cpu, 10).unwrap();
        let err = load(dir.path(), &other, &mut c).unwrap_err().to_string();
        assert!(err.contains("different run spec"), "{err}");
    }

    #[test]
    fn nothing_to_resume_in_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut t = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        assert_eq!(load(dir.path(), &spec, &mut t).unwrap(), None);
    }
}
