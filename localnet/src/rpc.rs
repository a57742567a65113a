//! The Substrate JSON-RPC the local chain serves: the legacy methods (`chain_*`, `state_*`,
//! `system_*`, `author_*`), `rpc_methods` and `chainSpec_v1_*`, with a node's JSON shapes (hex
//! bytes and hashes, camelCase objects, hex block numbers in headers), subscription
//! notification names, and error codes (1010 invalid transaction, 1011 unknown validity, 1002
//! verification error, 1013/1014 pool conflicts, 4003 runtime/state errors). No `chainHead_v1_*`
//! is listed, so subxt's default client picks its legacy backend.

use std::sync::Arc;

use jsonrpsee::core::{RegisterMethodError, SubscriptionResult, to_json_raw_value};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionSink};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::block::{Hash, Header, hex0x};
use super::extrinsic::TxError;
use super::metadata::{SPEC_NAME, SPEC_VERSION, SS58_PREFIX, TRANSACTION_VERSION};
use super::node::{Node, PoolError, TxStatus};
use super::runtime::Chain;
use super::runtime_api::{self, ApiError};

/// The chain name `system_chain` reports.
pub const CHAIN_NAME: &str = "Bittensor (btlocalnet)";
/// `state_getKeysPaged`'s largest page, as in Substrate.
const MAX_KEYS_PAGE: u32 = 1000;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

fn err(code: i32, message: impl Into<String>, data: Option<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), data)
}

fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    err(-32602, msg, None)
}

fn pool_error(e: &PoolError) -> ErrorObjectOwned {
    match e {
        PoolError::Invalid(TxError::Invalid(i)) => {
            err(1010, "Invalid Transaction", Some(i.message().to_owned()))
        }
        PoolError::Invalid(TxError::Unknown(u)) => err(
            1011,
            "Unknown Transaction Validity",
            Some(u.message().to_owned()),
        ),
        PoolError::Invalid(TxError::Decode(d)) => err(
            1002,
            "Verification Error: Runtime error: Could not decode `UncheckedExtrinsic`",
            Some(d.clone()),
        ),
        PoolError::AlreadyImported => err(
            1013,
            "Transaction Already Imported",
            Some("The transaction is already in the pool".to_owned()),
        ),
        PoolError::ExhaustsResources => err(
            1010,
            "Invalid Transaction",
            Some("Transaction would exhaust the block limits".to_owned()),
        ),
        PoolError::Full => err(
            1016,
            "Immediately Dropped",
            Some("The transaction couldn't enter the pool because of the limit".to_owned()),
        ),
        PoolError::TooLowPriority => err(
            1014,
            "Priority is too low: (0 vs 0)",
            Some(
                "The transaction has too low priority to replace another transaction already in the pool."
                    .to_owned(),
            ),
        ),
    }
}

fn parse_hex(s: &str) -> RpcResult<Vec<u8>> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(digits).map_err(|e| invalid_params(format!("invalid hex {s:?}: {e}")))
}

fn parse_hash(s: &str) -> RpcResult<Hash> {
    parse_hex(s)?
        .try_into()
        .map_err(|_| invalid_params(format!("{s:?} is not a 32-byte hash")))
}

/// Answers a `(key, at?)` storage request: the value under `key` at block `at` (default: the
/// best block), passed through `map` while the chain is borrowed.
fn read_storage<T>(
    p: Params<'_>,
    node: &Node,
    map: impl FnOnce(&[u8]) -> T,
) -> RpcResult<Option<T>> {
    let mut seq = p.sequence();
    let key = parse_hex(&seq.next::<String>()?)?;
    let at: Option<String> = seq.optional_next()?;
    node.with_chain(|c| {
        let at = state_at(c, at.as_deref())?;
        Ok(c.storage(&key, at).map(map))
    })
}

