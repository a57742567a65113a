//! `btvalidator`: parse flags, set up logging, run; errors print their whole chain.

#![allow(clippy::print_stdout)] // `spec` prints its report on stdout by design.

use std::process::ExitCode;

use clap::Parser;
use sliver_validator::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = sliver_common::telemetry::init(&cli.logging) {
        eprintln!("btvalidator: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Spec { file } => sliver_validator::spec::describe(&file).map(|s| print!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btvalidator: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
