//! The runtime APIs `state_call` reaches, by the names a node exports them under
//! (`<Trait>_<method>`), with SCALE-encoded arguments and results exactly as the metadata's
//! runtime API section describes them: `Core`, `Metadata`, `TaggedTransactionQueue`,
//! `AccountNonceApi`, `TransactionPaymentApi`, `NeuronInfoRuntimeApi` and `SubnetInfoRuntimeApi`
//! (its metagraph family in [`metagraph`]).

use std::sync::OnceLock;

use parity_scale_codec::{Compact, Decode, Encode};

use super::dispatch::AccountId;
use super::extrinsic;
use super::metadata::{
    self, AUTHORING_VERSION, IMPL_VERSION, SPEC_NAME, SPEC_VERSION, SYSTEM_VERSION,
    TRANSACTION_VERSION,
};
use super::runtime::{Chain, decode_all};
use super::subtensor::{AxonInfo, SERVING_RATE_LIMIT, Sub};

mod metagraph;

// Hyperparameters the local chain has no storage for, reported as these constants (finney's
// defaults, or what the local chain's behaviour amounts to).
/// `Rho`.
const RHO: u16 = 0;
/// `Kappa`.
const KAPPA: u16 = 32_767;
/// `Difficulty` (no proof-of-work registration).
const DIFFICULTY: u64 = 10_000_000;
/// `MinDifficulty`.
const MIN_DIFFICULTY: u64 = 0;
/// `MaxDifficulty`.
const MAX_DIFFICULTY: u64 = u64::MAX;
/// `AdjustmentInterval`.
const ADJUSTMENT_INTERVAL: u16 = 100;
/// `AdjustmentAlpha`.
const ADJUSTMENT_ALPHA: u64 = 0;
/// `NetworkRegistrationAllowed`.
const REGISTRATION_ALLOWED: bool = true;
/// `TargetRegistrationsPerInterval`.
const TARGET_REGS_PER_INTERVAL: u16 = 2;
/// `MinBurn`, rao.
const MIN_BURN: u64 = 500_000;
/// `MaxBurn`, rao.
const MAX_BURN: u64 = 100_000_000_000;
/// `BondsMovingAverage`.
const BONDS_MOVING_AVG: u64 = 900_000;
/// `AlphaValues` high.
const ALPHA_HIGH: u16 = 58_982;
/// `AlphaValues` low.
const ALPHA_LOW: u16 = 45_875;
/// `LiquidAlphaOn`.
const LIQUID_ALPHA: bool = false;
/// `AlphaSigmoidSteepness` as `I32F32` bits (1000.0).
const ALPHA_SIGMOID_STEEPNESS_BITS: i64 = 1000 << 32;
/// The Yuma version `get_subnet_hyperparams_v2` reports (Yuma 3 is off).
const YUMA_VERSION: u16 = 2;

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
    let mut view = chain.view(at);
    Ok(match method {
        "NeuronInfoRuntimeApi_get_neurons" | "NeuronInfoRuntimeApi_get_neurons_lite" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let full = method.ends_with("neurons");
            let mut s = Sub(&mut view);
            let n = if s.added(netuid) { s.n(netuid) } else { 0 };
            let mut out = Compact(u32::from(n)).encode();
            for uid in 0..n {
                let one = neuron(&mut s, netuid, uid, full)
                    .ok_or_else(|| ApiError::Inconsistent(method.to_owned(), netuid, uid))?;
                out.extend(one);
            }
            out
        }
        "NeuronInfoRuntimeApi_get_neuron" | "NeuronInfoRuntimeApi_get_neuron_lite" => {
            let (netuid, uid): (u16, u16) = decode_all(args).ok_or_else(bad)?;
            let full = method.ends_with("neuron");
            match neuron(&mut Sub(&mut view), netuid, uid, full) {
                Some(n) => [vec![1u8], n].concat(),
                None => vec![0u8],
            }
        }
        _ => return Err(not_found(method)),
    })
}

