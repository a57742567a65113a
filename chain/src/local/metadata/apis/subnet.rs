//! `SubnetInfoRuntimeApi` as finney (spec 393) publishes it: subnet info and hyperparameters
//! (and their `_v2` forms), dynamic info, the metagraph family (`get_metagraph`,
//! `get_all_metagraphs`, `get_selective_metagraph` and their mechanism forms), subnet state,
//! `get_coldkey_auto_stake_hotkey` and `get_subnet_to_prune`, in finney's method order.

use frame_metadata::v16::RuntimeApiMetadata;
use scale_info::form::PortableForm;

use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types, field};
use super::super::subtensor::SubtensorTypes;
use super::metagraph::{self, MetagraphTypes};
use super::{api, method};

/// `SubnetInfo`'s fields; `emission` names the one finney's `SubnetInfo` calls `emission_values`
/// and `SubnetInfov2` `emission_value`.
fn info_fields(t: &mut Types, p: &Prims, emission: &str) -> Vec<scale_info::Field<PortableForm>> {
    let c16 = p.compact_u16;
    let c64 = p.compact_u64;
    let pair = t.array(2, p.u16);
    let connect = t.seq(pair);
    vec![
        field("netuid", c16, "Compact<NetUid>"),
        field("rho", c16, "Compact<u16>"),
        field("kappa", c16, "Compact<u16>"),
        field("difficulty", c64, "Compact<u64>"),
        field("immunity_period", c16, "Compact<u16>"),
        field("max_allowed_validators", c16, "Compact<u16>"),
        field("min_allowed_weights", c16, "Compact<u16>"),
        field("max_weights_limit", c16, "Compact<u16>"),
        field("scaling_law_power", c16, "Compact<u16>"),
        field("subnetwork_n", c16, "Compact<u16>"),
        field("max_allowed_uids", c16, "Compact<u16>"),
        field("blocks_since_last_step", c64, "Compact<u64>"),
        field("tempo", c16, "Compact<u16>"),
        field("network_modality", c16, "Compact<u16>"),
        field("network_connect", connect, "Vec<[u16; 2]>"),
        field(emission, c64, "Compact<u64>"),
        field("burn", c64, "Compact<TaoBalance>"),
        field("owner", p.account, "AccountId"),
    ]
}

fn hyperparam_fields(p: &Prims) -> Vec<scale_info::Field<PortableForm>> {
    let c16 = p.compact_u16;
    let c64 = p.compact_u64;
    let u16s: [(&str, &str); 6] = [
        ("rho", "Compact<u16>"),
        ("kappa", "Compact<u16>"),
        ("immunity_period", "Compact<u16>"),
        ("min_allowed_weights", "Compact<u16>"),
        ("max_weights_limit", "Compact<u16>"),
        ("tempo", "Compact<u16>"),
    ];
    let mut fields: Vec<_> = u16s.iter().map(|(n, tn)| field(n, c16, tn)).collect();
    fields.extend([
        field("min_difficulty", c64, "Compact<u64>"),
        field("max_difficulty", c64, "Compact<u64>"),
        field("weights_version", c64, "Compact<u64>"),
        field("weights_rate_limit", c64, "Compact<u64>"),
        field("adjustment_interval", c16, "Compact<u16>"),
        field("activity_cutoff", c16, "Compact<u16>"),
        field("registration_allowed", p.bool, "bool"),
        field("target_regs_per_interval", c16, "Compact<u16>"),
        field("min_burn", c64, "Compact<TaoBalance>"),
        field("max_burn", c64, "Compact<TaoBalance>"),
        field("bonds_moving_avg", c64, "Compact<u64>"),
        field("max_regs_per_block", c16, "Compact<u16>"),
        field("serving_rate_limit", c64, "Compact<u64>"),
        field("max_validators", c16, "Compact<u16>"),
        field("adjustment_alpha", c64, "Compact<u64>"),
        field("difficulty", c64, "Compact<u64>"),
        field("commit_reveal_period", c64, "Compact<u64>"),
        field("commit_reveal_weights_enabled", p.bool, "bool"),
        field("alpha_high", c16, "Compact<u16>"),
        field("alpha_low", c16, "Compact<u16>"),
        field("liquid_alpha_enabled", p.bool, "bool"),
    ]);
    fields
}

