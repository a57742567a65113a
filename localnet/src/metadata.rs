//! The local chain's runtime metadata (V16), built in Rust to finney's layout.
//!
//! Every pallet, call, storage entry and runtime API the local chain has is described here with
//! the index, argument types, storage hashers and defaults that finney (`node-subtensor` spec 393)
//! publishes, so that clients generated or validated against finney work against the local chain
//! unchanged. The local chain has *fewer* of each (only what Sliver and common Bittensor clients
//! use); what it has is identical in shape. `localnet/tests/localnet/metadata_layout.rs` holds this against
//! the real finney metadata in `metadata/finney.scale`.
//!
//! Layout of this module: `registry` is the type-registry builder, `primitives` the shared
//! types, `types` the metadata types by finney's names with the Rust type of each (`Meta`),
//! `pallet` the pallet-level declarations, one file per pallet group (`system`, `subtensor`,
//! `commitments`, `drand`), `extrinsic` the extrinsic format and its transaction extensions,
//! `apis` the runtime APIs, `output` the `output!` declarations of the runtime APIs' output
//! structures, and `versions` the V14/V15 forms.
//!
//! Nothing under `metadata/` imports the runtime: the Rust types the metadata names are the
//! crate's shared value types (`values`), and what the runtime itself declares (its storage items
//! in `items`, its runtime APIs' output structures in `runtime_api`) comes in as parameters of
//! the builders, bound once here (`Runtime`, `STORAGE`).

pub(crate) mod apis;
mod commitments;
pub(crate) mod drand;
mod extrinsic;
pub(crate) mod output;
pub(crate) mod pallet;
mod primitives;
pub(crate) mod registry;
mod subtensor;
mod system;
pub(crate) mod types;
mod versions;

use std::collections::BTreeMap;

use frame_metadata::RuntimeMetadataPrefixed;
use frame_metadata::v16::{
    CustomMetadata, EnumDeprecationInfo, ItemDeprecationInfo, OuterEnums, PalletCallMetadata,
    PalletErrorMetadata, PalletEventMetadata, PalletMetadata, PalletStorageMetadata,
    RuntimeMetadataV16,
};
use parity_scale_codec::Encode;
use scale_info::form::PortableForm;

use self::pallet::Pallet;
use self::primitives::Prims;
use self::registry::{TypeId, Types, anon, var};

pub(crate) use self::commitments::{CommitmentsCall, CommitmentsError, CommitmentsEvent};
pub use self::commitments::{
    MAX_BIG_RAW_BYTES as COMMITMENT_MAX_BIG_RAW_BYTES, MAX_FIELDS as COMMITMENT_MAX_FIELDS,
    MAX_RAW as COMMITMENT_MAX_RAW, MAX_TIMELOCK_BYTES as COMMITMENT_MAX_TIMELOCK_BYTES,
};
pub use self::extrinsic::{EXTENSIONS as TRANSACTION_EXTENSIONS, VERSIONS as EXTRINSIC_VERSIONS};
pub use self::subtensor::{DEFAULT_TEMPO, ERRORS as SUBTENSOR_ERRORS, MAX_TIMELOCKED_COMMIT_BYTES};
pub(crate) use self::subtensor::{SubtensorCall, SubtensorError, SubtensorEvent};
pub use self::system::{BLOCK_HASH_COUNT, EXISTENTIAL_DEPOSIT, SS58_PREFIX};
pub(crate) use self::system::{BalancesCall, BalancesEvent, SystemCall, SystemEvent};

/// `spec_name` of the runtime the local chain imitates.
pub const SPEC_NAME: &str = "node-subtensor";
/// `spec_version` of finney's runtime whose layout the local chain has.
pub const SPEC_VERSION: u32 = 393;
/// Finney's `impl_version`.
pub const IMPL_VERSION: u32 = 1;
/// Finney's `authoring_version`.
pub const AUTHORING_VERSION: u32 = 1;
/// Finney's `transaction_version` (signed into every extrinsic by `CheckTxVersion`).
pub const TRANSACTION_VERSION: u32 = 1;
/// Finney's `system_version`.
pub const SYSTEM_VERSION: u8 = 1;
/// The newest metadata version served: what the project's own declarations are written in.
pub const METADATA_VERSION: u32 = 16;
/// Every metadata version served, as a subtensor node serves them: `Metadata_metadata_versions`
/// lists these, `Metadata_metadata_at_version` answers each, `state_getMetadata` the first.
pub const METADATA_VERSIONS: [u32; 3] = [14, 15, METADATA_VERSION];

/// The runtime's own declarations the metadata describes: its storage items (`items`) and its
/// runtime APIs' output structures (`runtime_api`). This is the one place they are named; the
/// builders under `metadata/` take them as parameters and import nothing of the runtime.
type Runtime = crate::runtime_api::Served;
const STORAGE: StorageOf = crate::items::metadata;

