//! The local subnet as processes, for demos, benchmarks and whole-system tests.
//!
//! Everything here sits above the neurons: it starts `btlocalnet`, a store, `btvalidator` and
//! `btminer`s as separate processes and watches them, and it reads each epoch back from the
//! validator's per-epoch record (`epochs.jsonl`, see [`sliver_validator::record`]). Nothing in
//! `btminer` or `btvalidator` links it, so the S3 test server it starts (`--storage s3`) and the
//! fixtures of `sliver-common/testing` stay out of the neurons' binaries.
//!
//! - [`localnet`]: the local subnet: chain, store, validator and miners as processes.
//!
//! Binaries: `btsubnet` (the one-command local subnet, what `scripts/demo` runs) and
//! `bench-swarm` (the swarm benchmark, what `scripts/bench-swarm` runs).

pub mod localnet;
