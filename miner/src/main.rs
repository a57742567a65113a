//! `btminer`: parse flags, set up logging, run; errors print their whole chain.

use std::process::ExitCode;

use clap::Parser;
use sliver_miner::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = sliver_common::telemetry::init(&cli.logging) {
        eprintln!("btminer: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Local(args) => sliver_miner::local::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btminer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
