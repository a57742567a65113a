//! Integration tests of the local chain: its metadata against finney's and against the
//! checked-in `metadata/local.scale`, and `btlocalnet` end to end over WebSocket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

mod client_e2e;
mod fault;
mod metadata_file;
mod metadata_layout;
mod metadata_versions;
mod metagraph_api;
mod net;
mod node_e2e;
mod shape;
