//! The runtime APIs `state_call` reaches, by the names a node exports them under
//! (`<Trait>_<method>`), with SCALE-encoded arguments and results exactly as the metadata's
//! runtime API section describes them: `Core`, `Metadata`, `TaggedTransactionQueue`,
//! `AccountNonceApi`, `TransactionPaymentApi`, `NeuronInfoRuntimeApi` and `SubnetInfoRuntimeApi`
//! (its metagraph family in [`metagraph`]).
//!
//! Their output structures (`NeuronInfo`, `SubnetInfo`, `SubnetHyperparams`, `Metagraph`, …) are
//! each declared once with `output!`: field names, types and values, from which the metadata
//! describes them and their encoding is derived.

use std::sync::OnceLock;

use parity_scale_codec::{Compact, Decode, Encode};

use self::metagraph::Metagraph;
use super::extrinsic;
use super::items::SubtensorModule::{
    Active, ActivityCutoff, Axons, BlocksSinceLastStep, Burn, CommitRevealWeightsEnabled,
    Consensus, Dividends, Emission, ImmunityPeriod, Incentive, Keys, LastUpdate, MaxAllowedUids,
    MaxAllowedValidators, MaxRegistrationsPerBlock, MaxWeightsLimit, MinAllowedWeights,
    NetworksAdded, Owner, Rank, RevealPeriodEpochs, SubnetOwner, SubnetworkN, Tempo,
    TotalHotkeyAlpha, Trust, ValidatorPermit, Weights, WeightsSetRateLimit, WeightsVersionKey,
};
use super::metadata::apis;
use super::metadata::output::output;
use super::metadata::types::{AccountId32, I32F32, SubnetIdentityV3};
use super::metadata::{
    self, AUTHORING_VERSION, IMPL_VERSION, SPEC_NAME, SPEC_VERSION, SYSTEM_VERSION,
    TRANSACTION_VERSION,
};
use super::runtime::{Chain, decode_all};
use super::state::Overlay;
use super::subtensor::{EMISSION_PER_BLOCK, SERVING_RATE_LIMIT};
use super::values::{AccountId, AxonInfo, PrometheusInfo};

pub(crate) mod metagraph;

/// The output structures declared here and in [`metagraph`], as the metadata describes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served;

impl apis::Outputs for Served {
    type NeuronHead = NeuronHead;
    type NeuronWeights = NeuronWeights;
    type NeuronPruning = NeuronPruning;
    type SubnetInfo = SubnetInfo;
    type SubnetInfoV2Extra = SubnetInfoV2Extra;
    type SubnetHyperparams = SubnetHyperparams;
    type HyperparamsV2Extra = HyperparamsV2Extra;
    type Metagraph = Metagraph;
    type SelectiveExtra = metagraph::SelectiveExtra;
    type EmissionHistory = metagraph::EmissionHistory;
}

/// Why a runtime call failed (a node reports these as RPC error 4003).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// No such runtime API method.
    #[error("Client error: Execution failed: Exported method {0} is not found")]
    NotFound(String),
    /// The arguments do not decode as the method's inputs.
    #[error("Client error: Execution failed: Bad input data provided to {0}")]
    BadInput(String),
    /// The chain's own state is inconsistent (a uid below `SubnetworkN` without a hotkey): the
    /// answer would be short of its length prefix, so none is given.
    #[error("Client error: Execution failed: {0}: inconsistent state at netuid {1} uid {2}")]
    Inconsistent(String, u16, u16),
}

/// The encoded V16 metadata (`RuntimeMetadataPrefixed`), built once.
pub(crate) fn metadata_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(metadata::metadata_bytes)
}

/// The encoded metadata at `version` (one of [`metadata::METADATA_VERSIONS`]), each built once.
pub(crate) fn metadata_bytes_at(version: u32) -> Option<&'static [u8]> {
    static V14: OnceLock<Vec<u8>> = OnceLock::new();
    static V15: OnceLock<Vec<u8>> = OnceLock::new();
    let build = |v| metadata::metadata_bytes_at(v).unwrap_or_default();
    match version {
        14 => Some(V14.get_or_init(|| build(14)).as_slice()),
        15 => Some(V15.get_or_init(|| build(15)).as_slice()),
        16 => Some(metadata_bytes()),
        _ => None,
    }
}

