//! `SubtensorModule` (pallet 7): subnets, registration, axons, weights and commit-reveal, with
//! finney's call indices, storage names, hashers and defaults, and finney's full error table so
//! that every dispatch error the local chain raises decodes to the name finney would give it.

use parity_scale_codec::{Decode, Encode};

use super::pallet::{Pallet, index, pallet_enum, pallet_errors};
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, var};
use super::types::{AccountId32, BoundedBytes, Cx, H256, Meta};

/// Finney's `MAX_CRV3_COMMIT_SIZE_BYTES`: the bound on a timelocked commit.
pub const MAX_TIMELOCKED_COMMIT_BYTES: usize = 5000;

pallet_errors! {
    /// Finney's `pallet_subtensor::Error`, every variant in index order.
    SubtensorError of index::SUBTENSOR;
    RootNetworkDoesNotExist,
    InvalidIpType,
    InvalidIpAddress,
    InvalidPort,
    HotKeyNotRegisteredInSubNet,
    HotKeyAccountNotExists,
    HotKeyNotRegisteredInNetwork,
    NonAssociatedColdKey,
    NotEnoughStake,
    NotEnoughStakeToWithdraw,
    NotEnoughStakeToSetWeights,
    NotEnoughStakeToSetChildkeys,
    NotEnoughBalanceToStake,
    BalanceWithdrawalError,
    ZeroBalanceAfterWithdrawn,
    NeuronNoValidatorPermit,
    WeightVecNotEqualSize,
    DuplicateUids,
    UidVecContainInvalidOne,
    WeightVecLengthIsLow,
    TooManyRegistrationsThisBlock,
    HotKeyAlreadyRegisteredInSubNet,
    NewHotKeyIsSameWithOld,
    InvalidWorkBlock,
    InvalidDifficulty,
    InvalidSeal,
    MaxWeightExceeded,
    HotKeyAlreadyDelegate,
    SettingWeightsTooFast,
    IncorrectWeightVersionKey,
    ServingRateLimitExceeded,
    UidsLengthExceedUidsInSubNet,
    NetworkTxRateLimitExceeded,
    DelegateTxRateLimitExceeded,
    HotKeySetTxRateLimitExceeded,
    StakingRateLimitExceeded,
    SubNetRegistrationDisabled,
    TooManyRegistrationsThisInterval,
    TransactorAccountShouldBeHotKey,
    FaucetDisabled,
    NotSubnetOwner,
    RegistrationNotPermittedOnRootSubnet,
    StakeTooLowForRoot,
    AllNetworksInImmunity,
    NotEnoughBalanceToPaySwapHotKey,
    NotRootSubnet,
    CanNotSetRootNetworkWeights,
    NoNeuronIdAvailable,
    DelegateTakeTooLow,
    DelegateTakeTooHigh,
    NoWeightsCommitFound,
    InvalidRevealCommitHashNotMatch,
    CommitRevealEnabled,
    CommitRevealDisabled,
    LiquidAlphaDisabled,
    AlphaHighTooLow,
    AlphaLowOutOfRange,
    ColdKeyAlreadyAssociated,
    NotEnoughBalanceToPaySwapColdKey,
    InvalidChild,
    DuplicateChild,
    ProportionOverflow,
    TooManyChildren,
    TxRateLimitExceeded,
    ColdkeySwapAnnouncementNotFound,
    ColdkeySwapTooEarly,
    ColdkeySwapReannouncedTooEarly,
    AnnouncedColdkeyHashDoesNotMatch,
    ColdkeySwapAlreadyDisputed,
    NewColdKeyIsHotkey,
    InvalidChildkeyTake,
    TxChildkeyTakeRateLimitExceeded,
    InvalidIdentity,
    MechanismDoesNotExist,
    CannotUnstakeLock,
    SubnetNotExists,
    TooManyUnrevealedCommits,
    ExpiredWeightCommit,
    RevealTooEarly,
    InputLengthsUnequal,
    CommittingWeightsTooFast,
    AmountTooLow,
    InsufficientLiquidity,
    SlippageTooHigh,
    TransferDisallowed,
    ActivityCutoffTooLow,
    CallDisabled,
    FirstEmissionBlockNumberAlreadySet,
    NeedWaitingMoreBlocksToStarCall,
    NotEnoughAlphaOutToRecycle,
    CannotBurnOrRecycleOnRootSubnet,
    UnableToRecoverPublicKey,
    InvalidRecoveredPublicKey,
    SubtokenDisabled,
    HotKeySwapOnSubnetIntervalNotPassed,
    ZeroMaxStakeAmount,
    SameNetuid,
    InsufficientBalance,
    StakingOperationRateLimitExceeded,
    InvalidLeaseBeneficiary,
    LeaseCannotEndInThePast,
    LeaseNetuidNotFound,
    LeaseDoesNotExist,
    LeaseHasNoEndBlock,
    LeaseHasNotEnded,
    Overflow,
    BeneficiaryDoesNotOwnHotkey,
    ExpectedBeneficiaryOrigin,
    AdminActionProhibitedDuringWeightsWindow,
    SymbolDoesNotExist,
    SymbolAlreadyInUse,
    IncorrectCommitRevealVersion,
    RevealPeriodTooLarge,
    RevealPeriodTooSmall,
    InvalidValue,
    SubnetLimitReached,
    CannotAffordLockCost,
    EvmKeyAssociateRateLimitExceeded,
    SameAutoStakeHotkeyAlreadySet,
    UidMapCouldNotBeCleared,
    TrimmingWouldExceedMaxImmunePercentage,
    ChildParentInconsistency,
    InvalidNumRootClaim,
    InvalidRootClaimThreshold,
    InvalidSubnetNumber,
    TooManyUIDsPerMechanism,
    VotingPowerTrackingNotEnabled,
    InvalidVotingPowerEmaAlpha,
    PrecisionLoss,
    Deprecated,
    AddStakeBurnRateLimitExceeded,
    ColdkeySwapAnnounced,
    ColdkeySwapDisputed,
    ColdkeySwapClearTooEarly,
    DisabledTemporarily,
}

