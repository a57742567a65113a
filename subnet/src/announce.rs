//! Announcements: what each participant publishes with `Commitments.set_commitment`.
//!
//! One line of text,
//! `sliver/1;role=<owner|validator|miner>;spec=<blake3 hex>[;rate=<work rate>;stage=<stage>][;away=<epoch>-<epoch>];loc=<location>`:
//! the participant's role, the BLAKE3 of the run spec it holds, a miner's measured work rate and
//! the stage it trains once it has trained (`sliver_common::assignment::Declared`: its share of
//! its stage's samples follows the rate, and it keeps the stage), the epochs (inclusive) a miner
//! working in availability windows will not train (no roster of those epochs holds it, so no
//! peer routes to it), and where its artifacts can be
//! read (a storage location, see `StoreConfig::to_location`; last, since a location may hold
//! anything). Fields between `spec` and `loc` that this release does not know are skipped, so a
//! later release may add some. The subnet owner's announcement
//! is the run's: its `spec` is the spec every participant must hold, and the spec itself is read
//! from the owner's location. Text rather than SCALE so that operators can read it with any
//! chain explorer.

use std::fmt;

use sliver_common::{Epoch, StageIndex};

/// Prefix of every announcement: the format and its version.
pub const PREFIX: &str = "sliver/1";

/// What a participant does in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The subnet owner's validator: publishes the run spec.
    Owner,
    /// A validator.
    Validator,
    /// A miner.
    Miner,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Validator => "validator",
            Role::Miner => "miner",
        }
    }
}

/// A participant's announcement.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// Its role.
    pub role: Role,
    /// BLAKE3 of the canonical run spec it holds.
    pub spec: [u8; 32],
    /// A miner's work rate, measured on its own training (giga parameter-tokens a second of
    /// compute): none until it has trained.
    pub rate: Option<f64>,
    /// The stage a miner trains, announced with its rate: it keeps it in later rosters.
    pub stage: Option<StageIndex>,
    /// The epochs, first and last, a miner will not train (outside its availability windows).
    pub away: Option<(Epoch, Epoch)>,
    /// Where its artifacts can be read.
    pub location: String,
}

/// A commitment is not a valid announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Sliver announcement: {0}")]
pub struct ParseError(&'static str);

impl fmt::Display for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX};role={};spec={}",
            self.role.as_str(),
            hex::encode(self.spec)
        )?;
        if let Some(rate) = self.rate {
            write!(f, ";rate={rate:.3e}")?;
        }
        if let Some(stage) = self.stage {
            write!(f, ";stage={stage}")?;
        }
        if let Some((first, last)) = self.away {
            write!(f, ";away={first}-{last}")?;
        }
        write!(f, ";loc={}", self.location)
    }
}

impl Announcement {
    /// Parses commitment bytes.
    ///
    /// # Errors
    /// [`ParseError`] naming the part that is wrong.
    pub fn parse(data: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(data).map_err(|_| ParseError("not UTF-8"))?;
        let mut parts = text.splitn(4, ';');
        if parts.next() != Some(PREFIX) {
            return Err(ParseError("prefix"));
        }
        let role = match parts.next() {
            Some("role=owner") => Role::Owner,
            Some("role=validator") => Role::Validator,
            Some("role=miner") => Role::Miner,
            _ => return Err(ParseError("role")),
        };
        let spec = parts
            .next()
            .and_then(|p| p.strip_prefix("spec="))
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(ParseError("spec hash"))?;
        let mut rest = parts.next().unwrap_or_default();
        let (mut rate, mut stage, mut away) = (None, None, None);
        while !rest.starts_with("loc=") {
            let (field, tail) = rest.split_once(';').ok_or(ParseError("location"))?;
            if let Some(value) = field.strip_prefix("rate=") {
                rate = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or(ParseError("rate"))?,
                );
            } else if let Some(value) = field.strip_prefix("stage=") {
                stage = Some(StageIndex(
                    value.parse::<u16>().map_err(|_| ParseError("stage"))?,
                ));
            } else if let Some(value) = field.strip_prefix("away=") {
                let (first, last) = value
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .filter(|(a, b): &(u64, u64)| a <= b)
                    .ok_or(ParseError("away"))?;
                away = Some((Epoch(first), Epoch(last)));
            }
            rest = tail;
        }
        let location = rest
            .strip_prefix("loc=")
            .filter(|l| !l.is_empty())
            .ok_or(ParseError("location"))?
            .to_owned();
        Ok(Self {
            role,
            spec,
            rate,
            stage,
            away,
            location,
        })
    }

    /// Whether the miner said it will not train `epoch`.
    pub fn away_in(&self, epoch: Epoch) -> bool {
        self.away
            .is_some_and(|(first, last)| (first..=last).contains(&epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let mut a = Announcement {
            role: Role::Miner,
            spec: [7; 32],
            rate: None,
            stage: None,
            away: None,
            location: "s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A1".into(),
        };
        assert_eq!(Announcement::parse(a.to_string().as_bytes()).unwrap(), a);
        a.rate = Some(0.0125);
        a.stage = Some(StageIndex(3));
        assert!(
            a.to_string().contains(";rate=1.250e-2;stage=3;loc=s3://"),
            "{a}"
        );
        assert_eq!(Announcement::parse(a.to_string().as_bytes()).unwrap(), a);
        a.away = Some((Epoch(12), Epoch(40)));
        assert!(a.to_string().contains(";stage=3;away=12-40;loc="), "{a}");
        assert_eq!(Announcement::parse(a.to_string().as_bytes()).unwrap(), a);
        assert!(!a.away_in(Epoch(11)) && a.away_in(Epoch(12)) && a.away_in(Epoch(40)));
        assert!(!a.away_in(Epoch(41)));
        // A field a later release adds is skipped.
        let later = a.to_string().replace(";loc=", ";colour=blue;loc=");
        assert_eq!(Announcement::parse(later.as_bytes()).unwrap(), a);
        let spec = hex::encode([7u8; 32]);
        for (bad, why) in [
            (
                format!("sliver/1;role=miner;spec={spec};rate=fast;loc=x"),
                "rate",
            ),
            (
                format!("sliver/1;role=miner;spec={spec};rate=-1;loc=x"),
                "rate",
            ),
            (
                format!("sliver/1;role=miner;spec={spec};rate=1"),
                "location",
            ),
            (
                format!("sliver/1;role=miner;spec={spec};away=9-3;loc=x"),
                "away",
            ),
            (
                format!("sliver/1;role=miner;spec={spec};away=soon;loc=x"),
                "away",
            ),
        ] {
            assert_eq!(
                Announcement::parse(bad.as_bytes()).unwrap_err(),
                ParseError(why),
                "{bad}"
            );
        }
        for bad in [
            "",
            "sliver/2;role=miner",
            "sliver/1;role=king;spec=00;loc=x",
        ] {
            assert!(Announcement::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let no_loc = format!("sliver/1;role=owner;spec={};loc=", hex::encode([1u8; 32]));
        assert_eq!(
            Announcement::parse(no_loc.as_bytes()).unwrap_err(),
            ParseError("location")
        );
    }
}
