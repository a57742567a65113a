//! Types shared by every pallet of the local chain's metadata: accounts, hashes, signatures,
//! weights, dispatch errors, digests and event phases, in the shape finney publishes them.

use super::registry::{TypeId, Types, anon, field, var};

/// Ids of the shared types, so that pallets can refer to them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prims {
    /// `u8`.
    pub u8: TypeId,
    /// `u16` (and the transparent `NetUid`).
    pub u16: TypeId,
    /// `u32`.
    pub u32: TypeId,
    /// `u64` (and the transparent balances).
    pub u64: TypeId,
    /// `u128`.
    pub u128: TypeId,
    /// `bool`.
    pub bool: TypeId,
    /// `()`.
    pub unit: TypeId,
    /// `Vec<u8>`.
    pub bytes: TypeId,
    /// `Vec<u16>`.
    pub vec_u16: TypeId,
    /// `[u8; 32]`.
    pub bytes32: TypeId,
    /// `sp_core::crypto::AccountId32`.
    pub account: TypeId,
    /// `primitive_types::H256`.
    pub h256: TypeId,
    /// `sp_runtime::multiaddress::MultiAddress<AccountId32, ()>`.
    pub address: TypeId,
    /// `sp_runtime::MultiSignature`.
    pub signature: TypeId,
    /// `sp_weights::weight_v2::Weight`.
    pub weight: TypeId,
    /// `frame_support::dispatch::DispatchClass`.
    pub dispatch_class: TypeId,
    /// `frame_system::DispatchEventInfo`.
    pub dispatch_event_info: TypeId,
    /// `sp_runtime::DispatchError`.
    pub dispatch_error: TypeId,
    /// `sp_runtime::generic::digest::Digest`.
    pub digest: TypeId,
    /// `frame_system::Phase`.
    pub phase: TypeId,
    /// `node_subtensor_runtime::Runtime`, the marker type some extensions are generic over.
    pub runtime: TypeId,
}

impl Prims {
    /// Registers the shared types.
    pub(crate) fn register(t: &mut Types) -> Self {
        let u8 = t.u8();
        let u16 = t.u16();
        let u32 = t.u32();
        let u64 = t.u64();
        let u128 = t.u128();
        let bool = t.bool();
        let unit = t.unit();
        let bytes = t.bytes();
        let vec_u16 = t.seq(u16);
        let compact_u64 = t.compact(u64);
        let bytes32 = t.byte_array(32);
        let bytes20 = t.byte_array(20);
        let bytes64 = t.byte_array(64);
        let bytes65 = t.byte_array(65);
        let bytes4 = t.byte_array(4);

        let account = t.composite(
            "sp_core::crypto::AccountId32",
            &[],
            vec![anon(bytes32, Some("[u8; 32]"))],
        );
        let h256 = t.composite(
            "primitive_types::H256",
            &[],
            vec![anon(bytes32, Some("[u8; 32]"))],
        );

        let compact_unit = t.compact(unit);
        let address = t.variant(
            "sp_runtime::multiaddress::MultiAddress",
            &[("AccountId", Some(account)), ("AccountIndex", Some(unit))],
            vec![
                var("Id", 0, vec![anon(account, Some("AccountId"))]),
                var("Index", 1, vec![anon(compact_unit, Some("AccountIndex"))]),
                var("Raw", 2, vec![anon(bytes, Some("Vec<u8>"))]),
                var("Address32", 3, vec![anon(bytes32, Some("[u8; 32]"))]),
                var("Address20", 4, vec![anon(bytes20, Some("[u8; 20]"))]),
            ],
        );
        let signature = t.variant(
            "sp_runtime::MultiSignature",
            &[],
            vec![
                var(
                    "Ed25519",
                    0,
                    vec![anon(bytes64, Some("ed25519::Signature"))],
                ),
                var(
                    "Sr25519",
                    1,
                    vec![anon(bytes64, Some("sr25519::Signature"))],
                ),
                var("Ecdsa", 2, vec![anon(bytes65, Some("ecdsa::Signature"))]),
            ],
        );

        let weight = t.composite(
            "sp_weights::weight_v2::Weight",
            &[],
            vec![
                field("ref_time", compact_u64, "u64"),
                field("proof_size", compact_u64, "u64"),
            ],
        );
        let dispatch_class = t.unit_enum(
            "frame_support::dispatch::DispatchClass",
            &[],
            &["Normal", "Operational", "Mandatory"],
        );
        let pays = t.unit_enum("frame_support::dispatch::Pays", &[], &["Yes", "No"]);
        let dispatch_event_info = t.composite(
            "frame_system::DispatchEventInfo",
            &[],
            vec![
                field("weight", weight, "Weight"),
                field("class", dispatch_class, "DispatchClass"),
                field("pays_fee", pays, "Pays"),
            ],
        );
        let dispatch_error = dispatch_error(t, u8, bytes4);

        let digest_item = t.variant(
            "sp_runtime::generic::digest::DigestItem",
            &[],
            vec![
                var(
                    "PreRuntime",
                    6,
                    vec![
                        anon(bytes4, Some("ConsensusEngineId")),
                        anon(bytes, Some("Vec<u8>")),
                    ],
                ),
                var(
                    "Consensus",
                    4,
                    vec![
                        anon(bytes4, Some("ConsensusEngineId")),
                        anon(bytes, Some("Vec<u8>")),
                    ],
                ),
                var(
                    "Seal",
                    5,
                    vec![
                        anon(bytes4, Some("ConsensusEngineId")),
                        anon(bytes, Some("Vec<u8>")),
                    ],
                ),
                var("Other", 0, vec![anon(bytes, Some("Vec<u8>"))]),
                var("RuntimeEnvironmentUpdated", 8, vec![]),
            ],
        );
        let logs = t.seq(digest_item);
        let digest = t.composite(
            "sp_runtime::generic::digest::Digest",
            &[],
            vec![field("logs", logs, "Vec<DigestItem>")],
        );
        let phase = t.variant(
            "frame_system::Phase",
            &[],
            vec![
                var("ApplyExtrinsic", 0, vec![anon(u32, Some("u32"))]),
                var("Finalization", 1, vec![]),
                var("Initialization", 2, vec![]),
            ],
        );
        let runtime = t.composite("node_subtensor_runtime::Runtime", &[], vec![]);

        Self {
            u8,
            u16,
            u32,
            u64,
            u128,
            bool,
            unit,
            bytes,
            vec_u16,
            bytes32,
            account,
            h256,
            address,
            signature,
            weight,
            dispatch_class,
            dispatch_event_info,
            dispatch_error,
            digest,
            phase,
            runtime,
        }
    }
}

