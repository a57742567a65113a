//! `SubtensorModule` (pallet 7): subnets, registration, axons, weights and commit-reveal, with
//! finney's call indices, storage names, hashers and defaults, and finney's full error table so
//! that every dispatch error the local chain raises decodes to the name finney would give it.

use scale_info::{Field, form::PortableForm};

use super::pallet::Pallet;
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, var};

/// Finney's `pallet_subtensor::Error` variants, in index order.
pub const ERRORS: &[&str] = &[
    "RootNetworkDoesNotExist",
    "InvalidIpType",
    "InvalidIpAddress",
    "InvalidPort",
    "HotKeyNotRegisteredInSubNet",
    "HotKeyAccountNotExists",
    "HotKeyNotRegisteredInNetwork",
    "NonAssociatedColdKey",
    "NotEnoughStake",
    "NotEnoughStakeToWithdraw",
    "NotEnoughStakeToSetWeights",
    "NotEnoughStakeToSetChildkeys",
    "NotEnoughBalanceToStake",
    "BalanceWithdrawalError",
    "ZeroBalanceAfterWithdrawn",
    "NeuronNoValidatorPermit",
    "WeightVecNotEqualSize",
    "DuplicateUids",
    "UidVecContainInvalidOne",
    "WeightVecLengthIsLow",
    "TooManyRegistrationsThisBlock",
    "HotKeyAlreadyRegisteredInSubNet",
    "NewHotKeyIsSameWithOld",
    "InvalidWorkBlock",
    "InvalidDifficulty",
    "InvalidSeal",
    "MaxWeightExceeded",
    "HotKeyAlreadyDelegate",
    "SettingWeightsTooFast",
    "IncorrectWeightVersionKey",
    "ServingRateLimitExceeded",
    "UidsLengthExceedUidsInSubNet",
    "NetworkTxRateLimitExceeded",
    "DelegateTxRateLimitExceeded",
    "HotKeySetTxRateLimitExceeded",
    "StakingRateLimitExceeded",
    "SubNetRegistrationDisabled",
    "TooManyRegistrationsThisInterval",
    "TransactorAccountShouldBeHotKey",
    "FaucetDisabled",
    "NotSubnetOwner",
    "RegistrationNotPermittedOnRootSubnet",
    "StakeTooLowForRoot",
    "AllNetworksInImmunity",
    "NotEnoughBalanceToPaySwapHotKey",
    "NotRootSubnet",
    "CanNotSetRootNetworkWeights",
    "NoNeuronIdAvailable",
    "DelegateTakeTooLow",
    "DelegateTakeTooHigh",
    "NoWeightsCommitFound",
    "InvalidRevealCommitHashNotMatch",
    "CommitRevealEnabled",
    "CommitRevealDisabled",
    "LiquidAlphaDisabled",
    "AlphaHighTooLow",
    "AlphaLowOutOfRange",
    "ColdKeyAlreadyAssociated",
    "NotEnoughBalanceToPaySwapColdKey",
    "InvalidChild",
    "DuplicateChild",
    "ProportionOverflow",
    "TooManyChildren",
    "TxRateLimitExceeded",
    "ColdkeySwapAnnouncementNotFound",
    "ColdkeySwapTooEarly",
    "ColdkeySwapReannouncedTooEarly",
    "AnnouncedColdkeyHashDoesNotMatch",
    "ColdkeySwapAlreadyDisputed",
    "NewColdKeyIsHotkey",
    "InvalidChildkeyTake",
    "TxChildkeyTakeRateLimitExceeded",
    "InvalidIdentity",
    "MechanismDoesNotExist",
    "CannotUnstakeLock",
    "SubnetNotExists",
    "TooManyUnrevealedCommits",
    "ExpiredWeightCommit",
    "RevealTooEarly",
    "InputLengthsUnequal",
    "CommittingWeightsTooFast",
    "AmountTooLow",
    "InsufficientLiquidity",
    "SlippageTooHigh",
    "TransferDisallowed",
    "ActivityCutoffTooLow",
    "CallDisabled",
    "FirstEmissionBlockNumberAlreadySet",
    "NeedWaitingMoreBlocksToStarCall",
    "NotEnoughAlphaOutToRecycle",
    "CannotBurnOrRecycleOnRootSubnet",
    "UnableToRecoverPublicKey",
    "InvalidRecoveredPublicKey",
    "SubtokenDisabled",
    "HotKeySwapOnSubnetIntervalNotPassed",
    "ZeroMaxStakeAmount",
    "SameNetuid",
    "InsufficientBalance",
    "StakingOperationRateLimitExceeded",
    "InvalidLeaseBeneficiary",
    "LeaseCannotEndInThePast",
    "LeaseNetuidNotFound",
    "LeaseDoesNotExist",
    "LeaseHasNoEndBlock",
    "LeaseHasNotEnded",
    "Overflow",
    "BeneficiaryDoesNotOwnHotkey",
    "ExpectedBeneficiaryOrigin",
    "AdminActionProhibitedDuringWeightsWindow",
    "SymbolDoesNotExist",
    "SymbolAlreadyInUse",
    "IncorrectCommitRevealVersion",
    "RevealPeriodTooLarge",
    "RevealPeriodTooSmall",
    "InvalidValue",
    "SubnetLimitReached",
    "CannotAffordLockCost",
    "EvmKeyAssociateRateLimitExceeded",
    "SameAutoStakeHotkeyAlreadySet",
    "UidMapCouldNotBeCleared",
    "TrimmingWouldExceedMaxImmunePercentage",
    "ChildParentInconsistency",
    "InvalidNumRootClaim",
    "InvalidRootClaimThreshold",
    "InvalidSubnetNumber",
    "TooManyUIDsPerMechanism",
    "VotingPowerTrackingNotEnabled",
    "InvalidVotingPowerEmaAlpha",
    "PrecisionLoss",
    "Deprecated",
    "AddStakeBurnRateLimitExceeded",
    "ColdkeySwapAnnounced",
    "ColdkeySwapDisputed",
    "ColdkeySwapClearTooEarly",
    "DisabledTemporarily",
];

