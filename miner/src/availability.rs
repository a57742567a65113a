//! Availability windows: the hours a miner trains (`--availability 22:00-06:00,12:00-13:30`,
//! local time, or UTC with a trailing ` UTC`).
//!
//! A miner trains whole epochs. At each epoch it plans ([`Planner::plan`]) from its windows, the
//! chain's pace (seconds a block, as this miner saw the blocks come) and the epoch timeline:
//!
//! - In a window, it trains every epoch whose work ends (its spot-check answers, `answer_end`)
//!   before the window closes, and announces in its commitment the epochs it will be away
//!   (`away=<first>-<last>`: from the one after its last, to the one before the first that starts
//!   once the window opens again). No roster of those epochs holds it, so no peer routes to it and
//!   none waits for it; it is announced an epoch ahead, before the cutoff of the first roster it
//!   leaves. The last epoch is finished as `SIGUSR1` finishes one: merged, checkpointed, recorded,
//!   its spot checks answered.
//! - Out of one, it lets its stage go and sleeps until the first epoch that starts in the next
//!   window, which it joins from the stage's latest merged weights, as a new miner does.
//!
//! It joins at an epoch's start, not mid-epoch: an epoch's roster is fixed at its cutoff, and
//! every participant routes by it. The time of day is read once per plan with the offset it has
//! then: a window across a daylight-saving change is off by the change for that day.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Timelike, Utc};
use sliver_common::Epoch;
use sliver_common::schedule::Schedule;

const DAY: u32 = 24 * 60 * 60;

/// Seconds a block is taken to last until this miner has seen [`PACE_BLOCKS`] of them: finney's.
pub const DEFAULT_BLOCK_SECS: f64 = 12.0;

/// Blocks seen before the chain's pace is measured rather than taken as [`DEFAULT_BLOCK_SECS`].
pub const PACE_BLOCKS: u64 = 5;

/// The hours of the day a miner trains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// Open spans in seconds of the day, `[open, close)`, sorted and merged; a window across
    /// midnight is two.
    spans: Vec<(u32, u32)>,
    /// Times of day are UTC, not local.
    utc: bool,
}

/// Where the clock stands against the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// In a window, which closes in this long (`None`: the windows cover the whole day).
    Open(Option<Duration>),
    /// Out of every window; the next opens in this long.
    Closed(Duration),
}

/// A malformed `--availability`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "availability {given:?}: {why} (expected windows like 22:00-06:00,12:00-13:30, optionally ending in UTC)"
)]
pub struct ParseError {
    given: String,
    why: String,
}

fn time_of_day(s: &str) -> Option<u32> {
    let mut parts = s.trim().split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let sec: u32 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    (parts.next().is_none() && h <= 24 && m < 60 && sec < 60 && (h < 24 || m + sec == 0))
        .then_some(h * 3600 + m * 60 + sec)
}

impl FromStr for Availability {
    type Err = ParseError;

    fn from_str(given: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| ParseError {
            given: given.to_string(),
            why: why.to_string(),
        };
        let text = given.trim();
        let (text, utc) = match text.len().checked_sub(3).and_then(|i| text.get(i..)) {
            Some(tail) if tail.eq_ignore_ascii_case("utc") => (text[..text.len() - 3].trim(), true),
            _ => (text, false),
        };
        let mut spans = Vec::new();
        for window in text.split(',') {
            let (open, close) = window
                .split_once('-')
                .ok_or_else(|| bad(&format!("{:?} is not open-close", window.trim())))?;
            let (Some(open), Some(close)) = (time_of_day(open), time_of_day(close)) else {
                return Err(bad(&format!(
                    "{:?} is not two times of day (HH:MM or HH:MM:SS)",
                    window.trim()
                )));
            };
            match open.cmp(&close) {
                std::cmp::Ordering::Less => spans.push((open, close)),
                std::cmp::Ordering::Greater => {
                    spans.push((open, DAY));
                    spans.push((0, close));
                }
                std::cmp::Ordering::Equal => {
                    return Err(bad(&format!("{:?} opens as it closes", window.trim())));
                }
            }
        }
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (open, close) in spans {
            match merged.last_mut() {
                Some(last) if open <= last.1 => last.1 = last.1.max(close),
                _ => merged.push((open, close)),
            }
        }
        Ok(Self { spans: merged, utc })
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u32| format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
        let spans: Vec<String> = self
            .spans
            .iter()
            .map(|&(o, c)| format!("{}-{}", hm(o), hm(c)))
            .collect();
        write!(
            f,
            "{}{}",
            spans.join(","),
            if self.utc { " UTC" } else { " local time" }
        )
    }
}

