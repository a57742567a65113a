//! `btlocalnet` end to end over a real WebSocket with an unmodified subxt 0.51 client: reads,
//! signed transfers and registrations watched to finalized success, rejections with a node's
//! error codes, and a restart from the state file.

use std::time::Duration;

use sliver_chain::testing::{DevSigner, bounded};
use subxt::dynamic::{self, Value};
use subxt::ext::scale_value::At;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::{Keypair, dev};

use crate::net::LocalNet;

pub(crate) type Config = PolkadotConfig;

pub(crate) fn id(k: &Keypair) -> [u8; 32] {
    k.public_key().0
}

pub(crate) async fn connect(net: &LocalNet) -> OnlineClient<Config> {
    bounded("connecting", OnlineClient::<Config>::from_url(&net.url))
        .await
        .expect("subxt connects to btlocalnet")
}

async fn free_balance(api: &OnlineClient<Config>, who: [u8; 32]) -> u128 {
    nonce_and_free(api, who).await.1
}

/// `System.Account(who)`: the nonce and the free balance, at the latest block.
pub(crate) async fn nonce_and_free(api: &OnlineClient<Config>, who: [u8; 32]) -> (u128, u128) {
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let addr = dynamic::storage::<([u8; 32],), Value>("System", "Account");
    let info = bounded("System.Account", at.storage().fetch(addr, (who,)))
        .await
        .expect("System.Account")
        .decode()
        .expect("AccountInfo decodes");
    let nonce = info.at("nonce").and_then(|n| n.as_u128()).expect("nonce");
    let free = info
        .at("data")
        .and_then(|d| d.at("free"))
        .and_then(|f| f.as_u128())
        .expect("data.free");
    (nonce, free)
}

async fn uid(api: &OnlineClient<Config>, netuid: u16, hotkey: [u8; 32]) -> Option<u16> {
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let addr = dynamic::storage::<(u16, [u8; 32]), u16>("SubtensorModule", "Uids");
    bounded("Uids", at.storage().try_fetch(addr, (netuid, hotkey)))
        .await
        .expect("Uids")
        .map(|v| v.decode().expect("u16"))
}

fn account(who: [u8; 32]) -> Value {
    Value::unnamed_variant("Id", [Value::from_bytes(who)])
}

/// Signs `call` with `signer` and watches it to finalized success.
pub(crate) async fn submit_finalized(
    api: &OnlineClient<Config>,
    call: &subxt::tx::DynamicPayload<Vec<Value>>,
    signer: &DevSigner,
) {
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let progress = bounded(
        "submitting",
        at.transactions()
            .sign_and_submit_then_watch_default(call, signer),
    )
    .await
    .expect("the transaction is accepted");
    bounded("finalization", progress.wait_for_finalized_success())
        .await
        .expect("the transaction succeeds in a finalized block");
}

pub(crate) fn transfer(to: [u8; 32], amount: u128) -> subxt::tx::DynamicPayload<Vec<Value>> {
    dynamic::transaction(
        "Balances",
        "transfer_keep_alive",
        vec![account(to), Value::u128(amount)],
    )
}

pub(crate) fn burned_register(
    netuid: u16,
    hotkey: [u8; 32],
) -> subxt::tx::DynamicPayload<Vec<Value>> {
    dynamic::transaction(
        "SubtensorModule",
        "burned_register",
        vec![Value::u128(u128::from(netuid)), Value::from_bytes(hotkey)],
    )
}

