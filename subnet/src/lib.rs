//! The run as miners and validators both see it, from the chain and from storage.
//!
//! `btminer` and `btvalidator` need the same view of a run: who takes part this epoch and at
//! which stage, where each participant's artifacts can be read, and which run spec everyone
//! trains. All of it is derived from chain state (the metagraph and `Commitments`), so every
//! process computes the same answer with no orchestrator. This crate holds that view and the
//! flags both binaries share, and nothing else: the local subnet that starts them as processes
//! (`btsubnet`, `bench-swarm`) is the `sliver-launcher` crate, one level up.
//!
//! - [`announce`]: what a participant publishes in its commitment (role, spec hash, location).
//! - [`run`]: the published run spec, fetched and verified, and the [`run::Roster`] of an epoch.
//! - [`fetch`]: reading another participant's artifact, checked before use.
//! - [`merged`]: reading a stage's merge: shard assembly and twin settlement, for miners,
//!   joiners and validators alike.
//! - [`args`]: the Bittensor-style flags of both binaries (`--netuid`, `--wallet.*`, ...).
//! - [`neuron`]: hotkey, registration and the chain clock, for both binaries.
//! - [`register`]: the registration burn, shown and confirmed before it is paid.
//! - [`signer`]: a wallet hotkey as the signer of artifacts.
//! - [`doctor`]: `btminer doctor` and `btvalidator doctor`, the checks before anything is
//!   spent.
//! - [`status`]: `btminer status` and `btvalidator status`, from the chain and the validators'
//!   score tables.
//! - [`version`]: this release's version key, checked against the subnet's
//!   `WeightsVersionKey`.

pub mod announce;
pub mod args;
pub mod doctor;
pub mod fetch;
pub mod merged;
pub mod neuron;
pub mod register;
pub mod run;
pub mod signer;
pub mod status;
pub mod version;
