//! Wiring: from a [`Config`] to the validator's loop, and back down on shutdown.
//!
//! In order: hotkey, chain, registration, the run spec (published when this validator's coldkey
//! owns the subnet, otherwise fetched from the owner and checked against `--spec`), the store,
//! the held-out text; then, each epoch: once its samples are done, challenge every miner for
//! the weights behind a few of its artifacts ([`checks`]); once its merge is over, audit every
//! miner ([`follow`]), recompute the challenged artifacts ([`checks`]), attribute the paths'
//! losses ([`clasp`]), score ([`scores`]), set weights
//! ([`weights`]), write the Parquet tables ([`export`]) and
//! evaluate the merged model on held-out text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sliver_chain::client::{Uid, Weights};
use sliver_common::artifact::Hotkey;
use sliver_common::data::Corpus;
use sliver_common::layout;
use sliver_common::metrics::{self, Metrics};
use sliver_common::shutdown::Shutdown;
use sliver_common::storage::Store;
use sliver_common::{RunSpec, Stage, Trainer};
use sliver_subnet::announce::{Announcement, Role};
use sliver_subnet::neuron;
use sliver_subnet::run::{self, Roster, RunView};
use tch::Tensor;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::checks;
use crate::clasp;
use crate::config::Config;
use crate::export::{self, Row};
use crate::follow::{self, MinerWork};
use crate::record;
use crate::scores::{self, Ema};
use crate::weights;

const SPEC_WAIT: Duration = Duration::from_secs(600);
const GRACE: Duration = Duration::from_secs(30);

/// Runs the validator until shutdown (or `--epochs` epochs).
///
/// # Errors
/// Set-up failures and failures that stop the loop.
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
    let store =
        Store::open(&config.store).with_context(|| format!("opening storage {}", config.store))?;
    let owner = client.subnet_owner(config.netuid).await?;
    let is_owner = config.wallet.coldkeypub().is_ok_and(|c| c == owner);
    let spec: RunSpec = match (&config.spec, is_owner) {
        (Some((spec, _)), true) => {
            let hash = run::publish_spec(&store, spec).await?;
            let a = Announcement {
                role: Role::Owner,
                spec: hash,
                location: config.store.to_location()?,
            };
            run::announce(&client, config.netuid, &hotkey, &a).await?;
            info!(run = spec.name, spec = %hex_short(&hash), "published the run spec as subnet owner");
            spec.clone()
        }
        (None, true) => {
            bail!("this validator's coldkey owns the subnet: pass --spec to publish the run spec")
        }
        (expected, false) => {
            let spec = run::discover_spec(&client, config.netuid, SPEC_WAIT).await?;
            if let Some((expected, path)) = expected {
                run::check_same_spec(expected, &spec, path)?;
            }
            let a = Announcement {
                role: Role::Validator,
                spec: run::spec_hash(&spec),
                location: config.store.to_location()?,
            };
            run::announce(&client, config.netuid, &hotkey, &a).await?;
            spec
        }
    };
    info!(uid = uid.0, run = spec.name, "validator starting");
    let mut data = spec.data.clone();
    if let Some(d) = &config.data {
        data.sources = vec![d.clone()];
    }
    let corpus = Arc::new(
        Corpus::load(&data)
            .await
            .context("loading the held-out text")?,
    );
    let metrics = Metrics::new("validator");
    if let Some(port) = config.metrics_port {
        let addr = metrics::serve(metrics.clone(), port, shutdown.token()).await?;
        info!(%addr, "serving /metrics and /health");
    }
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let first = client.current_block().await?.0;
    let clock = neuron::clock(client.clone(), first, shutdown.token());
    let view = Arc::new(RunView::new(client.clone(), config.netuid, spec));
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
        store,
        metrics,
        clock,
        corpus,
        hotkey,
        last_merged: std::sync::Mutex::default(),
    };
    let cancel = shutdown.token();
    let stopper = shutdown.clone();
    let failure: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let failed = failure.clone();
    shutdown.spawn("validator loop", async move {
        let r = tokio::select! {
            r = looper.run() => r,
            () = cancel.cancelled() => Ok(()),
        };
        if let Err(e) = &r {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
        }
        stopper.trigger("the validator loop ended");
        r
    });
    shutdown.token().cancelled().await;
    if !shutdown.wait(GRACE).await {
        bail!("tasks did not stop within {GRACE:?}");
    }
    if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bail!("the validator loop failed: {e}");
    }
    info!("validator stopped");
    Ok(())
}

