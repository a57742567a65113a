//! `SubnetInfoRuntimeApi`'s metagraph family against a spawned `btlocalnet`: after registering
//! neurons and staking a validator, `get_metagraph` (and its selective, mechanism, dynamic-info,
//! subnet-state and `_v2` siblings) is called through subxt with the local metadata, and the same
//! bytes are decoded with *finney's* types (`metadata/finney.scale`), proving that a
//! client built against finney reads what the local chain serves.

use std::time::Instant;

use frame_metadata::v16::RuntimeMetadataV16;
use parity_scale_codec::Encode;
use scale_value::{At, Value, ValueDef};
use sliver_chain::testing::{DevSigner, STEP_TIMEOUT, bounded};
use sliver_localnet::testing::finney;
use subxt::OnlineClient;
use subxt::client::{ClientAtBlock, OnlineClientAtBlockImpl};
use subxt::dynamic;
use subxt_signer::sr25519::dev;

use crate::net::LocalNet;
use crate::node_e2e::{Config, burned_register, connect, id, submit_finalized};

type AtBlock = ClientAtBlock<Config, OnlineClientAtBlockImpl<Config>>;

const NETUID: u16 = 9;
/// Rao staked on the validator.
const STAKE: u128 = 10_000_000_000;

/// Calls `SubnetInfoRuntimeApi_<method>` at `at` and decodes the bytes with finney's type for
/// its output, requiring every byte to be used.
async fn finney_call(
    f: &RuntimeMetadataV16,
    at: &AtBlock,
    method: &str,
    args: &[u8],
) -> Value<u32> {
    let api = f
        .apis
        .iter()
        .find(|a| a.name == "SubnetInfoRuntimeApi")
        .expect("finney has SubnetInfoRuntimeApi");
    let ty = api
        .methods
        .iter()
        .find(|m| m.name == method)
        .unwrap_or_else(|| panic!("finney has SubnetInfoRuntimeApi_{method}"))
        .output
        .id;
    let name = format!("SubnetInfoRuntimeApi_{method}");
    let bytes = bounded(&name, at.runtime_apis().call_raw(&name, Some(args)))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut input = &bytes[..];
    let value = scale_value::scale::decode_as_type(&mut input, ty, &f.types)
        .unwrap_or_else(|e| panic!("{name} does not decode as finney's type: {e}"));
    assert!(
        input.is_empty(),
        "{name}: {} bytes left after finney's type",
        input.len()
    );
    value
}

/// The value inside `Some`.
fn some<T>(v: &Value<T>) -> &Value<T> {
    match &v.value {
        ValueDef::Variant(var) if var.name == "Some" => v.at(0).expect("Some(_)"),
        _ => panic!("expected Some, got {v}"),
    }
}

fn is_none<T>(v: &Value<T>) -> bool {
    matches!(&v.value, ValueDef::Variant(var) if var.name == "None")
}

fn get<'a, T>(v: &'a Value<T>, name: &str) -> &'a Value<T> {
    v.at(name)
        .unwrap_or_else(|| panic!("no field {name} in {v}"))
}

fn items<T>(v: &Value<T>) -> Vec<&Value<T>> {
    match &v.value {
        ValueDef::Composite(c) => c.values().collect(),
        _ => panic!("expected a sequence, got {v}"),
    }
}