/// What `state_getMetadata` and `Metadata_metadata` answer: V14, as a node does.
pub(crate) fn default_metadata_bytes() -> &'static [u8] {
    metadata_bytes_at(metadata::METADATA_VERSIONS[0]).unwrap_or_else(metadata_bytes)
}

/// `(blake2_64(trait name), version)` of every runtime API, from the metadata.
pub(crate) fn api_ids() -> &'static [([u8; 8], u32)] {
    static IDS: OnceLock<Vec<([u8; 8], u32)>> = OnceLock::new();
    IDS.get_or_init(|| match metadata::runtime_metadata().1 {
        frame_metadata::RuntimeMetadata::V16(m) => m
            .apis
            .iter()
            .map(|a| (sp_crypto_hashing::blake2_64(a.name.as_bytes()), a.version.0))
            .collect(),
        _ => Vec::new(),
    })
}

/// `sp_version::RuntimeVersion`, SCALE-encoded (what `Core_version` returns).
pub(crate) fn runtime_version() -> Vec<u8> {
    (
        SPEC_NAME,
        SPEC_NAME,
        AUTHORING_VERSION,
        SPEC_VERSION,
        IMPL_VERSION,
        api_ids().to_vec(),
        TRANSACTION_VERSION,
        SYSTEM_VERSION,
    )
        .encode()
}

/// Calls runtime API `method` with SCALE `args` at block `at`.
pub(crate) fn call(chain: &Chain, method: &str, args: &[u8], at: u32) -> Result<Vec<u8>, ApiError> {
    // `<Trait>_<method>`: the trait picks the API.
    let api = method.split_once('_').map_or(method, |(api, _)| api);
    match api {
        "Core" => core(method),
        "Metadata" => metadata_api(method, args),
        "AccountNonceApi" => account_nonce_api(chain, method, args, at),
        "TaggedTransactionQueue" => tagged_transaction_queue(chain, method, args),
        "TransactionPaymentApi" => transaction_payment_api(method, args),
        "NeuronInfoRuntimeApi" => neuron_info_api(chain, method, args, at),
        "SubnetInfoRuntimeApi" => subnet_info_api(chain, method, args, at),
        _ => Err(not_found(method)),
    }
}

/// What a runtime API without `method` answers.
fn not_found(method: &str) -> ApiError {
    ApiError::NotFound(method.to_owned())
}

/// `Core`: the runtime version.
fn core(method: &str) -> Result<Vec<u8>, ApiError> {
    Ok(match method {
        "Core_version" => runtime_version(),
        _ => return Err(not_found(method)),
    })
}

/// `Metadata`: the default metadata (V14, as a node gives), one version, and the versions served.
fn metadata_api(method: &str, args: &[u8]) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    Ok(match method {
        "Metadata_metadata" => default_metadata_bytes().to_vec().encode(),
        "Metadata_metadata_at_version" => {
            let v: u32 = decode_all(args).ok_or_else(bad)?;
            metadata_bytes_at(v).map(<[u8]>::to_vec).encode()
        }
        "Metadata_metadata_versions" => metadata::METADATA_VERSIONS.to_vec().encode(),
        _ => return Err(not_found(method)),
    })
}

/// `AccountNonceApi`: an account's nonce.
fn account_nonce_api(
    chain: &Chain,
    method: &str,
    args: &[u8],
    at: u32,
) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    Ok(match method {
        "AccountNonceApi_account_nonce" => {
            let who: AccountId = decode_all(args).ok_or_else(bad)?;
            super::items::System::Account::get(&chain.view(at), &who)
                .nonce
                .encode()
        }
        _ => return Err(not_found(method)),
    })
}

/// `TaggedTransactionQueue`: validating a transaction before it enters the pool.
fn tagged_transaction_queue(chain: &Chain, method: &str, args: &[u8]) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    Ok(match method {
        "TaggedTransactionQueue_validate_transaction" => {
            validate_transaction(chain, args).ok_or_else(bad)?
        }
        _ => return Err(not_found(method)),
    })
}