impl Availability {
    /// Where `t` stands against the windows.
    pub fn at(&self, t: DateTime<Utc>) -> Now {
        let s = if self.utc {
            t.num_seconds_from_midnight()
        } else {
            t.with_timezone(&Local).num_seconds_from_midnight()
        };
        self.at_second(s)
    }

    /// Where second `s` of the day stands against the windows.
    fn at_second(&self, s: u32) -> Now {
        let secs = |n: u32| Duration::from_secs(u64::from(n));
        if let Some(&(_, close)) = self.spans.iter().find(|(o, c)| (*o..*c).contains(&s)) {
            if close < DAY {
                return Now::Open(Some(secs(close - s)));
            }
            // Open through midnight: until tomorrow's first span closes, unless it reopens then.
            return match self.spans.first() {
                Some(&(0, c)) if c == DAY => Now::Open(None),
                Some(&(0, c)) => Now::Open(Some(secs(DAY - s + c))),
                _ => Now::Open(Some(secs(DAY - s))),
            };
        }
        let next = self
            .spans
            .iter()
            .find(|(o, _)| *o > s)
            .map_or(DAY - s + self.spans[0].0, |(o, _)| o - s);
        Now::Closed(secs(next))
    }
}

/// What a miner does about an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Train it.
    Train {
        /// The epochs (first, last) to be away after its last one in the window; `None` when
        /// the windows cover the whole day.
        away: Option<(Epoch, Epoch)>,
    },
    /// Out of its windows: do not train it.
    Away {
        /// The epochs (first, last) to be away, this one first.
        away: (Epoch, Epoch),
        /// The epoch to come back at, at its start.
        back: Epoch,
    },
}

/// Plans a miner's epochs by its windows and the chain's pace.
pub struct Planner {
    windows: Availability,
    /// The first block seen, and when.
    seen: std::sync::OnceLock<(u64, Instant)>,
}

impl Planner {
    /// A planner for `windows`.
    pub fn new(windows: Availability) -> Self {
        Self {
            windows,
            seen: std::sync::OnceLock::new(),
        }
    }

    /// The windows.
    pub fn windows(&self) -> &Availability {
        &self.windows
    }

    /// The block by which the chain's pace is measured, counting from `block` if no block was
    /// seen before: the worker waits for it before its first plan.
    pub fn paced_at(&self, block: u64) -> u64 {
        let (first, _) = *self.seen.get_or_init(|| (block, Instant::now()));
        first + PACE_BLOCKS
    }

    /// Seconds a block, as measured since the first block this planner saw (or
    /// [`DEFAULT_BLOCK_SECS`] until [`PACE_BLOCKS`] have passed).
    fn block_secs(&self, block: u64) -> f64 {
        let (first, at) = *self.seen.get_or_init(|| (block, Instant::now()));
        let blocks = block.saturating_sub(first);
        if blocks < PACE_BLOCKS {
            DEFAULT_BLOCK_SECS
        } else {
            at.elapsed().as_secs_f64() / blocks as f64
        }
    }

    /// What to do about `epoch` at `block` (now): see the module's note.
    pub fn plan(&self, schedule: &Schedule, epoch: Epoch, block: u64) -> Plan {
        let pace = self.block_secs(block);
        plan_at(&self.windows, schedule, epoch, block, Utc::now(), pace)
    }
}

/// [`Planner::plan`] at wall time `now`, when `block` is the chain's, at `pace` seconds a block.
fn plan_at(
    windows: &Availability,
    schedule: &Schedule,
    epoch: Epoch,
    block: u64,
    now: DateTime<Utc>,
    pace: f64,
) -> Plan {
    let blocks_in = |d: Duration| block + (d.as_secs_f64() / pace).floor() as u64;
    // The first epoch that starts at or after `at_block`.
    let first_from = |at_block: u64| {
        let e = schedule.at(at_block).epoch;
        if schedule.epoch_start(e) >= at_block {
            e
        } else {
            e.next()
        }
    };
    let away_until_open = |from: Epoch, opens_in: Duration| {
        let back = first_from(blocks_in(opens_in)).max(from.next());
        ((from, Epoch(back.0 - 1)), back)
    };
    match windows.at(now) {
        Now::Open(None) => Plan::Train { away: None },
        Now::Open(Some(closes_in)) => {
            let close = blocks_in(closes_in);
            let done_by = |e: Epoch| schedule.timeline(e).answer_end <= close;
            if !done_by(epoch) {
                // Too little of the window is left for this epoch's work: away from it.
                let reopen = reopen_after(windows, now, closes_in);
                let (away, back) = away_until_open(epoch, reopen);
                return Plan::Away { away, back };
            }
            let mut last = epoch;
            while done_by(last.next()) {
                last = last.next();
            }
            let reopen = reopen_after(windows, now, closes_in);
            let (away, _) = away_until_open(last.next(), reopen);
            Plan::Train { away: Some(away) }
        }
        Now::Closed(opens_in) => {
            let (away, back) = away_until_open(epoch, opens_in);
            Plan::Away { away, back }
        }
    }
}

