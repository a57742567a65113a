//! Crash-safe checkpoints of a local run: every stage's weights, the run spec
//! and the step reached.
//!
//! A checkpoint is a directory `checkpoint/` holding `spec.toml`,
//! `state.json` (format version, step, spec hash and the BLAKE3 of every stage
//! file) and `stage-{i}.safetensors`. It is written to a fresh temporary
//! directory, synced, and installed by renames that always leave one complete
//! checkpoint in place: the newest in `checkpoint/`, the one before it in
//! `checkpoint.previous/`. Loading checks the hashes, then the weights' names,
//! shapes and dtypes and that they are finite; a damaged newest checkpoint
//! falls back to the previous one with a warning. The AdamW moments are not
//! saved (tch exposes no optimizer state): a resumed run re-warms them, which
//! costs a few steps of loss, not correctness.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sliver_common::{RunSpec, Trainer};
use tracing::warn;

const DIR: &str = "checkpoint";
const PREVIOUS: &str = "checkpoint.previous";
/// Where the checkpoint before the previous one goes while the new one is installed.
const DISCARD: &str = "checkpoint.discard";
const PARTIAL: &str = "checkpoint.partial-";
/// Version of the checkpoint layout; bump on any incompatible change.
const FORMAT: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct State {
    format: u32,
    step: u64,
    spec_blake3: String,
    stages: usize,
    /// File name → BLAKE3 of its bytes, for every stage file.
    files: BTreeMap<String, String>,
}

fn spec_hash(spec: &RunSpec) -> String {
    hex::encode(spec.hash())
}

fn stage_name(stage: usize) -> String {
    format!("stage-{stage}.safetensors")
}

fn file_hash(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// Writes a checkpoint of `trainer` under `out`, replacing the newest one; the one it replaces
/// becomes `checkpoint.previous`.
///
/// # Errors
/// When a file cannot be written; the checkpoints already there are then left intact.
pub fn save(out: &Path, spec: &RunSpec, trainer: &Trainer) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    remove_stale_partials(out)?;
    let tmp = out.join(format!("{PARTIAL}{}", std::process::id()));
    fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut files = BTreeMap::new();
    for stage in trainer.stages() {
        let name = stage_name(stage.index());
        let path = tmp.join(&name);
        stage
            .var_store()
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        files.insert(name, file_hash(&path)?);
    }
    fs::write(tmp.join("spec.toml"), spec.to_toml()).context("writing spec.toml")?;
    let state = State {
        format: FORMAT,
        step: trainer.steps_done(),
        spec_blake3: spec_hash(spec),
        stages: trainer.stages().len(),
        files,
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

    // Install without a moment where no complete checkpoint exists: the oldest is moved out of
    // the way (not deleted), the newest becomes the previous, the new one the newest, and only
    // then is the oldest deleted.
    let (dir, previous, discard) = (out.join(DIR), out.join(PREVIOUS), out.join(DISCARD));
    if discard.exists() {
        fs::remove_dir_all(&discard).with_context(|| format!("removing {}", discard.display()))?;
    }
    if dir.exists() {
        if previous.exists() {
            fs::rename(&previous, &discard)
                .with_context(|| format!("moving {} aside", previous.display()))?;
        }
        fs::rename(&dir, &previous).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    fs::rename(&tmp, &dir).with_context(|| format!("installing {}", dir.display()))?;
    sync_dir(out)?;
    if discard.exists() {
        fs::remove_dir_all(&discard).with_context(|| format!("removing {}", discard.display()))?;
    }
    Ok(())
}

/// Removes temporary directories left by saves that crashed (any process's).
fn remove_stale_partials(out: &Path) -> Result<()> {
    for entry in fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let path = entry?.path();
        let is_partial = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PARTIAL));
        if is_partial && path.is_dir() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    Ok(())
}

/// Loads the checkpoint under `out` into `trainer` if there is one; returns the step it reached.
/// The newest checkpoint is used unless it is damaged; then the previous one, with a warning.
///
/// # Errors
/// When a checkpoint exists but belongs to another run spec, or every checkpoint there is
/// damaged (the error names what is wrong with each).
pub fn load(out: &Path, spec: &RunSpec, trainer: &mut Trainer) -> Result<Option<u64>> {
    let candidates: Vec<PathBuf> = [out.join(DIR), out.join(PREVIOUS)]
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    for dir in &candidates {
        match load_one(dir, spec, trainer) {
            Ok(step) => {
                if !problems.is_empty() {
                    warn!(
                        checkpoint = %dir.display(),
                        damaged = %problems.join("; "),
                        "the newest checkpoint is damaged; resumed from the previous one"
                    );
                }
                return Ok(Some(step));
            }
            Err(e) if e.downcast_ref::<OtherSpec>().is_some() => return Err(e),
            Err(e) => problems.push(format!("{}: {e:#}", dir.display())),
        }
    }
    bail!(
        "no usable checkpoint under {}: {}",
        out.display(),
        problems.join("; ")
    )
}

