//! `btminer`: the Sliver miner.
//!
//! A miner owns one pipeline stage of the shared model: it receives compressed activations,
//! runs its layers forward and backward, sends compressed activations and gradients on through
//! object storage, and merges its weights with the stage's other miners.
//!
//! A sample's journey through a miner, in module order:
//!
//! - [`cli`] → [`config`]: flags, checked once into an immutable [`config::Config`].
//! - [`app`]: wiring (hotkey, chain, run spec, storage, data) and shutdown.
//! - [`node`]: the I/O every task shares: chain view, store, hotkey, metrics, clock, shutdown.
//! - [`worker`]: the miner's epochs on their own thread: roster, join, train, merge, record.
//! - `step`: one epoch's training loop and its arms (start a round, on activation, on gradient,
//!   expire); `held`: the stage, its optimizer and the weight versions in flight.
//! - [`feed`]: what is routed here, downloaded and verified while the worker computes.
//! - `silence`: a later-stage peer that stops answering, found from the stores and routed
//!   around.
//! - `outbox`: what the miner sends, sealed, put write-once and counted.
//! - [`merge`]: the epoch's butterfly all-reduce through storage (scatter, reduce, assemble).
//! - [`stats`]: what each epoch did (`epochs.jsonl`); [`rate`]: the work rate it measured, announced
//!   so that its share of its stage's samples follows its speed.
//! - [`availability`]: the hours it trains (`--availability`), planned as whole epochs and the
//!   epochs away; [`commitment`]: the rate and the epochs away, announced on chain.
//! - `archive`: every weight version an artifact claimed, and the answers to validators' spot
//!   checks.
//! - [`stage_checkpoint`]: the miner's own crash-safe checkpoint.
//!
//! [`adversary`] holds the ways of cheating the validator's tests play (a hidden flag).
//!
//! [`local`] trains every stage of a run spec in one process (with its own checkpoints),
//! to try a spec or a machine before joining a subnet.

pub mod adversary;
pub mod app;
mod archive;
pub mod availability;
pub mod cli;
pub mod commitment;
pub mod config;
pub mod feed;
mod held;
pub mod local;
pub mod merge;
pub mod node;
mod outbox;
pub mod rate;
mod silence;
pub mod stage_checkpoint;
pub mod stats;
mod step;
pub mod worker;
