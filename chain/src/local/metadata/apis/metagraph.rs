//! The types of `SubnetInfoRuntimeApi`'s metagraph family, as finney (spec 393) publishes them:
//! `pallet_subtensor::rpc_info::metagraph::{Metagraph, SelectiveMetagraph}`,
//! `rpc_info::dynamic_info::DynamicInfo` and `rpc_info::show_subnet::SubnetState`, from the
//! declarations the runtime API serves them from (`runtime_api::metagraph`).

use scale_info::{Field, form::PortableForm};

use super::super::output::Declared;
use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types, field};
use super::super::types::Cx;
use crate::local::runtime_api::metagraph::{
    DYNAMIC_INFO, EmissionHistory, Metagraph, SUBNET_STATE, SelectiveExtra,
};

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
pub(crate) fn register(t: &mut Types, p: &Prims) -> MetagraphTypes {
    let generic = [("AccountId", Some(p.account))];
    let fields = Metagraph::fields(&mut Cx::new(t, p));
    let metagraph = t.composite(
        "pallet_subtensor::rpc_info::metagraph::Metagraph",
        &generic,
        fields.clone(),
    );

    // `SelectiveMetagraph`: `Metagraph`'s fields and then more, every one but `netuid` optional.
    let extra = SelectiveExtra::fields(&mut Cx::new(t, p));
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
    state_fields.extend(EmissionHistory::fields(&mut Cx::new(t, p)));
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
