//! Logging set-up shared by the binaries: `--logging.debug`, `--logging.trace`,
//! `--logging.format plain|json` and `--logging.logging_dir DIR` (Bittensor's flag names),
//! overridable with `RUST_LOG`.
//!
//! Libraries only emit `tracing` events; binaries call [`init`] once and keep the [`LogGuard`]
//! it returns until they exit.
//!
//! With `--logging.logging_dir`, every line also goes to a file in that directory, beside the
//! screen: `<binary>.<YYYY-MM-DD>.log`, a new file each day (UTC), the oldest deleted once
//! more than `--logging.max_files` (default 7) exist, and `<binary>.log`, a symbolic link to
//! the current one (for `tail -F`). Files are written by a background thread (a disk that
//! stalls never stalls the process) that never drops a line: a full buffer makes the logging
//! thread wait instead. The [`LogGuard`] flushes what is buffered when dropped, so the lines
//! written before a normal exit are all in the file. Give each process its own directory, or at
//! least its own binary name: two processes of one binary in one directory write the same file.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Log files kept in `--logging.logging_dir` unless `--logging.max_files` says otherwise.
pub const DEFAULT_MAX_FILES: usize = 7;

/// The target of [`LogGuard::record_exit`]'s event: written to the log files only, as the
/// binary prints the same error on the screen itself.
const EXIT_TARGET: &str = "sliver_exit";

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
#[derive(Debug, Clone, clap::Args)]
pub struct LoggingArgs {
    /// Log debug events of Sliver's crates.
    #[arg(long = "logging.debug", global = true)]
    pub debug: bool,
    /// Log trace events of Sliver's crates (very verbose).
    #[arg(long = "logging.trace", global = true)]
    pub trace: bool,
    /// Log line format (the screen and the log files alike).
    #[arg(long = "logging.format", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub format: LogFormat,
    /// Also write the log to files in DIR (created if missing), beside the screen: a new file
    /// each day (UTC), `<binary>.<YYYY-MM-DD>.log`, and `<binary>.log` linking to the current one.
    #[arg(long = "logging.logging_dir", value_name = "DIR", global = true)]
    pub logging_dir: Option<PathBuf>,
    /// How many daily log files to keep in --logging.logging_dir; older ones are deleted.
    #[arg(long = "logging.max_files", default_value_t = DEFAULT_MAX_FILES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), global = true)]
    pub max_files: usize,
}

