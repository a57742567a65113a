//! The values the runtime keeps and the metadata describes: plain Rust types with finney's SCALE
//! encoding (accounts, addresses, dispatch errors, commitments, axons, drand pulses). Both the
//! runtime (`dispatch`, `subtensor`, `drand`, `items`, `runtime_api`) and [`metadata`](crate::metadata)
//! (whose `Meta` types name them as their Rust types) import them from here, and this file imports
//! neither, so the metadata does not depend on the runtime.

use parity_scale_codec::{Compact, Decode, Encode, Input};
use sliver_chain::timelock::Beacon;

/// An account id (`AccountId32`).
pub(crate) type AccountId = [u8; 32];

/// `sp_runtime::DispatchError`, the variants the local chain raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DispatchError {
    /// `CannotLookup`: a `MultiAddress` that is not an account id.
    CannotLookup,
    /// `Module { index, error: [error, 0, 0, 0] }`.
    Module {
        /// Pallet index.
        index: u8,
        /// Error index in the pallet's `Error` enum.
        error: u8,
    },
    /// `Token(TokenError)`, by variant index.
    Token(u8),
}

impl Encode for DispatchError {
    fn encode_to<W: parity_scale_codec::Output + ?Sized>(&self, dest: &mut W) {
        match *self {
            Self::CannotLookup => dest.push_byte(1),
            Self::Module { index, error } => {
                dest.push_byte(3);
                dest.write(&[index, error, 0, 0, 0]);
            }
            Self::Token(e) => dest.write(&[7, e]),
        }
    }
}

/// `sp_runtime::MultiAddress<AccountId32, ()>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MultiAddress {
    /// `Id` or `Address32`: an account.
    Account(AccountId),
    /// `Index`, `Raw` or `Address20`, which the runtime cannot look up.
    Other,
}

impl Decode for MultiAddress {
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        match input.read_byte()? {
            0 | 3 => Ok(Self::Account(AccountId::decode(input)?)),
            1 => Ok(Self::Other),
            2 => {
                Vec::<u8>::decode(input)?;
                Ok(Self::Other)
            }
            4 => {
                <[u8; 20]>::decode(input)?;
                Ok(Self::Other)
            }
            _ => Err("unknown MultiAddress variant".into()),
        }
    }
}

/// Finney's bound on `Data::TimelockEncrypted.encrypted` (`MAX_TIMELOCK_COMMITMENT_SIZE_BYTES`).
pub const MAX_TIMELOCK_BYTES: u32 = 1024;
/// Finney's bound on `Data::BigRaw` (`MAX_BIGRAW_COMMITMENT_SIZE_BYTES`).
pub const MAX_BIG_RAW_BYTES: u32 = 512;

/// `pallet_commitments::CommitmentInfo`, kept as its encoding, with its number of fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitmentInfo {
    /// The SCALE encoding, as stored in `CommitmentOf`.
    pub encoded: Vec<u8>,
    /// Number of `Data` fields.
    pub fields: usize,
}

impl Decode for CommitmentInfo {
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        let count = Compact::<u32>::decode(input)?.0;
        let mut encoded = Compact(count).encode();
        for _ in 0..count {
            let variant = input.read_byte()?;
            encoded.push(variant);
            let take = |input: &mut I, n: usize, out: &mut Vec<u8>| {
                let mut buf = vec![0u8; n];
                input.read(&mut buf)?;
                out.extend_from_slice(&buf);
                Ok::<_, parity_scale_codec::Error>(())
            };
            match variant {
                0 | 135 => {}
                1..=129 => take(input, usize::from(variant - 1), &mut encoded)?,
                130..=133 => take(input, 32, &mut encoded)?,
                // Finney decodes these as `BoundedVec`s: a longer one is not a call.
                134 => {
                    bounded_bytes(input, MAX_TIMELOCK_BYTES, &mut encoded)?;
                    u64::decode(input)?.encode_to(&mut encoded);
                }
                136 => bounded_bytes(input, MAX_BIG_RAW_BYTES, &mut encoded)?,
                _ => return Err("unknown commitment Data variant".into()),
            }
        }
        let fields = usize::try_from(count).map_err(|_| "too many fields")?;
        Ok(Self { encoded, fields })
    }
}

