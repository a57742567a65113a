//! Every call Sliver sends, encoded by the client, against an independent encoding: subxt's
//! dynamic encoder (named `scale_value`s, no generated types) driven by real finney metadata
//! (`metadata/finney.scale`), and hand-written SCALE bytes for the weight calls.
//! Also a whole signed extrinsic built offline against finney's metadata: its thirteen
//! transaction extensions and its signature.

use std::net::SocketAddr;
use std::sync::Arc;

use sliver_chain::client::{Axon, Call, NetUid, SubtensorConfig, Uid};
use sliver_chain::testing::{FINNEY_PATH, LOCAL_PATH, metadata_bytes};
use sliver_chain::wallet::{AccountId32, Keypair};
use subxt::config::substrate::{H256, SpecVersionForRange, SubstrateConfig};
use subxt::ext::frame_decode::extrinsics::{decode_extrinsic, encode_call_data};
use subxt::ext::scale_value::{Composite, Value};
use subxt::{Metadata, OfflineClient};

fn metadata(path: &str) -> Metadata {
    Metadata::decode_from(&metadata_bytes(path))
        .unwrap_or_else(|e| panic!("{path} does not decode: {e}"))
}

fn u(n: u64) -> Value {
    Value::u128(u128::from(n))
}

fn u16s(v: &[u16]) -> Value {
    Value::unnamed_composite(v.iter().map(|x| u(u64::from(*x))))
}

fn hotkey() -> AccountId32 {
    AccountId32([0x5a; 32])
}

/// Each call as the client builds it, and as named dynamic values.
fn cases() -> Vec<(Call, &'static str, &'static str, Composite<()>)> {
    let netuid = NetUid(9);
    let axon = Axon::new("203.0.113.7:8091".parse::<SocketAddr>().unwrap(), 7);
    let salt = [11u16, 12, 13, 14, 15, 16, 17, 18];
    vec![
        (
            Call::set_weights(netuid, &[Uid(0), Uid(3)], &[65535, 100], 42),
            "SubtensorModule",
            "set_weights",
            Composite::named([
                ("netuid", u(9)),
                ("dests", u16s(&[0, 3])),
                ("weights", u16s(&[65535, 100])),
                ("version_key", u(42)),
            ]),
        ),
        (
            Call::serve_axon(netuid, &axon),
            "SubtensorModule",
            "serve_axon",
            Composite::named([
                ("netuid", u(9)),
                ("version", u(7)),
                ("ip", Value::u128(0xCB00_7107)),
                ("port", u(8091)),
                ("ip_type", u(4)),
                ("protocol", u(4)),
                ("placeholder1", u(0)),
                ("placeholder2", u(0)),
            ]),
        ),
        (
            Call::burned_register(netuid, &hotkey()),
            "SubtensorModule",
            "burned_register",
            Composite::named([("netuid", u(9)), ("hotkey", Value::from_bytes(hotkey().0))]),
        ),
        (
            Call::commit_weights(netuid, [0xab; 32]),
            "SubtensorModule",
            "commit_weights",
            Composite::named([
                ("netuid", u(9)),
                ("commit_hash", Value::from_bytes([0xab; 32])),
            ]),
        ),
        (
            Call::reveal_weights(netuid, &[Uid(1)], &[5], &salt, 42),
            "SubtensorModule",
            "reveal_weights",
            Composite::named([
                ("netuid", u(9)),
                ("uids", u16s(&[1])),
                ("values", u16s(&[5])),
                ("salt", u16s(&salt)),
                ("version_key", u(42)),
            ]),
        ),
        (
            Call::set_commitment(netuid, b"s3://bucket/runs/a").unwrap(),
            "Commitments",
            "set_commitment",
            Composite::named([
                ("netuid", u(9)),
                (
                    "info",
                    Value::named_composite([(
                        "fields",
                        Value::unnamed_composite([Value::unnamed_variant(
                            "Raw18",
                            [Value::from_bytes(b"s3://bucket/runs/a")],
                        )]),
                    )]),
                ),
            ]),
        ),
    ]
}

#[test]
fn every_call_encodes_as_finney_metadata_says() {
    let finney = metadata(FINNEY_PATH);
    let local = metadata(LOCAL_PATH);
    for (call, pallet, name, args) in cases() {
        assert_eq!((call.pallet(), call.name()), (pallet, name));
        let theirs = encode_call_data(pallet, name, &args, &finney, finney.types())
            .unwrap_or_else(|e| panic!("{pallet}.{name} does not encode dynamically: {e}"));
        let ours_finney = call.call_data(&finney).unwrap();
        let ours_local = call.call_data(&local).unwrap();
        assert_eq!(ours_finney, theirs, "{pallet}.{name} against finney");
        assert_eq!(
            ours_local, theirs,
            "{pallet}.{name} against the local metadata"
        );
    }
}

