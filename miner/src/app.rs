//! Wiring: from a [`Config`] to running tasks, and back down on shutdown.
//!
//! In order: hotkey, chain, registration, the run spec (the owner's, checked against `--spec`),
//! this miner's store and announcement, the training text, then the tasks: the chain clock, the
//! metrics server, and the stage worker on its own thread. One [`Shutdown`] stops them all:
//! Ctrl-C or SIGTERM lets the worker finish its step and save, then the process exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sliver_common::data::Corpus;
use sliver_common::metrics::{self, Metrics};
use sliver_common::shutdown::Shutdown;
use sliver_common::storage::Store;
use sliver_subnet::announce::{Announcement, Role};
use sliver_subnet::neuron;
use sliver_subnet::run::{self, RunView};
use sliver_subnet::signer::HotkeySigner;
use tracing::info;

use crate::config::Config;
use crate::node::Node;
use crate::worker::Worker;

/// How long to wait for the subnet owner to publish the run spec.
const SPEC_WAIT: Duration = Duration::from_secs(600);
/// How long tasks get to stop after a shutdown signal.
const GRACE: Duration = Duration::from_secs(60);

/// Runs the miner until shutdown.
///
/// # Errors
/// Set-up failures (wallet, chain, spec, storage, data) and a task that failed.
pub async fn run(config: Config) -> Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let (hotkey, client, uid) = neuron::join(
        &config.wallet,
        &config.endpoint,
        config.netuid,
        config.register,
    )
    .await?;
    info!(uid = uid.0, hotkey = %hotkey.account_id(), "miner starting");

    let spec = run::discover_spec(&client, config.netuid, SPEC_WAIT).await?;
    if let Some((expected, path)) = &config.expected_spec {
        run::check_same_spec(expected, &spec, path)?;
    }
    info!(
        run = spec.name,
        stages = spec.stages.len(),
        "run spec verified"
    );

    let store =
        Store::open(&config.store).with_context(|| format!("opening storage {}", config.store))?;
    let announcement = Announcement {
        role: Role::Miner,
        spec: run::spec_hash(&spec),
        location: config.store.to_location()?,
    };
    run::announce(&client, config.netuid, &hotkey, &announcement).await?;

    let mut data = spec.data.clone();
    if let Some(d) = &config.data {
        data.sources = vec![d.clone()];
    }
    let corpus = Corpus::load(&data)
        .await
        .context("loading the training text")?;
    if corpus.vocab_size() > spec.model.vocab_size {
        bail!(
            "the {:?} tokenizer has {} tokens but model.vocab_size is {}",
            corpus.tokenizer().kind(),
            corpus.vocab_size(),
            spec.model.vocab_size
        );
    }

    let metrics = Metrics::new("miner");
    if let Some(port) = config.metrics_port {
        let addr = metrics::serve(metrics.clone(), port, shutdown.token()).await?;
        info!(%addr, "serving /metrics and /health");
    }
    let first = client.current_block().await?.0;
    let clock = neuron::clock(client.clone(), first, shutdown.token());
    let worker = Worker {
        node: Node {
            view: Arc::new(RunView::new(client, config.netuid, spec)),
            store,
            signer: Arc::new(HotkeySigner(hotkey)),
            metrics: metrics.clone(),
            clock,
            rt: tokio::runtime::Handle::current(),
            cancel: shutdown.token(),
        },
        corpus: Arc::new(corpus),
        device: config.device,
        dir: config.dir.clone(),
        poll: config.poll,
        adversary: config.adversary,
    };
    if let Some(a) = config.adversary {
        tracing::warn!(behaviour = ?a, "playing an adversary: for tests and benchmarks only");
    }
    let threads = config.threads;
    let stopper = shutdown.clone();
    let failure: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let failed = failure.clone();
    shutdown.spawn_blocking("stage worker", move || {
        if threads > 0 {
            tch::set_num_threads(threads as i32);
        }
        let r = worker.run();
        if let Err(e) = &r {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
        }
        stopper.trigger("the stage worker stopped");
        r
    });
    metrics.set_healthy(true);
    shutdown.token().cancelled().await;
    metrics.set_healthy(false);
    if !shutdown.wait(GRACE).await {
        bail!("tasks did not stop within {GRACE:?}");
    }
    if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bail!("the stage worker failed: {e}");
    }
    info!("miner stopped");
    Ok(())
}
