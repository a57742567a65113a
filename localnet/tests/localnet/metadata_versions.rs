//! The local chain serves its metadata as a subtensor node does: `Metadata_metadata_versions`
//! lists 14, 15 and 16, `Metadata_metadata_at_version` answers each, `state_getMetadata` is V14.
//! All three describe the same pallets, calls, storage items and (V15, V16) runtime APIs.

use std::collections::BTreeSet;

use frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
use parity_scale_codec::{Decode, Encode};
use scale_info::{PortableRegistry, TypeDef};
use subxt::ext::jsonrpsee::core::client::ClientT;
use subxt::ext::jsonrpsee::rpc_params;
use subxt::ext::jsonrpsee::ws_client::WsClientBuilder;

use crate::net::LocalNet;

/// Pallet name → (call names, storage names).
type Pallets = Vec<(String, BTreeSet<String>, BTreeSet<String>)>;

fn variants(types: &PortableRegistry, id: u32) -> BTreeSet<String> {
    match types.resolve(id).map(|t| &t.type_def) {
        Some(TypeDef::Variant(v)) => v.variants.iter().map(|v| v.name.clone()).collect(),
        other => panic!("call type {id} is not an enum: {other:?}"),
    }
}

/// What a metadata blob describes: its version, pallets, and runtime APIs with their methods.
fn described(bytes: &[u8]) -> (u32, Pallets, Option<BTreeSet<String>>) {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).expect("metadata decodes");
    macro_rules! pallets {
        ($m:expr) => {
            $m.pallets
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.calls
                            .as_ref()
                            .map(|c| variants(&$m.types, c.ty.id))
                            .unwrap_or_default(),
                        p.storage
                            .as_ref()
                            .map(|s| s.entries.iter().map(|e| e.name.clone()).collect())
                            .unwrap_or_default(),
                    )
                })
                .collect::<Pallets>()
        };
    }
    macro_rules! apis {
        ($m:expr) => {
            Some(
                $m.apis
                    .iter()
                    .flat_map(|a| {
                        a.methods
                            .iter()
                            .map(move |f| format!("{}_{}", a.name, f.name))
                    })
                    .collect::<BTreeSet<String>>(),
            )
        };
    }
    match prefixed.1 {
        RuntimeMetadata::V14(m) => (14, pallets!(m), None),
        RuntimeMetadata::V15(m) => (15, pallets!(m), apis!(m)),
        RuntimeMetadata::V16(m) => (16, pallets!(m), apis!(m)),
        other => panic!("unexpected metadata V{}", other.version()),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).expect("hex")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_a_node_serves_describes_the_same_chain() {
    let net = LocalNet::spawn(&["--block-time", "100"]);
    let rpc = WsClientBuilder::default()
        .build(&net.url)
        .await
        .expect("connecting");
    let state_call = |method: &'static str, args: Vec<u8>| {
        let rpc = &rpc;
        async move {
            let out: String = rpc
                .request(
                    "state_call",
                    rpc_params![method, format!("0x{}", hex::encode(args))],
                )
                .await
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            unhex(&out)
        }
    };

    let versions =
        Vec::<u32>::decode(&mut &state_call("Metadata_metadata_versions", vec![]).await[..])
            .expect("a list of versions");
    assert_eq!(versions, vec![14, 15, 16]);

    let mut seen = Vec::new();
    for v in versions {
        let answer = state_call("Metadata_metadata_at_version", v.encode()).await;
        let blob = Option::<Vec<u8>>::decode(&mut &answer[..])
            .expect("an optional blob")
            .unwrap_or_else(|| panic!("no metadata at version {v}"));
        let (version, pallets, apis) = described(&blob);
        assert_eq!(version, v);
        seen.push((pallets, apis));
    }
    let none = state_call("Metadata_metadata_at_version", 13u32.encode()).await;
    assert_eq!(Option::<Vec<u8>>::decode(&mut &none[..]).unwrap(), None);

    let legacy: String = rpc
        .request("state_getMetadata", rpc_params![])
        .await
        .expect("state_getMetadata");
    assert_eq!(
        described(&unhex(&legacy)).0,
        14,
        "state_getMetadata answers V14, as a node does"
    );

    let (v14, v15, v16) = (&seen[0], &seen[1], &seen[2]);
    assert!(!v16.0.is_empty());
    assert_eq!(
        v14.0, v16.0,
        "V14 and V16 describe different pallets, calls or storage"
    );
    assert_eq!(
        v15.0, v16.0,
        "V15 and V16 describe different pallets, calls or storage"
    );
    assert_eq!(v15.1, v16.1, "V15 and V16 describe different runtime APIs");
    let apis = v16.1.as_ref().expect("V16 has runtime APIs");
    assert!(
        apis.contains("SubnetInfoRuntimeApi_get_metagraph"),
        "{apis:?}"
    );
    let (_, calls, storage) = v16
        .0
        .iter()
        .find(|(name, ..)| name == "SubtensorModule")
        .expect("SubtensorModule");
    assert!(calls.contains("commit_weights"), "{calls:?}");
    assert!(storage.contains("Keys"), "{storage:?}");
}
