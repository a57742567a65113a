//! `btminer`: parse flags, set up logging, build the runtime, run; errors print their whole chain.

use std::process::ExitCode;

use clap::Parser;
use sliver_miner::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept until `main` returns: dropping it flushes the log files.
    let logs = match sliver_common::telemetry::init(&cli.logging, "btminer") {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("btminer: cannot set up logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Local(args)) => sliver_miner::local::run(&args),
        None => sliver_miner::config::Config::from_args(&cli.miner).and_then(|config| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(sliver_miner::app::run(config))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            logs.record_exit(&message);
            eprintln!("btminer: error: {message}");
            ExitCode::FAILURE
        }
    }
}
