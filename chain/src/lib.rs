//! Sliver's chain side: who takes part, what time it is, and who gets paid.
//!
//! - [`wallet`]: wallets in the files `btcli` writes (`~/.bittensor/wallets/<name>/...`).
//! - [`local`] (feature `local-chain`): the local finney-compatible chain (`btlocalnet`) and its metadata.

pub mod wallet;

#[cfg(feature = "local-chain")]
pub mod local;
