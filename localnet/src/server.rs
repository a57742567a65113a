//! Starting and stopping the local chain: load or create the chain, bind the WebSocket/HTTP
//! JSON-RPC server on 127.0.0.1, spawn the block producer, and on stop, save the state last.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::middleware::http::HostFilterLayer;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{HttpRequest, RandomStringIdProvider, Server, ServerHandle};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::info;

use super::node::{Node, PoolLimits};
use super::persist::{self, PersistError};
use super::rpc;
use super::rpc_stats::Counting;
use super::runtime::{Chain, GenesisConfig};

/// Everything `btlocalnet` is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Time between blocks; zero builds a block whenever an extrinsic arrives.
    pub block_time: Duration,
    /// Where the chain is saved after each block that changed it, and loaded from at start.
    pub state_file: Option<PathBuf>,
    /// The chain created when there is no state file.
    pub genesis: GenesisConfig,
    /// How much the transaction pool holds.
    pub pool: PoolLimits,
    /// Method names listed in `rpc_methods` but not served: for tests of what a client does
    /// against a node that offers more than the local chain (e.g. `chainHead_v1_follow`).
    pub advertise_unserved: Vec<String>,
}

/// Why the local chain could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The state file could not be loaded.
    #[error("loading the chain")]
    Load(#[from] PersistError),
    /// The RPC server could not bind.
    #[error("binding 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The RPC methods could not be registered (a bug).
    #[error("registering RPC methods")]
    Methods(#[from] jsonrpsee::core::RegisterMethodError),
    /// The Host filter could not be built (a bug).
    #[error("building the host filter: {0}")]
    Filter(String),
    /// Block production stopped: a block could not be made durable, or the producer panicked.
    #[error("block production stopped: {0}")]
    Producer(String),
}

/// The origin check, as the filter layer takes it.
type OriginCheck = fn(HttpRequest) -> Result<HttpRequest, ForeignOrigin>;
/// The HTTP middleware: the Host filter, then the Origin check.
type LocalOnly = tower::ServiceBuilder<
    tower::layer::util::Stack<
        tower::filter::FilterLayer<OriginCheck>,
        tower::layer::util::Stack<HostFilterLayer, tower::layer::util::Identity>,
    >,
>;

/// Only this machine may drive the chain, as a node's default `--rpc-cors` and host checks
/// allow: the `Host` header must name localhost or 127.0.0.1 (so a DNS-rebinding page is
/// refused), and a request carrying an `Origin` (a web page's) must come from one of those too.
fn local_only() -> Result<LocalOnly, ServerError> {
    let hosts = HostFilterLayer::new(["localhost:*", "127.0.0.1:*"])
        .map_err(|e| ServerError::Filter(e.to_string()))?;
    let origin: fn(
        jsonrpsee::server::HttpRequest,
    ) -> Result<jsonrpsee::server::HttpRequest, ForeignOrigin> = check_origin;
    Ok(tower::ServiceBuilder::new().layer(hosts).filter(origin))
}

/// A request from a web page of another site.
#[derive(Debug, thiserror::Error)]
#[error("requests from origin {0} are not allowed")]
pub struct ForeignOrigin(String);

fn check_origin(req: HttpRequest) -> Result<HttpRequest, ForeignOrigin> {
    let Some(origin) = req.headers().get("origin") else {
        return Ok(req);
    };
    let text = origin.to_str().unwrap_or_default();
    let host = text
        .split_once("://")
        .map_or(text, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    if matches!(host, "localhost" | "127.0.0.1") {
        Ok(req)
    } else {
        tracing::warn!(origin = text, "refused a request from a foreign origin");
        Err(ForeignOrigin(text.to_owned()))
    }
}

/// A running local chain.
#[derive(Debug)]
pub struct LocalChain {
    addr: SocketAddr,
    handle: ServerHandle,
    node: Arc<Node>,
    stop: Arc<Notify>,
    producer: JoinHandle<Result<(), PersistError>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").finish_non_exhaustive()
    }
}

impl LocalChain {
    /// Loads (or creates) the chain and starts serving it.
    ///
    /// # Errors
    ///
    /// [`ServerError`] when the state file is unreadable or the port cannot be bound.
    pub async fn start(config: ServerConfig) -> Result<Self, ServerError> {
        let chain = match config
            .state_file
            .as_deref()
            .map(persist::load)
            .transpose()?
        {
            Some(Some(chain)) => {
                info!(head = chain.head(), genesis = %hex::encode(chain.genesis_hash()), "chain loaded from the state file");
                chain
            }
            _ => {
                let chain = Chain::genesis(&config.genesis);
                info!(genesis = %hex::encode(chain.genesis_hash()), netuids = ?config.genesis.netuids, "new chain");
                chain
            }
        };
        let node = Node::new(chain, config.state_file.clone(), config.pool);
        let stats = Arc::clone(&node.rpc_stats);
        let server = Server::builder()
            .set_http_middleware(local_only()?)
            .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(move |inner| Counting {
                inner,
                stats: Arc::clone(&stats),
            }))
            .set_config(
                jsonrpsee::server::ServerConfig::builder()
                    .set_id_provider(RandomStringIdProvider::new(16))
                    .build(),
            )
            .build(SocketAddr::from(([127, 0, 0, 1], config.port)))
            .await
            .map_err(|source| ServerError::Bind {
                port: config.port,
                source,
            })?;
        let addr = server.local_addr().map_err(|source| ServerError::Bind {
            port: config.port,
            source,
        })?;
        let handle = server.start(rpc::module(node.clone(), &config.advertise_unserved)?);
        let stop = Arc::new(Notify::new());
        let producer = tokio::spawn(node.clone().run_producer(config.block_time, stop.clone()));
        info!(%addr, block_time_ms = config.block_time.as_millis(), "serving");
        Ok(Self {
            addr,
            handle,
            node,
            stop,
            producer,
        })
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs until `shutdown` resolves (then stops as [`LocalChain::stop`] does), or until block
    /// production fails: then the RPC server stops too, so that no client keeps filling a pool
    /// that no block will take.
    ///
    /// # Errors
    /// [`ServerError::Producer`] when block production stopped on its own.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        tokio::select! {
            () = shutdown => {
                self.stop().await;
                Ok(())
            }
            ended = &mut self.producer => {
                let _ = self.handle.stop();
                self.handle.stopped().await;
                Err(ServerError::Producer(match ended {
                    Ok(Ok(())) => "the producer ended".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => format!("the producer task failed: {e}"),
                }))
            }
        }
    }

    /// Stops producing blocks, saves the state, then stops the RPC server.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.producer.await;
        self.node.save();
        let _ = self.handle.stop();
        self.handle.stopped().await;
        info!("stopped");
    }
}