/// `TransactionPaymentApi`: fee queries (the local chain charges no fees).
fn transaction_payment_api(method: &str, args: &[u8]) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    Ok(match method {
        "TransactionPaymentApi_query_info" => {
            let (_uxt, _len): (Vec<u8>, u32) = decode_all(args).ok_or_else(bad)?;
            // weight { ref_time, proof_size }, class Normal, partial_fee: the local chain
            // charges no fees.
            (Compact(100_000_000u64), Compact(0u64), 0u8, 0u64).encode()
        }
        "TransactionPaymentApi_query_fee_details" => {
            let (_uxt, _len): (Vec<u8>, u32) = decode_all(args).ok_or_else(bad)?;
            (Some((0u64, 0u64, 0u64)), 0u64).encode()
        }
        _ => return Err(not_found(method)),
    })
}

/// `NeuronInfoRuntimeApi`: every neuron of a subnet, or one, full or lite.
fn neuron_info_api(chain: &Chain, method: &str, args: &[u8], at: u32) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    let view = chain.view(at);
    let s = &view;
    Ok(match method {
        "NeuronInfoRuntimeApi_get_neurons" | "NeuronInfoRuntimeApi_get_neurons_lite" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let full = method.ends_with("neurons");
            let n = if NetworksAdded::get(s, &netuid) {
                SubnetworkN::get(s, &netuid)
            } else {
                0
            };
            let mut out = Compact(u32::from(n)).encode();
            for uid in 0..n {
                let one = neuron(s, netuid, uid, full)
                    .ok_or_else(|| ApiError::Inconsistent(method.to_owned(), netuid, uid))?;
                out.extend(one);
            }
            out
        }
        "NeuronInfoRuntimeApi_get_neuron" | "NeuronInfoRuntimeApi_get_neuron_lite" => {
            let (netuid, uid): (u16, u16) = decode_all(args).ok_or_else(bad)?;
            let full = method.ends_with("neuron");
            option(neuron(s, netuid, uid, full))
        }
        _ => return Err(not_found(method)),
    })
}

/// `SubnetInfoRuntimeApi`: subnet info and hyperparameters (and their `_v2`s), the auto-stake
/// and pruning queries, and the metagraph family ([`metagraph_family`]).
fn subnet_info_api(chain: &Chain, method: &str, args: &[u8], at: u32) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    let view = chain.view(at);
    let s = &view;
    Ok(match method {
        "SubnetInfoRuntimeApi_get_subnet_info" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            SubnetInfo::new(s, netuid).encode()
        }
        "SubnetInfoRuntimeApi_get_subnets_info" => {
            no_args(args).ok_or_else(bad)?;
            let last = chain.netuids().iter().copied().max().unwrap_or(0);
            let infos: Vec<_> = (0..=last)
                .filter_map(|n| SubnetInfo::new(s, n))
                .map(Some)
                .collect();
            infos.encode()
        }
        "SubnetInfoRuntimeApi_get_subnet_hyperparams" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            SubnetHyperparams::new(s, netuid).encode()
        }
        "SubnetInfoRuntimeApi_get_subnet_info_v2" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            subnet_info_v2(s, netuid).encode()
        }
        "SubnetInfoRuntimeApi_get_subnets_info_v2" => {
            no_args(args).ok_or_else(bad)?;
            let infos: Vec<_> = subnets(chain, s)
                .into_iter()
                .map(|n| subnet_info_v2(s, n))
                .collect();
            infos.encode()
        }
        "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let v2 = SubnetHyperparams::new(s, netuid).zip(HyperparamsV2Extra::new());
            v2.encode()
        }
        "SubnetInfoRuntimeApi_get_coldkey_auto_stake_hotkey" => {
            // The local chain has no auto-stake destinations.
            let (_coldkey, _netuid): (AccountId, u16) = decode_all(args).ok_or_else(bad)?;
            None::<AccountId>.encode()
        }
        "SubnetInfoRuntimeApi_get_subnet_to_prune" => {
            // Subnets are never pruned on the local chain.
            no_args(args).ok_or_else(bad)?;
            None::<u16>.encode()
        }
        _ => return metagraph_family(chain, method, args, at),
    })
}

