//! One shutdown path for a binary: a cancellation token every long-lived
//! task selects on, a tracker that knows every task it must wait for, the
//! signal handling, and a bounded grace period.
//!
//! ```no_run
//! # async fn run() {
//! use std::time::Duration;
//! use sliver_shutdown::Shutdown;
//!
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals();
//! let token = shutdown.token();
//! shutdown.spawn("heartbeat", async move {
//!     loop {
//!         tokio::select! {
//!             _ = token.cancelled() => return Ok::<(), std::io::Error>(()),
//!             _ = tokio::time::sleep(Duration::from_secs(12)) => { /* work */ }
//!         }
//!     }
//! });
//! shutdown.token().cancelled().await;
//! if !shutdown.wait(Duration::from_secs(30)).await {
//!     std::process::exit(1);
//! }
//! # }
//! ```
//!
//! A task spawned through [`Shutdown::spawn`] never dies silently: when it
//! returns an error or panics, the error is logged with the task's name and
//! the whole process shuts down.

use std::any::Any;
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The error a spawned task may return: anything that converts into a boxed
/// error (`std` errors, `anyhow::Error`, `String`, `&str`).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The process's shutdown state. Cheap to clone: every clone shares one
/// token, one tracker and one "already triggered" flag.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    token: CancellationToken,
    tracker: TaskTracker,
    triggered: AtomicBool,
    next_id: AtomicU64,
    /// Names of the tasks still running, to say which ones are late.
    live: Mutex<BTreeMap<u64, &'static str>>,
    /// The first task that failed or panicked, and why.
    first_failure: Mutex<Option<String>>,
}

/// Removes a task from [`Inner::live`] when the task ends, however it ends.
struct LiveGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Shutdown {
    /// A fresh shutdown state: nothing triggered, no task tracked.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is cancelled when shutdown is triggered; tasks select on
    /// `token.cancelled()`.
    ///
    /// It is a child of the process's token: cancelling it stops only what
    /// listens on it, never the whole process. To shut down, call
    /// [`trigger`](Self::trigger), which also logs why.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.child_token()
    }

    /// Whether shutdown has been triggered.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Triggers shutdown: logs `reason` (only the first time) and cancels
    /// every token. Calling it again is harmless.
    pub fn trigger(&self, reason: &str) {
        if !self.inner.triggered.swap(true, Ordering::AcqRel) {
            tracing::info!(reason, "shutting down");
        }
        self.inner.token.cancel();
    }

    /// Spawns `fut` as a tracked task named `name`; [`wait`](Self::wait)
    /// waits for it.
    ///
    /// When the task returns an error or panics, the error is logged
    /// (`tracing::error!`, with its source chain and the task's name) and
    /// shutdown is triggered: one failing task stops the process. A task that
    /// returns `Ok(())` just ends. Must be called within a tokio runtime.
    pub fn spawn<F, E>(&self, name: &'static str, fut: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let guard = self.register(name);
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            let _guard = guard;
            let outcome = AssertUnwindSafe(fut).catch_unwind().await;
            this.finish(name, outcome.map(|result| result.map_err(Into::into)));
        })
    }

    /// Like [`spawn`](Self::spawn) for blocking code, run on tokio's
    /// blocking pool. Blocking code cannot be cancelled: it should check
    /// [`is_shutting_down`](Self::is_shutting_down) (or a token's
    /// `is_cancelled()`) between steps so that it ends within the grace
    /// period.
    pub fn spawn_blocking<F, E>(&self, name: &'static str, f: F) -> JoinHandle<()>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
        E: Into<BoxError>,
    {
        let guard = self.register(name);
        let this = self.clone();
        self.inner.tracker.spawn_blocking(move || {
            let _guard = guard;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
            this.finish(name, outcome.map(|result| result.map_err(Into::into)));
        })
    }

    /// Spawns a task that triggers shutdown on the first SIGINT (Ctrl-C) or
    /// SIGTERM; a second signal exits the process at once with code 130.
    ///
    /// The listener is not tracked (it keeps listening through the grace
    /// period, and [`wait`](Self::wait) does not wait for it). Must be called
    /// within a tokio runtime; when the handlers cannot be installed, the
    /// error is logged and signals keep their default effect.
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (mut interrupt, mut terminate) = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::error!(%error, "cannot listen for SIGINT/SIGTERM");
                    return;
                }
            };
            tokio::spawn(async move {
                let mut seen = 0u32;
                loop {
                    let name = tokio::select! {
                        Some(()) = interrupt.recv() => "SIGINT",
                        Some(()) = terminate.recv() => "SIGTERM",
                        else => return,
                    };
                    seen += 1;
                    this.on_signal(name, seen);
                }
            });
        }
        #[cfg(not(unix))]
        {
            tokio::spawn(async move {
                let mut seen = 0u32;
                loop {
                    if let Err(error) = tokio::signal::ctrl_c().await {
                        tracing::error!(%error, "cannot listen for Ctrl-C");
                        return;
                    }
                    seen += 1;
                    this.on_signal("Ctrl-C", seen);
                }
            });
        }
    }

    /// Closes the tracker and waits for every tracked task, at most `grace`.
    ///
    /// Returns `true` when all of them ended, `false` (after logging the
    /// names of the late ones) when the grace period ran out. It does not
    /// trigger shutdown itself: call it after [`trigger`](Self::trigger) or
    /// once the token is cancelled. Late tasks are not aborted; they end with
    /// the runtime.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        let late: Vec<&'static str> = self
            .inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .copied()
            .collect();
        tracing::warn!(
            ?late,
            grace_s = grace.as_secs_f64(),
            "tasks still running after the shutdown grace period"
        );
        false
    }

    /// Records `name` as running until the returned guard is dropped.
    fn register(&self, name: &'static str) -> LiveGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, name);
        LiveGuard {
            inner: Arc::clone(&self.inner),
            id,
        }
    }

    /// The first tracked task that failed or panicked, as `task `NAME` failed: ERROR CHAIN`;
    /// `None` while every task succeeded (or still runs). What a process exits with.
    pub fn failure(&self) -> Option<String> {
        self.inner
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record_failure(&self, what: String) {
        let mut first = self
            .inner
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(what);
        }
    }

    /// Logs how a task ended and triggers shutdown when it failed.
    fn finish(
        &self,
        name: &'static str,
        outcome: Result<Result<(), BoxError>, Box<dyn Any + Send>>,
    ) {
        match outcome {
            Ok(Ok(())) => tracing::debug!(task = name, "task finished"),
            Ok(Err(error)) => {
                let chain = error_chain(&*error);
                tracing::error!(task = name, error = %chain, "task failed");
                self.record_failure(format!("task `{name}` failed: {chain}"));
                self.trigger(&format!("task `{name}` failed"));
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(task = name, panic = message, "task panicked");
                self.record_failure(format!("task `{name}` panicked: {message}"));
                self.trigger(&format!("task `{name}` panicked"));
            }
        }
    }

    fn on_signal(&self, name: &str, seen: u32) {
        if seen == 1 {
            self.trigger(&format!("received {name}"));
            tracing::info!("send the signal again to exit at once");
        } else {
            tracing::warn!(signal = name, "second signal: exiting at once");
            std::process::exit(130);
        }
    }
}

