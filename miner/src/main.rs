//! `btminer`: parse flags, set up logging, build the runtime, run; errors print their whole chain.

use std::process::ExitCode;

use clap::Parser;
use sliver_miner::cli::{Cli, Command};
use sliver_subnet::announce::Role;

/// A runtime for a command that reads the chain and storage and exits.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Writes a command's answer to stdout (a closed pipe, `| head`, is no error worth a panic).
fn print(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

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
        Some(Command::Doctor(args)) => runtime().and_then(|rt| {
            let (text, failed) = rt.block_on(sliver_subnet::doctor::answer(Role::Miner, &args))?;
            print(&text);
            match failed {
                0 => Ok(()),
                n => Err(anyhow::anyhow!("{n} check(s) failed")),
            }
        }),
        Some(Command::Status(args)) => runtime().and_then(|rt| {
            rt.block_on(sliver_subnet::status::run(Role::Miner, &args))
                .map(|s| print(&s))
        }),
        None => sliver_miner::config::Config::all_from_args(&cli.miner).and_then(|configs| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(sliver_miner::app::run_all(configs))
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
