//! `btminer`: the Sliver miner.
//!
//! A miner owns one pipeline stage of the shared model: it receives
//! compressed activations, runs its layers forward and backward, sends
//! compressed activations and gradients on, and merges its weights with the
//! stage's other miners.
//!
//! Built so far: [`local`], which trains every stage of a run spec in one
//! process, through the same wire codecs miners use, to try a spec or a
//! machine before joining a subnet. The network miner (chain, storage,
//! merging) builds on it.
//!
//! - [`cli`]: the command line.
//! - [`checkpoint`]: crash-safe saving and resuming of stage weights.

pub mod checkpoint;
pub mod cli;
pub mod local;
