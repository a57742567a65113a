//! Wiring: from a [`Config`] to the validator's loop, and back down on shutdown.
//!
//! In order: hotkey, chain, registration, the run spec (published when this validator's coldkey
//! owns the subnet, otherwise fetched from the owner and checked against `--spec`), the store,
//! the held-out text, each stage's parameter count; then the epoch loop ([`crate::epoch`]) until
//! shutdown, a failure, or `--epochs` epochs scored.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use sliver_common::Stage;
use sliver_common::shutdown::Shutdown;
use sliver_subnet::announce::Role;
use sliver_subnet::neuron::{self, StartConfig};
use tracing::info;

use crate::config::Config;
use crate::dashboard::{Dashboard, RunInfo};
use crate::epoch::Looper;

const GRACE: Duration = Duration::from_secs(30);

/// Runs the validator until shutdown (or `--epochs` epochs).
///
/// # Errors
/// Set-up failures and failures that stop the loop.
pub async fn run(config: Config) -> Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    // The dashboard's page is served on the metrics port from the start; it fills as epochs
    // are scored.
    let dashboard = Dashboard::new();
    let neuron = neuron::start_with_routes(
        StartConfig {
            role: Role::Validator,
            wallet: &config.wallet,
            endpoint: &config.endpoint,
            netuid: config.netuid,
            register: config.register,
            store: &config.store,
            spec: config.spec.as_ref(),
            data: config.data.as_deref(),
            metrics_port: config.metrics_port,
            spec_wait: config.spec_wait,
            announce_instead: None,
        },
        dashboard.routes(),
        &shutdown,
    )
    .await?;
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let view = neuron.view;
    dashboard.set_run(RunInfo::of(&view.spec));
    if config.metrics_port.is_some() {
        let n = dashboard.load(&config.dir, &neuron.store).await;
        info!(
            epochs = n,
            "the dashboard read back the epochs recorded before"
        );
    }
    // Counted once, off the runtime: building a stage initialises its weights.
    let stage_params = {
        let spec = view.spec.clone();
        tokio::task::spawn_blocking(move || {
            (0..spec.stages.len())
                .map(|i| Stage::new(&spec, i, tch::Device::Cpu).map(|s| s.parameter_count()))
                .collect::<Result<Vec<i64>, _>>()
        })
        .await
        .context("counting stage parameters")??
    };
    let looper = Looper {
        stage_params,
        config,
        view,
        store: neuron.store,
        metrics: neuron.metrics,
        clock: neuron.clock,
        corpus: neuron.corpus,
        hotkey: neuron.hotkey,
        last_merged: std::sync::Mutex::default(),
        dashboard,
    };
    let cancel = shutdown.token();
    let stopper = shutdown.clone();
    shutdown.spawn("validator loop", async move {
        let r = tokio::select! {
            r = looper.run() => r,
            () = cancel.cancelled() => Ok(()),
        };
        stopper.trigger("the validator loop ended");
        r
    });
    shutdown.token().cancelled().await;
    if !shutdown.wait(GRACE).await {
        bail!("tasks did not stop within {GRACE:?}");
    }
    if let Some(e) = shutdown.failure() {
        bail!("{e}");
    }
    info!("validator stopped");
    Ok(())
}
