//! The `btvalidator` command line (clap), with Bittensor-style dotted flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sliver_common::telemetry::LoggingArgs;

/// Sliver validator: checks miners' work, scores them and sets weights on a Bittensor subnet.
#[derive(Debug, Parser)]
#[command(name = "btvalidator", version, propagate_version = true)]
pub struct Cli {
    /// Logging flags.
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `btvalidator` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a run spec and print its stages, parameter counts and boundary traffic.
    ///
    /// Exits non-zero, naming the offending field, when the spec is invalid.
    Spec {
        /// Run spec (TOML).
        file: PathBuf,
    },
}