/// `SubnetInfoRuntimeApi`: subnet info and hyperparameters (and their `_v2`s), the auto-stake
/// and pruning queries, and the metagraph family ([`metagraph_family`]).
fn subnet_info_api(chain: &Chain, method: &str, args: &[u8], at: u32) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::BadInput(method.to_owned());
    let mut view = chain.view(at);
    Ok(match method {
        "SubnetInfoRuntimeApi_get_subnet_info" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(subnet_info(&mut Sub(&mut view), netuid))
        }
        "SubnetInfoRuntimeApi_get_subnets_info" => {
            if !args.is_empty() {
                return Err(bad());
            }
            let mut s = Sub(&mut view);
            let infos: Vec<Vec<u8>> = (0..=chain.netuids().iter().copied().max().unwrap_or(0))
                .filter_map(|n| subnet_info(&mut s, n))
                .collect();
            let mut out = Compact(u32::try_from(infos.len()).unwrap_or(0)).encode();
            for info in infos {
                out.push(1);
                out.extend(info);
            }
            out
        }
        "SubnetInfoRuntimeApi_get_subnet_hyperparams" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(hyperparams(&mut Sub(&mut view), netuid))
        }
        "SubnetInfoRuntimeApi_get_subnet_info_v2" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(subnet_info_v2(&mut Sub(&mut view), netuid))
        }
        "SubnetInfoRuntimeApi_get_subnets_info_v2" => {
            no_args(args).ok_or_else(bad)?;
            let mut s = Sub(&mut view);
            options(
                subnets(chain, &s)
                    .into_iter()
                    .map(|n| subnet_info_v2(&mut s, n)),
            )
        }
        "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(hyperparams_v2(&mut Sub(&mut view), netuid))
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
    let mut view = chain.view(at);
    Ok(match method {
        "SubnetInfoRuntimeApi_get_metagraph" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(metagraph_of(&mut Sub(&mut view), netuid, at).map(|m| m.metagraph()))
        }
        "SubnetInfoRuntimeApi_get_mechagraph" => {
            let (netuid, mecid): (u16, u8) = decode_all(args).ok_or_else(bad)?;
            let m = (mecid == 0)
                .then(|| metagraph_of(&mut Sub(&mut view), netuid, at))
                .flatten();
            option(m.map(|m| m.metagraph()))
        }
        "SubnetInfoRuntimeApi_get_all_metagraphs" | "SubnetInfoRuntimeApi_get_all_mechagraphs" => {
            no_args(args).ok_or_else(bad)?;
            let mut s = Sub(&mut view);
            options(
                subnets(chain, &s)
                    .into_iter()
                    .map(|n| metagraph_of(&mut s, n, at).map(|m| m.metagraph())),
            )
        }
        "SubnetInfoRuntimeApi_get_selective_metagraph" => {
            let (netuid, indexes): (u16, Vec<u16>) = decode_all(args).ok_or_else(bad)?;
            option(metagraph_of(&mut Sub(&mut view), netuid, at).map(|m| m.selective(&indexes)))
        }
        "SubnetInfoRuntimeApi_get_selective_mechagraph" => {
            let (netuid, subid, indexes): (u16, u8, Vec<u16>) = decode_all(args).ok_or_else(bad)?;
            let m = (subid == 0)
                .then(|| metagraph_of(&mut Sub(&mut view), netuid, at))
                .flatten();
            option(m.map(|m| m.selective(&indexes)))
        }
        "SubnetInfoRuntimeApi_get_dynamic_info" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            option(metagraph_of(&mut Sub(&mut view), netuid, at).map(|m| m.dynamic_info()))
        }
        "SubnetInfoRuntimeApi_get_all_dynamic_info" => {
            no_args(args).ok_or_else(bad)?;
            let mut s = Sub(&mut view);
            options(
                subnets(chain, &s)
                    .into_iter()
                    .map(|n| metagraph_of(&mut s, n, at).map(|m| m.dynamic_info())),
            )
        }
        "SubnetInfoRuntimeApi_get_subnet_state" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let mut s = Sub(&mut view);
            let netuids = subnets(chain, &s);
            let history = metagraph::emission_history(&mut s, netuid, &netuids);
            option(metagraph_of(&mut s, netuid, at).map(|m| m.subnet_state(&history)))
        }
        _ => return Err(not_found(method)),
    })
}

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
fn subnets(chain: &Chain, s: &Sub<'_, '_>) -> Vec<u16> {
    let mut all = chain.netuids().to_vec();
    all.sort_unstable();
    all.dedup();
    all.retain(|&n| s.added(n));
    all
}

