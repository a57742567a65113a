//! Extrinsics as finney encodes them, decoded and verified.
//!
//! A v4 signed extrinsic is `Compact(len) ++ 0x84 ++ MultiAddress ++ MultiSignature ++ explicit
//! extension data ++ call`. The explicit data of finney's thirteen transaction extensions
//! ([`TRANSACTION_EXTENSIONS`]) is `Era` (`CheckMortality`), `Compact<u32>` nonce (`CheckNonce`),
//! `Compact<u64>` tip (`ChargeTransactionPayment`) and the `CheckMetadataHash` mode byte; the
//! signature covers `call ++ explicit ++ implicit`, the implicit data being spec version,
//! transaction version, genesis hash, the hash of the era's birth block and the metadata hash
//! (`None`), blake2_256-hashed first when longer than 256 bytes. Failures are the
//! [`TransactionValidityError`]s a Substrate runtime gives, with its messages.

use parity_scale_codec::{Compact, Decode, Encode};
use sp_crypto_hashing::blake2_256;

use super::block::Hash;
use super::metadata::TRANSACTION_EXTENSIONS;

/// `sp_runtime::transaction_validity::InvalidTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidTransaction {
    /// The nonce is ahead of the account's.
    Future,
    /// The nonce was used already.
    Stale,
    /// The signature does not verify (which is also how a wrong genesis, spec version or
    /// mortality checkpoint shows, as they are signed but not sent).
    BadProof,
    /// The era's birth block is unknown.
    AncientBirthBlock,
    /// Unsigned or otherwise not permitted signer.
    BadSigner,
}

impl InvalidTransaction {
    /// The message Substrate gives (its `Display`), which nodes put in the RPC error's `data`.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Future => "Transaction will be valid in the future",
            Self::Stale => "Transaction is outdated",
            Self::BadProof => "Transaction has a bad signature",
            Self::AncientBirthBlock => "Transaction has an ancient birth block",
            Self::BadSigner => "Invalid signing address",
        }
    }

    /// The variant index in the metadata's `InvalidTransaction`.
    pub(crate) fn index(self) -> u8 {
        match self {
            Self::Future => 2,
            Self::Stale => 3,
            Self::BadProof => 4,
            Self::AncientBirthBlock => 5,
            Self::BadSigner => 10,
        }
    }
}

/// `sp_runtime::transaction_validity::UnknownTransaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownTransaction {
    /// The signer's address could not be resolved (only `MultiAddress::Id` can).
    CannotLookup,
    /// An unsigned extrinsic: no call of the local chain may be sent unsigned.
    NoUnsignedValidator,
}

impl UnknownTransaction {
    /// Substrate's message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::CannotLookup => {
                "Could not lookup information required to validate the transaction"
            }
            Self::NoUnsignedValidator => {
                "Could not find an unsigned validator for the unsigned transaction"
            }
        }
    }

    /// The variant index in the metadata's `UnknownTransaction`.
    pub(crate) fn index(self) -> u8 {
        match self {
            Self::CannotLookup => 0,
            Self::NoUnsignedValidator => 1,
        }
    }
}

/// Why an extrinsic is refused before it reaches a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TxError {
    /// `TransactionValidityError::Invalid`.
    #[error("Invalid Transaction: {}", .0.message())]
    Invalid(InvalidTransaction),
    /// `TransactionValidityError::Unknown`.
    #[error("Unknown Transaction Validity: {}", .0.message())]
    Unknown(UnknownTransaction),
    /// The bytes are not an extrinsic of this runtime.
    #[error("Could not decode extrinsic: {0}")]
    Decode(String),
}

impl TxError {
    /// SCALE encoding of `Err(TransactionValidityError)`'s payload, or `None` for decode errors
    /// (which a runtime reports by failing the call).
    pub(crate) fn validity_error(&self) -> Option<Vec<u8>> {
        match self {
            Self::Invalid(e) => Some(vec![0, e.index()]),
            Self::Unknown(e) => Some(vec![1, e.index()]),
            Self::Decode(_) => None,
        }
    }
}

