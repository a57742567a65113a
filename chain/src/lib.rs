//! Sliver's chain side: who takes part, what time it is, and who gets paid.
//!
//! - [`client`]: the subtensor client over subxt (metagraph, clock, registration, axons,
//!   commitments, set/commit/reveal weights) for finney, testnet, `btlocalnet` or any endpoint.
//! - [`timelock`]: encryption to a drand round, for timelocked weights (commit-reveal v4).
//! - [`wallet`]: wallets in the files `btcli` writes (`~/.bittensor/wallets/<name>/...`).
//! - `local` (feature `local-chain`): the local finney-compatible chain (`btlocalnet`) and its
//!   metadata. Behind a feature so that miner and validator builds do not compile a chain.
//!
//! # Features
//!
//! | feature       | default | what it does |
//! |---------------|---------|--------------|
//! | `local-chain` | no      | the `local` module and the `btlocalnet` binary |
//! | `testing`     | no      | the `testing` module: support for this crate's tests |

pub mod client;
pub mod timelock;
pub mod wallet;

#[cfg(feature = "local-chain")]
pub mod local;

#[cfg(feature = "testing")]
pub mod testing;