/// `SubnetInfoRuntimeApi`'s metagraph family (see [`metagraph`]): metagraphs and mechagraphs
/// (whole, selective, all subnets'), dynamic info and subnet state.
fn metagraph_family(
    chain: &Chain,
    method: &str,
    args: &[u8],
    at: u32,
) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    let view = chain.view(at);
    let s = &view;
    let block = u64::from(at);
    Ok(match method {
        "SubnetInfoRuntimeApi_get_metagraph" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            Metagraph::new(s, netuid, block).encode()
        }
        "SubnetInfoRuntimeApi_get_mechagraph" => {
            let (netuid, mecid): (u16, u8) = decode_all(args).ok_or_else(bad)?;
            let m = (mecid == 0).then(|| Metagraph::new(s, netuid, block));
            m.flatten().encode()
        }
        "SubnetInfoRuntimeApi_get_all_metagraphs" | "SubnetInfoRuntimeApi_get_all_mechagraphs" => {
            no_args(args).ok_or_else(bad)?;
            let all: Vec<_> = subnets(chain, s)
                .into_iter()
                .map(|n| Metagraph::new(s, n, block))
                .collect();
            all.encode()
        }
        "SubnetInfoRuntimeApi_get_selective_metagraph" => {
            let (netuid, indexes): (u16, Vec<u16>) = decode_all(args).ok_or_else(bad)?;
            option(metagraph::selective(s, netuid, block, &indexes))
        }
        "SubnetInfoRuntimeApi_get_selective_mechagraph" => {
            let (netuid, subid, indexes): (u16, u8, Vec<u16>) = decode_all(args).ok_or_else(bad)?;
            let m = (subid == 0).then(|| metagraph::selective(s, netuid, block, &indexes));
            option(m.flatten())
        }
        "SubnetInfoRuntimeApi_get_dynamic_info" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(metagraph::dynamic_info(s, netuid, block))
        }
        "SubnetInfoRuntimeApi_get_all_dynamic_info" => {
            no_args(args).ok_or_else(bad)?;
            options(
                subnets(chain, s)
                    .into_iter()
                    .map(|n| metagraph::dynamic_info(s, n, block)),
            )
        }
        "SubnetInfoRuntimeApi_get_subnet_state" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let netuids = subnets(chain, s);
            option(metagraph::subnet_state(s, netuid, block, &netuids))
        }
        _ => return Err(not_found(method)),
    })
}

/// `Option<T>` from an already-encoded `T`.
fn option(v: Option<Vec<u8>>) -> Vec<u8> {
    match v {
        Some(v) => [vec![1u8], v].concat(),
        None => vec![0u8],
    }
}

/// `Vec<Option<T>>` from already-encoded `T`s.
fn options(items: impl Iterator<Item = Option<Vec<u8>>>) -> Vec<u8> {
    let items: Vec<Vec<u8>> = items.map(option).collect();
    let mut out = Compact(u32::try_from(items.len()).unwrap_or(u32::MAX)).encode();
    out.extend(items.concat());
    out
}

/// `Some(())` when a method taking no arguments got none.
fn no_args(args: &[u8]) -> Option<()> {
    args.is_empty().then_some(())
}

/// The subnets that exist in `s`, ascending (what finney's `get_all_subnet_netuids` lists).
fn subnets(chain: &Chain, s: &Overlay<'_>) -> Vec<u16> {
    let mut all = chain.netuids().to_vec();
    all.sort_unstable();
    all.dedup();
    all.retain(|&n| NetworksAdded::get(s, &n));
    all
}

/// `SubnetInfov2`: `SubnetInfo` and what follows it.
fn subnet_info_v2(s: &Overlay<'_>, netuid: u16) -> Option<(SubnetInfo, SubnetInfoV2Extra)> {
    SubnetInfo::new(s, netuid).zip(SubnetInfoV2Extra::new())
}

