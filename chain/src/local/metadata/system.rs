//! `System` (pallet 0), `Timestamp` (2) and `Balances` (5): accounts, nonces, block bookkeeping,
//! events, and TAO balances in rao.

use super::pallet::{Pallet, constant};
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, var};

/// Finney's `System.SS58Prefix`.
pub const SS58_PREFIX: u16 = 42;
/// Finney's `System.BlockHashCount`.
pub const BLOCK_HASH_COUNT: u32 = 2400;
/// Finney's `Balances.ExistentialDeposit`, in rao.
pub const EXISTENTIAL_DEPOSIT: u64 = 500;

/// `frame_system` (its storage is declared in `items.rs`).
pub(crate) fn system(t: &mut Types, p: &Prims) -> Pallet {
    let calls = t.variant(
        "frame_system::pallet::Call",
        &[("T", None)],
        vec![var("remark", 0, vec![field("remark", p.bytes, "Vec<u8>")])],
    );
    let event = t.variant(
        "frame_system::pallet::Event",
        &[("T", None)],
        vec![
            var(
                "ExtrinsicSuccess",
                0,
                vec![field(
                    "dispatch_info",
                    p.dispatch_event_info,
                    "DispatchEventInfo",
                )],
            ),
            var(
                "ExtrinsicFailed",
                1,
                vec![
                    field("dispatch_error", p.dispatch_error, "DispatchError"),
                    field("dispatch_info", p.dispatch_event_info, "DispatchEventInfo"),
                ],
            ),
            var(
                "NewAccount",
                3,
                vec![field("account", p.account, "T::AccountId")],
            ),
            var(
                "KilledAccount",
                4,
                vec![field("account", p.account, "T::AccountId")],
            ),
            var(
                "Remarked",
                5,
                vec![
                    field("sender", p.account, "T::AccountId"),
                    field("hash", p.h256, "T::Hash"),
                ],
            ),
        ],
    );
    let error = t.unit_enum(
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
        index: 0,
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
        index: 2,
        storage: None,
        calls: None,
        event: None,
        error: None,
        constants: vec![],
    }
}

/// `pallet_balances`: transfers of TAO (in rao, `u64`).
pub(crate) fn balances(t: &mut Types, p: &Prims) -> Pallet {
    let compact_balance = t.compact(p.u64);
    let dest = |name| field(name, p.address, "AccountIdLookupOf<T>");
    let calls = t.variant(
        "pallet_balances::pallet::Call",
        &[("T", None), ("I", None)],
        vec![
            var(
                "transfer_allow_death",
                0,
                vec![dest("dest"), field("value", compact_balance, "T::Balance")],
            ),
            var(
                "transfer_keep_alive",
                3,
                vec![dest("dest"), field("value", compact_balance, "T::Balance")],
            ),
            var(
                "transfer_all",
                4,
                vec![dest("dest"), field("keep_alive", p.bool, "bool")],
            ),
        ],
    );
    let who_amount = |who: &str| {
        vec![
            field(who, p.account, "T::AccountId"),
            field("amount", p.u64, "T::Balance"),
        ]
    };
    let event = t.variant(
        "pallet_balances::pallet::Event",
        &[("T", None), ("I", None)],
        vec![
            var(
                "Endowed",
                0,
                vec![
                    field("account", p.account, "T::AccountId"),
                    field("free_balance", p.u64, "T::Balance"),
                ],
            ),
            var(
                "Transfer",
                2,
                vec![
                    field("from", p.account, "T::AccountId"),
                    field("to", p.account, "T::AccountId"),
                    field("amount", p.u64, "T::Balance"),
                ],
            ),
            var("Deposit", 7, who_amount("who")),
            var("Withdraw", 8, who_amount("who")),
            var("Burned", 11, who_amount("who")),
        ],
    );
    let error = t.unit_enum(
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
        index: 5,
        storage: None,
        calls: Some(calls),
        event: Some((event, "pallet_balances::Event<Runtime>")),
        error: Some((error, "pallet_balances::Error<Runtime>")),
        constants: vec![constant("ExistentialDeposit", p.u64, EXISTENTIAL_DEPOSIT)],
    }
}
