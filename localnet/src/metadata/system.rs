//! `System` (pallet 0), `Timestamp` (2) and `Balances` (5): accounts, nonces, block bookkeeping,
//! events, and TAO balances in rao.

use parity_scale_codec::{Compact, Decode, Encode};

use super::pallet::{Pallet, constant, index, pallet_enum};
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, var};
use super::types::{AccountId32, Cx, DispatchError, DispatchEventInfo, H256, Meta, MultiAddress};

/// Finney's `System.SS58Prefix`.
pub const SS58_PREFIX: u16 = 42;
/// Finney's `System.BlockHashCount`.
pub const BLOCK_HASH_COUNT: u32 = 2400;
/// Finney's `Balances.ExistentialDeposit`, in rao.
pub const EXISTENTIAL_DEPOSIT: u64 = 500;

pallet_enum! {
    /// `frame_system::pallet::Call`: the calls the local chain serves.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    SystemCall = "frame_system::pallet::Call" ["T"] {
        Remark as "remark" = 0 { remark: Vec<u8> as "Vec<u8>" },
    }
}

pallet_enum! {
    /// `frame_system::pallet::Event`: the events the local chain deposits, and two more that
    /// finney's clients expect to decode.
    #[derive(Debug, Clone, PartialEq, Eq, Encode)]
    #[allow(dead_code)] // `KilledAccount` and `Remarked` are described, never deposited.
    SystemEvent = "frame_system::pallet::Event" ["T"] {
        ExtrinsicSuccess = 0 { dispatch_info: DispatchEventInfo as "DispatchEventInfo" },
        ExtrinsicFailed = 1 {
            dispatch_error: DispatchError as "DispatchError",
            dispatch_info: DispatchEventInfo as "DispatchEventInfo",
        },
        NewAccount = 3 { account: AccountId32 as "T::AccountId" },
        KilledAccount = 4 { account: AccountId32 as "T::AccountId" },
        Remarked = 5 { sender: AccountId32 as "T::AccountId", hash: H256 as "T::Hash" },
    }
}

pallet_enum! {
    /// `pallet_balances::pallet::Call`: the transfers the local chain serves.
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    #[allow(clippy::enum_variant_names)] // Finney's call names.
    BalancesCall = "pallet_balances::pallet::Call" ["T", "I"] {
        TransferAllowDeath as "transfer_allow_death" = 0 {
            dest: MultiAddress as "AccountIdLookupOf<T>",
            value: Compact<u64> as "T::Balance",
        },
        TransferKeepAlive as "transfer_keep_alive" = 3 {
            dest: MultiAddress as "AccountIdLookupOf<T>",
            value: Compact<u64> as "T::Balance",
        },
        TransferAll as "transfer_all" = 4 {
            dest: MultiAddress as "AccountIdLookupOf<T>",
            keep_alive: bool as "bool",
        },
    }
}

pallet_enum! {
    /// `pallet_balances::pallet::Event`: the balance events finney has that the local chain
    /// describes (it deposits `Endowed` and `Transfer`).
    #[derive(Debug, Clone, PartialEq, Eq, Encode)]
    #[allow(dead_code)] // `Deposit`, `Withdraw` and `Burned` are described, never deposited.
    BalancesEvent = "pallet_balances::pallet::Event" ["T", "I"] {
        Endowed = 0 { account: AccountId32 as "T::AccountId", free_balance: u64 as "T::Balance" },
        Transfer = 2 {
            from: AccountId32 as "T::AccountId",
            to: AccountId32 as "T::AccountId",
            amount: u64 as "T::Balance",
        },
        Deposit = 7 { who: AccountId32 as "T::AccountId", amount: u64 as "T::Balance" },
        Withdraw = 8 { who: AccountId32 as "T::AccountId", amount: u64 as "T::Balance" },
        Burned = 11 { who: AccountId32 as "T::AccountId", amount: u64 as "T::Balance" },
    }
}

