//! The runtime APIs `state_call` reaches, by the names a node exports them under
//! (`<Trait>_<method>`), with SCALE-encoded arguments and results exactly as the metadata's
//! runtime API section describes them: `Core`, `Metadata`, `TaggedTransactionQueue`,
//! `AccountNonceApi`, `TransactionPaymentApi`, `NeuronInfoRuntimeApi` and `SubnetInfoRuntimeApi`.

use std::sync::OnceLock;

use parity_scale_codec::{Compact, Decode, Encode};

use super::dispatch::AccountId;
use super::extrinsic;
use super::metadata::{
    self, AUTHORING_VERSION, IMPL_VERSION, METADATA_VERSION, SPEC_NAME, SPEC_VERSION,
    SYSTEM_VERSION, TRANSACTION_VERSION,
};
use super::runtime::{Chain, decode_all};
use super::subtensor::{AxonInfo, SERVING_RATE_LIMIT, Sub};

/// Why a runtime call failed (a node reports these as RPC error 4003).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// No such runtime API method.
    #[error("Client error: Execution failed: Exported method {0} is not found")]
    NotFound(String),
    /// The arguments do not decode as the method's inputs.
    #[error("Client error: Execution failed: Bad input data provided to {0}")]
    BadInput(String),
}

/// The encoded metadata (`RuntimeMetadataPrefixed`), built once.
pub(crate) fn metadata_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(metadata::metadata_bytes)
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
    let bad = || ApiError::BadInput(method.to_owned());
    let mut view = chain.view(at);
    Ok(match method {
        "Core_version" => runtime_version(),
        "Metadata_metadata" => metadata_bytes().to_vec().encode(),
        "Metadata_metadata_at_version" => {
            let v: u32 = decode_all(args).ok_or_else(bad)?;
            (v == METADATA_VERSION)
                .then(|| metadata_bytes().to_vec())
                .encode()
        }
        "Metadata_metadata_versions" => vec![METADATA_VERSION].encode(),
        "AccountNonceApi_account_nonce" => {
            let who: AccountId = decode_all(args).ok_or_else(bad)?;
            view.get::<super::dispatch::AccountInfo>(&super::dispatch::account_key(&who))
                .map_or(0, |a| a.nonce)
                .encode()
        }
        "TaggedTransactionQueue_validate_transaction" => {
            validate_transaction(chain, args).ok_or_else(bad)?
        }
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
        "NeuronInfoRuntimeApi_get_neurons" | "NeuronInfoRuntimeApi_get_neurons_lite" => {
            let netuid: u16 = decode_all(args).ok_or_else(bad)?;
            let full = method.ends_with("neurons");
            let mut s = Sub(&mut view);
            let n = if s.added(netuid) { s.n(netuid) } else { 0 };
            let mut out = Compact(u32::from(n)).encode();
            for uid in 0..n {
                out.extend(neuron(&mut s, netuid, uid, full).unwrap_or_default());
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
        _ => return Err(ApiError::NotFound(method.to_owned())),
    })
}

fn option(v: Option<Vec<u8>>) -> Vec<u8> {
    match v {
        Some(v) => [vec![1u8], v].concat(),
        None => vec![0u8],
    }
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
        c16(0),
        c16(32_767),
        c64(10_000_000),
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
        c16(0),
        c16(32_767),
        c16(s.immunity(netuid)),
        c16(s.min_weights(netuid)),
        c16(s.max_weight(netuid)),
        c16(s.tempo(netuid)),
        c64(0),
        c64(u64::MAX),
        c64(s.version_key(netuid)),
        c64(s.rate_limit(netuid)),
        c16(100),
        c16(s.activity_cutoff(netuid)),
        true,
        c16(2),
    )
        .encode_to(&mut out);
    (
        c64(500_000),
        c64(100_000_000_000),
        c64(900_000),
        c16(s.max_regs(netuid)),
        c64(SERVING_RATE_LIMIT),
        c16(s.max_validators(netuid)),
        c64(0),
        c64(10_000_000),
        c64(s.reveal_period(netuid)),
        s.cr_enabled(netuid),
        c16(58_982),
        c16(45_875),
        false,
    )
        .encode_to(&mut out);
    Some(out)
}
