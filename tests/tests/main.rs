//! Whole-system tests, compiled into one binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

mod dashboard;
mod heterogeneous;
mod operators;
mod release;
mod scale;
mod shipped_specs;
mod short_run;
mod silent_peer;
mod standalone;
mod swarm;
mod windows;