/// The metagraph of `netuid` at block `at`.
fn metagraph_of(s: &mut Sub<'_, '_>, netuid: u16, at: u32) -> Option<metagraph::Fields> {
    metagraph::Fields::build(s, netuid, u64::from(at))
}

/// `SubnetInfov2`, SCALE-encoded: `SubnetInfo` and an identity (none on the local chain).
fn subnet_info_v2(s: &mut Sub<'_, '_>, netuid: u16) -> Option<Vec<u8>> {
    let mut out = subnet_info(s, netuid)?;
    None::<()>.encode_to(&mut out);
    Some(out)
}

/// `SubnetHyperparamsV2`, SCALE-encoded: `SubnetHyperparams` and six more.
fn hyperparams_v2(s: &mut Sub<'_, '_>, netuid: u16) -> Option<Vec<u8>> {
    let mut out = hyperparams(s, netuid)?;
    (
        ALPHA_SIGMOID_STEEPNESS_BITS,
        Compact(YUMA_VERSION),
        // subnet_is_active, transfers_enabled, bonds_reset_enabled, user_liquidity_enabled
        true,
        true,
        false,
        false,
    )
        .encode_to(&mut out);
    Some(out)
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

/// `NeuronInfo` (`full`) or `NeuronInfoLite`, SCALE-encoded.
fn neuron(s: &mut Sub<'_, '_>, netuid: u16, uid: u16, full: bool) -> Option<Vec<u8>> {
    if !s.added(netuid) || uid >= s.n(netuid) {
        return None;
    }
    let hotkey = s.key(netuid, uid)?;
    let coldkey = s.owner(&hotkey).unwrap_or([0; 32]);
    let i = usize::from(uid);
    let at16 = |v: &Vec<u16>| Compact(v.get(i).copied().unwrap_or(0));
    let at64 = |v: &Vec<u64>| Compact(v.get(i).copied().unwrap_or(0));
    let active: Vec<bool> = s.vec("Active", netuid);
    let permit: Vec<bool> = s.vec("ValidatorPermit", netuid);
    let axon: AxonInfo =
        s.0.get(
            &super::state::Key::new("SubtensorModule", "Axons")
                .id(&netuid)
                .b2(&hotkey)
                .build(),
        )
        .unwrap_or_default();
    let stake = vec![(coldkey, Compact(s.stake(&hotkey, netuid)))];
    let mut out = Vec::new();
    (
        hotkey,
        coldkey,
        Compact(uid),
        Compact(netuid),
        active.get(i).copied().unwrap_or(false),
        axon,
        (0u64, 0u32, 0u128, 0u16, 0u8),
        stake,
    )
        .encode_to(&mut out);
    let rank = s.vec::<u16>("Rank", netuid);
    let emission = s.vec::<u64>("Emission", netuid);
    let incentive = s.vec::<u16>("Incentive", netuid);
    let consensus = s.vec::<u16>("Consensus", netuid);
    let trust = s.vec::<u16>("Trust", netuid);
    let dividends = s.vec::<u16>("Dividends", netuid);
    let last_update = s.vec::<u64>("LastUpdate", netuid);
    (
        at16(&rank),
        at64(&emission),
        at16(&incentive),
        at16(&consensus),
        at16(&trust),
        // validator_trust: the local emission has none
        Compact(0u16),
        at16(&dividends),
        at64(&last_update),
        permit.get(i).copied().unwrap_or(false),
    )
        .encode_to(&mut out);
    if full {
        let weights: Vec<(u16, u16)> = s.0.get_or(
            &super::state::Key::new("SubtensorModule", "Weights")
                .id(&netuid)
                .id(&uid)
                .build(),
            Vec::new(),
        );
        let weights: Vec<(Compact<u16>, Compact<u16>)> = weights
            .into_iter()
            .map(|(u, w)| (Compact(u), Compact(w)))
            .collect();
        weights.encode_to(&mut out);
        Vec::<(Compact<u16>, Compact<u16>)>::new().encode_to(&mut out);
    }
    Compact(0u16).encode_to(&mut out);
    Some(out)
}

fn subnet_owner(s: &Sub<'_, '_>, netuid: u16) -> AccountId {
    s.0.get_or(
        &super::state::Key::new("SubtensorModule", "SubnetOwner")
            .id(&netuid)
            .build(),
        [0; 32],
    )
}

/// `SubnetInfo`, SCALE-encoded.
fn subnet_info(s: &mut Sub<'_, '_>, netuid: u16) -> Option<Vec<u8>> {
    if !s.added(netuid) {
        return None;
    }
    let c16 = Compact::<u16>;
    let c64 = Compact::<u64>;
    let mut out = Vec::new();
    (
        c16(netuid),
        c16(RHO),
        c16(KAPPA),
        c64(DIFFICULTY),
        c16(s.immunity(netuid)),
        c16(s.max_validators(netuid)),
        c16(s.min_weights(netuid)),
        c16(s.max_weight(netuid)),
        c16(50),
    )
        .encode_to(&mut out);
    (
        c16(s.n(netuid)),
        c16(s.max_uids(netuid)),
        c64(s.since_step(netuid)),
        c16(s.tempo(netuid)),
        c16(0),
        Vec::<[u16; 2]>::new(),
        c64(super::subtensor::EMISSION_PER_BLOCK),
        c64(s.burn(netuid)),
        subnet_owner(s, netuid),
    )
        .encode_to(&mut out);
    Some(out)
}

/// `SubnetHyperparams`, SCALE-encoded.
fn hyperparams(s: &mut Sub<'_, '_>, netuid: u16) -> Option<Vec<u8>> {
    if !s.added(netuid) {
        return None;
    }
    let c16 = Compact::<u16>;
    let c64 = Compact::<u64>;
    let mut out = Vec::new();
    (
        c16(RHO),
        c16(KAPPA),
        c16(s.immunity(netuid)),
        c16(s.min_weights(netuid)),
        c16(s.max_weight(netuid)),
        c16(s.tempo(netuid)),
        c64(MIN_DIFFICULTY),
        c64(MAX_DIFFICULTY),
        c64(s.version_key(netuid)),
        c64(s.rate_limit(netuid)),
        c16(ADJUSTMENT_INTERVAL),
        c16(s.activity_cutoff(netuid)),
        REGISTRATION_ALLOWED,
        c16(TARGET_REGS_PER_INTERVAL),
    )
        .encode_to(&mut out);
    (
        c64(MIN_BURN),
        c64(MAX_BURN),
        c64(BONDS_MOVING_AVG),
        c16(s.max_regs(netuid)),
        c64(SERVING_RATE_LIMIT),
        c16(s.max_validators(netuid)),
        c64(ADJUSTMENT_ALPHA),
        c64(DIFFICULTY),
        c64(s.reveal_period(netuid)),
        s.cr_enabled(netuid),
        c16(ALPHA_HIGH),
        c16(ALPHA_LOW),
        LIQUID_ALPHA,
    )
        .encode_to(&mut out);
    Some(out)
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::local::runtime::{GenesisConfig, SubnetParamsConfig};

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