impl Default for LoggingArgs {
    fn default() -> Self {
        Self {
            debug: false,
            trace: false,
            format: LogFormat::Plain,
            logging_dir: None,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// What can go wrong setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log directory cannot be created, or its file appender cannot open a file there.
    #[error("cannot write log files in {dir}: {reason}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A global subscriber is already installed.
    #[error("a logger is already installed: {0}")]
    AlreadySet(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the log files' writer thread alive: hold it for the life of the process. Dropping it
/// flushes every line logged so far to the file and stops the thread.
#[derive(Debug)]
#[must_use = "dropping the guard stops writing the log files"]
pub struct LogGuard {
    file: Option<WorkerGuard>,
}

impl LogGuard {
    /// Whether log files are being written.
    pub fn writes_files(&self) -> bool {
        self.file.is_some()
    }

    /// Writes the error a binary exits with to the log files (not the screen, where the binary
    /// prints it itself), so that a process run unattended leaves its reason in its log.
    pub fn record_exit(&self, message: &str) {
        if self.writes_files() {
            tracing::error!(target: EXIT_TARGET, "exiting: {message}");
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber for the binary `binary` (the log files' name). `RUST_LOG`,
/// when set, wins over the flags.
///
/// # Errors
/// [`LoggingError::Dir`] when `--logging.logging_dir` cannot be written, or
/// [`LoggingError::AlreadySet`] when a subscriber is already installed.
pub fn init(args: &LoggingArgs, binary: &str) -> Result<LogGuard, LoggingError> {
    let (subscriber, guard) = subscriber(args, binary, std::io::stderr)?;
    subscriber.try_init()?;
    Ok(guard)
}

/// The subscriber [`init`] installs (the screen being `screen`), and the guard of its file writer.
fn subscriber<W>(
    args: &LoggingArgs,
    binary: &str,
    screen: W,
) -> Result<(impl tracing::Subscriber + Send + Sync + use<W>, LogGuard), LoggingError>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let level = if args.trace {
        "trace"
    } else if args.debug {
        "debug"
    } else {
        "info"
    };
    let directives = format!(
        "warn,sliver_common={level},sliver_chain={level},sliver_subnet={level},sliver_miner={level},sliver_validator={level}"
    );
    // One filter per output (an `EnvFilter` is not `Clone`): `RUST_LOG` or the flags.
    let env = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&directives));
    let exit = || filter_fn(|meta| meta.target() == EXIT_TARGET);
    let screen: BoxedLayer = match args.format {
        LogFormat::Plain => tracing_subscriber::fmt::layer()
            .with_writer(screen)
            .with_target(false)
            .compact()
            .with_filter(env().and(exit().not()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(screen)
            .json()
            .with_filter(env().and(exit().not()))
            .boxed(),
    };
    let mut layers = vec![screen];
    let mut guard = None;
    if let Some(dir) = &args.logging_dir {
        let (file, writer) =
            file_layer(dir, binary, args.max_files, args.format, env().or(exit()))?;
        layers.push(file);
        guard = Some(writer);
    }
    let subscriber = tracing_subscriber::registry().with(layers);
    Ok((subscriber, LogGuard { file: guard }))
}

/// The layer writing `dir/<binary>.<date>.log`, rotated daily, through a lossless
/// background writer.
fn file_layer(
    dir: &Path,
    binary: &str,
    max_files: usize,
    format: LogFormat,
    filter: impl Filter<Registry> + Send + Sync + 'static,
) -> Result<(BoxedLayer, WorkerGuard), LoggingError> {
    let failed = |reason: String| LoggingError::Dir {
        dir: dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(binary)
        .filename_suffix("log")
        .max_log_files(max_files.max(1))
        .latest_symlink(format!("{binary}.log"))
        .build(dir)
        .map_err(|e| failed(e.to_string()))?;
    // Lossless: when the buffer is full the logging thread waits rather than drop a line.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-files")
        .finish(appender);
    let layer = match format {
        LogFormat::Plain => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .json()
            .with_filter(filter)
            .boxed(),
    };
    Ok((layer, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `dir` whose name starts with `prefix`, with its contents (links followed).
    fn logs(dir: &Path, prefix: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(prefix))
            .map(|name| {
                let text = std::fs::read_to_string(dir.join(&name)).unwrap();
                (name, text)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn logs_go_to_a_dated_file_and_all_of_them_are_flushed_by_the_guard() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs/nested");
        let args = LoggingArgs {
            logging_dir: Some(dir.clone()),
            ..LoggingArgs::default()
        };
        let (subscriber, guard) = subscriber(&args, "btminer", std::io::sink).unwrap();
        assert!(guard.writes_files());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "sliver_common::x", epoch = 3, "first line");
            // Many lines, to be sure none is dropped on the way to the file.
            for i in 0..5_000 {
                tracing::info!(target: "sliver_common::x", i, "line");
            }
            tracing::debug!(target: "sliver_common::x", "not at the default level");
            guard.record_exit("the reason");
        });
        drop(guard);

        let files = logs(&dir, "btminer");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 2, "a dated file and the link to it: {names:?}");
        let (dated, text) = files.iter().find(|(n, _)| n != "btminer.log").unwrap();
        let (_, linked) = files.iter().find(|(n, _)| n == "btminer.log").unwrap();
        assert!(
            dated.starts_with("btminer.") && dated.ends_with(".log") && dated.len() == 22,
            "btminer.YYYY-MM-DD.log: {dated}"
        );
        assert!(
            std::fs::symlink_metadata(dir.join("btminer.log"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(linked, text, "the link points at the current file");
        assert!(
            text.contains("first line") && text.contains("epoch=3"),
            "{text}"
        );
        assert_eq!(text.matches(" line i=").count(), 5_000);
        assert!(text.contains("i=4999"));
        assert!(!text.contains("not at the default level"));
        assert!(text.contains("exiting: the reason"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes in files");
    }

    #[test]
    fn json_files_hold_one_object_per_line() {
        let tmp = tempfile::tempdir().unwrap();
        let args = LoggingArgs {
            logging_dir: Some(tmp.path().to_path_buf()),
            format: LogFormat::Json,
            ..LoggingArgs::default()
        };
        let (subscriber, guard) = subscriber(&args, "btvalidator", std::io::sink).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "sliver_validator::x", uid = 4, "scored");
        });
        drop(guard);
        let files = logs(tmp.path(), "btvalidator.");
        let (_, text) = files.iter().find(|(n, _)| n != "btvalidator.log").unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["fields"]["message"], "scored");
        assert_eq!(line["fields"]["uid"], 4);
    }

    #[test]
    fn without_a_directory_nothing_is_written() {
        let (_, guard) = subscriber(&LoggingArgs::default(), "btminer", std::io::sink).unwrap();
        assert!(!guard.writes_files());
        assert_eq!(LoggingArgs::default().max_files, DEFAULT_MAX_FILES);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let args = LoggingArgs {
            logging_dir: Some(file.join("logs")),
            ..LoggingArgs::default()
        };
        let Err(err) = subscriber(&args, "btminer", std::io::sink) else {
            panic!("a file as the log directory's parent must be refused");
        };
        let err = err.to_string();
        assert!(err.contains("a-file/logs"), "{err}");
    }
}