/// `Result<ValidTransaction, TransactionValidityError>` for `(source, tx, block_hash)`.
fn validate_transaction(chain: &Chain, args: &[u8]) -> Option<Vec<u8>> {
    let mut input = args;
    let _source = u8::decode(&mut input).ok()?;
    // The extrinsic is `Compact(len) ++ body`; keep the prefix for the decoder.
    let len = Compact::<u32>::decode(&mut &input[..]).ok()?.0;
    let prefix = Compact(len).encoded_size();
    let total = prefix + usize::try_from(len).ok()?;
    let xt = input.get(..total)?;
    input = input.get(total..)?;
    let _block_hash = <[u8; 32]>::decode(&mut input).ok()?;
    if !input.is_empty() {
        return None;
    }
    let result = extrinsic::decode(xt).and_then(|x| chain.validate(&x, 0));
    Some(match result {
        Ok(v) => {
            let tag = |n: u32| (v.signer, n).encode();
            let requires = if v.requires_earlier {
                vec![tag(v.nonce - 1)]
            } else {
                Vec::new()
            };
            let mut out = vec![0u8];
            (v.priority, requires, vec![tag(v.nonce)], v.longevity, true).encode_to(&mut out);
            out
        }
        Err(e) => {
            let mut out = vec![1u8];
            // A runtime that cannot decode the extrinsic rejects it as a bad call.
            out.extend(e.validity_error().unwrap_or(vec![0, 0]));
            out
        }
    })
}

/// `NeuronInfo` (`full`) or `NeuronInfoLite` of `uid` on `netuid`, SCALE-encoded.
fn neuron(s: &Overlay<'_>, netuid: u16, uid: u16, full: bool) -> Option<Vec<u8>> {
    let head = NeuronHead::new(s, netuid, uid)?;
    let pruning = NeuronPruning::new()?;
    Some(if full {
        (head, NeuronWeights::new(s, netuid, uid)?, pruning).encode()
    } else {
        (head, pruning).encode()
    })
}

/// Entry `i` of a per-uid vector (the default where the vector is shorter).
fn entry<T: Default + Copy>(v: Vec<T>, i: usize) -> T {
    v.get(i).copied().unwrap_or_default()
}

output! {
    /// The fields `NeuronInfo` and `NeuronInfoLite` begin with, for `uid` on `netuid`.
    pub(crate) struct NeuronHead(s: &Overlay<'_>, netuid: u16, uid: u16) {
        if !NetworksAdded::get(s, &netuid) || uid >= SubnetworkN::get(s, &netuid) {
            return None;
        }
        let key = Keys::try_get(s, &netuid, &uid)?;
        let owner = Owner::try_get(s, &key).unwrap_or([0; 32]);
        let i = usize::from(uid);
    } {
        hotkey: AccountId32 as "AccountId" = key,
        coldkey: AccountId32 as "AccountId" = owner,
        uid: Compact<u16> as "Compact<u16>" = Compact(uid),
        netuid: Compact<u16> as "Compact<NetUid>" = Compact(netuid),
        active: bool as "bool" = entry(Active::get(s, &netuid), i),
        axon_info: AxonInfo as "AxonInfo" = Axons::get(s, &netuid, &key).unwrap_or_default(),
        // The local chain serves no Prometheus endpoints.
        prometheus_info: PrometheusInfo as "PrometheusInfo" = PrometheusInfo::default(),
        stake: Vec<(AccountId32, Compact<u64>)> as "Vec<(AccountId, Compact<AlphaBalance>)>" =
            vec![(owner, Compact(TotalHotkeyAlpha::get(s, &key, &netuid)))],
        rank: Compact<u16> as "Compact<u16>" = Compact(entry(Rank::get(s, &netuid), i)),
        emission: Compact<u64> as "Compact<AlphaBalance>" =
            Compact(entry(Emission::get(s, &netuid), i)),
        incentive: Compact<u16> as "Compact<u16>" = Compact(entry(Incentive::get(s, &netuid), i)),
        consensus: Compact<u16> as "Compact<u16>" = Compact(entry(Consensus::get(s, &netuid), i)),
        trust: Compact<u16> as "Compact<u16>" = Compact(entry(Trust::get(s, &netuid), i)),
        // The local emission has no validator trust.
        validator_trust: Compact<u16> as "Compact<u16>" = Compact(0),
        dividends: Compact<u16> as "Compact<u16>" = Compact(entry(Dividends::get(s, &netuid), i)),
        last_update: Compact<u64> as "Compact<u64>" =
            Compact(entry(LastUpdate::get(s, &netuid), i)),
        validator_permit: bool as "bool" = entry(ValidatorPermit::get(s, &netuid), i),
    }
}

