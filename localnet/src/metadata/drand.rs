//! `Drand` (pallet 26): the randomness beacon's pulses, from which the chain decrypts timelocked
//! weight commits. Only its storage is described (finney's types, names and defaults); its
//! calls (`write_pulse`, sent by finney's offchain workers) have no local counterpart: the local
//! chain's own beacon writes pulses in its block hook.

use super::pallet::{Pallet, index};
use super::primitives::Prims;
use super::registry::{TypeId, Types, field};

/// `pallet_drand::types::Pulse`.
pub(crate) fn pulse(t: &mut Types, p: &Prims) -> TypeId {
    let bytes = t.bounded_vec(p.u8);
    t.composite(
        "pallet_drand::types::Pulse",
        &[],
        vec![
            field("round", p.u64, "RoundNumber"),
            field("randomness", bytes, "BoundedVec<u8, ConstU32<32>>"),
            field("signature", bytes, "BoundedVec<u8, ConstU32<144>>"),
        ],
    )
}

/// `pallet_drand::types::BeaconConfiguration`.
pub(crate) fn beacon_configuration(t: &mut Types, p: &Prims) -> TypeId {
    let bytes = t.bounded_vec(p.u8);
    let metadata = t.composite(
        "pallet_drand::types::Metadata",
        &[],
        vec![field("beacon_id", bytes, "BoundedHash")],
    );
    t.composite(
        "pallet_drand::types::BeaconConfiguration",
        &[],
        vec![
            field("public_key", bytes, "OpaquePublicKey"),
            field("period", p.u32, "u32"),
            field("genesis_time", p.u32, "u32"),
            field("hash", bytes, "BoundedHash"),
            field("group_hash", bytes, "BoundedHash"),
            field("scheme_id", bytes, "BoundedHash"),
            field("metadata", metadata, "Metadata"),
        ],
    )
}

/// The pallet (its storage is declared in `items.rs`).
pub(crate) fn pallet() -> Pallet {
    Pallet {
        name: "Drand",
        index: index::DRAND,
        storage: None,
        calls: None,
        event: None,
        error: None,
        constants: vec![],
    }
}
