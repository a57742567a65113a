//! Integration tests of `sliver-common`, compiled into one binary.

mod causal;
mod determinism;
mod loss_falls;
mod staged_matches_monolithic;
mod storage;
mod support;