output! {
    /// The fields only `NeuronInfo` has, after [`NeuronHead`]'s: `uid`'s weights and bonds.
    pub(crate) struct NeuronWeights(s: &Overlay<'_>, netuid: u16, uid: u16) {
        let weights = Weights::get(s, &netuid, &uid);
    } {
        weights: Vec<(Compact<u16>, Compact<u16>)> as "Vec<(Compact<u16>, Compact<u16>)>" =
            weights.into_iter().map(|(u, w)| (Compact(u), Compact(w))).collect(),
        // The local chain keeps no bonds.
        bonds: Vec<(Compact<u16>, Compact<u16>)> as "Vec<(Compact<u16>, Compact<u16>)>" =
            Vec::new(),
    }
}

output! {
    /// The field `NeuronInfo` and `NeuronInfoLite` end with.
    pub(crate) struct NeuronPruning() {} {
        pruning_score: Compact<u16> as "Compact<u16>" = Compact(0),
    }
}

output! {
    /// `SubnetInfo` of `netuid` (`SubnetInfov2` names `emission_values` `emission_value`).
    pub(crate) struct SubnetInfo(s: &Overlay<'_>, netuid: u16) {
        let hp = SubnetHyperparams::new(s, netuid)?;
    } {
        netuid: Compact<u16> as "Compact<NetUid>" = Compact(netuid),
        rho: Compact<u16> as "Compact<u16>" = hp.rho,
        kappa: Compact<u16> as "Compact<u16>" = hp.kappa,
        difficulty: Compact<u64> as "Compact<u64>" = hp.difficulty,
        immunity_period: Compact<u16> as "Compact<u16>" = hp.immunity_period,
        max_allowed_validators: Compact<u16> as "Compact<u16>" = hp.max_validators,
        min_allowed_weights: Compact<u16> as "Compact<u16>" = hp.min_allowed_weights,
        max_weights_limit: Compact<u16> as "Compact<u16>" = hp.max_weights_limit,
        scaling_law_power: Compact<u16> as "Compact<u16>" = Compact(50),
        subnetwork_n: Compact<u16> as "Compact<u16>" = Compact(SubnetworkN::get(s, &netuid)),
        max_allowed_uids: Compact<u16> as "Compact<u16>" = Compact(MaxAllowedUids::get(s, &netuid)),
        blocks_since_last_step: Compact<u64> as "Compact<u64>" = Compact(BlocksSinceLastStep::get(s, &netuid)),
        tempo: Compact<u16> as "Compact<u16>" = hp.tempo,
        network_modality: Compact<u16> as "Compact<u16>" = Compact(0),
        network_connect: Vec<[u16; 2]> as "Vec<[u16; 2]>" = Vec::new(),
        emission_values: Compact<u64> as "Compact<u64>" = Compact(EMISSION_PER_BLOCK),
        burn: Compact<u64> as "Compact<TaoBalance>" = Compact(Burn::get(s, &netuid)),
        owner: AccountId32 as "AccountId" = SubnetOwner::get(s, &netuid),
    }
}

output! {
    /// The field `SubnetInfov2` has after `SubnetInfo`'s.
    pub(crate) struct SubnetInfoV2Extra() {} {
        // The local chain has no subnet identities.
        identity: Option<SubnetIdentityV3> as "Option<SubnetIdentityV3>" = None,
    }
}