/// How long from `now` until the windows open again after the one closing in `closes_in`.
fn reopen_after(windows: &Availability, now: DateTime<Utc>, closes_in: Duration) -> Duration {
    let closed = now + closes_in;
    match windows.at(closed) {
        Now::Closed(opens_in) => closes_in + opens_in,
        // Reopens at once (a clock step): one second after.
        Now::Open(_) => closes_in + Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Availability {
        s.parse().unwrap()
    }

    #[test]
    fn parses_windows_and_refuses_nonsense() {
        let a = w("22:00-06:00, 12:00-13:30:15 utc");
        assert!(a.utc);
        assert_eq!(
            a.spans,
            [
                (0, 6 * 3600),
                (12 * 3600, 13 * 3600 + 1815),
                (22 * 3600, DAY)
            ]
        );
        assert_eq!(
            a.to_string(),
            "00:00:00-06:00:00,12:00:00-13:30:15,22:00:00-24:00:00 UTC"
        );
        assert!(!w("09:00-17:00").utc);
        // Overlapping windows merge.
        assert_eq!(w("09:00-12:00,11:00-13:00").spans, [(9 * 3600, 13 * 3600)]);
        for bad in [
            "",
            "9-5",
            "09:00",
            "25:00-01:00",
            "09:00-09:00",
            "09:60-10:00",
            "a-b UTC",
        ] {
            let e = bad.parse::<Availability>().unwrap_err();
            assert!(
                e.to_string().contains("expected windows like"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn open_until_close_closed_until_open() {
        let a = w("22:00-06:00,12:00-13:00 UTC");
        let h = |x: u32| x * 3600;
        let d = |x: u32| Duration::from_secs(u64::from(x));
        assert_eq!(a.at_second(h(23)), Now::Open(Some(d(h(7)))));
        assert_eq!(a.at_second(h(1)), Now::Open(Some(d(h(5)))));
        assert_eq!(a.at_second(h(12) + 60), Now::Open(Some(d(h(1) - 60))));
        assert_eq!(a.at_second(h(7)), Now::Closed(d(h(5))));
        assert_eq!(a.at_second(h(14)), Now::Closed(d(h(8))));
        assert_eq!(w("00:00-24:00").at_second(h(3)), Now::Open(None));
        // Closed after the day's last window: opens tomorrow at the first.
        assert_eq!(w("08:00-09:00 UTC").at_second(h(10)), Now::Closed(d(h(22))));
    }

    /// Epochs of 100 blocks of 1 s (merge window 30): a window open for the next 350 s trains
    /// the epochs whose spot checks are answered by its close, then is away until the first
    /// epoch that starts once it reopens.
    #[test]
    fn plans_whole_epochs_inside_the_window() {
        let mut swarm = sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            8,
            sliver_common::codec::CodecKind::Int8,
            false,
        )
        .swarm;
        swarm.epoch_blocks = 100;
        swarm.merge_blocks = 30;
        let schedule = swarm.schedule();
        // 10:00:00 UTC; the window is 10:00-10:05:50 and 11:00-12:00.
        let now = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = w("10:00-10:05:50,11:00-12:00 UTC");
        // Block 1000 is epoch 10's start. Epoch 11's answers end at block 1230 (230 s), 12's at
        // 1330, 13's at 1430 (past the close at 1350). Back at 11:00 = block 4600: epoch 46.
        let plan = plan_at(&a, &schedule, Epoch(10), 1000, now, 1.0);
        assert_eq!(
            plan,
            Plan::Train {
                away: Some((Epoch(13), Epoch(45)))
            }
        );
        // At block 1300 (epoch 13's start), there is no room for epoch 13.
        let later = now + Duration::from_secs(300);
        assert_eq!(
            plan_at(&a, &schedule, Epoch(13), 1300, later, 1.0),
            Plan::Away {
                away: (Epoch(13), Epoch(45)),
                back: Epoch(46)
            }
        );
        // Closed: away until the first epoch that starts in the next window.
        let closed = now + Duration::from_secs(1800);
        assert_eq!(
            plan_at(&a, &schedule, Epoch(28), 2800, closed, 1.0),
            Plan::Away {
                away: (Epoch(28), Epoch(45)),
                back: Epoch(46)
            }
        );
        assert_eq!(
            plan_at(&w("00:00-24:00"), &schedule, Epoch(28), 2800, closed, 1.0),
            Plan::Train { away: None }
        );
    }
}
