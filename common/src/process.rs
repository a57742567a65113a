//! This process's own resource use: CPU seconds (user and system, every thread) and peak
//! resident memory, from `getrusage(RUSAGE_SELF)`. What a validator's epoch record says its work
//! cost, so that "the validator's work grows with miners, not with artifacts" can be read off a
//! run. `None` where the call fails.

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

/// CPU seconds this process has used so far, user and system, over all its threads.
pub fn cpu_seconds() -> Option<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    Some(micros as f64 / 1e6)
}

/// The most resident memory this process has held, in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let max_rss = u64::try_from(usage.max_rss()).ok()?;
    // Linux reports kibibytes; macOS bytes.
    Some(if cfg!(target_os = "macos") {
        max_rss
    } else {
        max_rss * 1024
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spinning shows in the CPU seconds, and holding 64 MiB in the peak.
    #[test]
    fn cpu_and_peak_memory_are_read() {
        let before = cpu_seconds().unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let spent = cpu_seconds().unwrap() - before;
        assert!(spent >= 0.1, "{spent} s of CPU for 0.3 s of spinning");

        let held = vec![1u8; 64 << 20];
        std::hint::black_box(&held);
        assert!(peak_rss_bytes().unwrap() >= 64 << 20);
    }
}
