//! The same metadata at versions 14 and 15, derived from the V16 declarations.
//!
//! A subtensor node answers V14 on `state_getMetadata`, lists 14, 15 and 16 in
//! `Metadata_metadata_versions` and serves each through `Metadata_metadata_at_version`. Clients
//! written for nodes ask for V15 and fall back to `state_getMetadata`, so the local chain serves
//! all three. Nothing here declares a pallet, a type or an API: each older version is a
//! field-by-field projection of the V16 metadata (dropping what the older format has no place
//! for: deprecation info, API versions, extrinsic v5), plus the two types those formats name
//! that V16 does not (`Runtime`, and the transaction extensions' tuple as the "extra" type).

use frame_metadata::v14::{
    PalletCallMetadata, PalletConstantMetadata, PalletErrorMetadata, PalletEventMetadata,
    PalletStorageMetadata, RuntimeMetadataV14, SignedExtensionMetadata, StorageEntryMetadata,
};
use frame_metadata::v15::{
    RuntimeApiMetadata, RuntimeApiMethodMetadata, RuntimeApiMethodParamMetadata, RuntimeMetadataV15,
};
use frame_metadata::{v14, v15, v16};
use scale_info::form::PortableForm;

use super::registry::TypeId;

type P = PortableForm;

/// The extrinsic version the legacy formats describe (they hold one).
const LEGACY_EXTRINSIC_VERSION: u8 = 4;

/// The types V14 and V15 name that V16 does not.
pub(super) struct LegacyTypes {
    /// `node_subtensor_runtime::Runtime`.
    pub runtime: TypeId,
    /// The tuple of every transaction extension (V15's `extra_ty`).
    pub extra: TypeId,
    /// The unchecked extrinsic (V14's extrinsic `ty`).
    pub unchecked: TypeId,
}

fn storage(s: &v16::PalletStorageMetadata<P>) -> PalletStorageMetadata<P> {
    PalletStorageMetadata {
        prefix: s.prefix.clone(),
        entries: s
            .entries
            .iter()
            .map(|e| StorageEntryMetadata {
                name: e.name.clone(),
                modifier: e.modifier.clone(),
                ty: e.ty.clone(),
                default: e.default.clone(),
                docs: e.docs.clone(),
            })
            .collect(),
    }
}

fn constants(p: &v16::PalletMetadata<P>) -> Vec<PalletConstantMetadata<P>> {
    p.constants
        .iter()
        .map(|c| PalletConstantMetadata {
            name: c.name.clone(),
            ty: c.ty,
            value: c.value.clone(),
            docs: c.docs.clone(),
        })
        .collect()
}

/// `m` as V15.
pub(super) fn v15(m: v16::RuntimeMetadataV16, legacy: &LegacyTypes) -> RuntimeMetadataV15 {
    let pallets = m
        .pallets
        .iter()
        .map(|p| v15::PalletMetadata {
            name: p.name.clone(),
            storage: p.storage.as_ref().map(storage),
            calls: p.calls.as_ref().map(|c| PalletCallMetadata { ty: c.ty }),
            event: p.event.as_ref().map(|e| PalletEventMetadata { ty: e.ty }),
            constants: constants(p),
            error: p.error.as_ref().map(|e| PalletErrorMetadata { ty: e.ty }),
            index: p.index,
            docs: p.docs.clone(),
        })
        .collect();
    let apis = m
        .apis
        .iter()
        .map(|a| RuntimeApiMetadata {
            name: a.name.clone(),
            methods: a
                .methods
                .iter()
                .map(|f| RuntimeApiMethodMetadata {
                    name: f.name.clone(),
                    inputs: f
                        .inputs
                        .iter()
                        .map(|i| RuntimeApiMethodParamMetadata {
                            name: i.name.clone(),
                            ty: i.ty,
                        })
                        .collect(),
                    output: f.output,
                    docs: f.docs.clone(),
                })
                .collect(),
            docs: a.docs.clone(),
        })
        .collect();
    let extrinsic = v15::ExtrinsicMetadata {
        version: LEGACY_EXTRINSIC_VERSION,
        address_ty: m.extrinsic.address_ty,
        call_ty: m.extrinsic.call_ty,
        signature_ty: m.extrinsic.signature_ty,
        extra_ty: legacy.extra.into(),
        signed_extensions: m
            .extrinsic
            .transaction_extensions
            .iter()
            .map(|x| v15::SignedExtensionMetadata {
                identifier: x.identifier.clone(),
                ty: x.ty,
                additional_signed: x.implicit,
            })
            .collect(),
    };
    RuntimeMetadataV15 {
        pallets,
        extrinsic,
        ty: legacy.runtime.into(),
        apis,
        outer_enums: m.outer_enums,
        custom: m.custom,
        types: m.types,
    }
}

/// `m` as V14: its V15 form without docs, runtime APIs and outer enums.
pub(super) fn v14(m: v16::RuntimeMetadataV16, legacy: &LegacyTypes) -> RuntimeMetadataV14 {
    let v15 = v15(m, legacy);
    RuntimeMetadataV14 {
        types: v15.types,
        pallets: v15
            .pallets
            .into_iter()
            .map(|p| v14::PalletMetadata {
                name: p.name,
                storage: p.storage,
                calls: p.calls,
                event: p.event,
                constants: p.constants,
                error: p.error,
                index: p.index,
            })
            .collect(),
        extrinsic: v14::ExtrinsicMetadata {
            ty: legacy.unchecked.into(),
            version: v15.extrinsic.version,
            signed_extensions: v15
                .extrinsic
                .signed_extensions
                .into_iter()
                .map(|x| SignedExtensionMetadata {
                    identifier: x.identifier,
                    ty: x.ty,
                    additional_signed: x.additional_signed,
                })
                .collect(),
        },
        ty: v15.ty,
    }
}