/// Finney's `pallet_subtensor::Error` variants, in index order.
pub const ERRORS: &[&str] = SubtensorError::NAMES;

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

pallet_enum! {
    /// `pallet_subtensor::pallet::Call`: the calls the local chain serves (`register_network`
    /// is described, not served).
    #[derive(Debug, Clone, PartialEq, Eq, Decode)]
    SubtensorCall = "pallet_subtensor::pallet::Call" ["T"] {
        SetWeights as "set_weights" = 0 {
            netuid: u16 as "NetUid",
            dests: Vec<u16> as "Vec<u16>",
            weights: Vec<u16> as "Vec<u16>",
            version_key: u64 as "u64",
        },
        AddStake as "add_stake" = 2 {
            hotkey: AccountId32 as "T::AccountId",
            netuid: u16 as "NetUid",
            amount_staked: u64 as "TaoBalance",
        },
        ServeAxon as "serve_axon" = 4 {
            netuid: u16 as "NetUid",
            version: u32 as "u32",
            ip: u128 as "u128",
            port: u16 as "u16",
            ip_type: u8 as "u8",
            protocol: u8 as "u8",
            placeholder1: u8 as "u8",
            placeholder2: u8 as "u8",
        },
        BurnedRegister as "burned_register" = 7 {
            netuid: u16 as "NetUid",
            hotkey: AccountId32 as "T::AccountId",
        },
        RegisterNetwork as "register_network" = 59 {
            hotkey: AccountId32 as "T::AccountId",
        },
        CommitWeights as "commit_weights" = 96 {
            netuid: u16 as "NetUid",
            commit_hash: H256 as "H256",
        },
        RevealWeights as "reveal_weights" = 97 {
            netuid: u16 as "NetUid",
            uids: Vec<u16> as "Vec<u16>",
            values: Vec<u16> as "Vec<u16>",
            salt: Vec<u16> as "Vec<u16>",
            version_key: u64 as "u64",
        },
        CommitTimelockedWeights as "commit_timelocked_weights" = 113 {
            netuid: u16 as "NetUid",
            commit: BoundedBytes as "BoundedVec<u8, ConstU32<MAX_CRV3_COMMIT_SIZE_BYTES>>",
            reveal_round: u64 as "u64",
            commit_reveal_version: u16 as "u16",
        },
    }
}

pallet_enum! {
    /// `pallet_subtensor::pallet::Event`: the events the local chain deposits.
    #[derive(Debug, Clone, PartialEq, Eq, Encode)]
    SubtensorEvent = "pallet_subtensor::pallet::Event" ["T"] {
        NetworkAdded = 0 (u16 as "NetUid", u16 as "u16"),
        StakeAdded = 2 (
            AccountId32 as "T::AccountId",
            AccountId32 as "T::AccountId",
            u64 as "TaoBalance",
            u64 as "AlphaBalance",
            u16 as "NetUid",
            u64 as "u64",
        ),
        WeightsSet = 5 (u16 as "NetUidStorageIndex", u16 as "u16"),
        NeuronRegistered = 6 (u16 as "NetUid", u16 as "u16", AccountId32 as "T::AccountId"),
        AxonServed = 28 (u16 as "NetUid", AccountId32 as "T::AccountId"),
        WeightsCommitted = 83 (AccountId32 as "T::AccountId", u16 as "NetUidStorageIndex", H256 as "H256"),
        WeightsRevealed = 84 (AccountId32 as "T::AccountId", u16 as "NetUidStorageIndex", H256 as "H256"),
        TimelockedWeightsCommitted = 105 (
            AccountId32 as "T::AccountId",
            u16 as "NetUidStorageIndex",
            H256 as "H256",
            u64 as "u64",
        ),
        TimelockedWeightsRevealed = 106 (u16 as "NetUidStorageIndex", AccountId32 as "T::AccountId"),
    }
}

/// The pallet (its storage is declared in `items.rs`).
pub(crate) fn pallet(t: &mut Types, p: &Prims) -> Pallet {
    let mut cx = Cx::new(t, p);
    let calls = SubtensorCall::describe(&mut cx);
    let event = SubtensorEvent::describe(&mut cx);
    let error =
        cx.t.unit_enum("pallet_subtensor::pallet::Error", &[("T", None)], ERRORS);
    Pallet {
        name: "SubtensorModule",
        index: index::SUBTENSOR,
        storage: None,
        calls: Some(calls),
        event: Some((event, "pallet_subtensor::Event<Runtime>")),
        error: Some((error, "pallet_subtensor::Error<Runtime>")),
        constants: vec![],
    }
}