/// The storage entries of a pallet, by name, for the metadata; `None` for one without storage.
type StorageOf = fn(&str, &mut types::Cx<'_>) -> Option<PalletStorageMetadata<PortableForm>>;

/// The local chain's metadata (V16), as `Metadata_metadata_at_version(16)` serves it.
pub fn runtime_metadata() -> RuntimeMetadataPrefixed {
    declare::<Runtime>(false, STORAGE).0.into()
}

/// The local chain's metadata at `version` (14, 15 or 16), all from the same declarations;
/// `None` for a version not served.
pub fn runtime_metadata_at(version: u32) -> Option<RuntimeMetadataPrefixed> {
    match version {
        16 => Some(runtime_metadata()),
        15 => {
            let (m, legacy) = declare::<Runtime>(true, STORAGE);
            Some(versions::v15(m, &legacy).into())
        }
        14 => {
            let (m, legacy) = declare::<Runtime>(true, STORAGE);
            Some(versions::v14(m, &legacy).into())
        }
        _ => None,
    }
}

/// Builds the V16 metadata, with the runtime APIs' output structures of `O` and the storage
/// entries `storage` gives. With `legacy_types`, the types only V14/V15 name (`Runtime`) are
/// registered last, after every type V16 uses, so the ids of all others are the same in every
/// version.
fn declare<O: apis::Outputs>(
    legacy_types: bool,
    storage: StorageOf,
) -> (RuntimeMetadataV16, versions::LegacyTypes) {
    let mut t = Types::new();
    let p = Prims::register(&mut t);
    system::account_info(&mut t, &p);
    subtensor::types(&mut t, &p);

    let mut pallets = vec![
        system::system(&mut t, &p),
        system::timestamp(),
        system::balances(&mut t, &p),
        subtensor::pallet(&mut t, &p),
        commitments::pallet(&mut t, &p),
        drand::pallet(),
    ];
    let outer = outer_enums(&mut t, &pallets);
    // Storage comes from the item declarations, once `System.Events` can name `RuntimeEvent`.
    let mut cx = types::Cx {
        t: &mut t,
        p: &p,
        runtime_event: Some(outer.event_enum_ty.id),
    };
    for pallet in &mut pallets {
        pallet.storage = storage(pallet.name, &mut cx);
    }
    let extrinsic = extrinsic::extrinsic(&mut t, &p, outer.call_enum_ty.id);
    let apis = apis::apis::<O>(&mut t, &p, extrinsic.unchecked);
    let runtime = if legacy_types {
        t.composite("node_subtensor_runtime::Runtime", &[], Vec::new())
    } else {
        0
    };
    let legacy = versions::LegacyTypes {
        runtime,
        extra: extrinsic.extra,
        unchecked: extrinsic.unchecked,
    };

    let metadata = RuntimeMetadataV16 {
        types: t.finish(),
        pallets: pallets.into_iter().map(pallet_metadata).collect(),
        extrinsic: extrinsic.metadata,
        apis,
        outer_enums: outer,
        custom: CustomMetadata {
            map: BTreeMap::new(),
        },
    };
    (metadata, legacy)
}

/// [`runtime_metadata`], SCALE-encoded (with the `meta` magic prefix).
pub fn metadata_bytes() -> Vec<u8> {
    runtime_metadata().encode()
}

/// [`runtime_metadata_at`], SCALE-encoded; `None` for a version not served.
pub fn metadata_bytes_at(version: u32) -> Option<Vec<u8>> {
    runtime_metadata_at(version).map(|m| m.encode())
}

fn outer_enums(t: &mut Types, pallets: &[Pallet]) -> OuterEnums<PortableForm> {
    let mut calls = Vec::new();
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for p in pallets {
        if let Some(call) = p.calls {
            let type_name = format!(
                "self::sp_api_hidden_includes_construct_runtime::hidden_include::dispatch\n::CallableCallFor<{}, Runtime>",
                p.name
            );
            calls.push(var(p.name, p.index, vec![anon(call, Some(&type_name))]));
        }
        if let Some((event, type_name)) = p.event {
            events.push(var(p.name, p.index, vec![anon(event, Some(type_name))]));
        }
        if let Some((error, type_name)) = p.error {
            errors.push(var(p.name, p.index, vec![anon(error, Some(type_name))]));
        }
    }
    let call: TypeId = t.variant("node_subtensor_runtime::RuntimeCall", &[], calls);
    let event = t.variant("node_subtensor_runtime::RuntimeEvent", &[], events);
    let error = t.variant("node_subtensor_runtime::RuntimeError", &[], errors);
    OuterEnums {
        call_enum_ty: call.into(),
        event_enum_ty: event.into(),
        error_enum_ty: error.into(),
    }
}

fn pallet_metadata(p: Pallet) -> PalletMetadata<PortableForm> {
    let no_deprecations = || EnumDeprecationInfo(BTreeMap::new());
    PalletMetadata {
        name: p.name.to_owned(),
        storage: p.storage,
        calls: p.calls.map(|ty| PalletCallMetadata {
            ty: ty.into(),
            deprecation_info: no_deprecations(),
        }),
        event: p.event.map(|(ty, _)| PalletEventMetadata {
            ty: ty.into(),
            deprecation_info: no_deprecations(),
        }),
        constants: p.constants,
        error: p.error.map(|(ty, _)| PalletErrorMetadata {
            ty: ty.into(),
            deprecation_info: no_deprecations(),
        }),
        associated_types: Vec::new(),
        view_functions: Vec::new(),
        index: p.index,
        docs: Vec::new(),
        deprecation_info: ItemDeprecationInfo::NotDeprecated,
    }
}
