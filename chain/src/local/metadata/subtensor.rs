//! `SubtensorModule` (pallet 7): subnets, registration, axons, weights and commit-reveal, with
//! finney's call indices, storage names, hashers and defaults, and finney's full error table so
//! that every dispatch error the local chain raises decodes to the name finney would give it.

use frame_metadata::v16::StorageHasher::{Blake2_128Concat, Identity, Twox64Concat};
use scale_info::{Field, form::PortableForm};

use super::pallet::{Pallet, Storage};
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

/// The pallet.
pub(crate) fn pallet(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> Pallet {
    let calls = calls(t, p);
    let event = events(t, p);
    let error = t.unit_enum("pallet_subtensor::pallet::Error", &[("T", None)], ERRORS);
    Pallet {
        name: "SubtensorModule",
        index: 7,
        storage: Some(storage(t, p, st)),
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

fn storage(
    t: &mut Types,
    p: &Prims,
    st: &SubtensorTypes,
) -> frame_metadata::v16::PalletStorageMetadata<PortableForm> {
    let zero_account = [0u8; 32];
    let accounts = t.seq(p.account);
    let vec_bool = t.seq(p.bool);
    let vec_u64 = t.seq(p.u64);
    let pair_u16 = t.tuple(&[p.u16, p.u16]);
    let weights = t.seq(pair_u16);
    let commit = t.tuple(&[p.h256, p.u64, p.u64, p.u64]);
    let commits = t.seq(commit);
    let net = [(Identity, p.u16)];
    let net_uid = [(Identity, p.u16), (Identity, p.u16)];
    let net_hotkey = [(Identity, p.u16), (Blake2_128Concat, p.account)];
    let empty: Vec<u8> = Vec::new();

    let mut s = Storage::new("SubtensorModule");
    s.map(
        t,
        "Owner",
        &[(Blake2_128Concat, p.account)],
        p.account,
        zero_account,
    )
    .map(
        t,
        "StakingHotkeys",
        &[(Blake2_128Concat, p.account)],
        accounts,
        empty.clone(),
    )
    .map(
        t,
        "OwnedHotkeys",
        &[(Blake2_128Concat, p.account)],
        accounts,
        empty.clone(),
    )
    .map(
        t,
        "TotalHotkeyAlpha",
        &[(Blake2_128Concat, p.account), (Identity, p.u16)],
        p.u64,
        0u64,
    )
    .map(
        t,
        "TokenSymbol",
        &net,
        p.bytes,
        "\u{1D70F}".as_bytes().to_vec(),
    )
    .map(t, "MaxRegistrationsPerBlock", &net, p.u16, 1u16)
    .value("TotalNetworks", p.u16, 0u16)
    .map(t, "Tempo", &net, p.u16, DEFAULT_TEMPO)
    .map(t, "SubnetworkN", &net, p.u16, 0u16)
    .map(t, "NetworksAdded", &net, p.bool, false)
    .map(t, "NetworkRegisteredAt", &net, p.u64, 0u64)
    .map(t, "BlocksSinceLastStep", &net, p.u64, 0u64)
    .map(t, "SubnetOwner", &net, p.account, zero_account)
    .map(t, "Kappa", &net, p.u16, 32_767u16)
    .map(t, "MaxAllowedUids", &net, p.u16, 256u16)
    .map(t, "ImmunityPeriod", &net, p.u16, 4096u16)
    .map(t, "ActivityCutoff", &net, p.u16, 5000u16)
    .map(t, "MaxWeightsLimit", &net, p.u16, u16::MAX)
    .map(t, "WeightsVersionKey", &net, p.u64, 0u64)
    .map(t, "MinAllowedWeights", &net, p.u16, 1024u16)
    .map(t, "MaxAllowedValidators", &net, p.u16, 128u16)
    .map(t, "AdjustmentInterval", &net, p.u16, 100u16)
    .map(t, "WeightsSetRateLimit", &net, p.u64, 100u64)
    .map(t, "TargetRegistrationsPerInterval", &net, p.u16, 2u16)
    .map(t, "CommitRevealWeightsEnabled", &net, p.bool, true)
    .map(t, "Burn", &net, p.u64, 100_000_000u64)
    .map(t, "Difficulty", &net, p.u64, 10_000_000u64)
    .map(t, "MinBurn", &net, p.u64, 500_000u64)
    .map(t, "MaxBurn", &net, p.u64, 100_000_000_000u64)
    .map(t, "RegistrationsThisBlock", &net, p.u16, 0u16)
    .optional_map(t, "Uids", &net_hotkey, p.u16)
    .map(t, "Keys", &net_uid, p.account, zero_account)
    .map(t, "Active", &net, vec_bool, empty.clone())
    .map(t, "Rank", &net, p.vec_u16, empty.clone())
    .map(t, "Trust", &net, p.vec_u16, empty.clone())
    .map(t, "Consensus", &net, p.vec_u16, empty.clone())
    .map(t, "Incentive", &net, p.vec_u16, empty.clone())
    .map(t, "Dividends", &net, p.vec_u16, empty.clone())
    .map(t, "Emission", &net, vec_u64, empty.clone())
    .map(t, "LastUpdate", &net, vec_u64, empty.clone())
    .map(t, "ValidatorPermit", &net, vec_bool, empty.clone())
    .map(t, "Weights", &net_uid, weights, empty)
    .map(t, "BlockAtRegistration", &net_uid, p.u64, 0u64)
    .optional_map(t, "Axons", &net_hotkey, st.axon_info)
    .optional_map(t, "Prometheus", &net_hotkey, st.prometheus_info)
    .map(
        t,
        "TransactionKeyLastBlock",
        &[
            (Blake2_128Concat, p.account),
            (Identity, p.u16),
            (Identity, p.u16),
        ],
        p.u64,
        0u64,
    )
    .map(t, "LastTxBlock", &[(Identity, p.account)], p.u64, 0u64)
    .optional_map(
        t,
        "WeightCommits",
        &[(Twox64Concat, p.u16), (Twox64Concat, p.account)],
        commits,
    )
    .map(
        t,
        "RevealPeriodEpochs",
        &[(Twox64Concat, p.u16)],
        p.u64,
        1u64,
    );
    s.finish()
}
