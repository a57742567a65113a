//! `btvalidator`: the Sliver validator.
//!
//! A validator follows the run from the chain and storage, counts every miner's verified work,
//! turns it into weights on chain, writes each epoch's score table as Parquet, and evaluates the
//! merged model on held-out text. In the order a sample's record flows through it:
//!
//! - [`cli`] → [`config`]: flags, checked once into an immutable [`config::Config`].
//! - [`app`]: wiring: from the configuration to the epoch loop, and back down on shutdown.
//! - [`epoch`]: the per-epoch loop, and the epoch's phases in order: tally, attribute, judge,
//!   publish, evaluate, report.
//! - [`follow`]: what each miner verifiably did in an epoch, and every finished sample's path.
//! - [`checks`]: spot checks: a few artifacts of each miner recomputed from its claimed weights.
//! - [`clasp`]: each miner's effect on the loss of its paths, against its stage peers.
//! - [`scores`]: work × quality (caught: zero) → moving average.
//! - [`export`]: the Parquet tables, and `btvalidator scores`.
//! - [`record`]: one line per scored epoch in `epochs.jsonl` (what the local subnet reads).
//! - [`dashboard`]: a read-only web page of the run on the metrics port, from the record and
//!   the score tables.
//! - [`weights`]: weights on chain.
//! - [`spec`]: `btvalidator spec`, the run-spec report.
//! - [`data`]: `btvalidator data prepare`, a spec's text into token shards.

pub mod app;
pub mod checks;
pub mod clasp;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod data;
pub mod epoch;
pub mod export;
pub mod follow;
pub mod record;
pub mod scores;
pub mod spec;
pub mod weights;
