//! The local finney-compatible chain behind the `local-chain` feature.
//!
//! No subtensor node can be built on the machines Sliver is developed and tested on, so the crate
//! carries its own: [`metadata`] describes a runtime with finney's layout for everything Sliver
//! (and common Bittensor clients) use, and the `btlocalnet` binary serves it over the Substrate
//! JSON-RPC that `subxt` speaks.

pub mod metadata;
