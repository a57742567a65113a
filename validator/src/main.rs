//! `btvalidator`: parse flags, set up logging, build the runtime, run; errors print their whole chain.

use std::process::ExitCode;

use clap::Parser;
use sliver_subnet::announce::Role;
use sliver_validator::cli::{Cli, Command, DataCommand};

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
    let logs = match sliver_common::telemetry::init(&cli.logging, "btvalidator") {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("btvalidator: cannot set up logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Spec { file, sizing }) => {
            sliver_validator::spec::describe_sized(&file, &sizing).map(|s| {
                use std::io::Write;
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = std::io::stdout().write_all(s.as_bytes());
            })
        }
        Some(Command::Scores { run }) => sliver_validator::export::summarise(&run).map(|s| {
            use std::io::Write;
            let _ = std::io::stdout().write_all(s.as_bytes());
        }),
        Some(Command::Data(DataCommand::Prepare {
            spec,
            out,
            shard_tokens,
        })) => sliver_validator::data::prepare(&spec, &out, shard_tokens).map(|s| {
            use std::io::Write;
            let _ = std::io::stdout().write_all(s.as_bytes());
        }),
        Some(Command::Doctor(args)) => runtime().and_then(|rt| {
            let (text, failed) =
                rt.block_on(sliver_subnet::doctor::answer(Role::Validator, &args))?;
            print(&text);
            match failed {
                0 => Ok(()),
                n => Err(anyhow::anyhow!("{n} check(s) failed")),
            }
        }),
        Some(Command::Status(args)) => runtime().and_then(|rt| {
            rt.block_on(sliver_subnet::status::run(Role::Validator, &args))
                .map(|s| print(&s))
        }),
        None => sliver_validator::config::Config::from_args(&cli.validator).and_then(|config| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(sliver_validator::app::run(config))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            logs.record_exit(&message);
            eprintln!("btvalidator: error: {message}");
            ExitCode::FAILURE
        }
    }
}
