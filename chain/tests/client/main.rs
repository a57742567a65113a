//! Offline tests of the subtensor client (`sliver_chain::client`): the calls it encodes against
//! real finney metadata, and subtensor's commit hash. No chain is needed.

mod commit_hash;
mod encoding;