fn hex_short(h: &[u8; 32]) -> String {
    h.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

struct Looper {
    config: Config,
    view: Arc<RunView>,
    store: Store,
    metrics: Metrics,
    clock: watch::Receiver<u64>,
    corpus: Arc<Corpus>,
    hotkey: sliver_chain::wallet::Keypair,
    /// Parameters of each stage: the length of its flat merged weights.
    stage_params: Vec<i64>,
    /// The last epoch scored and its merged weights: the next epoch's starting point.
    /// (A mutex only to make the looper `Sync`: tensors are not.)
    last_merged: std::sync::Mutex<Option<(u64, Vec<Option<Tensor>>)>>,
}

impl Looper {
    async fn wait_for_block(&mut self, block: u64) -> Result<()> {
        while *self.clock.borrow() < block {
            self.clock
                .changed()
                .await
                .context("the chain clock stopped")?;
        }
        Ok(())
    }

    async fn run(mut self) -> Result<()> {
        let schedule = self.view.spec.swarm.schedule();
        let mut epoch = schedule.epoch_of(*self.clock.borrow());
        let mut ema = Ema::default();
        let mut scored = 0u64;
        loop {
            let timeline = schedule.timeline(epoch);
            // Samples stop at the drain deadline: pick the artifacts to recompute and ask their
            // miners for the weights they claimed while the merge runs.
            self.wait_for_block(timeline.drain_end).await?;
            let roster = self.view.roster(epoch).await?;
            let no_miners = roster.assignment.members().next().is_none();
            let challenged = if no_miners {
                Vec::new()
            } else {
                checks::challenge(&self.view.spec, &roster, &self.metrics, epoch, &self.store)
                    .await
                    .unwrap_or_else(|e| {
                        warn!(epoch, error = format!("{e:#}"), "no spot checks this epoch");
                        Vec::new()
                    })
            };
            // Scored once the epoch's merge is assembled.
            self.wait_for_block(timeline.score_at).await?;
            if no_miners {
                info!(epoch, "no miners this epoch");
            } else {
                self.score_epoch(epoch, &roster, &mut ema, challenged)
                    .await?;
                scored += 1;
            }
            if self.config.epochs > 0 && scored >= self.config.epochs {
                info!(epochs = scored, "scored the epochs asked for; stopping");
                return Ok(());
            }
            epoch += 1;
        }
    }

    async fn score_epoch(
        &mut self,
        epoch: u64,
        roster: &Roster,
        ema: &mut Ema,
        challenged: Vec<checks::Challenged>,
    ) -> Result<()> {
        let spec = &self.view.spec;
        let stages = spec.stages.len();
        let down_before = bytes_down(&self.metrics);
        let follow::Audit {
            mut rows,
            merged,
            paths,
        } = follow::audit(spec, roster, &self.metrics, epoch, &self.stage_params).await?;
        let start: Vec<Option<Tensor>> =
            match &*self.last_merged.lock().unwrap_or_else(|p| p.into_inner()) {
                Some((e, m)) if *e + 1 == epoch => m
                    .iter()
                    .map(|t| t.as_ref().map(Tensor::shallow_clone))
                    .collect(),
                _ => Vec::new(),
            };
        let hotkey_of: BTreeMap<u16, Hotkey> = roster
            .assignment
            .members()
            .map(|(_, m)| (m.uid, m.hotkey))
            .collect();
        let verified: BTreeMap<Hotkey, u64> = rows
            .iter()
            .filter_map(|r| Some((*hotkey_of.get(&r.uid)?, r.activations + r.gradients)))
            .collect();
        let tallies = checks::check(
            spec,
            roster,
            &self.metrics,
            epoch,
            challenged,
            (&self.corpus, &self.stage_params, start),
            (&verified, &self.clock),
        )
        .await?;
        let mut spot = (0u64, 0u64, 1.0f64, 0.0f64, 0.0f64);
        for row in &mut rows {
            let Some(t) = hotkey_of.get(&row.uid).and_then(|h| tallies.get(h)) else {
                continue;
            };
            row.spot_checks = t.checks;
            row.spot_check_failures = t.failures.len() as u64;
            spot.0 += t.checks;
            spot.1 += t.failures.len() as u64;
            if let Some((cos, norm, drift)) = t.worst_pass {
                spot.2 = spot.2.min(cos);
                spot.3 = spot.3.max(norm);
                spot.4 = spot.4.max(drift);
            }
            for why in &t.failures {
                warn!(
                    epoch,
                    uid = row.uid,
                    hotkey = row.hotkey,
                    why,
                    "failed a spot check"
                );
            }
        }
        *self.last_merged.lock().unwrap_or_else(|p| p.into_inner()) = Some((
            epoch,
            merged
                .iter()
                .map(|m| m.as_ref().map(Tensor::shallow_clone))
                .collect(),
        ));
        let moved = bytes_down(&self.metrics) - down_before;
        let mut path_table = clasp::paths_frame(epoch, stages, &paths)?;
        let effects = clasp::attribute_by_uid(&path_table, stages, &clasp::Config::default())?;
        let judged = scores::judge(&rows, &effects);
        let mut caught = Vec::new();
        for (j, w) in judged.iter().zip(&rows) {
            if !j.caught.is_empty() {
                let why = j.reasons();
                warn!(
                    epoch,
                    uid = j.uid,
                    hotkey = w.hotkey,
                    caught = why,
                    "miner not paid this epoch"
                );
                caught.push(format!("uid{}:{why}", j.uid));
            }
        }
        let epoch_scores: BTreeMap<u16, f64> = judged.iter().map(|j| (j.uid, j.score)).collect();
        ema.update(&epoch_scores);
        let weights = Weights::from_scores(ema.0.iter().map(|(u, s)| (Uid(*u), *s)));
        let weight_of: BTreeMap<u16, u16> = weights
            .uids()
            .iter()
            .zip(weights.values())
            .map(|(u, w)| (u.0, *w))
            .collect();
        if let Err(e) =
            weights::set(&self.view.client, self.view.netuid, &self.hotkey, &weights).await
        {
            warn!(epoch, error = format!("{e:#}"), "could not set weights");
        }
        let table: Vec<Row> = rows
            .iter()
            .zip(judged)
            .map(|(w, judged)| Row {
                work: w.clone(),
                clasp: effects.get(&w.uid).cloned(),
                judged,
                ema: ema.0.get(&w.uid).copied().unwrap_or(0.0),
                weight: weight_of.get(&w.uid).copied().unwrap_or(0),
            })
            .collect();
        let block = *self.clock.borrow();
        let key = layout::scores(&spec.name, epoch);
        let mut score_table = export::scores_frame(epoch, block, &table)?;
        self.store
            .put_once(&key, export::encode(&mut score_table)?)
            .await
            .context("writing the score table")?;
        self.store
            .put_once(
                &layout::paths(&spec.name, epoch),
                export::encode(&mut path_table)?,
            )
            .await
            .context("writing the path table")?;
        let eval = self.eval_merged(epoch, merged).await;
        self.metrics.set_epoch(epoch);
        if let Some(loss) = eval {
            self.metrics.set_loss("eval", loss);
        }
        let samples: Vec<String> = rows
            .iter()
            .map(|r: &MinerWork| format!("uid{}/s{}:{}", r.uid, r.stage, r.work))
            .collect();
        info!(
            target: "sliver_validator::report",
            epoch,
            eval_loss = eval.map(|l| format!("{l:.4}")),
            bytes_moved = moved,
            samples = samples.join(" "),
            paths = paths.len(),
            spot_checks = format!(
                "{} ({} failed; passes within cosine {:.7}, norm error {:.1e}, weight drift {:.2} of the steps' reach)",
                spot.0, spot.1, spot.2, spot.3, spot.4
            ),
            caught = caught.join(" "),
            rejected = rows.iter().map(|r| r.rejected).sum::<u64>(),
            scores = %format!("{}/{}", self.config.store.url.trim_end_matches('/'), key),
            "epoch scored"
        );
        // The same, one JSON line per epoch in `epochs.jsonl`: what programs read.
        let report = record::EpochReport {
            epoch,
            block,
            eval_loss: eval.filter(|l| l.is_finite()),
            bytes_moved: moved,
            miners: table.iter().map(record::MinerRecord::of).collect(),
            paths: paths.len() as u64,
            spot_checks: record::SpotChecks {
                checked: spot.0,
                failed: spot.1,
                worst_cosine: spot.2,
                worst_norm_error: spot.3,
                worst_drift: spot.4,
            },
            rejected: rows.iter().map(|r| r.rejected).sum(),
            scores: format!("{}/{}", self.config.store.url.trim_end_matches('/'), key),
        };
        if let Err(e) = record::append(&self.config.dir, &report) {
            warn!(epoch, error = %e, "could not append to the epoch record");
        }
        Ok(())
    }

    /// Held-out loss of the merged model of `epoch`, through the wire codecs.
    async fn eval_merged(&self, epoch: u64, merged: Vec<Option<Tensor>>) -> Option<f64> {
        let spec = self.view.spec.clone();
        let mut flats = Vec::with_capacity(merged.len());
        for (stage, flat) in merged.into_iter().enumerate() {
            let Some(flat) = flat else {
                warn!(
                    epoch,
                    stage, "no merged weights for a stage; skipping the evaluation"
                );
                return None;
            };
            flats.push(flat);
        }
        let corpus = self.corpus.clone();
        let batches = self.config.eval_batches;
        let r = tokio::task::spawn_blocking(move || -> Result<f64> {
            let mut trainer = Trainer::pipeline(&spec, tch::Device::Cpu, 1)?;
            for (i, flat) in flats.iter().enumerate() {
                sliver_common::flat::load_flat(trainer.stage_mut(i).var_store_mut(), flat)?;
            }
            Ok(trainer.eval(&corpus, batches)?)
        })
        .await;
        match r {
            Ok(Ok(loss)) => Some(loss),
            Ok(Err(e)) => {
                warn!(
                    epoch,
                    error = format!("{e:#}"),
                    "evaluating the merged model failed"
                );
                None
            }
            Err(e) => {
                warn!(epoch, error = %e, "the evaluation task failed");
                None
            }
        }
    }
}

fn bytes_down(m: &Metrics) -> u64 {
    ["act", "grad", "shard", "merged"]
        .iter()
        .map(|k| m.bytes("down", k))
        .sum()
}