/// `sp_runtime::generic::Era`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// Valid forever.
    Immortal,
    /// Valid for `period` blocks from the block whose number is `phase` modulo `period`.
    Mortal {
        /// Length of validity, a power of two in 4..=65536.
        period: u64,
        /// Birth block modulo `period`.
        phase: u64,
    },
}

impl Era {
    fn decode(input: &mut &[u8]) -> Result<Self, TxError> {
        let first = u8::decode(input).map_err(decode_err("era"))?;
        if first == 0 {
            return Ok(Self::Immortal);
        }
        let second = u8::decode(input).map_err(decode_err("era"))?;
        let encoded = u64::from(first) | (u64::from(second) << 8);
        let period = 2u64 << (encoded % (1 << 4));
        let quantize = (period >> 12).max(1);
        let phase = (encoded >> 4) * quantize;
        if period >= 4 && phase < period {
            Ok(Self::Mortal { period, phase })
        } else {
            Err(TxError::Decode("invalid era period and phase".to_owned()))
        }
    }

    /// The block this era was signed at, seen from block `current`.
    pub(crate) fn birth(self, current: u64) -> u64 {
        match self {
            Self::Immortal => 0,
            Self::Mortal { period, phase } => {
                (current.max(phase) - phase) / period * period + phase
            }
        }
    }

    /// The first block at which the era is no longer valid, seen from `current`.
    pub(crate) fn death(self, current: u64) -> u64 {
        match self {
            Self::Immortal => u64::MAX,
            Self::Mortal { period, .. } => self.birth(current) + period,
        }
    }
}

fn decode_err(what: &'static str) -> impl Fn(parity_scale_codec::Error) -> TxError {
    move |e| TxError::Decode(format!("{what}: {e}"))
}

/// A decoded signed extrinsic, not yet verified.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    /// The signer's account (from `MultiAddress::Id`).
    pub signer: [u8; 32],
    signature: [u8; 64],
    /// Mortality.
    pub era: Era,
    /// The nonce the signer claims.
    pub nonce: u32,
    /// The tip.
    pub tip: u64,
    metadata_hash_mode: u8,
    explicit: Vec<u8>,
    /// The encoded call.
    pub call: Vec<u8>,
}

/// An extrinsic as submitted: its bytes, hash, and the signed part where there is one.
#[derive(Debug, Clone)]
pub(crate) struct Extrinsic {
    /// The full encoding, length prefix included, as it goes into a block.
    pub bytes: Vec<u8>,
    /// blake2_256 of `bytes`, the hash `author_submitExtrinsic` returns.
    pub hash: Hash,
    /// The signed extrinsic.
    pub signed: Signed,
}

/// What the signature commits to that the extrinsic does not carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Implicit {
    /// `CheckSpecVersion`.
    pub spec_version: u32,
    /// `CheckTxVersion`.
    pub tx_version: u32,
    /// `CheckGenesis`.
    pub genesis: Hash,
}