/// The block a state query names (`None` = best), as a number, or error 4003 as a node gives
/// for a block it does not have.
fn state_at(chain: &Chain, at: Option<&str>) -> RpcResult<u32> {
    let Some(at) = at else {
        return Ok(chain.head());
    };
    let hash = parse_hash(at)?;
    chain.number_of(&hash).ok_or_else(|| {
        err(
            4003,
            format!("Client error: UnknownBlock: State already discarded for {at}"),
            None,
        )
    })
}

/// `chain_getHeader`/`chain_getBlock`'s block: `None` = best; unknown = `null`.
fn block_at(chain: &Chain, at: Option<&str>) -> RpcResult<Option<u32>> {
    match at {
        None => Ok(Some(chain.head())),
        Some(at) => Ok(chain.number_of(&parse_hash(at)?)),
    }
}

/// A `NumberOrHex` block number.
fn block_number(v: &Value) -> RpcResult<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid_params(format!("{v} is not a block number")))
}

fn runtime_version_json() -> Value {
    let apis: Vec<Value> = runtime_api::api_ids()
        .iter()
        .map(|(id, v)| json!([hex0x(id), v]))
        .collect();
    json!({
        "specName": SPEC_NAME,
        "implName": SPEC_NAME,
        "authoringVersion": super::metadata::AUTHORING_VERSION,
        "specVersion": SPEC_VERSION,
        "implVersion": super::metadata::IMPL_VERSION,
        "apis": apis,
        "transactionVersion": TRANSACTION_VERSION,
        "systemVersion": super::metadata::SYSTEM_VERSION,
    })
}

fn properties() -> Value {
    json!({ "ss58Format": SS58_PREFIX, "tokenDecimals": 9, "tokenSymbol": "TAO" })
}

fn account_from(s: &str) -> RpcResult<[u8; 32]> {
    if s.starts_with("0x") {
        return parse_hash(s);
    }
    s.parse::<subxt_utils_accountid32::AccountId32>()
        .map(|a| a.0)
        .map_err(|e| invalid_params(format!("{s:?} is not an SS58 address: {e}")))
}