/// `frame_system` (its storage is declared in `items.rs`).
pub(crate) fn system(t: &mut Types, p: &Prims) -> Pallet {
    let mut cx = Cx::new(t, p);
    let calls = SystemCall::describe(&mut cx);
    let event = SystemEvent::describe(&mut cx);
    let error = cx.t.unit_enum(
        "frame_system::pallet::Error",
        &[("T", None)],
        &[
            "InvalidSpecName",
            "SpecVersionNeedsToIncrease",
            "FailedToExtractRuntimeVersion",
            "NonDefaultComposite",
            "NonZeroRefCount",
            "CallFiltered",
            "MultiBlockMigrationsOngoing",
            "NothingAuthorized",
            "Unauthorized",
        ],
    );
    Pallet {
        name: "System",
        index: index::SYSTEM,
        storage: None,
        calls: Some(calls),
        event: Some((event, "frame_system::Event<Runtime>")),
        error: Some((error, "frame_system::Error<Runtime>")),
        constants: vec![
            constant("BlockHashCount", p.u32, BLOCK_HASH_COUNT),
            constant("SS58Prefix", p.u16, SS58_PREFIX),
        ],
    }
}

/// `Vec<frame_system::EventRecord<RuntimeEvent, H256>>`: what `System.Events` holds.
pub(crate) fn event_records(t: &mut Types, p: &Prims, runtime_event: TypeId) -> TypeId {
    let topics = t.seq(p.h256);
    let record = t.composite(
        "frame_system::EventRecord",
        &[("E", Some(runtime_event)), ("T", Some(p.h256))],
        vec![
            field("phase", p.phase, "Phase"),
            field("event", runtime_event, "E"),
            field("topics", topics, "Vec<T>"),
        ],
    );
    t.seq(record)
}

/// `frame_system::AccountInfo<u32, pallet_balances::AccountData<u64>>`.
pub(crate) fn account_info(t: &mut Types, p: &Prims) -> u32 {
    let flags = t.composite(
        "pallet_balances::types::ExtraFlags",
        &[],
        vec![anon(p.u128, Some("u128"))],
    );
    let data = t.composite(
        "pallet_balances::types::AccountData",
        &[("Balance", Some(p.u64))],
        vec![
            field("free", p.u64, "Balance"),
            field("reserved", p.u64, "Balance"),
            field("frozen", p.u64, "Balance"),
            field("flags", flags, "ExtraFlags"),
        ],
    );
    t.composite(
        "frame_system::AccountInfo",
        &[("Nonce", Some(p.u32)), ("AccountData", Some(data))],
        vec![
            field("nonce", p.u32, "Nonce"),
            field("consumers", p.u32, "RefCount"),
            field("providers", p.u32, "RefCount"),
            field("sufficients", p.u32, "RefCount"),
            field("data", data, "AccountData"),
        ],
    )
}

/// `pallet_timestamp`: only the current block's time is kept.
pub(crate) fn timestamp() -> Pallet {
    Pallet {
        name: "Timestamp",
        index: index::TIMESTAMP,
        storage: None,
        calls: None,
        event: None,
        error: None,
        constants: vec![],
    }
}

/// `pallet_balances`: transfers of TAO (in rao, `u64`).
pub(crate) fn balances(t: &mut Types, p: &Prims) -> Pallet {
    let mut cx = Cx::new(t, p);
    let calls = BalancesCall::describe(&mut cx);
    let event = BalancesEvent::describe(&mut cx);
    let error = cx.t.unit_enum(
        "pallet_balances::pallet::Error",
        &[("T", None), ("I", None)],
        &[
            "VestingBalance",
            "LiquidityRestrictions",
            "InsufficientBalance",
            "ExistentialDeposit",
            "Expendability",
            "ExistingVestingSchedule",
            "DeadAccount",
            "TooManyReserves",
            "TooManyHolds",
            "TooManyFreezes",
            "IssuanceDeactivated",
            "DeltaZero",
        ],
    );
    Pallet {
        name: "Balances",
        index: index::BALANCES,
        storage: None,
        calls: Some(calls),
        event: Some((event, "pallet_balances::Event<Runtime>")),
        error: Some((error, "pallet_balances::Error<Runtime>")),
        constants: vec![constant("ExistentialDeposit", p.u64, EXISTENTIAL_DEPOSIT)],
    }
}
