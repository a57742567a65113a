//! The local subnet as processes, for demos, benchmarks and whole-system tests.
//!
//! Everything here sits above the neurons: it starts `btlocalnet`, a store, `btvalidator` and
//! `btminer`s as separate processes and watches them, and it reads each epoch back from the
//! validator's per-epoch record (`epochs.jsonl`, see [`sliver_validator::record`]). Nothing in
//! `btminer` or `btvalidator` links it, so the S3 test server it starts (`--storage s3`) and the
//! fixtures of `sliver-common/testing` stay out of the neurons' binaries.
//!
//! - [`localnet`]: the local subnet: chain, store, validator and miners as processes.
//! - [`front`]: the fronts before the stores of the `store-slow` and `store-equivocate`
//!   adversaries (a slow answer, a different artifact to each reader).
//!
//! Binaries: `btsubnet` (the one-command local subnet, what `scripts/demo` runs) and
//! `bench-swarm` (the swarm benchmark, what `scripts/bench-swarm` runs).

pub mod front;
pub mod localnet;

use std::future::Future;
use std::process::ExitCode;

/// Runs a launcher binary's `run` on a two-thread runtime and turns its outcome into the exit
/// code, printing `NAME: error: ...` (with its causes) when it failed.
pub fn main_with<F>(name: &str, run: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
