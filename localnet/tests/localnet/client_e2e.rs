//! The subtensor client (`sliver_chain::client`) end to end against a spawned `btlocalnet`:
//! wallets in a tempdir, registration, stake, axon, commitment, metagraph, set weights, commit
//! then reveal, and the refusals (by the client before paying, and by the chain) each with an
//! error that names the problem.

use std::future::Future;
use std::time::Duration;

use sliver_chain::client::{
    Axon, BlockNumber, Call, Client, Endpoint, Error, NetUid, RejectionKind, RevealWindow,
    SubtensorConfig, TxOptions, Uid, Weights,
};
use sliver_chain::testing::{DevSigner, bounded};
use sliver_chain::wallet::{AccountId32, Keypair, PasswordSource, Wallet};
use subxt::utils::MultiSignature;
use subxt_signer::sr25519::dev;

use crate::net::LocalNet;

const NETUID: NetUid = NetUid(1);
const TAO: u64 = 1_000_000_000;
/// Claims to be `claimed` but signs with another key: a forged signature.
struct Forger {
    claimed: AccountId32,
    key: Keypair,
}

impl subxt::tx::Signer<SubtensorConfig> for Forger {
    fn account_id(&self) -> AccountId32 {
        self.claimed
    }

    fn sign(&self, payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.key.sign(payload))
    }
}

/// `btlocalnet` with one fast subnet, and a client connected to it.
async fn chain(commit_reveal: bool) -> (LocalNet, Client) {
    let net = LocalNet::spawn(&[
        "--block-time",
        "100",
        "--netuid",
        "1",
        "--tempo",
        "10",
        "--weights-rate-limit",
        "20",
        "--reveal-period",
        "1",
        "--commit-reveal",
        if commit_reveal { "true" } else { "false" },
    ]);
    let endpoint = Endpoint::url(&net.url).expect("btlocalnet prints a ws:// URL");
    let client = bounded("connecting", Client::connect(endpoint))
        .await
        .expect("connecting to btlocalnet");
    (net, client)
}

/// A validator (own coldkey wallet, funded by Alice, staked) and two miners (paid by Bob),
/// registered; waits until the validator holds a permit.
struct Subnet {
    _dir: tempfile::TempDir,
    validator: Keypair,
    miners: Vec<Keypair>,
}

impl Subnet {
    /// The miners' uids in `mg`.
    fn miner_uids(&self, mg: &sliver_chain::client::Metagraph) -> Vec<Uid> {
        self.miners
            .iter()
            .map(|k| mg.uid_of(&k.account_id()).unwrap())
            .collect()
    }
}