/// `SubnetInfoRuntimeApi`.
pub(crate) fn subnet_info(
    t: &mut Types,
    p: &Prims,
    st: &SubtensorTypes,
) -> RuntimeApiMetadata<PortableForm> {
    let generic = [("AccountId", Some(p.account))];
    let info_f = info_fields(t, p, "emission_values");
    let info = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetInfo",
        &generic,
        info_f,
    );
    let maybe_info = t.option(info);
    let infos = t.seq(maybe_info);

    let mg: MetagraphTypes = metagraph::register(t, p, st);

    let mut info_v2_f = info_fields(t, p, "emission_value");
    info_v2_f.push(field(
        "identity",
        mg.subnet_identity,
        "Option<SubnetIdentityV3>",
    ));
    let info_v2 = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetInfov2",
        &generic,
        info_v2_f,
    );
    let maybe_info_v2 = t.option(info_v2);
    let infos_v2 = t.seq(maybe_info_v2);

    let hyper = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetHyperparams",
        &[],
        hyperparam_fields(p),
    );
    let maybe_hyper = t.option(hyper);
    let mut hyper_v2_f = hyperparam_fields(p);
    hyper_v2_f.extend([
        field("alpha_sigmoid_steepness", mg.i32f32, "I32F32"),
        field("yuma_version", p.compact_u16, "Compact<u16>"),
        field("subnet_is_active", p.bool, "bool"),
        field("transfers_enabled", p.bool, "bool"),
        field("bonds_reset_enabled", p.bool, "bool"),
        field("user_liquidity_enabled", p.bool, "bool"),
    ]);
    let hyper_v2 = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetHyperparamsV2",
        &[],
        hyper_v2_f,
    );
    let maybe_hyper_v2 = t.option(hyper_v2);

    let all_dynamic = t.seq(mg.dynamic);
    let all_metagraphs = t.seq(mg.metagraph);
    let maybe_account = t.option(p.account);
    let maybe_netuid = t.option(p.u16);

    let net: [(&str, TypeId); 1] = [("netuid", p.u16)];
    api(
        "SubnetInfoRuntimeApi",
        1,
        vec![
            method("get_subnet_info", &net, maybe_info),
            method("get_subnets_info", &[], infos),
            method("get_subnet_info_v2", &net, maybe_info_v2),
            method("get_subnets_info_v2", &[], infos_v2),
            method("get_subnet_hyperparams", &net, maybe_hyper),
            method("get_subnet_hyperparams_v2", &net, maybe_hyper_v2),
            method("get_all_dynamic_info", &[], all_dynamic),
            method("get_all_metagraphs", &[], all_metagraphs),
            method("get_metagraph", &net, mg.metagraph),
            method("get_all_mechagraphs", &[], all_metagraphs),
            method(
                "get_mechagraph",
                &[("netuid", p.u16), ("mecid", p.u8)],
                mg.metagraph,
            ),
            method("get_dynamic_info", &net, mg.dynamic),
            method("get_subnet_state", &net, mg.state),
            method(
                "get_selective_metagraph",
                &[("netuid", p.u16), ("metagraph_indexes", p.vec_u16)],
                mg.selective,
            ),
            method(
                "get_coldkey_auto_stake_hotkey",
                &[("coldkey", p.account), ("netuid", p.u16)],
                maybe_account,
            ),
            method(
                "get_selective_mechagraph",
                &[
                    ("netuid", p.u16),
                    ("subid", p.u8),
                    ("metagraph_indexes", p.vec_u16),
                ],
                mg.selective,
            ),
            method("get_subnet_to_prune", &[], maybe_netuid),
        ],
    )
}