/// Default `Tempo` of a subnet, in blocks.
pub const DEFAULT_TEMPO: u16 = 360;

/// Ids of the subtensor types other parts of the metadata (runtime APIs) reuse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubtensorTypes {
    /// `pallet_subtensor::pallet::AxonInfo`.
    pub axon_info: TypeId,
    /// `pallet_subtensor::pallet::PrometheusInfo`.
    pub prometheus_info: TypeId,
}

/// Registers `AxonInfo` and `PrometheusInfo`.
pub(crate) fn types(t: &mut Types, p: &Prims) -> SubtensorTypes {
    let mut net_fields = vec![
        field("block", p.u64, "u64"),
        field("version", p.u32, "u32"),
        field("ip", p.u128, "u128"),
        field("port", p.u16, "u16"),
        field("ip_type", p.u8, "u8"),
    ];
    let prometheus_info = t.composite(
        "pallet_subtensor::pallet::PrometheusInfo",
        &[],
        net_fields.clone(),
    );
    net_fields.extend([
        field("protocol", p.u8, "u8"),
        field("placeholder1", p.u8, "u8"),
        field("placeholder2", p.u8, "u8"),
    ]);
    let axon_info = t.composite("pallet_subtensor::pallet::AxonInfo", &[], net_fields);
    SubtensorTypes {
        axon_info,
        prometheus_info,
    }
}

fn netuid(p: &Prims) -> Field<PortableForm> {
    field("netuid", p.u16, "NetUid")
}

/// The pallet (its storage is declared in `items.rs`).
pub(crate) fn pallet(t: &mut Types, p: &Prims) -> Pallet {
    let calls = calls(t, p);
    let event = events(t, p);
    let error = t.unit_enum("pallet_subtensor::pallet::Error", &[("T", None)], ERRORS);
    Pallet {
        name: "SubtensorModule",
        index: 7,
        storage: None,
        calls: Some(calls),
        event: Some((event, "pallet_subtensor::Event<Runtime>")),
        error: Some((error, "pallet_subtensor::Error<Runtime>")),
        constants: vec![],
    }
}

fn calls(t: &mut Types, p: &Prims) -> TypeId {
    let hotkey = field("hotkey", p.account, "T::AccountId");
    let version_key = field("version_key", p.u64, "u64");
    t.variant(
        "pallet_subtensor::pallet::Call",
        &[("T", None)],
        vec![
            var(
                "set_weights",
                0,
                vec![
                    netuid(p),
                    field("dests", p.vec_u16, "Vec<u16>"),
                    field("weights", p.vec_u16, "Vec<u16>"),
                    version_key.clone(),
                ],
            ),
            var(
                "add_stake",
                2,
                vec![
                    hotkey.clone(),
                    netuid(p),
                    field("amount_staked", p.u64, "TaoBalance"),
                ],
            ),
            var(
                "serve_axon",
                4,
                vec![
                    netuid(p),
                    field("version", p.u32, "u32"),
                    field("ip", p.u128, "u128"),
                    field("port", p.u16, "u16"),
                    field("ip_type", p.u8, "u8"),
                    field("protocol", p.u8, "u8"),
                    field("placeholder1", p.u8, "u8"),
                    field("placeholder2", p.u8, "u8"),
                ],
            ),
            var("burned_register", 7, vec![netuid(p), hotkey.clone()]),
            var("register_network", 59, vec![hotkey]),
            var(
                "commit_weights",
                96,
                vec![netuid(p), field("commit_hash", p.h256, "H256")],
            ),
            var(
                "reveal_weights",
                97,
                vec![
                    netuid(p),
                    field("uids", p.vec_u16, "Vec<u16>"),
                    field("values", p.vec_u16, "Vec<u16>"),
                    field("salt", p.vec_u16, "Vec<u16>"),
                    version_key,
                ],
            ),
        ],
    )
}

fn events(t: &mut Types, p: &Prims) -> TypeId {
    let netuid = anon(p.u16, Some("NetUid"));
    let storage_index = anon(p.u16, Some("NetUidStorageIndex"));
    let account = anon(p.account, Some("T::AccountId"));
    t.variant(
        "pallet_subtensor::pallet::Event",
        &[("T", None)],
        vec![
            var(
                "NetworkAdded",
                0,
                vec![netuid.clone(), anon(p.u16, Some("u16"))],
            ),
            var(
                "StakeAdded",
                2,
                vec![
                    account.clone(),
                    account.clone(),
                    anon(p.u64, Some("TaoBalance")),
                    anon(p.u64, Some("AlphaBalance")),
                    netuid.clone(),
                    anon(p.u64, Some("u64")),
                ],
            ),
            var(
                "WeightsSet",
                5,
                vec![storage_index.clone(), anon(p.u16, Some("u16"))],
            ),
            var(
                "NeuronRegistered",
                6,
                vec![netuid.clone(), anon(p.u16, Some("u16")), account.clone()],
            ),
            var("AxonServed", 28, vec![netuid, account.clone()]),
            var(
                "WeightsCommitted",
                83,
                vec![
                    account.clone(),
                    storage_index.clone(),
                    anon(p.h256, Some("H256")),
                ],
            ),
            var(
                "WeightsRevealed",
                84,
                vec![account, storage_index, anon(p.h256, Some("H256"))],
            ),
        ],
    )
}