/// `sp_runtime::DispatchError` and the error enums it carries.
fn dispatch_error(t: &mut Types, u8: TypeId, bytes4: TypeId) -> TypeId {
    let module_error = t.composite(
        "sp_runtime::ModuleError",
        &[],
        vec![
            field("index", u8, "u8"),
            field("error", bytes4, "[u8; MAX_MODULE_ERROR_ENCODED_SIZE]"),
        ],
    );
    let token = t.unit_enum(
        "sp_runtime::TokenError",
        &[],
        &[
            "FundsUnavailable",
            "OnlyProvider",
            "BelowMinimum",
            "CannotCreate",
            "UnknownAsset",
            "Frozen",
            "Unsupported",
            "CannotCreateHold",
            "NotExpendable",
            "Blocked",
        ],
    );
    let arithmetic = t.unit_enum(
        "sp_arithmetic::ArithmeticError",
        &[],
        &["Underflow", "Overflow", "DivisionByZero"],
    );
    let transactional = t.unit_enum(
        "sp_runtime::TransactionalError",
        &[],
        &["LimitReached", "NoLayer"],
    );
    let trie = t.unit_enum(
        "sp_runtime::proving_trie::TrieError",
        &[],
        &[
            "InvalidStateRoot",
            "IncompleteDatabase",
            "ValueAtIncompleteKey",
            "DecoderError",
            "InvalidHash",
            "DuplicateKey",
            "ExtraneousNode",
            "ExtraneousValue",
            "ExtraneousHashReference",
            "InvalidChildReference",
            "ValueMismatch",
            "IncompleteProof",
            "RootMismatch",
            "DecodeError",
        ],
    );
    t.variant(
        "sp_runtime::DispatchError",
        &[],
        vec![
            var("Other", 0, vec![]),
            var("CannotLookup", 1, vec![]),
            var("BadOrigin", 2, vec![]),
            var("Module", 3, vec![anon(module_error, Some("ModuleError"))]),
            var("ConsumerRemaining", 4, vec![]),
            var("NoProviders", 5, vec![]),
            var("TooManyConsumers", 6, vec![]),
            var("Token", 7, vec![anon(token, Some("TokenError"))]),
            var(
                "Arithmetic",
                8,
                vec![anon(arithmetic, Some("ArithmeticError"))],
            ),
            var(
                "Transactional",
                9,
                vec![anon(transactional, Some("TransactionalError"))],
            ),
            var("Exhausted", 10, vec![]),
            var("Corruption", 11, vec![]),
            var("Unavailable", 12, vec![]),
            var("RootNotAllowed", 13, vec![]),
            var("Trie", 14, vec![anon(trie, Some("TrieError"))]),
        ],
    )
}