#[tokio::test]
async fn subxt_reads_transfers_and_registers() {
    let net = LocalNet::spawn(&["--block-time", "100", "--netuid", "9"]);
    let api = connect(&net).await;

    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let number = bounded(
        "System.Number",
        at.storage()
            .fetch(dynamic::storage::<(), u32>("System", "Number"), ()),
    )
    .await
    .expect("System.Number")
    .decode()
    .expect("u32");
    assert_eq!(u64::from(number), at.block_number());

    let (alice, bob) = (dev::alice(), dev::bob());
    let before = free_balance(&api, id(&bob)).await;
    assert!(before > 0, "dev accounts are funded");
    submit_finalized(&api, &transfer(id(&bob), 7_000_000_000), &DevSigner(alice)).await;
    assert_eq!(free_balance(&api, id(&bob)).await, before + 7_000_000_000);

    let hotkey = dev::charlie();
    assert_eq!(uid(&api, 9, id(&hotkey)).await, None);
    submit_finalized(
        &api,
        &burned_register(9, id(&hotkey)),
        &DevSigner(dev::bob()),
    )
    .await;
    assert_eq!(uid(&api, 9, id(&hotkey)).await, Some(0));
    // The burn left Bob's coldkey.
    assert!(free_balance(&api, id(&bob)).await < before + 7_000_000_000);

    // The runtime API clients use for the metagraph sees the neuron.
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let neurons = bounded(
        "get_neurons_lite",
        at.runtime_apis()
            .call(dynamic::runtime_api_call::<_, Value>(
                "NeuronInfoRuntimeApi",
                "get_neurons_lite",
                (9u16,),
            )),
    )
    .await
    .expect("NeuronInfoRuntimeApi_get_neurons_lite");
    let hotkey_field = neurons
        .at(0)
        .and_then(|n| n.at("hotkey"))
        .map(|h| h.to_string());
    assert!(hotkey_field.is_some(), "one neuron: {neurons}");
}

fn rpc_error_text(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

#[tokio::test]
async fn bad_signature_and_stale_nonce_are_rejected_like_a_node() {
    let net = LocalNet::spawn(&["--block-time", "0"]);
    let api = connect(&net).await;
    let rpc = bounded("rpc client", subxt::rpcs::RpcClient::from_url(&net.url))
        .await
        .expect("rpc client");
    let alice = DevSigner(dev::alice());
    let bob = id(&dev::bob());

    // A correctly signed transfer with one signature byte flipped.
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let signed = bounded(
        "signing",
        at.transactions()
            .create_signed(&transfer(bob, 1_000_000_000), &alice, Default::default()),
    )
    .await
    .expect("signed");
    let mut bytes = signed.encoded().to_vec();
    // Compact length (2 bytes here), version, MultiAddress::Id (33), MultiSignature tag, then
    // the signature.
    bytes[2 + 1 + 33 + 1 + 10] ^= 0xff;
    let err = bounded(
        "author_submitExtrinsic",
        rpc.request::<String>(
            "author_submitExtrinsic",
            subxt::rpcs::rpc_params![format!("0x{}", hex::encode(&bytes))],
        ),
    )
    .await
    .expect_err("a bad signature is refused");
    let text = rpc_error_text(&err);
    assert!(
        text.contains("1010") && text.contains("bad signature"),
        "{text}"
    );

    // Nonce 0 is used, then reused.
    submit_finalized(&api, &transfer(bob, 1_000_000_000), &alice).await;
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let params = subxt::config::PolkadotExtrinsicParamsBuilder::<Config>::new()
        .nonce(0)
        .build();
    let stale = bounded(
        "signing",
        at.transactions()
            .create_signed(&transfer(bob, 2_000_000_000), &alice, params),
    )
    .await
    .expect("signed");
    let err = bounded("submitting a stale nonce", stale.submit())
        .await
        .expect_err("a stale nonce is refused");
    let text = rpc_error_text(&err);
    assert!(text.contains("1010") && text.contains("outdated"), "{text}");

    // A nonce from the future.
    let params = subxt::config::PolkadotExtrinsicParamsBuilder::<Config>::new()
        .nonce(7)
        .build();
    let future = bounded(
        "signing",
        at.transactions()
            .create_signed(&transfer(bob, 2_000_000_000), &alice, params),
    )
    .await
    .expect("signed");
    let err = bounded("submitting a future nonce", future.submit())
        .await
        .expect_err("a future nonce is refused");
    let text = rpc_error_text(&err);
    assert!(text.contains("future"), "{text}");
}

#[tokio::test]
async fn restart_from_the_state_file_keeps_registrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("chain.state");
    let state = state.to_str().expect("utf-8 path");
    let hotkey = id(&dev::dave());
    let (genesis, number) = {
        let net = LocalNet::spawn(&["--block-time", "0", "--state", state]);
        let api = connect(&net).await;
        submit_finalized(&api, &burned_register(9, hotkey), &DevSigner(dev::eve())).await;
        assert_eq!(uid(&api, 9, hotkey).await, Some(0));
        let at = bounded("latest block", api.at_current_block())
            .await
            .expect("block");
        (api.genesis_hash(), at.block_number())
        // dropped: the process is killed, as a crash would
    };
    let net = LocalNet::spawn(&["--block-time", "0", "--state", state, "--netuid", "3"]);
    let api = connect(&net).await;
    assert_eq!(api.genesis_hash(), genesis, "the same chain resumes");
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    assert!(at.block_number() >= number);
    assert_eq!(uid(&api, 9, hotkey).await, Some(0));
    // And it keeps building on it.
    submit_finalized(
        &api,
        &transfer(id(&dev::ferdie()), 1_000_000_000),
        &DevSigner(dev::eve()),
    )
    .await;
}

