//! The types of `SubnetInfoRuntimeApi`'s metagraph family, as finney (spec 393) publishes them:
//! `pallet_subtensor::rpc_info::metagraph::{Metagraph, SelectiveMetagraph}`,
//! `rpc_info::dynamic_info::DynamicInfo` and `rpc_info::show_subnet::SubnetState`, from the
//! declarations the runtime API serves them from (`runtime_api::metagraph`).

use parity_scale_codec::Compact;
use scale_info::{Field, form::PortableForm};

use super::super::described::{
    ChainIdentityV2, Declared, Described, I32F32, I96F32, SubnetIdentityV3, typenum_u32,
};
use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types, field};
use super::super::subtensor::SubtensorTypes;
use crate::local::runtime_api::metagraph::{
    DYNAMIC_INFO, EmissionHistory, Metagraph, SUBNET_STATE, SelectiveExtra,
};
use crate::local::subtensor::AxonInfo;

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
pub(crate) fn register(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> MetagraphTypes {
    // These are registered first, in this order, so that the type ids (and with them
    // `metadata/local.scale`) do not depend on the order of the fields below.
    let _ = [
        Compact::<u8>::ty(t, p, st),
        Compact::<u128>::ty(t, p, st),
        Vec::<Compact<u8>>::ty(t, p, st),
        typenum_u32(t),
        i128::ty(t, p, st),
        i64::ty(t, p, st),
        I96F32::ty(t, p, st),
        I32F32::ty(t, p, st),
        Option::<SubnetIdentityV3>::ty(t, p, st),
        Vec::<Option<ChainIdentityV2>>::ty(t, p, st),
        Vec::<[u8; 32]>::ty(t, p, st),
        Vec::<AxonInfo>::ty(t, p, st),
        Vec::<bool>::ty(t, p, st),
        Vec::<Compact<u16>>::ty(t, p, st),
        Vec::<Compact<u64>>::ty(t, p, st),
        Vec::<([u8; 32], Compact<u64>)>::ty(t, p, st),
    ];
    let generic = [("AccountId", Some(p.account))];
    let fields = Metagraph::fields(t, p, st);
    let metagraph = t.composite(
        "pallet_subtensor::rpc_info::metagraph::Metagraph",
        &generic,
        fields.clone(),
    );

    // `SelectiveMetagraph`: `Metagraph`'s fields and then more, every one but `netuid` optional.
    let extra = SelectiveExtra::fields(t, p, st);
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
    state_fields.extend(EmissionHistory::fields(t, p, st));
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
