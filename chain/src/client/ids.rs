//! Domain newtypes for the integers subtensor uses: subnet ids, neuron uids and block numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A subnet id (`netuid`), as in `--netuid 9`. Subtensor stores it as a `u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetUid(pub u16);

/// A neuron's position in a subnet's metagraph (`uid`). Uids are dense: `0..SubnetworkN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Uid(pub u16);

/// A block height. The chain counts blocks in a `u32`; subtensor's storage (last update,
/// registration block, commit blocks) holds them as `u64`, which this type uses throughout.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BlockNumber(pub u64);

impl BlockNumber {
    /// The block `n` blocks after this one (saturating).
    pub fn plus(self, n: u64) -> BlockNumber {
        BlockNumber(self.0.saturating_add(n))
    }

    /// How many blocks `self` is after `earlier` (0 if it is not).
    pub fn since(self, earlier: BlockNumber) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

macro_rules! int_newtype {
    ($name:ident, $int:ty) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$int> for $name {
            fn from(value: $int) -> Self {
                $name(value)
            }
        }

        impl From<$name> for $int {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($name)
            }
        }
    };
}

int_newtype!(NetUid, u16);
int_newtype!(Uid, u16);
int_newtype!(BlockNumber, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_and_arithmetic() {
        assert_eq!("9".parse::<NetUid>().unwrap(), NetUid(9));
        assert!("70000".parse::<NetUid>().is_err());
        assert_eq!(Uid(3).to_string(), "3");
        assert_eq!(BlockNumber(10).plus(5), BlockNumber(15));
        assert_eq!(BlockNumber(10).since(BlockNumber(4)), 6);
        assert_eq!(BlockNumber(4).since(BlockNumber(10)), 0);
    }
}
