//! The extrinsic format: versions 4 and 5, `MultiAddress`/`MultiSignature`, and finney's thirteen
//! transaction extensions in finney's order. Only `CheckSpecVersion`, `CheckTxVersion`,
//! `CheckGenesis`, `CheckMortality` (implicit data) and `CheckNonce`, `CheckMortality`,
//! `ChargeTransactionPayment`, `CheckMetadataHash` (explicit data) put bytes on the wire; the
//! others are empty, and the local chain's verifier relies on exactly this list.

use std::collections::BTreeMap;

use frame_metadata::v16::{ExtrinsicMetadata, TransactionExtensionMetadata};
use parity_scale_codec::Compact;
use scale_info::form::PortableForm;

use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, index_u8, var};

/// Extrinsic format versions finney accepts.
pub const VERSIONS: [u8; 2] = [4, 5];

/// Transaction extension identifiers in the order their data is encoded.
pub const EXTENSIONS: [&str; 13] = [
    "CheckNonZeroSender",
    "CheckSpecVersion",
    "CheckTxVersion",
    "CheckGenesis",
    "CheckMortality",
    "CheckNonce",
    "CheckWeight",
    "ChargeTransactionPayment",
    "SudoTransactionExtension",
    "CheckShieldedTxValidity",
    "SubtensorTransactionExtension",
    "DrandPriority",
    "CheckMetadataHash",
];

/// Types the runtime APIs need from the extrinsic format.
#[derive(Debug, Clone)]
pub(crate) struct Extrinsic {
    /// The extrinsic metadata.
    pub metadata: ExtrinsicMetadata<PortableForm>,
    /// `fp_self_contained::unchecked_extrinsic::UncheckedExtrinsic<..>`.
    pub unchecked: TypeId,
    /// The tuple of every transaction extension (what V14/V15 call the "extra" type).
    pub extra: TypeId,
}

/// `sp_runtime::generic::era::Era`: `Immortal`, then `MortalN(u8)` for N in 1..=255.
fn era(t: &mut Types, p: &Prims) -> TypeId {
    let mut variants = vec![var("Immortal", 0, vec![])];
    for n in 1..=255usize {
        variants.push(var(
            &format!("Mortal{n}"),
            index_u8(n),
            vec![anon(p.u8, None)],
        ));
    }
    t.variant("sp_runtime::generic::era::Era", &[], variants)
}