async fn populate(client: &Client) -> Subnet {
    let dir = tempfile::tempdir().unwrap();
    let password = PasswordSource::given("test password");
    let vwallet = Wallet::new("validator", "default", dir.path()).unwrap();
    let vcold = vwallet.create_coldkey(&password, false).unwrap();
    let validator = vwallet.create_hotkey(false).unwrap();
    let miners: Vec<Keypair> = (0..2)
        .map(|i| {
            let w = Wallet::new("miner", format!("m{i}"), dir.path()).unwrap();
            w.create_hotkey(false).unwrap()
        })
        .collect();
    // What the files hold is what signs.
    assert_eq!(
        vwallet.hotkey().unwrap().account_id(),
        validator.account_id()
    );
    assert_eq!(vwallet.coldkeypub().unwrap(), vcold.account_id());

    let alice = DevSigner(dev::alice());
    bounded(
        "funding the validator's coldkey",
        client.transfer(&alice, &vcold.account_id(), 10 * TAO),
    )
    .await
    .expect("transfer from //Alice");
    let vuid = bounded(
        "registering the validator",
        client.burned_register(NETUID, &vcold, &validator.account_id()),
    )
    .await
    .expect("burned_register (validator)");
    // Registering again is a no-op that returns the same uid.
    let again = client
        .burned_register(NETUID, &vcold, &validator.account_id())
        .await
        .unwrap();
    assert_eq!(again, vuid);
    let bob = DevSigner(dev::bob());
    for m in &miners {
        bounded(
            "registering a miner",
            client.burned_register(NETUID, &bob, &m.account_id()),
        )
        .await
        .expect("burned_register (miner)");
    }
    bounded(
        "staking",
        client.add_stake(NETUID, &vcold, &validator.account_id(), 5 * TAO),
    )
    .await
    .expect("add_stake");

    bounded("waiting for the validator permit", async {
        loop {
            let mg = client.metagraph(NETUID).await.unwrap();
            if mg.neuron(vuid).is_some_and(|n| n.validator_permit) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    Subnet {
        _dir: dir,
        validator,
        miners,
    }
}

/// Runs `f`; if the client refuses with [`Error::RateLimited`] (a new neuron's `LastUpdate` is
/// its registration block, so it waits `WeightsSetRateLimit` blocks like any other), waits for
/// the block it names and runs `f` again.
async fn after_rate_limit<T, F, Fut>(client: &Client, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    match f().await {
        Err(Error::RateLimited { next_allowed, .. }) => {
            // The extrinsic lands one block after the finalized block it is sent at.
            let ready = BlockNumber(next_allowed.0.saturating_sub(1));
            bounded("waiting out the rate limit", client.wait_for_block(ready))
                .await
                .unwrap();
            f().await
        }
        other => other,
    }
}

fn weights_on(miners: &[Uid]) -> Weights {
    Weights::from_pairs(miners.iter().map(|u| (*u, 100)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_serve_commit_and_set_weights() {
    let (_net, client) = chain(false).await;
    let net = populate(&client).await;

    // Axon and commitment of a miner.
    let miner = &net.miners[0];
    let addr = "1.2.3.4:8091".parse().unwrap();
    bounded(
        "serving an axon",
        client.serve_axon(NETUID, miner, Axon::new(addr, 3)),
    )
    .await
    .expect("serve_axon");
    let location = b"s3://sliver-local/runs/demo?endpoint=http://127.0.0.1:9000";
    bounded(
        "committing a storage location",
        client.set_commitment(NETUID, miner, location),
    )
    .await
    .expect("set_commitment");
    let c = client
        .commitment(NETUID, &miner.account_id())
        .await
        .unwrap()
        .expect("the commitment is stored");
    assert_eq!(c.data, location);
    let all = client.commitments(NETUID).await.unwrap();
    assert!(
        all.iter()
            .any(|(h, c)| *h == miner.account_id() && c.data == location)
    );

    // The metagraph reflects all of it.
    let mg = client.metagraph(NETUID).await.unwrap();
    assert_eq!(mg.len(), 3, "{mg:#?}");
    let v = mg.by_hotkey(&net.validator.account_id()).unwrap();
    assert!(v.validator_permit && v.stake > 0, "{v:#?}");
    let m = mg.by_hotkey(&miner.account_id()).unwrap();
    assert_eq!(m.coldkey, AccountId32(dev::bob().public_key().0));
    let axon = m.axon.expect("the miner's axon");
    assert_eq!((axon.addr, axon.version), (Some(addr), 3));
    let miner_uids: Vec<Uid> = net
        .miners
        .iter()
        .map(|k| mg.uid_of(&k.account_id()).unwrap())
        .collect();

    // Weights: set once, then refused by the client before paying (rate limit)...
    let params = client.subnet_params(NETUID).await.unwrap();
    assert!(!params.commit_reveal);
    let weights = weights_on(&miner_uids);
    let set = bounded(
        "setting weights",
        after_rate_limit(&client, || {
            client.set_weights(NETUID, &net.validator, &weights, params.weights_version_key)
        }),
    )
    .await
    .expect("set_weights");
    let mg = client.metagraph(NETUID).await.unwrap();
    let v = mg.by_hotkey(&net.validator.account_id()).unwrap();
    assert_eq!(v.last_update, set.block);
    let err = client
        .set_weights(NETUID, &net.validator, &weights, params.weights_version_key)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err}");
    assert!(
        err.is_rate_limited() && err.to_string().contains("WeightsSetRateLimit"),
        "{err}"
    );
    // ... and by the chain when sent anyway, with the module error's name.
    let raw = Call::set_weights(NETUID, weights.uids(), weights.values(), 0);
    let err = bounded(
        "sending weights too fast",
        client.submit(&raw, &net.validator),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.module_error().map(ToString::to_string).as_deref(),
        Some("SubtensorModule::SettingWeightsTooFast"),
        "{err}"
    );
    assert!(err.is_rate_limited());
    assert!(
        err.to_string()
            .contains("SubtensorModule::SettingWeightsTooFast"),
        "{err}"
    );

    // Commit-reveal is off here.
    let err = client
        .commit_weights(NETUID, &net.validator, &weights, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitRevealDisabled { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_problem() {
    let (_net, client) = chain(false).await;
    let alice = DevSigner(dev::alice());
    let bob = AccountId32(dev::bob().public_key().0);

    // An unregistered hotkey: refused by the client, and by the chain when sent anyway.
    let stranger = Keypair::generate();
    let weights = Weights::from_pairs([(Uid(0), 1)]);
    let err = client
        .set_weights(NETUID, &stranger, &weights, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotRegistered { .. }), "{err}");
    assert!(
        err.to_string().contains("not registered on subnet 1"),
        "{err}"
    );
    let err = client
        .serve_axon(
            NETUID,
            &stranger,
            Axon::new("1.2.3.4:1".parse().unwrap(), 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotRegistered { .. }), "{err}");
    client
        .transfer(&alice, &stranger.account_id(), TAO)
        .await
        .expect("funding the stranger");
    let raw = Call::serve_axon(NETUID, &Axon::new("1.2.3.4:1".parse().unwrap(), 1));
    let err = bounded(
        "an axon from an unregistered hotkey",
        client.submit(&raw, &stranger),
    )
    .await
    .unwrap_err();
    let name = err.module_error().map(|m| m.name.clone());
    assert!(
        matches!(
            name.as_deref(),
            Some("HotKeyNotRegisteredInSubNet" | "HotKeyNotRegisteredInNetwork")
        ),
        "{err}"
    );

    // A forged signature: the pool refuses it, nothing is paid.
    let forger = Forger {
        claimed: AccountId32(dev::alice().public_key().0),
        key: Keypair::generate(),
    };
    let err = bounded(
        "a forged transfer",
        client.submit(&Call::transfer_keep_alive(&bob, 1), &forger),
    )
    .await
    .unwrap_err();
    let Error::Rejected { rejection, .. } = &err else {
        panic!("expected a rejection, got {err}");
    };
    assert_eq!(rejection.kind(), RejectionKind::BadSignature, "{err}");
    assert!(err.to_string().contains("bad signature"), "{err}");

    // A stale nonce: Alice has sent two transfers, nonce 0 is used.
    let opts = TxOptions {
        nonce: Some(0),
        ..TxOptions::default()
    };
    let err = bounded(
        "a transfer with a used nonce",
        client.submit_with(&Call::transfer_keep_alive(&bob, 1), &alice, opts),
    )
    .await
    .unwrap_err();
    let Error::Rejected { rejection, .. } = &err else {
        panic!("expected a rejection, got {err}");
    };
    assert_eq!(rejection.kind(), RejectionKind::StaleNonce, "{err}");
    assert!(err.to_string().contains("stale nonce"), "{err}");
    // The client recovers its nonce afterwards.
    client
        .transfer(&alice, &bob, 1)
        .await
        .expect("a transfer after the stale one");

    // A subnet that does not exist.
    let err = client.metagraph(NetUid(77)).await.unwrap_err();
    assert!(
        matches!(err, Error::SubnetNotFound { netuid: NetUid(77) }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_reveal_in_the_window() {
    let (_net, client) = chain(true).await;
    let net = populate(&client).await;
    let mg = client.metagraph(NETUID).await.unwrap();
    let miner_uids = net.miner_uids(&mg);
    let weights = weights_on(&miner_uids);
    let params = client.subnet_params(NETUID).await.unwrap();
    assert!(params.commit_reveal);

    let err = client
        .set_weights(NETUID, &net.validator, &weights, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitRevealEnabled { .. }), "{err}");

    let pending = bounded(
        "committing weights",
        after_rate_limit(&client, || {
            client.commit_weights(NETUID, &net.validator, &weights, params.weights_version_key)
        }),
    )
    .await
    .expect("commit_weights");
    assert!(pending.window.first > pending.commit_block, "{pending:?}");
    assert_eq!(
        pending.window.last.0 - pending.window.first.0,
        u64::from(params.tempo)
    );

    // Too early: refused by the client. With 100 ms blocks a commit made in an epoch's last
    // block sees its window open before the reveal is tried; then the reveal succeeds and the
    // refusal cannot be shown (the rest of the test does not depend on it).
    let now = client.current_block().await.unwrap();
    if now.0 + 2 < pending.window.first.0 {
        let err = client
            .reveal_weights(&net.validator, &pending)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RevealTooEarly { .. }), "{err}");
    } else {
        eprintln!(
            "commit at block {now:?}, window opens at {:?}: too late to show the too-early refusal",
            pending.window.first
        );
    }

    // A wrong salt: refused by the client (no such commit) ...
    let mut wrong = pending.clone();
    wrong.salt[0] ^= 1;
    let err = client
        .reveal_weights(&net.validator, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingCommit { .. }), "{err}");
    // ... and by the chain inside the window, with the module error's name.
    bounded(
        "waiting for the reveal window",
        client.wait_for_block(BlockNumber(pending.window.first.0.saturating_sub(1))),
    )
    .await
    .unwrap();
    let raw = Call::reveal_weights(
        NETUID,
        wrong.weights.uids(),
        wrong.weights.values(),
        &wrong.salt,
        wrong.version_key,
    );
    let err = bounded(
        "revealing with a wrong salt",
        client.submit(&raw, &net.validator),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.module_error().map(|m| m.name.as_str()),
        Some("InvalidRevealCommitHashNotMatch"),
        "{err}"
    );

    let revealed = bounded(
        "revealing",
        client.reveal_when_ready(&net.validator, &pending),
    )
    .await
    .expect("reveal_weights");
    assert!(
        pending.window.contains(revealed.block),
        "{revealed:?} {pending:?}"
    );
    // The commit is consumed: revealing it again finds nothing.
    let err = client
        .reveal_weights(&net.validator, &pending)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingCommit { .. }), "{err}");
}

/// Commit-reveal v4: weights encrypted to a drand round are not on chain until the chain's
/// beacon has published that round in the commit's reveal epoch; then the chain decrypts and
/// sets them itself, and they read back as committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelocked_commit_is_revealed_by_the_chain_at_its_round() {
    let (_net, client) = chain(true).await;
    let net = populate(&client).await;
    let mg = client.metagraph(NETUID).await.unwrap();
    let miner_uids = net.miner_uids(&mg);
    let validator = mg.uid_of(&net.validator.account_id()).unwrap();
    let weights = Weights::from_pairs([(miner_uids[0], 100), (miner_uids[1], 50)]);
    let params = client.subnet_params(NETUID).await.unwrap();
    let commit = bounded(
        "committing timelocked weights",
        after_rate_limit(&client, || {
            client.commit_timelocked_weights(
                NETUID,
                &net.validator,
                &weights,
                params.weights_version_key,
            )
        }),
    )
    .await
    .expect("commit_timelocked_weights");
    assert!(commit.window.first > commit.commit_block, "{commit:?}");
    let before = client.current_block().await.unwrap();
    if before < commit.window.first {
        assert!(
            client
                .weights_of(NETUID, validator)
                .await
                .unwrap()
                .is_empty(),
            "weights on chain at block {before:?}, before the reveal epoch {:?}",
            commit.window
        );
    }
    bounded(
        "waiting for the reveal epoch to end",
        client.wait_for_block(commit.window.last),
    )
    .await
    .unwrap();
    assert!(client.last_drand_round().await.unwrap() >= commit.reveal_round);
    let on_chain = client.weights_of(NETUID, validator).await.unwrap();
    assert_eq!(
        on_chain,
        vec![(miner_uids[0], u16::MAX), (miner_uids[1], u16::MAX / 2)],
        "{commit:?}"
    );

    // A commit that does not open with its (published) round's pulse is dropped by the chain:
    // the weights stay as they were.
    bounded(
        "waiting out the rate limit",
        client.wait_for_block(commit.commit_block.plus(params.weights_rate_limit)),
    )
    .await
    .unwrap();
    let round = client.last_drand_round().await.unwrap();
    let garbage = Call::commit_timelocked_weights(NETUID, vec![7u8; 300], round, 4);
    let included = bounded(
        "committing what does not decrypt",
        after_rate_limit(&client, || client.submit(&garbage, &net.validator)),
    )
    .await
    .expect("the chain takes the commit; it cannot tell until the reveal");
    let window =
        RevealWindow::of_commit(NETUID, params.tempo, params.reveal_period, included.block);
    bounded(
        "waiting for the garbage commit's reveal epoch to end",
        // One more epoch: a commit landing on an epoch's block counts in the next one.
        client.wait_for_block(window.last.plus(u64::from(params.tempo) + 2)),
    )
    .await
    .unwrap();
    assert_eq!(
        client.weights_of(NETUID, validator).await.unwrap(),
        on_chain
    );
}

/// The client takes the legacy RPC path even when the node also lists `chainHead_v1_*` (as
/// subtensor nodes do): the same path every test here runs. The chain below lists those methods
/// without serving them and counts the calls; subxt's default client, which follows the listing
/// (and falls back to the legacy methods when they fail), is the control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_uses_the_legacy_backend_when_chain_head_is_offered() {
    use subxt::ext::jsonrpsee::core::client::ClientT;
    use subxt::ext::jsonrpsee::rpc_params;
    use subxt::ext::jsonrpsee::ws_client::WsClientBuilder;

    let chain_head = [
        "chainHead_v1_follow",
        "chainHead_v1_unfollow",
        "chainHead_v1_header",
        "chainHead_v1_body",
        "chainHead_v1_storage",
        "chainHead_v1_call",
        "chainHead_v1_continue",
        "chainHead_v1_stopOperation",
        "chainHead_v1_unpin",
        "transactionWatch_v1_submitAndWatch",
        "transactionWatch_v1_unwatch",
    ]
    .join(",");
    let net = LocalNet::spawn(&[
        "--block-time",
        "100",
        "--netuid",
        "1",
        "--advertise-unserved",
        &chain_head,
    ]);
    let probe = WsClientBuilder::default()
        .build(&net.url)
        .await
        .expect("a raw RPC connection");
    let unserved_calls = || async {
        probe
            .request::<u64, _>("sliver_unservedCalls", rpc_params![])
            .await
            .expect("the test chain counts unserved calls")
    };

    let endpoint = Endpoint::url(&net.url).expect("btlocalnet prints a ws:// URL");
    let client = bounded("connecting", Client::connect(endpoint))
        .await
        .expect("connecting over the legacy backend");
    let mg = bounded("reading the metagraph", client.metagraph(NetUid(1)))
        .await
        .expect("the metagraph reads over the legacy backend");
    assert_eq!(mg.netuid, NetUid(1));
    assert_eq!(
        unserved_calls().await,
        0,
        "the client called a chainHead method"
    );

    // The control: subxt's default client goes for the listed chainHead methods.
    bounded("subxt's default client", async {
        let ws = WsClientBuilder::default()
            .build(&net.url)
            .await
            .expect("connecting");
        let rpc = subxt::rpcs::RpcClient::new(ws);
        if let Ok(api) =
            subxt::OnlineClient::from_rpc_client_with_config(SubtensorConfig::new(), rpc).await
        {
            let _ = api.at_current_block().await;
        }
    })
    .await;
    assert!(
        unserved_calls().await > 0,
        "subxt's default client should have tried the listed chainHead methods"
    );
}

/// What a roster is read from, read at an earlier block: a re-commit or a registration after it
/// changes nothing there, while the latest block shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitments_and_metagraph_read_at_an_earlier_block() {
    let (_net, client) = chain(false).await;
    let net = populate(&client).await;
    let miner = &net.miners[0];
    bounded(
        "committing the first location",
        client.set_commitment(NETUID, miner, b"first"),
    )
    .await
    .expect("set_commitment");
    let cutoff = client.current_block().await.unwrap();
    bounded(
        "waiting a block",
        client.wait_for_block(BlockNumber(cutoff.0 + 1)),
    )
    .await
    .unwrap();
    let again = bounded(
        "committing a second location",
        after_rate_limit(&client, || client.set_commitment(NETUID, miner, b"second")),
    )
    .await;
    again.expect("set_commitment again");
    let late = Keypair::from_seed(&[42; 32]);
    bounded(
        "registering a late miner",
        client.burned_register(NETUID, &DevSigner(dev::bob()), &late.account_id()),
    )
    .await
    .expect("burned_register (late miner)");

    let of = |all: &[(AccountId32, sliver_chain::client::Commitment)]| {
        all.iter()
            .find(|(h, _)| *h == miner.account_id())
            .map(|(_, c)| c.data.clone())
    };
    let then = client.commitments_at(NETUID, cutoff).await.unwrap();
    let now = client.commitments(NETUID).await.unwrap();
    assert_eq!(of(&then).as_deref(), Some(&b"first"[..]));
    assert_eq!(of(&now).as_deref(), Some(&b"second"[..]));
    let mg_then = client.metagraph_at(NETUID, cutoff).await.unwrap();
    let mg_now = client.metagraph(NETUID).await.unwrap();
    assert!(mg_then.uid_of(&late.account_id()).is_none());
    assert!(mg_now.uid_of(&late.account_id()).is_some());
    assert_eq!(mg_then.len() + 1, mg_now.len());
}

/// Following the chain through the finalized-heads subscription yields every block in order and
/// costs the node no request per block (what `sliver_rpcStats` counts while twenty blocks pass
/// is the one-off cost of the reads around it, not twenty of anything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_finalized_heads_costs_no_request_per_block() {
    use subxt::ext::futures::StreamExt;
    let (_net, client) = chain(false).await;
    let calls = || async {
        client.request_json("sliver_rpcStats").await.unwrap()["calls"]
            .as_u64()
            .unwrap()
    };
    let heads = bounded("subscribing", client.finalized_heads())
        .await
        .expect("a finalized-heads subscription");
    let mut heads = std::pin::pin!(heads);
    let first = bounded("the first head", heads.next())
        .await
        .expect("a head")
        .unwrap();
    let before = calls().await;
    let mut last = first;
    for _ in 0..20 {
        let b = bounded("the next head", heads.next())
            .await
            .expect("a head")
            .unwrap();
        assert_eq!(b.0, last.0 + 1, "heads in order, none skipped");
        last = b;
    }
    let after = calls().await;
    // The two `sliver_rpcStats` calls themselves, and nothing per block.
    assert!(
        after - before <= 2,
        "{} requests while 20 blocks passed",
        after - before
    );
}