/// Reads a SCALE `Vec<u8>` of at most `max` bytes, refusing a longer one from its length prefix
/// (before reading it), and appends its encoding to `out`.
fn bounded_bytes<I: Input>(
    input: &mut I,
    max: u32,
    out: &mut Vec<u8>,
) -> Result<(), parity_scale_codec::Error> {
    let len = Compact::<u32>::decode(input)?.0;
    if len > max {
        return Err("commitment data longer than finney's bound".into());
    }
    let mut bytes = vec![0u8; len as usize];
    input.read(&mut bytes)?;
    Compact(len).encode_to(out);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// `pallet_balances::AccountData` inside `frame_system::AccountInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub(crate) struct AccountInfo {
    /// Transactions sent.
    pub nonce: u32,
    /// Consumer references.
    pub consumers: u32,
    /// Provider references.
    pub providers: u32,
    /// Sufficient references.
    pub sufficients: u32,
    /// Free balance, rao.
    pub free: u64,
    /// Reserved balance.
    pub reserved: u64,
    /// Frozen balance.
    pub frozen: u64,
    /// `ExtraFlags`.
    pub flags: u128,
}

impl Default for AccountInfo {
    fn default() -> Self {
        Self {
            nonce: 0,
            consumers: 0,
            providers: 0,
            sufficients: 0,
            free: 0,
            reserved: 0,
            frozen: 0,
            flags: 1u128 << 127,
        }
    }
}

/// `pallet_drand::types::Pulse`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Pulse {
    /// The round.
    pub round: u64,
    /// `sha256(signature)`.
    pub randomness: Vec<u8>,
    /// The beacon's signature of the round (compressed G1).
    pub signature: Vec<u8>,
}

/// `pallet_drand::types::Metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct BeaconMetadata {
    /// The beacon's name.
    pub beacon_id: Vec<u8>,
}

/// `pallet_drand::types::BeaconConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct BeaconConfiguration {
    /// Compressed G2 public key.
    pub public_key: Vec<u8>,
    /// Seconds between rounds.
    pub period: u32,
    /// Unix second of round 1.
    pub genesis_time: u32,
    /// The chain hash.
    pub hash: Vec<u8>,
    /// The group hash.
    pub group_hash: Vec<u8>,
    /// The signature scheme.
    pub scheme_id: Vec<u8>,
    /// Metadata.
    pub metadata: BeaconMetadata,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|_| unreachable!("constant hex"))
}

impl BeaconConfiguration {
    /// drand quicknet: finney's default.
    pub(crate) fn quicknet() -> Self {
        let q = Beacon::quicknet();
        Self {
            public_key: q.public_key.to_vec(),
            period: q.period as u32,
            genesis_time: q.genesis_time as u32,
            hash: unhex("52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"),
            group_hash: unhex("f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e"),
            scheme_id: b"bls-unchained-g1-rfc9380".to_vec(),
            metadata: BeaconMetadata {
                beacon_id: b"quicknet".to_vec(),
            },
        }
    }
}

/// `pallet_subtensor::AxonInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
pub(crate) struct AxonInfo {
    /// Block served at.
    pub block: u64,
    /// Axon version.
    pub version: u32,
    /// IP address.
    pub ip: u128,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol.
    pub protocol: u8,
    /// Unused.
    pub placeholder1: u8,
    /// Unused.
    pub placeholder2: u8,
}

/// `pallet_subtensor::PrometheusInfo`; the local chain serves only the default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
pub(crate) struct PrometheusInfo {
    /// Block served at.
    pub block: u64,
    /// Version.
    pub version: u32,
    /// IP address.
    pub ip: u128,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
}
