//! How many JSON-RPC calls the local chain served, per method and per connection: the measure
//! of what each participant costs a node (public nodes allow about one request per second per
//! address, so a process's chain traffic must not grow with the swarm).
//!
//! [`Counting`] is an RPC middleware that counts every call (batched ones each) before it is
//! served; `sliver_rpcStats` reads the counts back ([`RpcStats::report`]). A subscription's
//! notifications are pushed by the server and cost the client no request, so they are not
//! counted; its opening call is.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::ConnectionId;
use jsonrpsee::types::Request;
use serde_json::{Value, json};

/// The counts since the chain started serving.
#[derive(Debug)]
pub(crate) struct RpcStats {
    since: Instant,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_method: BTreeMap<String, u64>,
    by_connection: HashMap<usize, u64>,
}

impl Default for RpcStats {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            counts: Mutex::new(Counts::default()),
        }
    }
}

impl RpcStats {
    fn record(&self, method: &str, connection: Option<&ConnectionId>) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c.by_method.entry(method.to_owned()).or_default() += 1;
        if let Some(id) = connection {
            *c.by_connection.entry(id.0).or_default() += 1;
        }
    }

    /// The counts as `sliver_rpcStats` answers them: seconds since the chain started serving,
    /// calls in all, the connections that made any, the most calls one connection made, and
    /// calls by method.
    pub(crate) fn report(&self) -> Value {
        let c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        json!({
            "seconds": self.since.elapsed().as_secs_f64(),
            "calls": c.by_method.values().sum::<u64>(),
            "connections": c.by_connection.len(),
            "max_per_connection": c.by_connection.values().max().copied().unwrap_or(0),
            "by_method": c.by_method,
        })
    }
}

/// The middleware: counts each call into `stats`, then serves it with `inner`.
#[derive(Clone)]
pub(crate) struct Counting<S> {
    pub(crate) inner: S,
    pub(crate) stats: std::sync::Arc<RpcStats>,
}

impl<S> RpcServiceT for Counting<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        self.stats
            .record(req.method_name(), req.extensions().get::<ConnectionId>());
        self.inner.call(req)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter() {
            if let Ok(BatchEntry::Call(req)) = entry {
                self.stats
                    .record(req.method_name(), req.extensions().get::<ConnectionId>());
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
