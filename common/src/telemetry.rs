//! Logging set-up shared by the binaries: `--logging.debug`, `--logging.trace`
//! and `--logging.format plain|json`, overridable with `RUST_LOG`.
//!
//! Libraries only emit `tracing` events; binaries call [`init`] once.

use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The Bittensor-style logging flags, flattened into each binary's CLI.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoggingArgs {
    /// Log debug events of Sliver's crates.
    #[arg(long = "logging.debug", global = true)]
    pub debug: bool,
    /// Log trace events of Sliver's crates (very verbose).
    #[arg(long = "logging.trace", global = true)]
    pub trace: bool,
    /// Log line format.
    #[arg(long = "logging.format", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub format: LogFormat,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the flags.
///
/// # Errors
/// When a subscriber is already installed.
pub fn init(args: &LoggingArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let level = if args.trace {
        "trace"
    } else if args.debug {
        "debug"
    } else {
        "info"
    };
    let default = format!(
        "warn,sliver_common={level},sliver_chain={level},sliver_miner={level},sliver_validator={level}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.format {
        LogFormat::Plain => builder.with_target(false).compact().try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
}