fn uint<T>(v: &Value<T>) -> u128 {
    v.as_u128()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn boolean<T>(v: &Value<T>) -> bool {
    v.as_bool()
        .unwrap_or_else(|| panic!("expected a bool, got {v}"))
}

/// The bytes of an account id (a composite of a `[u8; 32]`).
fn account<T>(v: &Value<T>) -> [u8; 32] {
    fn flat<T>(v: &Value<T>, out: &mut Vec<u8>) {
        match &v.value {
            ValueDef::Composite(c) => c.values().for_each(|x| flat(x, out)),
            _ => out.push(u8::try_from(uint(v)).expect("a byte")),
        }
    }
    let mut out = Vec::new();
    flat(v, &mut out);
    out.try_into().expect("32 bytes")
}

fn add_stake(hotkey: [u8; 32], netuid: u16, amount: u128) -> subxt::tx::DynamicPayload<Vec<Value>> {
    dynamic::transaction(
        "SubtensorModule",
        "add_stake",
        vec![
            Value::from_bytes(hotkey),
            Value::u128(u128::from(netuid)),
            Value::u128(amount),
        ],
    )
}

async fn stake_in_storage(at: &AtBlock, hotkey: [u8; 32], netuid: u16) -> u128 {
    let addr = dynamic::storage::<([u8; 32], u16), u64>("SubtensorModule", "TotalHotkeyAlpha");
    let v = bounded(
        "TotalHotkeyAlpha",
        at.storage().try_fetch(addr, (hotkey, netuid)),
    )
    .await
    .expect("TotalHotkeyAlpha");
    v.map_or(0, |v| u128::from(v.decode().expect("u64")))
}

/// Waits for the epoch that gives uid 0 (the staked validator) its permit; returns that block.
async fn wait_for_permit(api: &OnlineClient<Config>) -> AtBlock {
    let start = Instant::now();
    loop {
        let at = bounded("latest block", api.at_current_block())
            .await
            .expect("block");
        let m = bounded(
            "get_metagraph",
            at.runtime_apis()
                .call(dynamic::runtime_api_call::<_, Value>(
                    "SubnetInfoRuntimeApi",
                    "get_metagraph",
                    (NETUID,),
                )),
        )
        .await
        .expect("SubnetInfoRuntimeApi_get_metagraph");
        let permits = get(some(&m), "validator_permit");
        if items(permits).first().is_some_and(|p| boolean(p)) {
            return at;
        }
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "no validator permit within {STEP_TIMEOUT:?}: {m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn finney_typed_clients_read_the_metagraph() {
    let net = LocalNet::spawn(&["--block-time", "100", "--netuid", "9", "--tempo", "3"]);
    let api = connect(&net).await;
    let f = finney();

    let (bob, eve) = (dev::bob(), dev::eve());
    let hotkeys = [id(&dev::charlie()), id(&dev::dave()), id(&dev::ferdie())];
    let coldkeys = [id(&bob), id(&bob), id(&eve)];
    for (hotkey, coldkey) in hotkeys.iter().zip([&bob, &bob, &eve]) {
        submit_finalized(
            &api,
            &burned_register(NETUID, *hotkey),
            &DevSigner(coldkey.clone()),
        )
        .await;
    }
    submit_finalized(
        &api,
        &add_stake(hotkeys[0], NETUID, STAKE),
        &DevSigner(bob.clone()),
    )
    .await;

    let at = wait_for_permit(&api).await;
    let block = at.block_number();

    // Through subxt's runtime API with the local metadata...
    let local = bounded(
        "get_metagraph",
        at.runtime_apis()
            .call(dynamic::runtime_api_call::<_, Value>(
                "SubnetInfoRuntimeApi",
                "get_metagraph",
                (NETUID,),
            )),
    )
    .await
    .expect("SubnetInfoRuntimeApi_get_metagraph");
    // ...and the same call's bytes with finney's `Option<Metagraph>`.
    let fin = finney_call(&f, &at, "get_metagraph", &NETUID.encode()).await;
    assert_eq!(
        local.to_string(),
        fin.to_string(),
        "local and finney metadata decode the same metagraph"
    );

    let m = some(&fin);
    assert_eq!(uint(get(m, "netuid")), u128::from(NETUID));
    assert_eq!(uint(get(m, "block")), u128::from(block));
    assert_eq!(uint(get(m, "tempo")), 3);
    assert_eq!(uint(get(m, "num_uids")), 3);
    let got_hotkeys: Vec<[u8; 32]> = items(get(m, "hotkeys")).into_iter().map(account).collect();
    assert_eq!(got_hotkeys, hotkeys, "hotkeys by uid");
    let got_coldkeys: Vec<[u8; 32]> = items(get(m, "coldkeys")).into_iter().map(account).collect();
    assert_eq!(got_coldkeys, coldkeys, "coldkeys by uid");
    let permits: Vec<bool> = items(get(m, "validator_permit"))
        .into_iter()
        .map(boolean)
        .collect();
    assert_eq!(
        permits,
        [true, false, false],
        "only the staked hotkey has a permit"
    );
    let stakes: Vec<u128> = items(get(m, "alpha_stake")).into_iter().map(uint).collect();
    for (uid, hotkey) in hotkeys.iter().enumerate() {
        assert_eq!(
            stakes[uid],
            stake_in_storage(&at, *hotkey, NETUID).await,
            "alpha_stake of uid {uid} is TotalHotkeyAlpha"
        );
    }
    assert!(stakes[0] >= STAKE, "the validator's stake: {stakes:?}");
    let total: Vec<u128> = items(get(m, "total_stake")).into_iter().map(uint).collect();
    assert_eq!(total, stakes);
    for name in [
        "active",
        "last_update",
        "block_at_registration",
        "axons",
        "emission",
    ] {
        assert_eq!(items(get(m, name)).len(), 3, "{name} has one entry per uid");
    }
    for reg in items(get(m, "block_at_registration")) {
        assert!((1..=u128::from(block)).contains(&uint(reg)));
    }

    // Mechanism 0 is the metagraph; there is no other.
    let mech = finney_call(&f, &at, "get_mechagraph", &(NETUID, 0u8).encode()).await;
    assert_eq!(mech.to_string(), fin.to_string());
    assert!(is_none(
        &finney_call(&f, &at, "get_mechagraph", &(NETUID, 1u8).encode()).await
    ));
    assert!(is_none(
        &finney_call(&f, &at, "get_metagraph", &99u16.encode()).await
    ));

    // All metagraphs: the one subnet.
    let all = finney_call(&f, &at, "get_all_metagraphs", &[]).await;
    let all = items(&all);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].to_string(), fin.to_string());
    assert_eq!(
        items(&finney_call(&f, &at, "get_all_mechagraphs", &[]).await).len(),
        1
    );

    // Selective: hotkeys (52), validator_permit (57) and validators (72) only.
    let sel = finney_call(
        &f,
        &at,
        "get_selective_metagraph",
        &(NETUID, vec![52u16, 57, 72]).encode(),
    )
    .await;
    let sel = some(&sel);
    assert_eq!(uint(get(sel, "netuid")), u128::from(NETUID));
    assert!(is_none(get(sel, "name")) && is_none(get(sel, "alpha_stake")));
    let sel_hotkeys: Vec<[u8; 32]> = items(some(get(sel, "hotkeys")))
        .into_iter()
        .map(account)
        .collect();
    assert_eq!(sel_hotkeys, hotkeys);
    assert_eq!(
        some(get(sel, "validator_permit")).to_string(),
        get(m, "validator_permit").to_string()
    );
    let validators: Vec<u128> = items(some(get(sel, "validators")))
        .into_iter()
        .map(uint)
        .collect();
    assert_eq!(validators, [0]);
    let sel_mech = finney_call(
        &f,
        &at,
        "get_selective_mechagraph",
        &(NETUID, 0u8, vec![52u16, 57, 72]).encode(),
    )
    .await;
    assert_eq!(some(&sel_mech).to_string(), sel.to_string());

    // Dynamic info: the pool view of the same subnet.
    let dynamic = finney_call(&f, &at, "get_dynamic_info", &NETUID.encode()).await;
    let d = some(&dynamic);
    assert_eq!(uint(get(d, "netuid")), u128::from(NETUID));
    assert_eq!(uint(get(d, "alpha_out")), stakes.iter().sum::<u128>());
    assert_eq!(
        items(&finney_call(&f, &at, "get_all_dynamic_info", &[]).await).len(),
        1
    );

    // Subnet state, and the `_v2` info and hyperparameters.
    let state = finney_call(&f, &at, "get_subnet_state", &NETUID.encode()).await;
    let state_hotkeys: Vec<[u8; 32]> = items(get(some(&state), "hotkeys"))
        .into_iter()
        .map(account)
        .collect();
    assert_eq!(state_hotkeys, hotkeys);
    let info = finney_call(&f, &at, "get_subnet_info_v2", &NETUID.encode()).await;
    assert_eq!(uint(get(some(&info), "subnetwork_n")), 3);
    assert_eq!(
        items(&finney_call(&f, &at, "get_subnets_info_v2", &[]).await).len(),
        1
    );
    let hyper = finney_call(&f, &at, "get_subnet_hyperparams_v2", &NETUID.encode()).await;
    assert_eq!(uint(get(some(&hyper), "tempo")), 3);
    assert!(is_none(
        &finney_call(&f, &at, "get_subnet_to_prune", &[]).await
    ));
    assert!(is_none(
        &finney_call(
            &f,
            &at,
            "get_coldkey_auto_stake_hotkey",
            &(id(&bob), NETUID).encode()
        )
        .await
    ));
}
