//! Integration tests of the local chain (`local-chain` feature): its metadata against finney's and against
//! the checked-in `metadata/local.scale`.
#![cfg(feature = "local-chain")]

mod finney;
mod metadata_file;
mod metadata_layout;
mod shape;