/// Decodes an extrinsic (length prefix included). Only v4 signed extrinsics with an sr25519
/// signature and a `MultiAddress::Id` signer are accepted; every call of the local chain needs
/// a signed origin.
pub(crate) fn decode(bytes: &[u8]) -> Result<Extrinsic, TxError> {
    let mut input = bytes;
    let len = Compact::<u32>::decode(&mut input)
        .map_err(decode_err("length prefix"))?
        .0;
    if usize::try_from(len).ok() != Some(input.len()) {
        return Err(TxError::Decode(format!(
            "length prefix says {len} bytes, {} follow",
            input.len()
        )));
    }
    let version = u8::decode(&mut input).map_err(decode_err("version"))?;
    match version {
        0x84 => {}
        0x04 | 0x05 | 0x45 => {
            return Err(TxError::Unknown(UnknownTransaction::NoUnsignedValidator));
        }
        v => {
            return Err(TxError::Decode(format!(
                "unsupported extrinsic version byte {v:#04x}"
            )));
        }
    }
    let address = u8::decode(&mut input).map_err(decode_err("address"))?;
    if address != 0 {
        return Err(TxError::Unknown(UnknownTransaction::CannotLookup));
    }
    let signer = <[u8; 32]>::decode(&mut input).map_err(decode_err("signer"))?;
    let sig_kind = u8::decode(&mut input).map_err(decode_err("signature"))?;
    let signature = match sig_kind {
        0 | 1 => <[u8; 64]>::decode(&mut input).map_err(decode_err("signature"))?,
        2 => {
            <[u8; 65]>::decode(&mut input).map_err(decode_err("signature"))?;
            return Err(TxError::Invalid(InvalidTransaction::BadProof));
        }
        k => {
            return Err(TxError::Decode(format!(
                "unknown MultiSignature variant {k}"
            )));
        }
    };
    if sig_kind == 0 {
        // ed25519 signatures are not verified here; only sr25519 keys sign on Bittensor.
        return Err(TxError::Invalid(InvalidTransaction::BadProof));
    }
    let start = input;
    let era = Era::decode(&mut input)?;
    let nonce = Compact::<u32>::decode(&mut input)
        .map_err(decode_err("nonce"))?
        .0;
    let tip = Compact::<u64>::decode(&mut input)
        .map_err(decode_err("tip"))?
        .0;
    let metadata_hash_mode = u8::decode(&mut input).map_err(decode_err("metadata hash mode"))?;
    if metadata_hash_mode > 1 {
        return Err(TxError::Decode(format!(
            "unknown CheckMetadataHash mode {metadata_hash_mode}"
        )));
    }
    let explicit = start[..start.len() - input.len()].to_vec();
    debug_assert_eq!(TRANSACTION_EXTENSIONS.len(), 13);
    Ok(Extrinsic {
        bytes: bytes.to_vec(),
        hash: blake2_256(bytes),
        signed: Signed {
            signer,
            signature,
            era,
            nonce,
            tip,
            metadata_hash_mode,
            explicit,
            call: input.to_vec(),
        },
    })
}