async fn send(
    sink: &SubscriptionSink,
    v: &Value,
) -> Result<(), jsonrpsee::core::SubscriptionError> {
    let raw = to_json_raw_value(v).map_err(|e| e.to_string())?;
    sink.send(raw).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Forwards every new head (the current one first) until the client leaves.
async fn heads(pending: PendingSubscriptionSink, node: Arc<Node>) -> SubscriptionResult {
    let mut rx = node.subscribe_heads();
    let current = node.with_chain(|c| c.head_block().header.clone());
    let sink = pending.accept().await?;
    let mut last = current.number;
    send(&sink, &current.to_json()).await?;
    loop {
        let header: Header = tokio::select! {
            () = sink.closed() => return Ok(()),
            h = rx.recv() => match h {
                Ok(h) => h,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return Ok(()),
            },
        };
        if header.number > last {
            last = header.number;
            send(&sink, &header.to_json()).await?;
        }
    }
}

async fn watch_extrinsic(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    node: Arc<Node>,
) -> SubscriptionResult {
    let bytes = match params.one::<String>().and_then(|s| parse_hex(&s)) {
        Ok(b) => b,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    let mut rx = match node.submit(&bytes, true) {
        Ok((_, Some(rx))) => rx,
        Ok((_, None)) => return Ok(()),
        Err(e) => {
            pending.reject(pool_error(&e)).await;
            return Ok(());
        }
    };
    let sink = pending.accept().await?;
    loop {
        let status = tokio::select! {
            () = sink.closed() => return Ok(()),
            s = rx.recv() => match s {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        let (v, done) = match status {
            TxStatus::Ready => (json!("ready"), false),
            TxStatus::InBlock(h) => (json!({ "inBlock": hex0x(&h) }), false),
            TxStatus::Finalized(h) => (json!({ "finalized": hex0x(&h) }), true),
            TxStatus::Invalid => (json!("invalid"), true),
        };
        send(&sink, &v).await?;
        if done {
            return Ok(());
        }
    }
}

async fn runtime_version_sub(pending: PendingSubscriptionSink) -> SubscriptionResult {
    let sink = pending.accept().await?;
    send(&sink, &runtime_version_json()).await?;
    // The runtime never upgrades; keep the subscription open until the client leaves.
    sink.closed().await;
    Ok(())
}

/// The module the methods are registered on; its context is the node.
type Module = RpcModule<Arc<Node>>;
/// A registration's outcome: fails only if a method name were registered twice, which is a bug.
type Registered = Result<(), RegisterMethodError>;

/// The RPC module with every method the local chain serves.
///
/// # Errors
///
/// Only if a method name were registered twice, which is a bug.
pub(crate) fn module(
    node: Arc<Node>,
    advertise_unserved: &[String],
) -> Result<Module, RegisterMethodError> {
    let mut m = RpcModule::new(node);
    system(&mut m)?;
    chain_spec(&mut m)?;
    chain(&mut m)?;
    state_runtime(&mut m)?;
    state_storage(&mut m)?;
    author(&mut m)?;
    unserved(&mut m, advertise_unserved)?;
    m.register_method("sliver_rpcStats", |_, node, _| node.rpc_stats.report())?;
    rpc_methods(&mut m)?;
    Ok(m)
}

/// `system_*`: the node's name, version, chain type, properties, health, peers and the next
/// account nonce.
fn system(m: &mut Module) -> Registered {
    m.register_method("system_chain", |_, _, _| CHAIN_NAME)?;
    m.register_method("system_name", |_, _, _| "Subtensor Node")?;
    m.register_method("system_version", |_, _, _| {
        concat!("btlocalnet/", env!("CARGO_PKG_VERSION"))
    })?;
    m.register_method("system_chainType", |_, _, _| "Development")?;
    m.register_method("system_properties", |_, _, _| properties())?;
    m.register_method(
        "system_health",
        |_, _, _| json!({ "peers": 0, "isSyncing": false, "shouldHavePeers": false }),
    )?;
    m.register_method("system_peers", |_, _, _| json!([]))?;
    m.register_method("system_accountNextIndex", |p, node, _| -> RpcResult<u32> {
        let who = account_from(&p.one::<String>()?)?;
        Ok(node.next_nonce(&who))
    })?;
    Ok(())
}

/// `chainSpec_v1_*`: the chain's name, genesis hash and properties.
fn chain_spec(m: &mut Module) -> Registered {
    m.register_method("chainSpec_v1_chainName", |_, _, _| CHAIN_NAME)?;
    m.register_method("chainSpec_v1_genesisHash", |_, node, _| {
        hex0x(&node.with_chain(Chain::genesis_hash))
    })?;
    m.register_method("chainSpec_v1_properties", |_, _, _| properties())?;
    Ok(())
}

/// `chain_*`: block hashes, headers and blocks, the finalized head, and the head subscriptions
/// (with their British-spelling aliases).
fn chain(m: &mut Module) -> Registered {
    m.register_method("chain_getBlockHash", |p, node, _| -> RpcResult<Value> {
        let arg: Option<Value> = p.sequence().optional_next()?;
        node.with_chain(|c| {
            let hash_of = |n: u32| c.block(n).map(|b| hex0x(&b.header.hash()));
            Ok(match arg {
                None | Some(Value::Null) => json!(hash_of(c.head())),
                Some(Value::Array(list)) => Value::Array(
                    list.iter()
                        .map(|v| block_number(v).map(|n| json!(hash_of(n))))
                        .collect::<RpcResult<_>>()?,
                ),
                Some(v) => json!(hash_of(block_number(&v)?)),
            })
        })
    })?;
    m.register_alias("chain_getHead", "chain_getBlockHash")?;
    m.register_method("chain_getHeader", |p, node, _| -> RpcResult<Value> {
        let at: Option<String> = p.sequence().optional_next()?;
        node.with_chain(|c| {
            Ok(block_at(c, at.as_deref())?
                .and_then(|n| c.block(n))
                .map_or(Value::Null, |b| b.header.to_json()))
        })
    })?;
    m.register_method("chain_getBlock", |p, node, _| -> RpcResult<Value> {
        let at: Option<String> = p.sequence().optional_next()?;
        node.with_chain(|c| {
            Ok(block_at(c, at.as_deref())?
                .and_then(|n| c.block(n))
                .map_or(Value::Null, super::block::Block::to_json))
        })
    })?;
    m.register_method("chain_getFinalizedHead", |_, node, _| {
        hex0x(&node.with_chain(|c| c.head_block().header.hash()))
    })?;
    m.register_alias("chain_getFinalisedHead", "chain_getFinalizedHead")?;
    for (sub, notif, unsub) in [
        (
            "chain_subscribeNewHeads",
            "chain_newHead",
            "chain_unsubscribeNewHeads",
        ),
        (
            "chain_subscribeFinalizedHeads",
            "chain_finalizedHead",
            "chain_unsubscribeFinalizedHeads",
        ),
        (
            "chain_subscribeAllHeads",
            "chain_allHead",
            "chain_unsubscribeAllHeads",
        ),
    ] {
        m.register_subscription(sub, notif, unsub, |_, pending, node, _| {
            heads(pending, Arc::clone(&node))
        })?;
    }
    m.register_alias(
        "chain_subscribeFinalisedHeads",
        "chain_subscribeFinalizedHeads",
    )?;
    m.register_alias(
        "chain_unsubscribeFinalisedHeads",
        "chain_unsubscribeFinalizedHeads",
    )?;
    Ok(())
}

/// `state_*` about the runtime: its version (and the `chain_getRuntimeVersion` alias) and
/// version subscription, its metadata, and runtime API calls.
fn state_runtime(m: &mut Module) -> Registered {
    m.register_method("state_getRuntimeVersion", |_, _, _| runtime_version_json())?;
    m.register_alias("chain_getRuntimeVersion", "state_getRuntimeVersion")?;
    m.register_subscription(
        "state_subscribeRuntimeVersion",
        "state_runtimeVersion",
        "state_unsubscribeRuntimeVersion",
        |_, pending, _, _| runtime_version_sub(pending),
    )?;
    m.register_method("state_getMetadata", |p, node, _| -> RpcResult<String> {
        let at: Option<String> = p.sequence().optional_next()?;
        node.with_chain(|c| state_at(c, at.as_deref()))?;
        Ok(hex0x(runtime_api::default_metadata_bytes()))
    })?;
    m.register_method("state_call", |p, node, _| -> RpcResult<String> {
        let mut seq = p.sequence();
        let method: String = seq.next()?;
        let data = parse_hex(&seq.next::<String>()?)?;
        let at: Option<String> = seq.optional_next()?;
        node.with_chain(|c| {
            let at = state_at(c, at.as_deref())?;
            runtime_api::call(c, &method, &data, at)
                .map(|out| hex0x(&out))
                .map_err(|e: ApiError| err(4003, e.to_string(), None))
        })
    })?;
    m.register_alias("state_callAt", "state_call")?;
    Ok(())
}

/// `state_*` about storage: values, their hashes and sizes, paged keys and several keys at
/// once.
fn state_storage(m: &mut Module) -> Registered {
    m.register_method("state_getStorage", |p, node, _| {
        read_storage(p, node, hex0x)
    })?;
    m.register_alias("state_getStorageAt", "state_getStorage")?;
    m.register_method("state_getStorageHash", |p, node, _| {
        read_storage(p, node, |v| hex0x(&sp_crypto_hashing::blake2_256(v)))
    })?;
    m.register_method("state_getStorageSize", |p, node, _| {
        read_storage(p, node, <[u8]>::len)
    })?;
    m.register_method(
        "state_getKeysPaged",
        |p, node, _| -> RpcResult<Vec<String>> {
            let mut seq = p.sequence();
            let prefix = parse_hex(&seq.next::<Option<String>>()?.unwrap_or_default())?;
            let count: u32 = seq.next()?;
            let start = seq
                .optional_next::<String>()?
                .map(|s| parse_hex(&s))
                .transpose()?;
            let at: Option<String> = seq.optional_next()?;
            if count > MAX_KEYS_PAGE {
                return Err(invalid_params(format!(
                    "count exceeds maximum value. value: {count}, max: {MAX_KEYS_PAGE}"
                )));
            }
            node.with_chain(|c| {
                let at = state_at(c, at.as_deref())?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                Ok(c.state()
                    .keys_paged(&prefix, start.as_deref(), count, at)
                    .iter()
                    .map(|k| hex0x(k))
                    .collect())
            })
        },
    )?;
    m.register_alias("state_getKeysPagedAt", "state_getKeysPaged")?;
    m.register_method("state_queryStorageAt", |p, node, _| -> RpcResult<Value> {
        let mut seq = p.sequence();
        let keys: Vec<String> = seq.next()?;
        let at: Option<String> = seq.optional_next()?;
        let keys = keys
            .iter()
            .map(|k| parse_hex(k))
            .collect::<RpcResult<Vec<_>>>()?;
        node.with_chain(|c| {
            let n = state_at(c, at.as_deref())?;
            let block = c.block(n).map(|b| hex0x(&b.header.hash()));
            let changes: Vec<Value> = keys
                .iter()
                .map(|k| json!([hex0x(k), c.storage(k, n).map(hex0x)]))
                .collect();
            Ok(json!([{ "block": block, "changes": changes }]))
        })
    })?;
    Ok(())
}

/// `author_*`: submitting an extrinsic (watched or not) and the pool's pending extrinsics.
fn author(m: &mut Module) -> Registered {
    m.register_method(
        "author_submitExtrinsic",
        |p, node, _| -> RpcResult<String> {
            let bytes = parse_hex(&p.one::<String>()?)?;
            node.submit(&bytes, false)
                .map(|(hash, _)| hex0x(&hash))
                .map_err(|e| pool_error(&e))
        },
    )?;
    m.register_method("author_pendingExtrinsics", |_, node, _| {
        node.pending().iter().map(|x| hex0x(x)).collect::<Vec<_>>()
    })?;
    m.register_subscription(
        "author_submitAndWatchExtrinsic",
        "author_extrinsicUpdate",
        "author_unwatchExtrinsic",
        |p, pending, node, _| watch_extrinsic(p, pending, Arc::clone(&node)),
    )?;
    Ok(())
}

/// For tests only: the methods in `advertise_unserved`, listed but not served, each call
/// counted (read back with `sliver_unservedCalls`) and refused as a node refuses a method it
/// does not have. Nothing when the list is empty.
fn unserved(m: &mut Module, advertise_unserved: &[String]) -> Registered {
    if advertise_unserved.is_empty() {
        return Ok(());
    }
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for name in advertise_unserved {
        // Registered once at start-up; jsonrpsee keys methods by `&'static str`.
        let name: &'static str = Box::leak(name.clone().into_boxed_str());
        let calls = Arc::clone(&calls);
        m.register_method(name, move |_, _, _| -> RpcResult<()> {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ErrorObjectOwned::owned(
                -32601,
                "Method not found",
                None::<()>,
            ))
        })?;
    }
    m.register_method("sliver_unservedCalls", move |_, _, _| {
        calls.load(std::sync::atomic::Ordering::Relaxed)
    })?;
    Ok(())
}

/// `rpc_methods`: every method registered so far, and itself, sorted. Registered last.
fn rpc_methods(m: &mut Module) -> Registered {
    let mut names: Vec<&'static str> = m.method_names().collect();
    names.push("rpc_methods");
    names.sort_unstable();
    m.register_method("rpc_methods", move |_, _, _| json!({ "methods": names }))?;
    Ok(())
}
