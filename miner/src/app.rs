//! Wiring: from a [`Config`] to running tasks, and back down on shutdown.
//!
//! [`neuron::start`] does what every neuron does first (hotkey, chain, registration, the run
//! spec checked against `--spec`, this miner's store and announcement, the training text,
//! metrics, the chain clock); then the stage worker runs on its own thread. One [`Shutdown`]
//! stops them all: Ctrl-C or SIGTERM lets the worker finish its step and save, then the process
//! exits, with the first task's failure if one failed.

use std::time::Duration;

use anyhow::{Result, bail};
use sliver_common::shutdown::Shutdown;
use sliver_subnet::announce::Role;
use sliver_subnet::neuron::{self, StartConfig};
use sliver_subnet::signer::HotkeySigner;
use tracing::info;

use crate::adversary;
use crate::config::Config;
use crate::node::Node;
use crate::worker::Worker;

/// How long tasks get to stop after a shutdown signal.
const GRACE: Duration = Duration::from_secs(60);

/// Runs every miner of `configs` in this process until shutdown (one, except in the scale
/// benchmark: `--sim.hotkeys`); fails with the first that failed, once all stopped.
///
/// # Errors
/// What [`run`] fails with, for the first miner that failed.
pub async fn run_all(configs: Vec<Config>) -> Result<()> {
    let results = futures::future::join_all(configs.into_iter().map(|c| {
        let hotkey = c.wallet.hotkey_name().to_string();
        async move {
            run(c)
                .await
                .map_err(|e| e.context(format!("miner {hotkey}")))
        }
    }))
    .await;
    results.into_iter().collect()
}

/// Sets [`Node::leave`] on SIGUSR1: the miner finishes the epoch it is training (merge,
/// checkpoint, record, spot-check answers) and then stops, so that leaving costs it nothing it
/// earned. A listener that cannot be installed is an error in the log, and SIGUSR1 keeps its
/// default effect (ending the process). Not on Windows, which has no SIGUSR1.
pub fn listen_for_leave(node: &Node) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGUSR1 (finish the epoch, then stop)");
                return;
            }
        };
        let (leave, cancel) = (node.leave.clone(), node.cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = usr1.recv() => {
                        leave.store(true, std::sync::atomic::Ordering::Relaxed);
                        info!("SIGUSR1: finishing this epoch (merge, checkpoint, spot-check answers), then stopping");
                    }
                    () = cancel.cancelled() => return,
                    else => return,
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = node;
}

/// Runs the miner until shutdown.
///
/// # Errors
/// Set-up failures (wallet, chain, spec, storage, data) and a task that failed.
pub async fn run(config: Config) -> Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let announce_instead = adversary::announced_location(
        config.adversary,
        &config.store,
        config.adversary_front.as_deref(),
    )?;
    let neuron = neuron::start(
        StartConfig {
            role: Role::Miner,
            wallet: &config.wallet,
            endpoint: &config.endpoint,
            netuid: config.netuid,
            register: config.register,
            store: &config.store,
            spec: config.expected_spec.as_ref(),
            data: config.data.as_deref(),
            metrics_port: config.metrics_port,
            spec_wait: config.spec_wait,
            announce_instead: announce_instead.clone(),
        },
        &shutdown,
    )
    .await?;
    let metrics = neuron.metrics.clone();
    let node = Node {
        view: neuron.view,
        store: neuron.store,
        signer: std::sync::Arc::new(HotkeySigner(neuron.hotkey.clone())),
        metrics: neuron.metrics,
        clock: neuron.clock,
        rt: tokio::runtime::Handle::current(),
        shutdown: shutdown.clone(),
        cancel: shutdown.token(),
        uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(config.uploads_at_once)),
        leave: std::sync::Arc::default(),
    };
    listen_for_leave(&node);
    if let Some(a) = config.adversary {
        tracing::warn!(behaviour = ?a, "playing an adversary: for tests and benchmarks only");
        adversary::spawn_beside(Some(a), &node, &neuron.hotkey, &neuron.announcement);
    }
    let worker = Worker {
        node,
        corpus: neuron.corpus,
        device: config.device,
        dir: config.dir.clone(),
        poll: config.poll,
        adversary: config.adversary,
        slowdown: config.slowdown,
        announcer: crate::commitment::Announcer::new(
            neuron.hotkey.clone(),
            neuron.announcement.clone(),
        ),
        availability: config
            .availability
            .clone()
            .map(crate::availability::Planner::new),
    };
    let threads = config.threads;
    let stopper = shutdown.clone();
    shutdown.spawn_blocking("stage worker", move || {
        if threads > 0 {
            tch::set_num_threads(threads as i32);
        }
        let r = worker.run();
        stopper.trigger("the stage worker stopped");
        r
    });
    metrics.set_healthy(true);
    shutdown.token().cancelled().await;
    metrics.set_healthy(false);
    if !shutdown.wait(GRACE).await {
        bail!("tasks did not stop within {GRACE:?}");
    }
    if let Some(e) = shutdown.failure() {
        bail!("{e}");
    }
    info!("miner stopped");
    Ok(())
}