impl Signed {
    /// Checks the signature against the payload built with `implicit` and the hash of the
    /// era's birth block (`birth_hash` looks a block number up; `current` is the number of the
    /// block being built).
    pub(crate) fn verify(
        &self,
        implicit: &Implicit,
        current: u32,
        birth_hash: impl Fn(u32) -> Option<Hash>,
    ) -> Result<(), TxError> {
        if self.signer == [0; 32] {
            return Err(TxError::Invalid(InvalidTransaction::BadSigner));
        }
        if self.metadata_hash_mode != 0 {
            // The local chain does not compute finney's merkleized metadata hash.
            return Err(TxError::Invalid(InvalidTransaction::BadProof));
        }
        let birth = u32::try_from(self.era.birth(u64::from(current)))
            .map_err(|_| TxError::Invalid(InvalidTransaction::AncientBirthBlock))?;
        let checkpoint =
            birth_hash(birth).ok_or(TxError::Invalid(InvalidTransaction::AncientBirthBlock))?;
        let mut payload = Vec::with_capacity(self.call.len() + self.explicit.len() + 80);
        payload.extend_from_slice(&self.call);
        payload.extend_from_slice(&self.explicit);
        implicit.spec_version.encode_to(&mut payload);
        implicit.tx_version.encode_to(&mut payload);
        implicit.genesis.encode_to(&mut payload);
        checkpoint.encode_to(&mut payload);
        None::<[u8; 32]>.encode_to(&mut payload);
        let message = if payload.len() > 256 {
            blake2_256(&payload).to_vec()
        } else {
            payload
        };
        let account = subxt_utils_accountid32::AccountId32(self.signer);
        if sliver_chain::wallet::verify(&account, &message, &self.signature) {
            Ok(())
        } else {
            Err(TxError::Invalid(InvalidTransaction::BadProof))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mortal_era_decodes_and_births_where_signed() {
        // Era::mortal(64, 1000): period 64, phase 1000 % 64 = 40; encoded as Substrate does.
        let period: u64 = 64;
        let phase: u64 = 1000 % period;
        let low = period.trailing_zeros().saturating_sub(1).clamp(1, 15) as u16;
        let high = (phase / (period >> 12).max(1)) as u16;
        let encoded = low | (high << 4);
        let bytes = encoded.to_le_bytes();
        let era = Era::decode(&mut &bytes[..]).ok();
        assert_eq!(era, Some(Era::Mortal { period, phase }));
        let era = Era::Mortal { period, phase };
        assert_eq!(era.birth(1001), 1000);
        assert_eq!(era.birth(1063), 1000);
        assert_eq!(era.birth(1064), 1064);
        assert_eq!(era.death(1001), 1064);
    }

    #[test]
    fn truncated_extrinsic_is_a_decode_error() {
        assert!(matches!(decode(&[8, 0x84, 0]), Err(TxError::Decode(_))));
        assert!(matches!(
            decode(&[4, 0x04, 0, 0, 0]),
            Err(TxError::Decode(_))
        ));
    }

    mod properties {
        use parity_scale_codec::{Compact, Encode};
        use proptest::prelude::*;

        use super::*;

        /// A v4 signed extrinsic as a client lays it out: sr25519 signature, immortal era.
        fn signed_bytes(
            signer: [u8; 32],
            sig: [u8; 64],
            nonce: u32,
            tip: u64,
            call: &[u8],
        ) -> Vec<u8> {
            let mut body = vec![0x84, 0];
            body.extend_from_slice(&signer);
            body.push(1);
            body.extend_from_slice(&sig);
            body.push(0); // Era::Immortal
            Compact(nonce).encode_to(&mut body);
            Compact(tip).encode_to(&mut body);
            body.push(0); // CheckMetadataHash: disabled
            body.extend_from_slice(call);
            let mut bytes = Compact(body.len() as u32).encode();
            bytes.extend_from_slice(&body);
            bytes
        }

        /// The bytes an accepted extrinsic was decoded from, rebuilt from its parts.
        fn reassemble(ext: &Extrinsic) -> Vec<u8> {
            let s = &ext.signed;
            let mut body = vec![0x84, 0];
            body.extend_from_slice(&s.signer);
            body.push(1);
            body.extend_from_slice(&s.signature);
            body.extend_from_slice(&s.explicit);
            body.extend_from_slice(&s.call);
            let mut bytes = Compact(body.len() as u32).encode();
            bytes.extend_from_slice(&body);
            bytes
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Arbitrary bytes never panic, and an accepted extrinsic is exactly its parts.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                if let Ok(ext) = decode(&bytes) {
                    prop_assert_eq!(&ext.bytes, &bytes);
                    prop_assert_eq!(reassemble(&ext), bytes);
                }
            }

            /// Well-formed extrinsics decode to what was encoded; flipped bytes never panic,
            /// and whatever still decodes keeps no more than its input.
            #[test]
            fn signed_extrinsics_round_trip(
                signer in any::<[u8; 32]>(),
                sig in proptest::collection::vec(any::<u8>(), 64),
                nonce in any::<u32>(),
                tip in any::<u64>(),
                call in proptest::collection::vec(any::<u8>(), 0..200),
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            ) {
                let sig: [u8; 64] = sig.try_into().unwrap_or([0; 64]);
                let bytes = signed_bytes(signer, sig, nonce, tip, &call);
                let ext = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(ext.signed.signer, signer);
                prop_assert_eq!(ext.signed.nonce, nonce);
                prop_assert_eq!(ext.signed.tip, tip);
                prop_assert_eq!(&ext.signed.call, &call);
                prop_assert_eq!(ext.signed.era, Era::Immortal);
                prop_assert_eq!(reassemble(&ext), bytes.clone());
                let mut mutated = bytes;
                for (at, v) in flips {
                    let i = at.index(mutated.len());
                    mutated[i] = v;
                }
                if let Ok(ext) = decode(&mutated) {
                    prop_assert!(ext.signed.call.len() <= mutated.len());
                    prop_assert_eq!(reassemble(&ext), mutated);
                }
            }
        }
    }
}