/// Registers the extrinsic format; `runtime_call` is the outer call enum.
pub(crate) fn extrinsic(t: &mut Types, p: &Prims, runtime_call: TypeId) -> Extrinsic {
    let skipped = [("T", None)];
    let runtime_generic = [("T", Some(p.runtime))];
    let compact_u32 = t.compact(p.u32);
    let era = era(t, p);

    let non_zero = t.composite(
        "frame_system::extensions::check_non_zero_sender::CheckNonZeroSender",
        &skipped,
        vec![],
    );
    let spec = t.composite(
        "frame_system::extensions::check_spec_version::CheckSpecVersion",
        &skipped,
        vec![],
    );
    let tx = t.composite(
        "frame_system::extensions::check_tx_version::CheckTxVersion",
        &skipped,
        vec![],
    );
    let genesis = t.composite(
        "frame_system::extensions::check_genesis::CheckGenesis",
        &skipped,
        vec![],
    );
    let mortality = t.composite(
        "node_subtensor_runtime::check_mortality::CheckMortality",
        &skipped,
        vec![anon(era, Some("Era"))],
    );
    let nonce = t.composite(
        "node_subtensor_runtime::check_nonce::CheckNonce",
        &skipped,
        vec![anon(compact_u32, Some("T::Nonce"))],
    );
    let weight = t.composite(
        "frame_system::extensions::check_weight::CheckWeight",
        &skipped,
        vec![],
    );
    let compact_balance = t.compact(p.u64);
    let payment = t.composite(
        "pallet_transaction_payment::ChargeTransactionPayment",
        &skipped,
        vec![anon(compact_balance, Some("BalanceOf<T>"))],
    );
    let payment_wrapper = t.composite(
        "node_subtensor_runtime::transaction_payment_wrapper::ChargeTransactionPaymentWrapper",
        &skipped,
        vec![field("inner", payment, "ChargeTransactionPayment<T>")],
    );
    let sudo = t.composite(
        "node_subtensor_runtime::sudo_wrapper::SudoTransactionExtension",
        &runtime_generic,
        vec![],
    );
    let shield = t.composite(
        "pallet_shield::extension::CheckShieldedTxValidity",
        &runtime_generic,
        vec![],
    );
    let subtensor = t.composite(
        "pallet_subtensor::extensions::subtensor::SubtensorTransactionExtension",
        &runtime_generic,
        vec![],
    );
    let drand = t.composite(
        "pallet_drand::drand_priority::DrandPriority",
        &runtime_generic,
        vec![],
    );
    let mode = t.unit_enum(
        "frame_metadata_hash_extension::Mode",
        &[],
        &["Disabled", "Enabled"],
    );
    let metadata_hash = t.composite(
        "frame_metadata_hash_extension::CheckMetadataHash",
        &skipped,
        vec![field("mode", mode, "Mode")],
    );
    let maybe_hash = t.option(p.bytes32);

    // (extension, its type in the metadata list, implicit data)
    let list = [
        non_zero,
        spec,
        tx,
        genesis,
        mortality,
        nonce,
        weight,
        payment,
        sudo,
        shield,
        subtensor,
        drand,
        metadata_hash,
    ];
    let implicit = [
        p.unit, p.u32, p.u32, p.h256, p.h256, p.unit, p.unit, p.unit, p.unit, p.unit, p.unit,
        p.unit, maybe_hash,
    ];
    let transaction_extensions = EXTENSIONS
        .iter()
        .zip(list.iter().zip(implicit.iter()))
        .map(|(id, (ty, imp))| TransactionExtensionMetadata {
            identifier: (*id).to_owned(),
            ty: (*ty).into(),
            implicit: (*imp).into(),
        })
        .collect::<Vec<_>>();
    let all = (0..EXTENSIONS.len())
        .map(|i| Compact(u32::try_from(i).unwrap_or(u32::MAX)))
        .collect::<Vec<_>>();

    let system_group = t.tuple(&[non_zero, spec, tx, genesis, mortality, nonce, weight]);
    let subtensor_group = t.tuple(&[payment_wrapper, sudo, shield, subtensor, drand]);
    let extension_tuple = t.tuple(&[system_group, subtensor_group, metadata_hash]);

    let inner = t.composite(
        "sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic",
        &[
            ("Address", Some(p.address)),
            ("Call", Some(runtime_call)),
            ("Signature", Some(p.signature)),
            ("Extra", Some(extension_tuple)),
        ],
        vec![anon(p.bytes, None)],
    );
    let unchecked = t.composite(
        "fp_self_contained::unchecked_extrinsic::UncheckedExtrinsic",
        &[
            ("Address", Some(p.address)),
            ("Call", Some(runtime_call)),
            ("Signature", Some(p.signature)),
            ("Extension", Some(extension_tuple)),
        ],
        vec![anon(
            inner,
            Some("generic::UncheckedExtrinsic<Address, Call, Signature, Extension>"),
        )],
    );

    let metadata = ExtrinsicMetadata {
        versions: VERSIONS.to_vec(),
        address_ty: p.address.into(),
        call_ty: runtime_call.into(),
        signature_ty: p.signature.into(),
        transaction_extensions_by_version: BTreeMap::from([(0u8, all)]),
        transaction_extensions,
    };
    Extrinsic {
        metadata,
        unchecked,
        extra: extension_tuple,
    }
}
