//! `btlocalnet` killed with SIGKILL at moments the test does not choose, during a stream of
//! transfers and weight commits: after each restart, every extrinsic that was acknowledged
//! (reported in a finalized block) is there, and nothing is applied twice. And flags at their
//! largest values do not panic it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sliver_chain::testing::{DevSigner, bounded};
use subxt::OnlineClient;
use subxt::dynamic::{self, Value};
use subxt::ext::scale_value::{At, ValueDef};
use subxt_signer::sr25519::dev;

use crate::net::LocalNet;
use crate::node_e2e::{
    Config, burned_register, connect, id, nonce_and_free, submit_finalized, transfer,
};

const NETUID: u16 = 9;
/// Transfer `i` moves `UNIT << i` rao, so the receiver's balance says which ones were applied.
/// At most 48 transfers are made, so the sender's 10^15 rao always cover them.
const UNIT: u128 = 1;

pub(crate) fn commit(hash: [u8; 32]) -> subxt::tx::DynamicPayload<Vec<Value>> {
    dynamic::transaction(
        "SubtensorModule",
        "commit_weights",
        vec![Value::u128(u128::from(NETUID)), Value::from_bytes(hash)],
    )
}

/// The bytes of a value that is a byte array, however deeply wrapped (`H256([u8; 32])`).
fn flatten_bytes<T>(value: &subxt::ext::scale_value::Value<T>, out: &mut Vec<u8>) {
    match &value.value {
        ValueDef::Composite(c) => c.values().for_each(|v| flatten_bytes(v, out)),
        _ => out.push(
            value
                .as_u128()
                .and_then(|b| u8::try_from(b).ok())
                .expect("a byte"),
        ),
    }
}

/// The hashes in `SubtensorModule.WeightCommits(NETUID, hotkey)`.
async fn committed_hashes(api: &OnlineClient<Config>, hotkey: [u8; 32]) -> Vec<Vec<u8>> {
    let at = bounded("latest block", api.at_current_block())
        .await
        .expect("block");
    let addr = dynamic::storage::<(u16, [u8; 32]), Value>("SubtensorModule", "WeightCommits");
    let Some(value) = bounded(
        "WeightCommits",
        at.storage().try_fetch(addr, (NETUID, hotkey)),
    )
    .await
    .expect("WeightCommits") else {
        return vec![];
    };
    let value = value.decode().expect("WeightCommits decodes");
    let ValueDef::Composite(commits) = value.value else {
        panic!("WeightCommits is a sequence: {value:?}");
    };
    commits
        .into_values()
        .map(|c| {
            let mut bytes = vec![];
            flatten_bytes(c.at(0).expect("(hash, block, first, last)"), &mut bytes);
            bytes
        })
        .collect()
}

