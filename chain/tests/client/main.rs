//! Offline tests of the subtensor client (`sliver_chain::client`): the calls it encodes against
//! real finney metadata, and subtensor's commit hash. No chain is needed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

mod commit_hash;
mod encoding;
