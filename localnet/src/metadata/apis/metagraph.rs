//! The types of `SubnetInfoRuntimeApi`'s metagraph family, as finney (spec 393) publishes them:
//! `pallet_subtensor::rpc_info::metagraph::{Metagraph, SelectiveMetagraph}`,
//! `rpc_info::dynamic_info::DynamicInfo` and `rpc_info::show_subnet::SubnetState`, from the
//! declarations the runtime API serves them from (`runtime_api::metagraph`).

use scale_info::{Field, form::PortableForm};

use super::super::output::Declared;
use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types, field};
use super::super::types::Cx;
use super::Outputs;

/// `DynamicInfo`'s fields in order: its name for each and the `Metagraph` field it is.
pub(crate) const DYNAMIC_INFO: [(&str, &str); 21] = [
    ("netuid", "netuid"),
    ("owner_hotkey", "owner_hotkey"),
    ("owner_coldkey", "owner_coldkey"),
    ("subnet_name", "name"),
    ("token_symbol", "symbol"),
    ("tempo", "tempo"),
    ("last_step", "last_step"),
    ("blocks_since_last_step", "blocks_since_last_step"),
    ("emission", "subnet_emission"),
    ("alpha_in", "alpha_in"),
    ("alpha_out", "alpha_out"),
    ("tao_in", "tao_in"),
    ("alpha_out_emission", "alpha_out_emission"),
    ("alpha_in_emission", "alpha_in_emission"),
    ("tao_in_emission", "tao_in_emission"),
    ("pending_alpha_emission", "pending_alpha_emission"),
    ("pending_root_emission", "pending_root_emission"),
    ("subnet_volume", "subnet_volume"),
    ("network_registered_at", "network_registered_at"),
    ("subnet_identity", "identity"),
    ("moving_price", "moving_price"),
];

/// `SubnetState`'s fields before `EmissionHistory`'s, in finney's order: `Metagraph` fields
/// of the same names.
pub(crate) const SUBNET_STATE: [&str; 17] = [
    "netuid",
    "hotkeys",
    "coldkeys",
    "active",
    "validator_permit",
    "pruning_score",
    "last_update",
    "emission",
    "dividends",
    "incentives",
    "consensus",
    "trust",
    "rank",
    "block_at_registration",
    "alpha_stake",
    "tao_stake",
    "total_stake",
];

/// Ids of the metagraph family's types.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetagraphTypes {
    /// `Option<Metagraph<AccountId32>>`.
    pub metagraph: TypeId,
    /// `Option<SelectiveMetagraph<AccountId32>>`.
    pub selective: TypeId,
    /// `Option<DynamicInfo<AccountId32>>`.
    pub dynamic: TypeId,
    /// `Option<SubnetState<AccountId32>>`.
    pub state: TypeId,
}

/// Registers the family's types.
pub(crate) fn register<O: Outputs>(t: &mut Types, p: &Prims) -> MetagraphTypes {
    let generic = [("AccountId", Some(p.account))];
    let fields = O::Metagraph::fields(&mut Cx::new(t, p));
    let metagraph = t.composite(
        "pallet_subtensor::rpc_info::metagraph::Metagraph",
        &generic,
        fields.clone(),
    );

    // `SelectiveMetagraph`: `Metagraph`'s fields and then more, every one but `netuid` optional.
    let extra = O::SelectiveExtra::fields(&mut Cx::new(t, p));
    let mut sel_fields = Vec::new();
    for (i, f) in fields.iter().chain(&extra).enumerate() {
        if i == 0 {
            sel_fields.push(f.clone());
        } else {
            let opt = t.option(f.ty.id);
            let type_name = format!("Option<{}>", f.type_name.as_deref().unwrap_or_default());
            sel_fields.push(field(
                f.name.as_deref().unwrap_or_default(),
                opt,
                &type_name,
            ));
        }
    }
    let selective = t.composite(
        "pallet_subtensor::rpc_info::metagraph::SelectiveMetagraph",
        &generic,
        sel_fields,
    );

    let pick = |name: &str| -> Field<PortableForm> {
        fields
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
            .cloned()
            .unwrap_or_else(|| panic!("no metagraph field {name}"))
    };
    let dyn_fields = DYNAMIC_INFO
        .iter()
        .map(|&(name, from)| Field {
            name: Some(name.to_owned()),
            ..pick(from)
        })
        .collect();
    let dynamic = t.composite(
        "pallet_subtensor::rpc_info::dynamic_info::DynamicInfo",
        &generic,
        dyn_fields,
    );

    let mut state_fields: Vec<_> = SUBNET_STATE.iter().map(|&name| pick(name)).collect();
    state_fields.extend(O::EmissionHistory::fields(&mut Cx::new(t, p)));
    let state = t.composite(
        "pallet_subtensor::rpc_info::show_subnet::SubnetState",
        &generic,
        state_fields,
    );

    MetagraphTypes {
        metagraph: t.option(metagraph),
        selective: t.option(selective),
        dynamic: t.option(dynamic),
        state: t.option(state),
    }
}
