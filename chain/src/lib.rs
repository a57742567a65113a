//! Sliver's chain side: who takes part, what time it is, and who gets paid.
//!
//! - [`client`]: the subtensor client over subxt (metagraph, clock, registration, axons,
//!   commitments, set/commit/reveal weights) for finney, testnet, `btlocalnet` or any endpoint.
//! - [`timelock`]: encryption to a drand round, for timelocked weights (commit-reveal v4).
//! - [`wallet`]: wallets in the files `btcli` writes (`~/.bittensor/wallets/<name>/...`).
//!
//! The local finney-compatible chain (`btlocalnet`) is its own crate, `sliver-localnet`, which
//! uses this one (its beacon is [`timelock::LocalBeacon`]); miner and validator builds do not
//! compile a chain.
//!
//! # Features
//!
//! | feature   | default | what it does |
//! |-----------|---------|--------------|
//! | `testing` | no      | the `testing` module: support for this crate's and `sliver-localnet`'s tests |

pub mod client;
pub mod timelock;
pub mod wallet;

#[cfg(feature = "testing")]
pub mod testing;