/// A checkpoint written for another run spec: not damage, so no fallback.
#[derive(Debug, thiserror::Error)]
#[error(
    "the checkpoint in {0} was written for a different run spec; pass --fresh to start over or choose another --out"
)]
struct OtherSpec(String);

fn load_one(dir: &Path, spec: &RunSpec, trainer: &mut Trainer) -> Result<u64> {
    let state_path = dir.join("state.json");
    let state: State = serde_json::from_slice(
        &fs::read(&state_path).with_context(|| format!("reading {}", state_path.display()))?,
    )
    .with_context(|| format!("parsing {}", state_path.display()))?;
    if state.format != FORMAT {
        bail!(
            "checkpoint format {} (this build reads {FORMAT})",
            state.format
        );
    }
    if state.spec_blake3 != spec_hash(spec) || state.stages != trainer.stages().len() {
        return Err(OtherSpec(dir.display().to_string()).into());
    }
    for i in 0..trainer.stages().len() {
        let name = stage_name(i);
        let path = dir.join(&name);
        let expected = state
            .files
            .get(&name)
            .with_context(|| format!("state.json has no hash for {name}"))?;
        if &file_hash(&path)? != expected {
            bail!("{name} does not match its BLAKE3 in state.json");
        }
        check_and_load(trainer, i, &path)?;
    }
    trainer.set_steps_done(state.step);
    Ok(state.step)
}

/// Loads stage `i` from `path` after checking that it holds exactly the stage's variables, with
/// their shapes and dtypes, all finite.
fn check_and_load(trainer: &Trainer, i: usize, path: &Path) -> Result<()> {
    let saved: BTreeMap<String, tch::Tensor> = tch::Tensor::read_safetensors(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect();
    let vars = trainer.stages()[i].var_store().variables();
    if saved.len() != vars.len() {
        bail!(
            "{} holds {} tensors, the stage has {}",
            path.display(),
            saved.len(),
            vars.len()
        );
    }
    for (name, var) in &vars {
        let t = saved
            .get(name)
            .with_context(|| format!("{} has no {name}", path.display()))?;
        if t.size() != var.size() || t.kind() != var.kind() {
            bail!(
                "{name} in {} is {:?} {:?}, the stage wants {:?} {:?}",
                path.display(),
                t.kind(),
                t.size(),
                var.kind(),
                var.size()
            );
        }
        if !bool::try_from(t.isfinite().all()).unwrap_or(false) {
            bail!("{name} in {} holds NaN or infinity", path.display());
        }
    }
    // Copy what was read and checked, rather than reading the file again.
    tch::no_grad(|| {
        for (name, mut var) in vars {
            if let Some(t) = saved.get(&name) {
                var.f_copy_(t)
                    .with_context(|| format!("loading {name} from {}", path.display()))?;
            }
        }
        Ok(())
    })
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

    #[test]
    fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let mut a = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        a.set_steps_done(3);
        save(dir.path(), &spec, &a).unwrap();
        a.set_steps_done(5);
        save(dir.path(), &spec, &a).unwrap();
        // A crashed save of another process left its partial directory.
        let stale = dir.path().join(format!("{PARTIAL}999999"));
        fs::create_dir(&stale).unwrap();
        a.set_steps_done(6);
        save(dir.path(), &spec, &a).unwrap();
        assert!(!stale.exists(), "stale partial directories are removed");

        // Flip one byte of the newest stage file: its hash no longer matches.
        let file = dir.path().join(DIR).join(stage_name(1));
        let mut bytes = fs::read(&file).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        fs::write(&file, &bytes).unwrap();
        let mut b = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        assert_eq!(load(dir.path(), &spec, &mut b).unwrap(), Some(5));

        // Both damaged: an error naming each.
        fs::remove_file(dir.path().join(PREVIOUS).join(stage_name(0))).unwrap();
        let err = format!("{:#}", load(dir.path(), &spec, &mut b).unwrap_err());
        assert!(
            err.contains("no usable checkpoint") && err.contains(PREVIOUS),
            "{err}"
        );
    }

    #[test]
    fn a_file_whose_hash_matches_but_holds_nan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let a = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        tch::no_grad(|| {
            if let Some((_, mut v)) = a.stages()[0].var_store().variables().into_iter().next() {
                let _ = v.fill_(f64::NAN);
            }
        });
        save(dir.path(), &spec, &a).unwrap();
        let mut b = Trainer::pipeline(&spec, Device::Cpu, 10).unwrap();
        let err = format!("{:#}", load(dir.path(), &spec, &mut b).unwrap_err());
        assert!(err.contains("NaN"), "{err}");
    }
}
