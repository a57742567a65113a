//! Runtime API descriptions (`state_call` targets): `Core`, `Metadata`, `TaggedTransactionQueue`,
//! `AccountNonceApi`, `TransactionPaymentApi`, and subtensor's `NeuronInfoRuntimeApi` and
//! `SubnetInfoRuntimeApi` (in [`subnet`], its metagraph types in [`metagraph`]), with finney's
//! trait versions, method names, inputs and return types.

use frame_metadata::v16::{
    FunctionParamMetadata, ItemDeprecationInfo, RuntimeApiMetadata, RuntimeApiMethodMetadata,
};
use parity_scale_codec::Compact;
use scale_info::form::PortableForm;

use super::output::Declared;
use super::primitives::Prims;
use super::registry::{TypeId, Types, anon, field, var};
use super::types::Cx;

pub(crate) mod metagraph;
mod subnet;

/// The runtime APIs' output structures, each declared with `output!` next to the values it is
/// served from (`runtime_api`): the metadata describes each by its [`Declared`] fields. A type
/// parameter of the metadata builders, so that the metadata does not depend on the runtime that
/// fills them.
pub(crate) trait Outputs {
    /// The fields `NeuronInfo` and `NeuronInfoLite` begin with.
    type NeuronHead: Declared;
    /// The fields only `NeuronInfo` has, after the head's.
    type NeuronWeights: Declared;
    /// The field `NeuronInfo` and `NeuronInfoLite` end with.
    type NeuronPruning: Declared;
    /// `SubnetInfo`.
    type SubnetInfo: Declared;
    /// The field `SubnetInfov2` has after `SubnetInfo`'s.
    type SubnetInfoV2Extra: Declared;
    /// `SubnetHyperparams`.
    type SubnetHyperparams: Declared;
    /// The fields `SubnetHyperparamsV2` has after `SubnetHyperparams`'.
    type HyperparamsV2Extra: Declared;
    /// `Metagraph`.
    type Metagraph: Declared;
    /// The fields `SelectiveMetagraph` has after `Metagraph`'s.
    type SelectiveExtra: Declared;
    /// The field `SubnetState` has after its [`metagraph::SUBNET_STATE`] fields.
    type EmissionHistory: Declared;
}

pub(crate) fn method(
    name: &str,
    inputs: &[(&str, TypeId)],
    output: TypeId,
) -> RuntimeApiMethodMetadata<PortableForm> {
    RuntimeApiMethodMetadata {
        name: name.to_owned(),
        inputs: inputs
            .iter()
            .map(|(n, ty)| FunctionParamMetadata {
                name: (*n).to_owned(),
                ty: (*ty).into(),
            })
            .collect(),
        output: output.into(),
        docs: Vec::new(),
        deprecation_info: ItemDeprecationInfo::NotDeprecated,
    }
}

pub(crate) fn api(
    name: &str,
    version: u32,
    methods: Vec<RuntimeApiMethodMetadata<PortableForm>>,
) -> RuntimeApiMetadata<PortableForm> {
    RuntimeApiMetadata {
        name: name.to_owned(),
        methods,
        docs: Vec::new(),
        version: Compact(version),
        deprecation_info: ItemDeprecationInfo::NotDeprecated,
    }
}

/// The runtime APIs, their output structures those of `O`; `unchecked` is the extrinsic type
/// some of them take.
pub(crate) fn apis<O: Outputs>(
    t: &mut Types,
    p: &Prims,
    unchecked: TypeId,
) -> Vec<RuntimeApiMetadata<PortableForm>> {
    vec![
        api(
            "Core",
            5,
            vec![method("version", &[], runtime_version(t, p))],
        ),
        metadata_api(t, p),
        tagged_transaction_queue(t, p, unchecked),
        api(
            "AccountNonceApi",
            1,
            vec![method("account_nonce", &[("account", p.account)], p.u32)],
        ),
        transaction_payment(t, p, unchecked),
        neuron_info::<O>(t, p),
        subnet::subnet_info::<O>(t, p),
    ]
}

fn runtime_version(t: &mut Types, p: &Prims) -> TypeId {
    let str = t.str();
    let cow_str = t.composite("Cow", &[("T", Some(str))], vec![anon(str, None)]);
    let id = t.byte_array(8);
    let entry = t.tuple(&[id, p.u32]);
    let entries = t.seq(entry);
    let apis = t.composite("Cow", &[("T", Some(entries))], vec![anon(entries, None)]);
    t.composite(
        "sp_version::RuntimeVersion",
        &[],
        vec![
            field("spec_name", cow_str, "Cow<'static, str>"),
            field("impl_name", cow_str, "Cow<'static, str>"),
            field("authoring_version", p.u32, "u32"),
            field("spec_version", p.u32, "u32"),
            field("impl_version", p.u32, "u32"),
            field("apis", apis, "ApisVec"),
            field("transaction_version", p.u32, "u32"),
            field("system_version", p.u8, "u8"),
        ],
    )
}

fn metadata_api(t: &mut Types, p: &Prims) -> RuntimeApiMetadata<PortableForm> {
    let opaque = t.composite(
        "sp_core::OpaqueMetadata",
        &[],
        vec![anon(p.bytes, Some("Vec<u8>"))],
    );
    let maybe = t.option(opaque);
    let versions = t.seq(p.u32);
    api(
        "Metadata",
        2,
        vec![
            method("metadata", &[], opaque),
            method("metadata_at_version", &[("version", p.u32)], maybe),
            method("metadata_versions", &[], versions),
        ],
    )
}

