//! `btminer` as a user runs it: flags, errors, and a local run that is
//! interrupted and resumed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn btminer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_btminer"))
}

/// A tiny two-stage spec, written next to the run's output.
fn tiny_spec(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    let spec = sliver_common::testing::tiny_spec(
        &[[0, 1], [1, 2]],
        4,
        sliver_common::CodecKind::Int8,
        false,
    );
    std::fs::write(&path, spec.to_toml()).unwrap();
    path
}

fn step_of(dir: &Path) -> u64 {
    let state =
        std::fs::read_to_string(dir.join("checkpoint/state.json")).expect("a checkpoint exists");
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["step"].as_u64().unwrap()
}

/// `btminer local` on `spec` into `out` for `steps` steps, checkpointing every
/// `checkpoint_every` (0: only at the end or on a signal); stderr piped, stdout discarded.
fn local_run(spec: &Path, out: &Path, steps: u64, checkpoint_every: u64) -> Command {
    let mut cmd = btminer();
    cmd.args(["local", "--eval-every", "0", "--eval-batches", "1"])
        .arg("--checkpoint-every")
        .arg(checkpoint_every.to_string())
        .arg("--spec")
        .arg(spec)
        .arg("--data")
        .arg(sliver_common::testing::text_dir())
        .arg("--out")
        .arg(out)
        .arg("--steps")
        .arg(steps.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits until `log` (a `loss.csv`) holds `rows` step rows, failing if `child` exits first or
/// makes no progress for 120 s.
fn wait_for_rows(child: &mut std::process::Child, log: &Path, rows: usize, poll: Duration) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(log).map_or(0, |s| s.lines().count().saturating_sub(1)) < rows {
        assert!(
            Instant::now() < deadline,
            "btminer made no progress in 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "btminer exited early");
        std::thread::sleep(poll);
    }
}

/// The step column of `log`, in order.
fn logged_steps(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn help_lists_only_what_is_built() {
    let out = btminer().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("local") && help.contains("--logging.debug"),
        "{help}"
    );
    let out = btminer().args(["local", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("--neuron.device") && help.contains("--spec"),
        "{help}"
    );
}

#[test]
fn bad_flags_and_files_fail_with_a_clear_message() {
    let out = btminer()
        .args(["local", "--neuron.device", "tpu"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown device \"tpu\""), "{err}");

    let out = btminer()
        .args(["local", "--spec", "/nonexistent/spec.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/spec.toml") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn interrupted_run_saves_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let out = dir.path().join("run");
    let run = |steps: u64| local_run(&spec, &out, steps, 0);

    // A long run, interrupted once it has started stepping: it must save and exit cleanly.
    let mut child = run(1_000_000).spawn().unwrap();
    let log = out.join("loss.csv");
    wait_for_rows(&mut child, &log, 3, Duration::from_millis(100));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "interrupted run failed: {stderr}");
    assert!(stderr.contains("interrupted: checkpoint saved"), "{stderr}");
    let saved = step_of(&out);
    assert!(saved >= 3, "checkpoint at step {saved}");

    // Running again resumes from the checkpoint and finishes the remaining steps.
    let output = run(saved + 2).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "resumed run failed: {stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    assert_eq!(step_of(&out), saved + 2);
    assert_eq!(
        logged_steps(&log).last(),
        Some(&(saved + 2)),
        "the loss log continues where the run stopped"
    );
}

/// `btminer local` killed with SIGKILL at moments the test does not choose (while it steps,
/// checkpoints every 3 steps and logs): each restart resumes from the last complete checkpoint,
/// and when the run ends every step is in the log exactly once, in order.
#[test]
fn a_run_killed_at_any_moment_resumes_with_no_lost_or_repeated_step() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let out = dir.path().join("run");
    let log = out.join("loss.csv");
    let run = |steps: u64| {
        let mut cmd = local_run(&spec, &out, steps, 3);
        // Nobody reads stderr while the run is killed and restarted.
        cmd.stderr(Stdio::null());
        cmd
    };
    // The kill lands a varying time after the run reaches each row count.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    eprintln!("kill delays seeded from {nanos}");
    let total = 24u64;
    for (kill_at, extra_ms) in [
        (5usize, nanos % 40),
        (11, (nanos / 40) % 40),
        (17, (nanos / 1600) % 40),
    ] {
        let mut child = run(total).spawn().unwrap();
        wait_for_rows(&mut child, &log, kill_at, Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(u64::from(extra_ms)));
        child.kill().unwrap(); // SIGKILL: no chance to save
        child.wait().unwrap();
    }
    let output = run(total).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the last restart failed: {stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    assert_eq!(step_of(&out), total);
    let steps = logged_steps(&log);
    assert_eq!(
        steps,
        (1..=total).collect::<Vec<_>>(),
        "each step logged once, in order"
    );
}