/// A block whose state cannot be made durable stops btlocalnet with an error, instead of the
/// RPC server filling a pool that no block will ever take.
#[test]
fn a_failing_block_producer_stops_the_process() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_btlocalnet"))
        .args([
            "--port",
            "0",
            "--block-time",
            "50",
            "--netuid",
            "1",
            "--tempo",
            "1",
        ])
        .arg("--state")
        .arg(state_dir.join("chain.state"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning btlocalnet");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    // Every epoch (tempo 1) changes the state, so the next blocks must be written: they cannot.
    std::fs::remove_dir_all(&state_dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("btlocalnet kept running after its state could no longer be written");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("block production stopped"), "{stderr}");
}

/// An extrinsic larger than a block can hold and one more than the pool holds are refused with
/// a node's error codes (1010 "exhaust the block limits", 1016 "Immediately Dropped").
#[tokio::test]
async fn the_pool_and_the_extrinsic_size_are_bounded_like_a_node() {
    // One block a minute: nothing leaves the pool while the test runs.
    let net = LocalNet::spawn(&["--block-time", "60000", "--pool-limit", "2"]);
    let api = connect(&net).await;
    let rpc = bounded("rpc client", subxt::rpcs::RpcClient::from_url(&net.url))
        .await
        .expect("rpc client");
    let submit = |bytes: Vec<u8>| {
        let rpc = rpc.clone();
        async move {
            bounded(
                "author_submitExtrinsic",
                rpc.request::<String>(
                    "author_submitExtrinsic",
                    subxt::rpcs::rpc_params![format!("0x{}", hex::encode(&bytes))],
                ),
            )
            .await
        }
    };

    let huge = vec![0u8; sliver_localnet::MAX_EXTRINSIC_LEN + 1];
    let text = rpc_error_text(submit(huge).await.expect_err("too large for any block"));
    assert!(
        text.contains("1010") && text.contains("exhaust the block limits"),
        "{text}"
    );

    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let to = id(&dev::dave());
    for (i, signer) in [dev::alice(), dev::bob(), dev::charlie()]
        .into_iter()
        .enumerate()
    {
        let signed = bounded(
            "signing",
            at.transactions().create_signed(
                &transfer(to, 1_000_000_000),
                &DevSigner(signer),
                Default::default(),
            ),
        )
        .await
        .expect("signed");
        let result = submit(signed.encoded().to_vec()).await;
        if i < 2 {
            result.expect("the pool has room");
        } else {
            let text = rpc_error_text(result.expect_err("the pool is full"));
            assert!(
                text.contains("1016") && text.contains("Immediately Dropped"),
                "{text}"
            );
        }
    }
}

/// One HTTP JSON-RPC request with the given extra headers; returns the status line and body.
fn http_post(url: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("ws://");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}"#;
    let mut request = format!(
        "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    request += body;
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("sending");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Only this machine may drive the chain: a request whose `Host` names another site (DNS
/// rebinding) or that carries another site's `Origin` (a web page) is refused.
#[test]
fn web_pages_of_other_sites_cannot_drive_the_chain() {
    let net = LocalNet::spawn(&["--block-time", "100"]);
    let ok = |r: &str| r.starts_with("HTTP/1.1 200") && r.contains("btlocalnet");

    let plain = http_post(&net.url, &[]);
    assert!(ok(&plain), "{plain}");
    let local_page = http_post(&net.url, &[("Origin", "http://localhost:3000")]);
    assert!(ok(&local_page), "{local_page}");

    let rebinding = http_post(&net.url, &[("Host", "evil.example:9944")]);
    assert!(
        !ok(&rebinding) && !rebinding.contains("btlocalnet"),
        "{rebinding}"
    );
    let foreign_page = http_post(&net.url, &[("Origin", "https://evil.example")]);
    assert!(
        !ok(&foreign_page) && !foreign_page.contains("btlocalnet"),
        "{foreign_page}"
    );
}