fn tagged_transaction_queue(
    t: &mut Types,
    p: &Prims,
    unchecked: TypeId,
) -> RuntimeApiMetadata<PortableForm> {
    let source = t.unit_enum(
        "sp_runtime::transaction_validity::TransactionSource",
        &[],
        &["InBlock", "Local", "External"],
    );
    let tags = t.seq(p.bytes);
    let valid = t.composite(
        "sp_runtime::transaction_validity::ValidTransaction",
        &[],
        vec![
            field("priority", p.u64, "TransactionPriority"),
            field("requires", tags, "Vec<TransactionTag>"),
            field("provides", tags, "Vec<TransactionTag>"),
            field("longevity", p.u64, "TransactionLongevity"),
            field("propagate", p.bool, "bool"),
        ],
    );
    let invalid = t.variant(
        "sp_runtime::transaction_validity::InvalidTransaction",
        &[],
        [
            "Call",
            "Payment",
            "Future",
            "Stale",
            "BadProof",
            "AncientBirthBlock",
            "ExhaustsResources",
            "Custom",
            "BadMandatory",
            "MandatoryValidation",
            "BadSigner",
            "IndeterminateImplicit",
            "UnknownOrigin",
        ]
        .into_iter()
        .zip(0u8..)
        .map(|(name, i)| {
            let fields = if name == "Custom" {
                vec![anon(p.u8, Some("u8"))]
            } else {
                vec![]
            };
            var(name, i, fields)
        })
        .collect(),
    );
    let unknown = t.variant(
        "sp_runtime::transaction_validity::UnknownTransaction",
        &[],
        vec![
            var("CannotLookup", 0, vec![]),
            var("NoUnsignedValidator", 1, vec![]),
            var("Custom", 2, vec![anon(p.u8, Some("u8"))]),
        ],
    );
    let validity_error = t.variant(
        "sp_runtime::transaction_validity::TransactionValidityError",
        &[],
        vec![
            var(
                "Invalid",
                0,
                vec![anon(invalid, Some("InvalidTransaction"))],
            ),
            var(
                "Unknown",
                1,
                vec![anon(unknown, Some("UnknownTransaction"))],
            ),
        ],
    );
    let out = t.result(valid, validity_error);
    api(
        "TaggedTransactionQueue",
        3,
        vec![method(
            "validate_transaction",
            &[
                ("source", source),
                ("tx", unchecked),
                ("block_hash", p.h256),
            ],
            out,
        )],
    )
}

fn transaction_payment(
    t: &mut Types,
    p: &Prims,
    unchecked: TypeId,
) -> RuntimeApiMetadata<PortableForm> {
    let info = t.composite(
        "pallet_transaction_payment::types::RuntimeDispatchInfo",
        &[("Balance", Some(p.u64)), ("Weight", Some(p.weight))],
        vec![
            field("weight", p.weight, "Weight"),
            field("class", p.dispatch_class, "DispatchClass"),
            field("partial_fee", p.u64, "Balance"),
        ],
    );
    let inclusion = t.composite(
        "pallet_transaction_payment::types::InclusionFee",
        &[("Balance", Some(p.u64))],
        vec![
            field("base_fee", p.u64, "Balance"),
            field("len_fee", p.u64, "Balance"),
            field("adjusted_weight_fee", p.u64, "Balance"),
        ],
    );
    let maybe_inclusion = t.option(inclusion);
    let details = t.composite(
        "pallet_transaction_payment::types::FeeDetails",
        &[("Balance", Some(p.u64))],
        vec![
            field(
                "inclusion_fee",
                maybe_inclusion,
                "Option<InclusionFee<Balance>>",
            ),
            field("tip", p.u64, "Balance"),
        ],
    );
    let args = [("uxt", unchecked), ("len", p.u32)];
    api(
        "TransactionPaymentApi",
        4,
        vec![
            method("query_info", &args, info),
            method("query_fee_details", &args, details),
        ],
    )
}

/// `NeuronInfoRuntimeApi`.
fn neuron_info<O: Outputs>(t: &mut Types, p: &Prims) -> RuntimeApiMetadata<PortableForm> {
    let head = O::NeuronHead::fields(&mut Cx::new(t, p));
    let weights = O::NeuronWeights::fields(&mut Cx::new(t, p));
    let pruning = O::NeuronPruning::fields(&mut Cx::new(t, p));
    let full = [head.clone(), weights, pruning.clone()].concat();
    let lite = [head, pruning].concat();
    let generic = [("AccountId", Some(p.account))];
    let neuron = t.composite(
        "pallet_subtensor::rpc_info::neuron_info::NeuronInfo",
        &generic,
        full,
    );
    let neuron_lite = t.composite(
        "pallet_subtensor::rpc_info::neuron_info::NeuronInfoLite",
        &generic,
        lite,
    );
    let neurons = t.seq(neuron);
    let maybe_neuron = t.option(neuron);
    let neurons_lite = t.seq(neuron_lite);
    let maybe_neuron_lite = t.option(neuron_lite);
    let net = [("netuid", p.u16)];
    let net_uid = [("netuid", p.u16), ("uid", p.u16)];
    api(
        "NeuronInfoRuntimeApi",
        1,
        vec![
            method("get_neurons", &net, neurons),
            method("get_neuron", &net_uid, maybe_neuron),
            method("get_neurons_lite", &net, neurons_lite),
            method("get_neuron_lite", &net_uid, maybe_neuron_lite),
        ],
    )
}