#[tokio::test]
async fn sigkill_during_transfers_and_commits_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("chain.state");
    let state = state.to_str().expect("utf-8 path");
    let args = [
        "--block-time",
        "0",
        "--state",
        state,
        "--weights-rate-limit",
        "0",
    ];
    let (alice, bob, hotkey) = (dev::alice(), id(&dev::bob()), dev::dave());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    eprintln!("kill moments seeded from {nanos}");

    let (mut acked_transfers, mut acked_commits) = (Vec::<u32>::new(), Vec::<[u8; 32]>::new());
    let mut attempted = 0u32;
    let mut start = (0u128, 0u128);
    for round in 0..3u32 {
        let net = LocalNet::spawn(&args);
        let api = connect(&net).await;
        if round == 0 {
            submit_finalized(
                &api,
                &burned_register(NETUID, id(&hotkey)),
                &DevSigner(dev::eve()),
            )
            .await;
            start = (
                nonce_and_free(&api, id(&alice)).await.0,
                nonce_and_free(&api, bob).await.1,
            );
            // One commit acknowledged for certain; the stream adds more as the kills allow.
            submit_finalized(&api, &commit([0xEE; 32]), &DevSigner(hotkey.clone())).await;
            acked_commits.push([0xEE; 32]);
        }
        // Submit and watch, one after another, until the kill: whatever was in flight then
        // may or may not have been applied, but what was acknowledged must survive.
        let acked_this_round = AtomicUsize::new(0);
        let stream = async {
            loop {
                let i = attempted;
                attempted += 1;
                assert!(i < 48, "the kill should come long before 48 transfers");
                submit_finalized(&api, &transfer(bob, UNIT << i), &DevSigner(alice.clone())).await;
                acked_transfers.push(i);
                acked_this_round.fetch_add(1, Ordering::Relaxed);
                if i % 5 == 2 && acked_commits.len() < 7 {
                    let hash = [u8::try_from(i).expect("small"); 32];
                    submit_finalized(&api, &commit(hash), &DevSigner(hotkey.clone())).await;
                    acked_commits.push(hash);
                }
            }
        };
        // The kill comes 0-29 ms after the 3rd to 9th acknowledgement of the round, whatever
        // the node is doing then (applying, writing its state, announcing).
        let bits = nanos >> (round * 8);
        let target = 3 + (bits % 7) as usize;
        let extra = Duration::from_millis(u64::from((bits >> 3) % 30));
        let killer = async {
            while acked_this_round.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(extra).await;
        };
        tokio::select! {
            () = stream => unreachable!("the stream only ends by being cancelled"),
            () = killer => {}
        }
        drop(api);
        drop(net); // SIGKILL, mid-stream
    }
    eprintln!(
        "{attempted} transfers attempted, {} acknowledged; {} commits acknowledged",
        acked_transfers.len(),
        acked_commits.len()
    );
    assert!(
        acked_transfers.len() >= 3,
        "too few transfers to test: {acked_transfers:?}"
    );
    assert!(
        !acked_commits.is_empty(),
        "no weight commit was acknowledged"
    );

    let net = LocalNet::spawn(&args);
    let api = connect(&net).await;
    let (nonce, _) = nonce_and_free(&api, id(&alice)).await;
    let (_, free) = nonce_and_free(&api, bob).await;
    let applied = nonce - start.0;
    let moved = free - start.1;
    let bits = moved / UNIT;
    // Each transfer moved a different power of two: the set bits are the transfers applied,
    // and as many as alice's nonce advanced, so none was applied twice.
    assert_eq!(
        u128::from(bits.count_ones()),
        applied,
        "bits {bits:b}, nonce +{applied}"
    );
    assert!(
        bits >> attempted == 0,
        "only attempted transfers were applied: {bits:b}"
    );
    for i in &acked_transfers {
        assert!(
            bits & (1 << i) != 0,
            "acknowledged transfer {i} was lost: {bits:b}"
        );
    }
    let hashes = committed_hashes(&api, id(&hotkey)).await;
    for hash in &acked_commits {
        let copies = hashes.iter().filter(|h| h.as_slice() == hash).count();
        assert_eq!(
            copies, 1,
            "acknowledged commit {:?} appears {copies} times",
            hash[0]
        );
    }
    // And the chain goes on.
    submit_finalized(&api, &transfer(bob, UNIT), &DevSigner(alice)).await;
}

/// The reveal period and the tempo at their largest: the arithmetic of commits, reveal windows
/// and epochs saturates instead of panicking, and the chain keeps producing.
#[tokio::test]
async fn the_largest_flag_values_do_not_panic_the_chain() {
    let reveal = u64::MAX.to_string();
    let tempo = u16::MAX.to_string();
    let net = LocalNet::spawn(&[
        "--block-time",
        "0",
        "--reveal-period",
        &reveal,
        "--tempo",
        &tempo,
        // A huge rate limit is finney's too fast from registration on: not what this checks.
        "--weights-rate-limit",
        "0",
    ]);
    let api = connect(&net).await;
    let hotkey = dev::dave();
    submit_finalized(
        &api,
        &burned_register(NETUID, id(&hotkey)),
        &DevSigner(dev::eve()),
    )
    .await;
    submit_finalized(&api, &commit([7; 32]), &DevSigner(hotkey.clone())).await;
    assert_eq!(
        committed_hashes(&api, id(&hotkey)).await,
        vec![vec![7u8; 32]]
    );
    submit_finalized(
        &api,
        &transfer(id(&dev::bob()), UNIT),
        &DevSigner(dev::alice()),
    )
    .await;
}