output! {
    /// `SubnetHyperparams` of `netuid`. What the local chain has no storage for is a constant:
    /// finney's default, or what the local chain's behaviour amounts to.
    pub(crate) struct SubnetHyperparams(s: &Overlay<'_>, netuid: u16) {
        if !NetworksAdded::get(s, &netuid) {
            return None;
        }
    } {
        rho: Compact<u16> as "Compact<u16>" = Compact(0),
        kappa: Compact<u16> as "Compact<u16>" = Compact(32_767),
        immunity_period: Compact<u16> as "Compact<u16>" = Compact(ImmunityPeriod::get(s, &netuid)),
        min_allowed_weights: Compact<u16> as "Compact<u16>" = Compact(MinAllowedWeights::get(s, &netuid)),
        max_weights_limit: Compact<u16> as "Compact<u16>" = Compact(MaxWeightsLimit::get(s, &netuid)),
        tempo: Compact<u16> as "Compact<u16>" = Compact(Tempo::get(s, &netuid)),
        min_difficulty: Compact<u64> as "Compact<u64>" = Compact(0),
        max_difficulty: Compact<u64> as "Compact<u64>" = Compact(u64::MAX),
        weights_version: Compact<u64> as "Compact<u64>" = Compact(WeightsVersionKey::get(s, &netuid)),
        weights_rate_limit: Compact<u64> as "Compact<u64>" = Compact(WeightsSetRateLimit::get(s, &netuid)),
        adjustment_interval: Compact<u16> as "Compact<u16>" = Compact(100),
        activity_cutoff: Compact<u16> as "Compact<u16>" = Compact(ActivityCutoff::get(s, &netuid)),
        registration_allowed: bool as "bool" = true,
        target_regs_per_interval: Compact<u16> as "Compact<u16>" = Compact(2),
        // rao
        min_burn: Compact<u64> as "Compact<TaoBalance>" = Compact(500_000),
        max_burn: Compact<u64> as "Compact<TaoBalance>" = Compact(100_000_000_000),
        bonds_moving_avg: Compact<u64> as "Compact<u64>" = Compact(900_000),
        max_regs_per_block: Compact<u16> as "Compact<u16>" = Compact(MaxRegistrationsPerBlock::get(s, &netuid)),
        serving_rate_limit: Compact<u64> as "Compact<u64>" = Compact(SERVING_RATE_LIMIT),
        max_validators: Compact<u16> as "Compact<u16>" = Compact(MaxAllowedValidators::get(s, &netuid)),
        adjustment_alpha: Compact<u64> as "Compact<u64>" = Compact(0),
        // No proof-of-work registration.
        difficulty: Compact<u64> as "Compact<u64>" = Compact(10_000_000),
        commit_reveal_period: Compact<u64> as "Compact<u64>" = Compact(RevealPeriodEpochs::get(s, &netuid)),
        commit_reveal_weights_enabled: bool as "bool" = CommitRevealWeightsEnabled::get(s, &netuid),
        alpha_high: Compact<u16> as "Compact<u16>" = Compact(58_982),
        alpha_low: Compact<u16> as "Compact<u16>" = Compact(45_875),
        liquid_alpha_enabled: bool as "bool" = false,
    }
}

