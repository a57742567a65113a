//! `SubnetInfoRuntimeApi` as finney (spec 393) publishes it: subnet info and hyperparameters
//! (and their `_v2` forms), dynamic info, the metagraph family (`get_metagraph`,
//! `get_all_metagraphs`, `get_selective_metagraph` and their mechanism forms), subnet state,
//! `get_coldkey_auto_stake_hotkey` and `get_subnet_to_prune`, in finney's method order.

use frame_metadata::v16::RuntimeApiMetadata;
use scale_info::form::PortableForm;

use super::super::output::Declared;
use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types};
use super::super::types::Cx;
use super::metagraph::{self, MetagraphTypes};
use super::{Outputs, api, method};

/// `SubnetInfoRuntimeApi`.
pub(crate) fn subnet_info<O: Outputs>(
    t: &mut Types,
    p: &Prims,
) -> RuntimeApiMetadata<PortableForm> {
    let generic = [("AccountId", Some(p.account))];
    let info_f = O::SubnetInfo::fields(&mut Cx::new(t, p));
    let info = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetInfo",
        &generic,
        info_f.clone(),
    );
    let maybe_info = t.option(info);
    let infos = t.seq(maybe_info);

    let mg: MetagraphTypes = metagraph::register::<O>(t, p);

    // `SubnetInfov2`: `SubnetInfo`'s fields, `emission_values` named `emission_value`, and more.
    let mut info_v2_f = info_f;
    for f in &mut info_v2_f {
        if f.name.as_deref() == Some("emission_values") {
            f.name = Some("emission_value".to_owned());
        }
    }
    info_v2_f.extend(O::SubnetInfoV2Extra::fields(&mut Cx::new(t, p)));
    let info_v2 = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetInfov2",
        &generic,
        info_v2_f,
    );
    let maybe_info_v2 = t.option(info_v2);
    let infos_v2 = t.seq(maybe_info_v2);

    let hyper_f = O::SubnetHyperparams::fields(&mut Cx::new(t, p));
    let hyper = t.composite(
        "pallet_subtensor::rpc_info::subnet_info::SubnetHyperparams",
        &[],
        hyper_f.clone(),
    );
    let maybe_hyper = t.option(hyper);
    let mut hyper_v2_f = hyper_f;
    hyper_v2_f.extend(O::HyperparamsV2Extra::fields(&mut Cx::new(t, p)));
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
