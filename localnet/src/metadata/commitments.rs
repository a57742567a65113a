//! `Commitments` (pallet 18): the per-(netuid, hotkey) data a participant publishes, such as
//! where its artifacts can be read. Its `Data` enum is finney's: `Raw0..Raw128` carry that many
//! bytes, the hash variants carry 32.

use parity_scale_codec::{Decode, Encode};

use super::pallet::{Pallet, constant, index, pallet_enum, pallet_errors};
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, index_u8, named, var};
use super::types::{AccountId32, CommitmentInfo, Cx, Meta};

/// Finney's `Commitments.MaxFields`.
pub const MAX_FIELDS: u32 = 3;
/// The largest `RawN` variant of `Data`.
pub const MAX_RAW: usize = 128;
/// Finney's bounds on `Data::TimelockEncrypted.encrypted` and `Data::BigRaw`, which decoding a
/// `CommitmentInfo` holds.
pub use crate::values::{MAX_BIG_RAW_BYTES, MAX_TIMELOCK_BYTES};

pallet_errors! {
    /// Finney's `pallet_commitments::Error`, in index order.
    CommitmentsError of index::COMMITMENTS;
    TooManyFieldsInCommitmentInfo,
    AccountNotAllowedCommit,
    SpaceLimitExceeded,
    UnexpectedUnreserveLeftover,
}

/// `pallet_commitments::types::CommitmentInfo<MaxFields>`.
pub(crate) fn commitment_info(t: &mut Types, p: &Prims) -> TypeId {
    let mut variants = vec![var("None", 0, vec![])];
    for n in 0..=MAX_RAW {
        let bytes = t.byte_array(u32::try_from(n).unwrap_or(u32::MAX));
        variants.push(var(
            &format!("Raw{n}"),
            index_u8(n + 1),
            vec![anon(bytes, None)],
        ));
    }
    let base = MAX_RAW + 2;
    for (i, name) in ["BlakeTwo256", "Sha256", "Keccak256", "ShaThree256"]
        .into_iter()
        .enumerate()
    {
        variants.push(var(name, index_u8(base + i), vec![anon(p.bytes32, None)]));
    }
    let bounded_bytes = t.bounded_vec(p.u8);
    variants.push(var(
        "TimelockEncrypted",
        index_u8(base + 4),
        vec![
            named(Some("encrypted"), bounded_bytes, None),
            named(Some("reveal_round"), p.u64, None),
        ],
    ));
    variants.push(var("ResetBondsFlag", index_u8(base + 5), vec![]));
    variants.push(var(
        "BigRaw",
        index_u8(base + 6),
        vec![anon(bounded_bytes, None)],
    ));
    let data = t.variant("pallet_commitments::types::Data", &[], variants);
    let fields = t.bounded_vec(data);
    t.composite(
        "pallet_commitments::types::CommitmentInfo",
        &[("FieldLimit", None)],
        vec![field("fields", fields, "BoundedVec<Data, FieldLimit>")],
    )
}

/// `pallet_commitments::types::Registration`: what `Commitments.CommitmentOf` holds.
pub(crate) fn registration(t: &mut Types, p: &Prims) -> TypeId {
    let info = commitment_info(t, p);
    t.composite(
        "pallet_commitments::types::Registration",
        &[
            ("Balance", Some(p.u64)),
            ("MaxFields", None),
            ("BlockNumber", Some(p.u32)),
        ],
        vec![
            field("deposit", p.u64, "Balance"),
            field("block", p.u32, "BlockNumber"),
            field("info", info, "CommitmentInfo<MaxFields>"),
        ],
    )
}

pallet_enum! {
    /// `pallet_commitments::pallet::Call`.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    CommitmentsCall = "pallet_commitments::pallet::Call" ["T"] {
        SetCommitment as "set_commitment" = 0 {
            netuid: u16 as "NetUid",
            info: CommitmentInfo as "Box<CommitmentInfo<T::MaxFields>>",
        },
    }
}

pallet_enum! {
    /// `pallet_commitments::pallet::Event`.
    #[derive(Debug, Clone, PartialEq, Eq, Encode)]
    CommitmentsEvent = "pallet_commitments::pallet::Event" ["T"] {
        Commitment = 0 { netuid: u16 as "NetUid", who: AccountId32 as "T::AccountId" },
    }
}

/// The pallet.
pub(crate) fn pallet(t: &mut Types, p: &Prims) -> Pallet {
    let mut cx = Cx::new(t, p);
    let calls = CommitmentsCall::describe(&mut cx);
    let event = CommitmentsEvent::describe(&mut cx);
    let error = cx.t.unit_enum(
        "pallet_commitments::pallet::Error",
        &[("T", None)],
        CommitmentsError::NAMES,
    );
    Pallet {
        name: "Commitments",
        index: index::COMMITMENTS,
        storage: None,
        calls: Some(calls),
        event: Some((event, "pallet_commitments::Event<Runtime>")),
        error: Some((error, "pallet_commitments::Error<Runtime>")),
        constants: vec![constant("MaxFields", p.u32, MAX_FIELDS)],
    }
}