#[test]
fn weight_calls_match_hand_written_scale() {
    let finney = metadata(FINNEY_PATH);
    // set_weights: pallet 7, call 0, netuid u16, Vec<u16> dests, Vec<u16> weights, u64.
    let mut expected = vec![7, 0, 9, 0, 2 << 2, 0, 0, 3, 0, 2 << 2, 0xff, 0xff, 100, 0];
    expected.extend_from_slice(&42u64.to_le_bytes());
    let call = Call::set_weights(NetUid(9), &[Uid(0), Uid(3)], &[65535, 100], 42);
    assert_eq!(call.call_data(&finney).unwrap(), expected);
    // commit_weights: pallet 7, call 96, netuid, H256.
    let mut expected = vec![7, 96, 9, 0];
    expected.extend_from_slice(&[0xab; 32]);
    let call = Call::commit_weights(NetUid(9), [0xab; 32]);
    assert_eq!(call.call_data(&finney).unwrap(), expected);
    // set_commitment: pallet 18, call 0, netuid, BoundedVec<Data> of one Raw3 (index 4).
    let call = Call::set_commitment(NetUid(9), b"abc").unwrap();
    assert_eq!(
        call.call_data(&finney).unwrap(),
        vec![18, 0, 9, 0, 1 << 2, 4, b'a', b'b', b'c']
    );
}

#[test]
fn signed_extrinsic_has_finneys_extensions_and_a_valid_signature() {
    let finney = metadata(FINNEY_PATH);
    let genesis = H256([0x11; 32]);
    let config = SubstrateConfig::builder()
        .set_genesis_hash(genesis)
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: 393,
            transaction_version: 1,
        }])
        .set_metadata_for_spec_versions([(393, Arc::new(metadata(FINNEY_PATH)))])
        .build();
    let client = OfflineClient::new_with_config(SubtensorConfig::from(config));
    let at = client.at_block(100u64).unwrap();
    let signer = Keypair::from_seed(&[3; 32]);
    let call = Call::set_weights(NetUid(9), &[Uid(0)], &[1], 0);
    let params = subxt::config::DefaultExtrinsicParamsBuilder::<SubtensorConfig>::new()
        .nonce(5)
        .mortal_from_unchecked(64, 100, H256([0x22; 32]))
        .build();
    let mut signable = at.tx().create_v4_signable_offline(&call, params).unwrap();
    let payload = signable.signer_payload().unwrap();
    let tx = signable.sign(&signer).unwrap();
    let bytes = tx.encoded().to_vec();

    let decoded = decode_extrinsic(&mut &bytes[..], &finney, finney.types()).unwrap();
    assert_eq!(
        (decoded.pallet_name(), decoded.call_name()),
        ("SubtensorModule", "set_weights")
    );
    assert!(decoded.is_signed());
    let names: Vec<&str> = decoded
        .transaction_extension_payload()
        .unwrap()
        .iter()
        .map(|e| e.name())
        .collect();
    assert_eq!(names.len(), 13, "{names:?}");
    assert_eq!(names.first(), Some(&"CheckNonZeroSender"));
    assert_eq!(names.last(), Some(&"CheckMetadataHash"));

    // Address: MultiAddress::Id (0) + account; signature: MultiSignature::Sr25519 (1) + 64 bytes
    // that verify over the signer payload (hashed when longer than 256 bytes).
    let sig = decoded.signature_payload().unwrap();
    let address = &bytes[sig.address_range()];
    assert_eq!(address[0], 0);
    assert_eq!(&address[1..], signer.account_id().0);
    let signature = &bytes[sig.signature_range()];
    assert_eq!(signature[0], 1);
    let signature: [u8; 64] = signature[1..].try_into().unwrap();
    let message = if payload.len() > 256 {
        subxt::ext::codec::Encode::encode(&sp_blake2_256(&payload))
    } else {
        payload.clone()
    };
    assert!(sliver_chain::wallet::verify(
        &signer.account_id(),
        &message,
        &signature
    ));
    // The signed payload carries the implicit data: spec 393, tx version 1, genesis hash.
    let tail = &payload[payload.len() - (4 + 4 + 32 + 32 + 1)..];
    assert_eq!(&tail[..4], &393u32.to_le_bytes());
    assert_eq!(&tail[4..8], &1u32.to_le_bytes());
    assert_eq!(&tail[8..40], &genesis.0);
    assert_eq!(&tail[40..72], &[0x22; 32]);
    assert_eq!(tail[72], 0, "CheckMetadataHash disabled: no metadata hash");
}

fn sp_blake2_256(data: &[u8]) -> [u8; 32] {
    use subxt::config::Hasher;
    subxt::config::substrate::BlakeTwo256.hash(data).0
}