output! {
    /// The fields `SubnetHyperparamsV2` has after `SubnetHyperparams`'.
    pub(crate) struct HyperparamsV2Extra() {} {
        // 1000.0
        alpha_sigmoid_steepness: I32F32 as "I32F32" = I32F32 { bits: 1000 << 32 },
        // Yuma 3 is off.
        yuma_version: Compact<u16> as "Compact<u16>" = Compact(2),
        subnet_is_active: bool as "bool" = true,
        transfers_enabled: bool as "bool" = true,
        bonds_reset_enabled: bool as "bool" = false,
        user_liquidity_enabled: bool as "bool" = false,
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::runtime::{GenesisConfig, SubnetParamsConfig};

    /// Every method `call` answers.
    const METHODS: [&str; 29] = [
        "AccountNonceApi_account_nonce",
        "Core_version",
        "Metadata_metadata",
        "Metadata_metadata_at_version",
        "Metadata_metadata_versions",
        "NeuronInfoRuntimeApi_get_neuron",
        "NeuronInfoRuntimeApi_get_neuron_lite",
        "NeuronInfoRuntimeApi_get_neurons",
        "NeuronInfoRuntimeApi_get_neurons_lite",
        "SubnetInfoRuntimeApi_get_all_dynamic_info",
        "SubnetInfoRuntimeApi_get_all_mechagraphs",
        "SubnetInfoRuntimeApi_get_all_metagraphs",
        "SubnetInfoRuntimeApi_get_coldkey_auto_stake_hotkey",
        "SubnetInfoRuntimeApi_get_dynamic_info",
        "SubnetInfoRuntimeApi_get_mechagraph",
        "SubnetInfoRuntimeApi_get_metagraph",
        "SubnetInfoRuntimeApi_get_selective_mechagraph",
        "SubnetInfoRuntimeApi_get_selective_metagraph",
        "SubnetInfoRuntimeApi_get_subnet_hyperparams",
        "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2",
        "SubnetInfoRuntimeApi_get_subnet_info",
        "SubnetInfoRuntimeApi_get_subnet_info_v2",
        "SubnetInfoRuntimeApi_get_subnet_state",
        "SubnetInfoRuntimeApi_get_subnet_to_prune",
        "SubnetInfoRuntimeApi_get_subnets_info",
        "SubnetInfoRuntimeApi_get_subnets_info_v2",
        "TaggedTransactionQueue_validate_transaction",
        "TransactionPaymentApi_query_fee_details",
        "TransactionPaymentApi_query_info",
    ];

    fn chain() -> &'static Chain {
        static CHAIN: OnceLock<Chain> = OnceLock::new();
        CHAIN.get_or_init(|| {
            Chain::genesis(&GenesisConfig {
                netuids: vec![1, 9],
                owner: None,
                funded: vec![],
                subnet: SubnetParamsConfig {
                    tempo: 10,
                    weights_rate_limit: 1,
                    commit_reveal: true,
                    reveal_period: 1,
                    burn: 1,
                    weights_version_key: 0,
                },
                dev_accounts: 2,
                dev_balance: 1_000_000,
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any method with any arguments: never a panic; an answer that does not depend on the
        /// size of the arguments (only metadata is large); unknown methods are `NotFound`.
        #[test]
        fn any_arguments_never_panic(
            method in prop::sample::select(METHODS.to_vec()),
            args in proptest::collection::vec(any::<u8>(), 0..160),
            at in 0u32..3,
        ) {
            match call(chain(), method, &args, at) {
                Ok(out) if method.starts_with("Metadata_metadata") && method != "Metadata_metadata_versions" => {
                    prop_assert!(!out.is_empty());
                }
                Ok(out) => prop_assert!(out.len() <= 64 * 1024, "{} answered {} bytes", method, out.len()),
                Err(ApiError::NotFound(m)) => prop_assert!(false, "{} is served", m),
                Err(_) => {}
            }
            let unknown = format!("{method}X");
            prop_assert!(matches!(call(chain(), &unknown, &args, at), Err(ApiError::NotFound(_))));
        }

        /// A subnet's methods accept its netuid and refuse the same arguments with anything
        /// appended: what is accepted is exactly one encoding.
        #[test]
        fn a_netuid_is_accepted_and_nothing_after_it(
            method in prop::sample::select(vec![
                "NeuronInfoRuntimeApi_get_neurons",
                "NeuronInfoRuntimeApi_get_neurons_lite",
                "SubnetInfoRuntimeApi_get_subnet_info",
                "SubnetInfoRuntimeApi_get_subnet_hyperparams",
                "SubnetInfoRuntimeApi_get_metagraph",
                "SubnetInfoRuntimeApi_get_dynamic_info",
                "SubnetInfoRuntimeApi_get_subnet_state",
            ]),
            netuid in prop_oneof![Just(1u16), Just(9), any::<u16>()],
            extra in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let args = netuid.encode();
            prop_assert!(call(chain(), method, &args, 0).is_ok(), "{} refused netuid {}", method, netuid);
            let longer = [args, extra].concat();
            prop_assert!(matches!(call(chain(), method, &longer, 0), Err(ApiError::BadInput(_))));
        }
    }
}
