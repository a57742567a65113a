//! The local chain's metadata against finney's (`metadata/finney.scale`): everything
//! the local chain describes has finney's shape, subxt computes the same hashes for it, the items
//! Sliver uses are all there, and calls, storage keys and runtime API arguments encode to the same
//! bytes against either metadata.

use frame_metadata::v16::{RuntimeMetadataV16, StorageEntryType, StorageHasher};
use scale_info::TypeDef;
use scale_value::Value;
use sliver_chain::testing::finney_bytes;
use sliver_localnet::testing::{finney, local};

use crate::shape::Shapes;

/// A pallet name, its index, and (call name, call index) pairs.
type PalletCalls = (&'static str, u8, &'static [(&'static str, u8)]);

/// Calls Sliver and its tests submit, by pallet, with the indices finney gives them.
const CALLS: &[PalletCalls] = &[
    ("System", 0, &[("remark", 0)]),
    (
        "Balances",
        5,
        &[("transfer_allow_death", 0), ("transfer_keep_alive", 3)],
    ),
    (
        "SubtensorModule",
        7,
        &[
            ("set_weights", 0),
            ("add_stake", 2),
            ("serve_axon", 4),
            ("burned_register", 7),
            ("register_network", 59),
            ("commit_weights", 96),
            ("reveal_weights", 97),
            ("commit_timelocked_weights", 113),
        ],
    ),
    ("Commitments", 18, &[("set_commitment", 0)]),
];

/// Storage Sliver reads.
const STORAGE: &[(&str, &[&str])] = &[
    (
        "System",
        &[
            "Account",
            "Number",
            "BlockHash",
            "ParentHash",
            "Events",
            "EventCount",
        ],
    ),
    ("Timestamp", &["Now"]),
    (
        "SubtensorModule",
        &[
            "Tempo",
            "SubnetworkN",
            "Uids",
            "Keys",
            "Owner",
            "Axons",
            "Weights",
            "Active",
            "ValidatorPermit",
            "LastUpdate",
            "Incentive",
            "Dividends",
            "Emission",
            "TotalHotkeyAlpha",
            "BlockAtRegistration",
            "WeightsSetRateLimit",
            "WeightsVersionKey",
            "CommitRevealWeightsEnabled",
            "RevealPeriodEpochs",
            "WeightCommits",
            "TimelockedWeightCommits",
            "CommitRevealWeightsVersion",
            "NetworksAdded",
            "TotalNetworks",
            "Burn",
            "MaxAllowedUids",
            "MaxAllowedValidators",
            "ImmunityPeriod",
            "SubnetOwner",
        ],
    ),
    ("Commitments", &["CommitmentOf", "LastCommitment"]),
    ("Drand", &["BeaconConfig", "Pulses", "LastStoredRound"]),
];

/// Runtime APIs clients call.
const APIS: &[(&str, &[&str])] = &[
    ("Core", &["version"]),
    (
        "Metadata",
        &["metadata", "metadata_at_version", "metadata_versions"],
    ),
    ("TaggedTransactionQueue", &["validate_transaction"]),
    ("AccountNonceApi", &["account_nonce"]),
    (
        "TransactionPaymentApi",
        &["query_info", "query_fee_details"],
    ),
    (
        "NeuronInfoRuntimeApi",
        &[
            "get_neurons",
            "get_neuron",
            "get_neurons_lite",
            "get_neuron_lite",
        ],
    ),
    (
        "SubnetInfoRuntimeApi",
        &[
            "get_subnet_info",
            "get_subnets_info",
            "get_subnet_info_v2",
            "get_subnets_info_v2",
            "get_subnet_hyperparams",
            "get_subnet_hyperparams_v2",
            "get_all_dynamic_info",
            "get_dynamic_info",
            "get_metagraph",
            "get_all_metagraphs",
            "get_selective_metagraph",
            "get_mechagraph",
            "get_all_mechagraphs",
            "get_selective_mechagraph",
            "get_subnet_state",
            "get_coldkey_auto_stake_hotkey",
            "get_subnet_to_prune",
        ],
    ),
];

#[test]
fn everything_local_has_finneys_shape() {
    let (l, f) = (local(), finney());
    let mut s = Shapes::new(&l.types, &f.types);
    for lp in &l.pallets {
        let Some(fp) = f.pallets.iter().find(|p| p.name == lp.name) else {
            s.errs.push(format!("pallet {} is not finney's", lp.name));
            continue;
        };
        if lp.index != fp.index {
            s.errs.push(format!(
                "pallet {} index {} vs finney {}",
                lp.name, lp.index, fp.index
            ));
        }
        if let Some(ls) = &lp.storage {
            let Some(fs) = &fp.storage else {
                s.errs
                    .push(format!("{} has storage, finney's has none", lp.name));
                continue;
            };
            if ls.prefix != fs.prefix {
                s.errs.push(format!(
                    "{} storage prefix {} vs finney {}",
                    lp.name, ls.prefix, fs.prefix
                ));
            }
            for le in &ls.entries {
                let at = format!("{}.{}", lp.name, le.name);
                let Some(fe) = fs.entries.iter().find(|e| e.name == le.name) else {
                    s.errs.push(format!("storage {at} is not finney's"));
                    continue;
                };
                if le.modifier != fe.modifier {
                    s.errs.push(format!(
                        "{at}: modifier {:?} vs finney {:?}",
                        le.modifier, fe.modifier
                    ));
                }
                if le.default != fe.default {
                    s.errs.push(format!(
                        "{at}: default {:?} vs finney {:?}",
                        le.default, fe.default
                    ));
                }
                match (&le.ty, &fe.ty) {
                    (StorageEntryType::Plain(a), StorageEntryType::Plain(b)) => {
                        s.same(&at, a.id, b.id)
                    }
                    (
                        StorageEntryType::Map {
                            hashers: lh,
                            key: lk,
                            value: lv,
                        },
                        StorageEntryType::Map {
                            hashers: fh,
                            key: fk,
                            value: fv,
                        },
                    ) => {
                        if lh != fh {
                            s.errs
                                .push(format!("{at}: hashers {lh:?} vs finney {fh:?}"));
                        }
                        s.same(&format!("{at} key"), lk.id, fk.id);
                        s.same(&format!("{at} value"), lv.id, fv.id);
                    }
                    _ => s
                        .errs
                        .push(format!("{at}: plain vs map differs from finney")),
                }
            }
        }
        let pairs = [
            (
                "calls",
                lp.calls.as_ref().map(|c| c.ty.id),
                fp.calls.as_ref().map(|c| c.ty.id),
            ),
            (
                "events",
                lp.event.as_ref().map(|c| c.ty.id),
                fp.event.as_ref().map(|c| c.ty.id),
            ),
            (
                "errors",
                lp.error.as_ref().map(|c| c.ty.id),
                fp.error.as_ref().map(|c| c.ty.id),
            ),
        ];
        for (what, a, b) in pairs {
            match (a, b) {
                (Some(a), Some(b)) => s.same(&format!("{} {what}", lp.name), a, b),
                (Some(_), None) => s
                    .errs
                    .push(format!("{} has {what}, finney's has none", lp.name)),
                _ => {}
            }
        }
        for lc in &lp.constants {
            let at = format!("{}.{} (constant)", lp.name, lc.name);
            match fp.constants.iter().find(|c| c.name == lc.name) {
                None => s.errs.push(format!("{at} is not finney's")),
                Some(fc) => {
                    s.same(&at, lc.ty.id, fc.ty.id);
                    if lc.value != fc.value {
                        s.errs.push(format!(
                            "{at}: value {:?} vs finney {:?}",
                            lc.value, fc.value
                        ));
                    }
                }
            }
        }
    }

    let (le, fe) = (&l.extrinsic, &f.extrinsic);
    if le.versions != fe.versions {
        s.errs.push(format!(
            "extrinsic versions {:?} vs finney {:?}",
            le.versions, fe.versions
        ));
    }
    s.same("extrinsic address", le.address_ty.id, fe.address_ty.id);
    s.same(
        "extrinsic signature",
        le.signature_ty.id,
        fe.signature_ty.id,
    );
    s.same("extrinsic call", le.call_ty.id, fe.call_ty.id);
    if le.transaction_extensions_by_version != fe.transaction_extensions_by_version {
        s.errs
            .push("transaction extensions by version differ".to_owned());
    }
    let ids = |e: &frame_metadata::v16::ExtrinsicMetadata<scale_info::form::PortableForm>| {
        e.transaction_extensions
            .iter()
            .map(|x| x.identifier.clone())
            .collect::<Vec<String>>()
    };
    if ids(le) != ids(fe) {
        s.errs.push(format!(
            "transaction extensions {:?} vs finney {:?}",
            ids(le),
            ids(fe)
        ));
    }
    for (a, b) in le
        .transaction_extensions
        .iter()
        .zip(&fe.transaction_extensions)
    {
        s.same(&format!("extension {}", a.identifier), a.ty.id, b.ty.id);
        s.same(
            &format!("extension {} implicit", a.identifier),
            a.implicit.id,
            b.implicit.id,
        );
    }

    s.same(
        "RuntimeCall",
        l.outer_enums.call_enum_ty.id,
        f.outer_enums.call_enum_ty.id,
    );
    s.same(
        "RuntimeEvent",
        l.outer_enums.event_enum_ty.id,
        f.outer_enums.event_enum_ty.id,
    );
    s.same(
        "RuntimeError",
        l.outer_enums.error_enum_ty.id,
        f.outer_enums.error_enum_ty.id,
    );

    for la in &l.apis {
        let Some(fa) = f.apis.iter().find(|a| a.name == la.name) else {
            s.errs
                .push(format!("runtime API {} is not finney's", la.name));
            continue;
        };
        if la.version != fa.version {
            s.errs.push(format!(
                "runtime API {} version {:?} vs finney {:?}",
                la.name, la.version, fa.version
            ));
        }
        for lm in &la.methods {
            let at = format!("{}_{}", la.name, lm.name);
            let Some(fm) = fa.methods.iter().find(|m| m.name == lm.name) else {
                s.errs
                    .push(format!("runtime API method {at} is not finney's"));
                continue;
            };
            let names = |m: &frame_metadata::v16::RuntimeApiMethodMetadata<
                scale_info::form::PortableForm,
            >| {
                m.inputs
                    .iter()
                    .map(|i| i.name.clone())
                    .collect::<Vec<String>>()
            };
            if names(lm) != names(fm) {
                s.errs.push(format!(
                    "{at}: inputs {:?} vs finney {:?}",
                    names(lm),
                    names(fm)
                ));
            }
            for (a, b) in lm.inputs.iter().zip(&fm.inputs) {
                s.same(&format!("{at}({})", a.name), a.ty.id, b.ty.id);
            }
            s.same(&format!("{at} output"), lm.output.id, fm.output.id);
        }
    }

    assert!(
        s.errs.is_empty(),
        "{} differences from finney:\n{}",
        s.errs.len(),
        s.errs.join("\n")
    );
}

#[test]
fn subxt_validation_hashes_match_finney() {
    let local_bytes = sliver_localnet::metadata::metadata_bytes();
    let l = subxt_metadata::Metadata::decode_from(&local_bytes)
        .expect("subxt accepts the local metadata");
    let f = subxt_metadata::Metadata::decode_from(&finney_bytes())
        .expect("subxt accepts finney's metadata");
    let mut errs = Vec::new();
    for lp in l.pallets() {
        let fp = f
            .pallet_by_name(lp.name())
            .expect("pallet exists on finney");
        for v in lp.call_variants().unwrap_or_default() {
            if lp.call_hash(&v.name) != fp.call_hash(&v.name) {
                errs.push(format!("call {}.{}", lp.name(), v.name));
            }
        }
        for e in lp.storage().map(|s| s.entries()).unwrap_or_default() {
            // `Events` holds the outer `RuntimeEvent`, of which the local chain has a subset, so
            // subxt's whole-type hash must differ; its shape is checked with subset rules above.
            if (lp.name(), e.name()) == ("System", "Events") {
                continue;
            }
            if lp.storage_hash(e.name()) != fp.storage_hash(e.name()) {
                errs.push(format!("storage {}.{}", lp.name(), e.name()));
            }
        }
        for c in lp.constants() {
            if lp.constant_hash(c.name()) != fp.constant_hash(c.name()) {
                errs.push(format!("constant {}.{}", lp.name(), c.name()));
            }
        }
    }
    for la in l.runtime_api_traits() {
        let fa = f
            .runtime_api_trait_by_name(la.name())
            .expect("runtime API exists on finney");
        for m in la.methods() {
            if Some(m.hash()) != fa.method_by_name(m.name()).map(|fm| fm.hash()) {
                errs.push(format!("runtime API {}_{}", la.name(), m.name()));
            }
        }
    }
    assert!(
        errs.is_empty(),
        "subxt sees these differently from finney: {errs:?}"
    );
}

#[test]
fn sliver_items_are_all_present_with_finneys_indices() {
    let l = local();
    for (pallet, index, calls) in CALLS {
        let p = l
            .pallets
            .iter()
            .find(|p| p.name == *pallet)
            .unwrap_or_else(|| panic!("pallet {pallet} missing"));
        assert_eq!(p.index, *index, "pallet {pallet} index");
        let call_ty = p
            .calls
            .as_ref()
            .unwrap_or_else(|| panic!("{pallet} has no calls"))
            .ty
            .id;
        let TypeDef::Variant(v) = &l.types.resolve(call_ty).expect("call type").type_def else {
            panic!("{pallet} calls are not an enum")
        };
        for (call, call_index) in *calls {
            let var = v
                .variants
                .iter()
                .find(|x| x.name == *call)
                .unwrap_or_else(|| panic!("{pallet}.{call} missing"));
            assert_eq!(var.index, *call_index, "{pallet}.{call} call index");
        }
    }
    for (pallet, entries) in STORAGE {
        let p = l
            .pallets
            .iter()
            .find(|p| p.name == *pallet)
            .unwrap_or_else(|| panic!("pallet {pallet} missing"));
        let storage = p
            .storage
            .as_ref()
            .unwrap_or_else(|| panic!("{pallet} has no storage"));
        for entry in *entries {
            assert!(
                storage.entries.iter().any(|e| e.name == *entry),
                "storage {pallet}.{entry} missing"
            );
        }
    }
    for (api, methods) in APIS {
        let a = l
            .apis
            .iter()
            .find(|a| a.name == *api)
            .unwrap_or_else(|| panic!("runtime API {api} missing"));
        for m in *methods {
            assert!(
                a.methods.iter().any(|x| x.name == *m),
                "runtime API {api}_{m} missing"
            );
        }
    }
    let ids: Vec<&str> = l
        .extrinsic
        .transaction_extensions
        .iter()
        .map(|e| e.identifier.as_str())
        .collect();
    assert_eq!(ids, sliver_localnet::metadata::TRANSACTION_EXTENSIONS);
    assert_eq!(
        l.extrinsic.versions,
        sliver_localnet::metadata::EXTRINSIC_VERSIONS
    );
}

// ---- encoding the same thing against both metadata ----

fn encode_call(md: &RuntimeMetadataV16, pallet: &str, call: &str, args: &[Value]) -> Vec<u8> {
    let p = md
        .pallets
        .iter()
        .find(|p| p.name == pallet)
        .expect("pallet");
    let call_ty = p.calls.as_ref().expect("calls").ty.id;
    let TypeDef::Variant(v) = &md.types.resolve(call_ty).expect("call type").type_def else {
        panic!("call enum")
    };
    let var = v
        .variants
        .iter()
        .find(|x| x.name == call)
        .expect("call variant");
    assert_eq!(var.fields.len(), args.len(), "{pallet}.{call} arity");
    let mut out = vec![p.index, var.index];
    for (f, a) in var.fields.iter().zip(args) {
        scale_value::scale::encode_as_type(a, f.ty.id, &md.types, &mut out)
            .unwrap_or_else(|e| panic!("{pallet}.{call} arg {:?}: {e}", f.name));
    }
    out
}

fn hash_key(hasher: &StorageHasher, data: &[u8]) -> Vec<u8> {
    use sp_crypto_hashing::{blake2_128, blake2_256, twox_64, twox_128, twox_256};
    match hasher {
        StorageHasher::Blake2_128 => blake2_128(data).to_vec(),
        StorageHasher::Blake2_256 => blake2_256(data).to_vec(),
        StorageHasher::Blake2_128Concat => [&blake2_128(data)[..], data].concat(),
        StorageHasher::Twox128 => twox_128(data).to_vec(),
        StorageHasher::Twox256 => twox_256(data).to_vec(),
        StorageHasher::Twox64Concat => [&twox_64(data)[..], data].concat(),
        StorageHasher::Identity => data.to_vec(),
    }
}

fn storage_key(md: &RuntimeMetadataV16, pallet: &str, entry: &str, keys: &[Value]) -> Vec<u8> {
    let p = md
        .pallets
        .iter()
        .find(|p| p.name == pallet)
        .expect("pallet");
    let s = p.storage.as_ref().expect("storage");
    let e = s.entries.iter().find(|e| e.name == entry).expect("entry");
    let mut out = [
        sp_crypto_hashing::twox_128(s.prefix.as_bytes()),
        sp_crypto_hashing::twox_128(entry.as_bytes()),
    ]
    .concat();
    let StorageEntryType::Map { hashers, key, .. } = &e.ty else {
        assert!(keys.is_empty());
        return out;
    };
    let key_tys: Vec<u32> = if hashers.len() == 1 {
        vec![key.id]
    } else {
        let TypeDef::Tuple(t) = &md.types.resolve(key.id).expect("key type").type_def else {
            panic!("key tuple")
        };
        t.fields.iter().map(|f| f.id).collect()
    };
    assert_eq!(key_tys.len(), keys.len(), "{pallet}.{entry} key count");
    for ((h, ty), k) in hashers.iter().zip(key_tys).zip(keys) {
        let mut enc = Vec::new();
        scale_value::scale::encode_as_type(k, ty, &md.types, &mut enc).expect("encode key");
        out.extend(hash_key(h, &enc));
    }
    out
}

fn u(n: u128) -> Value {
    Value::u128(n)
}

fn account(b: u8) -> Value {
    Value::from_bytes([b; 32])
}

fn u16s(xs: &[u16]) -> Value {
    Value::unnamed_composite(xs.iter().map(|x| u(u128::from(*x))))
}

#[test]
fn calls_encode_to_the_same_bytes() {
    let (l, f) = (local(), finney());
    let commitment = Value::named_composite([(
        "fields",
        Value::unnamed_composite([
            Value::unnamed_variant("Raw5", [Value::from_bytes(b"hello")]),
            Value::unnamed_variant("Sha256", [Value::from_bytes([7u8; 32])]),
        ]),
    )]);
    let cases: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "SubtensorModule",
            "set_weights",
            vec![u(9), u16s(&[0, 1, 2]), u16s(&[100, 200, 65535]), u(7)],
        ),
        (
            "SubtensorModule",
            "serve_axon",
            vec![u(9), u(1), u(0x7f00_0001), u(8091), u(4), u(0), u(0), u(0)],
        ),
        ("SubtensorModule", "burned_register", vec![u(9), account(1)]),
        (
            "SubtensorModule",
            "add_stake",
            vec![account(2), u(9), u(1_000_000_000)],
        ),
        ("SubtensorModule", "register_network", vec![account(2)]),
        (
            "SubtensorModule",
            "commit_weights",
            vec![u(9), Value::from_bytes([3u8; 32])],
        ),
        (
            "SubtensorModule",
            "reveal_weights",
            vec![u(9), u16s(&[0, 1]), u16s(&[10, 20]), u16s(&[1, 2, 3]), u(7)],
        ),
        ("Commitments", "set_commitment", vec![u(9), commitment]),
        (
            "Balances",
            "transfer_keep_alive",
            vec![Value::unnamed_variant("Id", [account(4)]), u(12_345)],
        ),
        ("System", "remark", vec![Value::from_bytes(b"sliver")]),
    ];
    for (pallet, call, args) in cases {
        let a = encode_call(&l, pallet, call, &args);
        let b = encode_call(&f, pallet, call, &args);
        assert_eq!(a, b, "{pallet}.{call} encodes differently");
    }
}

#[test]
fn storage_keys_are_the_same() {
    let (l, f) = (local(), finney());
    let cases: Vec<(&str, &str, Vec<Value>)> = vec![
        ("System", "Account", vec![account(1)]),
        ("System", "Number", vec![]),
        ("System", "BlockHash", vec![u(5)]),
        ("SubtensorModule", "Tempo", vec![u(9)]),
        ("SubtensorModule", "Uids", vec![u(9), account(1)]),
        ("SubtensorModule", "Keys", vec![u(9), u(3)]),
        ("SubtensorModule", "Axons", vec![u(9), account(1)]),
        ("SubtensorModule", "Weights", vec![u(9), u(3)]),
        (
            "SubtensorModule",
            "TotalHotkeyAlpha",
            vec![account(1), u(9)],
        ),
        ("SubtensorModule", "WeightCommits", vec![u(9), account(1)]),
        ("SubtensorModule", "RevealPeriodEpochs", vec![u(9)]),
        (
            "SubtensorModule",
            "TransactionKeyLastBlock",
            vec![account(1), u(9), u(2)],
        ),
        ("Commitments", "CommitmentOf", vec![u(9), account(1)]),
    ];
    for (pallet, entry, keys) in cases {
        assert_eq!(
            storage_key(&l, pallet, entry, &keys),
            storage_key(&f, pallet, entry, &keys),
            "{pallet}.{entry} key differs"
        );
    }
}
