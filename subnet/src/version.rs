//! Which release is current: this build's version key, and the check against the subnet's.
//!
//! The subnet owner sets the on-chain hyperparameter `WeightsVersionKey`
//! (`btcli sudo set --param weights_version`, AdminUtils' `sudo_set_weights_version_key`) to the
//! key of the release every participant must run. A release's key is derived from its crate
//! version, `major * 1_000_000 + minor * 1_000 + patch` ([`Version::key`]; `0.1.0` is `1000`,
//! `1.2.3` is `1002003`), so a key read from chain decodes back to the version to install
//! ([`Version::from_key`]).
//!
//! [`check`] compares the chain's key with [`RELEASE`]'s: a key of 0 (unset) or one no greater
//! than ours proceeds; a greater one is [`Outdated`], naming the version to install. Miners
//! and validators check at start-up (before registering, so an outdated build pays no burn)
//! and every epoch: an outdated miner stops, an outdated validator refuses to set weights.
//!
//! A validator sets weights with its own key, [`RELEASE`]'s, never the chain's: subtensor
//! refuses `set_weights` whose `version_key` is lower than `WeightsVersionKey` (unless that is
//! 0), and ours is never lower once [`check`] has passed; the key then says which release set
//! the weights.

use sliver_chain::client::{Client, Error as ChainError, NetUid};

/// A release's version: `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor, below 1000.
    pub minor: u64,
    /// Patch, below 1000.
    pub patch: u64,
}

/// This release: the workspace's crate version (`CARGO_PKG_VERSION`), checked at compile time
/// to have a minor and patch below 1000.
pub const RELEASE: Version = Version::parse(env!("CARGO_PKG_VERSION"));

impl Version {
    /// The version key: `major * 1_000_000 + minor * 1_000 + patch`.
    pub const fn key(self) -> u64 {
        self.major * 1_000_000 + self.minor * 1_000 + self.patch
    }

    /// The version a key stands for (the inverse of [`Version::key`]).
    pub const fn from_key(key: u64) -> Self {
        Self {
            major: key / 1_000_000,
            minor: key / 1_000 % 1_000,
            patch: key % 1_000,
        }
    }

    /// `major.minor.patch` of a Cargo version; a pre-release or build suffix (`-rc.1`,
    /// `+abc`) is ignored. Panics (at compile time, for [`RELEASE`]) on anything else, or on a
    /// minor or patch of 1000 or more, which no key could tell apart.
    #[allow(
        clippy::panic,
        reason = "evaluated at compile time for RELEASE: a bad crate version fails the build"
    )]
    const fn parse(s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut parts = [0u64; 3];
        let (mut part, mut i, mut digits) = (0, 0, 0);
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'-' || b == b'+' {
                break;
            }
            if b == b'.' {
                if digits == 0 || part == 2 {
                    panic!("the crate version is not major.minor.patch");
                }
                part += 1;
                digits = 0;
            } else if b.is_ascii_digit() {
                parts[part] = parts[part] * 10 + (b - b'0') as u64;
                digits += 1;
            } else {
                panic!("the crate version is not major.minor.patch");
            }
            i += 1;
        }
        if part != 2 || digits == 0 {
            panic!("the crate version is not major.minor.patch");
        }
        if parts[1] >= 1_000 || parts[2] >= 1_000 {
            panic!("a version key holds minor and patch below 1000 only");
        }
        Self {
            major: parts[0],
            minor: parts[1],
            patch: parts[2],
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The subnet requires a later release than this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this is Sliver {ours} (version key {ours_key}), but subnet {netuid} requires Sliver {required} \
     (its weights_version_key is {key}): install Sliver {required} or later",
    ours_key = ours.key()
)]
pub struct Outdated {
    /// The subnet.
    pub netuid: u16,
    /// The chain's `WeightsVersionKey`.
    pub key: u64,
    /// The version that key stands for.
    pub required: Version,
    /// This release.
    pub ours: Version,
}

/// Whether this release may run on `netuid`, whose `WeightsVersionKey` is `chain_key`: yes
/// when the key is 0 (unset) or no greater than [`RELEASE`]'s.
///
/// # Errors
/// [`Outdated`] when the chain's key is greater.
pub fn check(netuid: NetUid, chain_key: u64) -> Result<(), Outdated> {
    check_against(RELEASE, netuid, chain_key)
}

fn check_against(ours: Version, netuid: NetUid, chain_key: u64) -> Result<(), Outdated> {
    if chain_key == 0 || chain_key <= ours.key() {
        return Ok(());
    }
    Err(Outdated {
        netuid: netuid.0,
        key: chain_key,
        required: Version::from_key(chain_key),
        ours,
    })
}

/// The subnet's `WeightsVersionKey`, read from chain now.
///
/// # Errors
/// A chain error (the subnet does not exist, the node cannot be reached).
pub async fn chain_key(client: &Client, netuid: NetUid) -> Result<u64, ChainError> {
    Ok(client.subnet_params(netuid).await?.weights_version_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: NetUid = NetUid(9);

    #[test]
    fn the_release_is_the_crate_version() {
        assert_eq!(RELEASE.to_string(), env!("CARGO_PKG_VERSION"));
        assert_eq!(Version::from_key(RELEASE.key()), RELEASE);
    }

    #[test]
    fn keys_encode_and_decode() {
        assert_eq!(Version::parse("0.1.0").key(), 1_000);
        assert_eq!(Version::parse("1.2.3").key(), 1_002_003);
        assert_eq!(Version::parse("12.0.999-rc.1+abc").key(), 12_000_999);
        assert_eq!(Version::from_key(1_002_003).to_string(), "1.2.3");
        assert_eq!(Version::from_key(7).to_string(), "0.0.7");
        assert!(Version::parse("1.10.0") > Version::parse("1.9.99"));
    }

    #[test]
    fn an_unset_equal_or_older_key_proceeds_and_a_newer_one_names_the_release() {
        let ours = Version::parse("1.2.3");
        for key in [0, 1, 1_002_002, 1_002_003] {
            check_against(ours, NET, key).unwrap();
        }
        let err = check_against(ours, NET, 1_003_000).unwrap_err();
        assert_eq!(err.required, Version::parse("1.3.0"));
        let message = err.to_string();
        assert!(
            message.contains("install Sliver 1.3.0 or later")
                && message.contains("Sliver 1.2.3 (version key 1002003)")
                && message.contains("subnet 9"),
            "{message}"
        );
        check(NET, RELEASE.key()).unwrap();
        check(NET, RELEASE.key() + 1).unwrap_err();
    }
}
