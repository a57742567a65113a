//! Exponential backoff for (re)connecting: how often, and how long apart, the client tries.

use std::time::Duration;

/// Reconnection policy: `attempts` tries, the first immediately, then waits doubling from
/// `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait between two tries.
    pub max: Duration,
    /// Tries in all (at least one).
    pub attempts: u32,
}

impl Default for Backoff {
    /// 8 tries over about half a minute: 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s, 8 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
            attempts: 8,
        }
    }
}

impl Backoff {
    /// No retries: one try.
    pub const NONE: Backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        attempts: 1,
    };

    /// The wait before try `attempt` (0-based; try 0 does not wait).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Runs `op` until it succeeds, `retry` says an error is final, or the tries run out;
    /// returns the last result and how many tries were made.
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        mut op: F,
        retry: impl Fn(&E) -> bool,
    ) -> (Result<T, E>, u32)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let attempts = self.attempts.max(1);
        let mut attempt = 0;
        loop {
            tokio::time::sleep(self.delay(attempt)).await;
            attempt += 1;
            match op().await {
                Ok(v) => return (Ok(v), attempt),
                Err(e) if attempt < attempts && retry(&e) => {
                    tracing::warn!(what, attempt, error = %e, "chain operation failed; retrying");
                }
                Err(e) => return (Err(e), attempt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff::default();
        let ms: Vec<u128> = (0..8).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(ms, [0, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(b.delay(200), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_only_what_it_is_told_to() {
        let b = Backoff::default();
        let mut calls = 0;
        let (res, tries) = b
            .run(
                "test",
                || {
                    calls += 1;
                    let n = calls;
                    async move { if n < 3 { Err("down") } else { Ok(n) } }
                },
                |_| true,
            )
            .await;
        assert_eq!((res, tries), (Ok(3), 3));
        let (res, tries) = b
            .run("test", || async { Err::<(), _>("final") }, |_| false)
            .await;
        assert_eq!((res, tries), (Err("final"), 1));
    }
}