/// `error: source: source's source: ...`.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "non-string panic payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    const BOUND: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn failing_task_triggers_shutdown() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        shutdown.spawn("failing", async { Err::<(), _>("boom") });
        tokio::time::timeout(BOUND, token.cancelled())
            .await
            .expect("a failing task must trigger shutdown");
        assert!(shutdown.is_shutting_down());
        assert!(shutdown.wait(BOUND).await);
    }

    #[tokio::test]
    async fn panicking_task_triggers_shutdown() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        shutdown.spawn("panicking", async move {
            if token.is_cancelled() {
                return Ok::<(), Infallible>(());
            }
            panic!("deliberate panic in a test");
        });
        tokio::time::timeout(BOUND, shutdown.token().cancelled())
            .await
            .expect("a panicking task must trigger shutdown");
        assert!(shutdown.wait(BOUND).await);
    }

    #[tokio::test]
    async fn failing_blocking_task_triggers_shutdown() {
        let shutdown = Shutdown::new();
        shutdown.spawn_blocking("blocking", || Err::<(), _>(std::io::Error::other("disk")));
        tokio::time::timeout(BOUND, shutdown.token().cancelled())
            .await
            .expect("a failing blocking task must trigger shutdown");
        assert!(shutdown.wait(BOUND).await);
    }

    #[tokio::test]
    async fn the_first_failure_is_what_the_process_reports() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.failure(), None);
        shutdown.spawn("first", async { Err::<(), _>("boom") });
        tokio::time::timeout(BOUND, shutdown.token().cancelled())
            .await
            .expect("a failing task must trigger shutdown");
        shutdown.spawn_blocking("second", || Err::<(), _>(std::io::Error::other("later")));
        assert!(shutdown.wait(BOUND).await);
        assert_eq!(
            shutdown.failure().as_deref(),
            Some("task `first` failed: boom")
        );
    }

    #[tokio::test]
    async fn successful_task_does_not_trigger_shutdown() {
        let shutdown = Shutdown::new();
        let handle = shutdown.spawn("done", async { Ok::<(), Infallible>(()) });
        handle.await.unwrap();
        assert!(!shutdown.is_shutting_down());
        assert!(shutdown.wait(BOUND).await);
    }

    #[tokio::test]
    async fn cancelling_a_child_token_does_not_shut_down() {
        let shutdown = Shutdown::new();
        shutdown.token().cancel();
        assert!(!shutdown.is_shutting_down());
        shutdown.trigger("test");
        shutdown.trigger("again");
        assert!(shutdown.is_shutting_down());
        assert!(shutdown.token().is_cancelled());
    }

    #[tokio::test]
    async fn wait_returns_true_when_tasks_finish_on_cancel() {
        let shutdown = Shutdown::new();
        for _ in 0..3 {
            let token = shutdown.token();
            shutdown.spawn("worker", async move {
                token.cancelled().await;
                Ok::<(), Infallible>(())
            });
        }
        let token = shutdown.token();
        shutdown.spawn_blocking("blocking worker", move || {
            while !token.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok::<(), Infallible>(())
        });
        shutdown.trigger("test");
        assert!(shutdown.wait(BOUND).await);
        assert!(shutdown.inner.live.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn wait_returns_false_when_a_task_ignores_the_token() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        shutdown.spawn("polite", async move {
            token.cancelled().await;
            Ok::<(), Infallible>(())
        });
        shutdown.spawn("stubborn", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), Infallible>(())
        });
        shutdown.trigger("test");
        let started = std::time::Instant::now();
        assert!(!shutdown.wait(Duration::from_millis(100)).await);
        assert!(started.elapsed() < BOUND);
        let late: Vec<_> = shutdown
            .inner
            .live
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect();
        assert_eq!(late, ["stubborn"]);
    }

    #[test]
    fn error_chain_lists_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("saving the checkpoint")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&error), "saving the checkpoint: disk full");
    }
}
