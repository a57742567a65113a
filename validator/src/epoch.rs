//! The validator's epoch, as named phases.
//!
//! Each epoch, once its samples are done (the drain deadline), every miner is challenged for the
//! weights behind a few of its artifacts ([`checks::challenge`]). Once its merge is assembled
//! (the score deadline), the epoch is scored, one phase after the other:
//!
//! 1. tally: the audit ([`follow::audit`]) and the spot checks ([`checks::check`]), folded
//!    into one row per miner;
//! 2. attribute: the table of the finished samples' paths, and each miner's effect on their
//!    loss ([`clasp`]);
//! 3. judge: verdicts and scores ([`scores::judge`]), the miners not paid, the moving average
//!    (kept across restarts in the state directory, by hotkey: [`scores::Ema`]) and the weights;
//! 4. publish: the weights on chain ([`weights::set`]; a failure is a warning), then the score
//!    and path tables in storage ([`export`]; a failure fails the epoch), the score table sealed
//!    under commit-reveal ([`export::Disclosure`]);
//! 5. evaluate: the held-out loss of the merged model, and the metrics;
//! 6. report: the `epoch scored` log line, and the same as one line of `epochs.jsonl`
//!    ([`record`]) and on the dashboard ([`crate::dashboard`]). It comes last because it says
//!    what the phases before it found, the evaluation included.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use sliver_chain::client::{Uid, Weights};
use sliver_common::Epoch;
use sliver_common::Trainer;
use sliver_common::artifact::Hotkey;
use sliver_common::data::Corpus;
use sliver_common::gc;
use sliver_common::layout;
use sliver_common::metrics::Metrics;
use sliver_common::storage::Store;
use sliver_subnet::run::{Roster, RunView};
use tch::Tensor;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::checks;
use crate::clasp;
use crate::config::Config;
use crate::dashboard::{Dashboard, EpochView, RunInfo};
use crate::export::{self, Row};
use crate::follow::{self, MinerWork};
use crate::record::{self, SpotChecks};
use crate::scores::{self, Ema};
use crate::weights;

/// The validator's loop: every epoch, from the chain's clock, until shutdown or `--epochs`.
pub(crate) struct Looper {
    /// The validator's configuration.
    pub(crate) config: Config,
    /// The run, as the chain and the run spec say.
    pub(crate) view: Arc<RunView>,
    /// This validator's storage: challenges and tables are written there.
    pub(crate) store: Store,
    /// The validator's metrics.
    pub(crate) metrics: Metrics,
    /// The chain's block.
    pub(crate) clock: watch::Receiver<u64>,
    /// The held-out text: spot checks and the evaluation read it.
    pub(crate) corpus: Arc<Corpus>,
    /// This validator's hotkey: it sets the weights.
    pub(crate) hotkey: sliver_chain::wallet::Keypair,
    /// Parameters of each stage: the length of its flat merged weights.
    pub(crate) stage_params: Vec<i64>,
    /// The last epoch scored and its merged weights: the next epoch's starting point.
    /// (A mutex only to make the looper `Sync`: tensors are not.)
    pub(crate) last_merged: std::sync::Mutex<Option<(Epoch, Vec<Option<Tensor>>)>>,
    /// The dashboard's figures: each scored epoch is added as it is reported.
    pub(crate) dashboard: Dashboard,
}

/// What the tally made: the epoch's audited work, with the spot checks folded in.
struct Tallied {
    /// One row per miner on the roster, by uid, its spot checks counted.
    rows: Vec<MinerWork>,
    /// Each stage's merged weights (flat); `None` for a stage the audit could not assemble.
    merged: Vec<Option<Tensor>>,
    /// Every finished sample's path, by id.
    paths: Vec<follow::Path>,
    /// The spot checks, over all miners.
    spot: SpotChecks,
    /// Bytes downloaded to audit and check the epoch.
    bytes_moved: u64,
}

/// What the attribution made.
struct Attributed {
    /// The path table (one row per finished sample), as written to storage.
    paths: DataFrame,
    /// Each attributed miner's effect on its paths' loss, by uid.
    effects: BTreeMap<u16, clasp::Effect>,
}

/// What the judgement made.
struct Judgement {
    /// The score table: one row per miner, with its verdict, moving average and weight.
    table: Vec<Row>,
    /// The weights to set: the moving average, normalised.
    weights: Weights,
    /// The miners not paid this epoch, `uid<N>:<reasons>`, as logged.
    caught: Vec<String>,
}

/// What publishing the epoch made.
struct Published {
    /// The chain's block once the weights were set: the score table's block.
    block: u64,
    /// Where the score table is: `<storage url>/<key>`.
    scores: String,
    /// The score table as written (without its `epoch` column): the dashboard's rows.
    table: DataFrame,
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

    /// Runs epoch after epoch: at the drain deadline, challenges the miners; at the score
    /// deadline, scores the epoch.
    ///
    /// # Errors
    /// The chain's clock stopping, a roster that cannot be read, a failed epoch.
    pub(crate) async fn run(mut self) -> Result<()> {
        let schedule = self.view.spec.swarm.schedule();
        let mut epoch = schedule.epoch_of(*self.clock.borrow());
        // The moving averages survive restarts (by hotkey: see `scores::Ema`).
        let (mut ema, set_aside) = Ema::load(&self.config.dir).with_context(|| {
            format!(
                "loading the moving averages from {}",
                self.config.dir.display()
            )
        })?;
        if let Some(why) = set_aside {
            warn!(file = %Ema::path(&self.config.dir).display(), why, "moving averages not loaded");
        }
        let mut scored = 0u64;
        // Deletes this validator's expired challenges from its store, once an epoch ([`gc`]).
        let collector = Arc::new(tokio::sync::Mutex::new(gc::Collector::new(
            self.store.clone(),
            &self.view.spec.name,
            gc::Owner::Validator,
            self.metrics.clone(),
        )));
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
                checks::challenge(
                    &self.view.spec,
                    &roster,
                    &self.metrics,
                    epoch,
                    (&self.store, &self.clock),
                )
                .await
                .unwrap_or_else(|e| {
                    warn!(%epoch, error = format!("{e:#}"), "no spot checks this epoch");
                    Vec::new()
                })
            };
            // Scored once the epoch's merge is assembled.
            self.wait_for_block(timeline.score_at).await?;
            if no_miners {
                info!(%epoch, "no miners this epoch");
            } else {
                self.score_epoch(epoch, &roster, &mut ema, challenged)
                    .await?;
                scored += 1;
            }
            // Off the epoch's work: a task of its own.
            let keep_from = gc::oldest_kept(&schedule, *self.clock.borrow());
            tokio::spawn(gc::collect_once(collector.clone(), keep_from));
            if self.config.epochs > 0 && scored >= self.config.epochs {
                info!(epochs = scored, "scored the epochs asked for; stopping");
                return Ok(());
            }
            epoch = epoch.next();
        }
    }

    /// Scores `epoch`: its phases, in order (see the module's documentation).
    async fn score_epoch(
        &mut self,
        epoch: Epoch,
        roster: &Roster,
        ema: &mut Ema,
        challenged: Vec<checks::Challenged>,
    ) -> Result<()> {
        let stages = self.view.spec.stages.len();
        // What scoring costs, for the record: from here to the report.
        let started = (
            std::time::Instant::now(),
            sliver_common::process::cpu_seconds(),
        );
        let mut tallied = self.tally(epoch, roster, challenged).await?;
        let attributed = attribute(epoch, stages, &tallied.paths)?;
        let judgement = judge(epoch, &tallied.rows, &attributed.effects, ema);
        if let Err(e) = ema.save(&self.config.dir) {
            warn!(
                %epoch,
                file = %Ema::path(&self.config.dir).display(),
                error = %e,
                "could not save the moving averages; a restart would start them from zero"
            );
        }
        let published = self.publish(epoch, &judgement, attributed.paths).await?;
        let eval = self
            .evaluate(epoch, std::mem::take(&mut tallied.merged))
            .await;
        self.report(epoch, &tallied, &judgement, &published, eval, started);
        Ok(())
    }

    /// Tally: audits every miner of `epoch` ([`follow::audit`]), recomputes the `challenged`
    /// artifacts ([`checks::check`]) from the last epoch's merge, and counts each miner's spot
    /// checks into its row, warning of every failure. Keeps the epoch's merge as the next
    /// epoch's starting point.
    ///
    /// # Errors
    /// The audit or the spot checks failing.
    async fn tally(
        &self,
        epoch: Epoch,
        roster: &Roster,
        challenged: Vec<checks::Challenged>,
    ) -> Result<Tallied> {
        let spec = &self.view.spec;
        let down_before = bytes_down(&self.metrics);
        let start: Vec<Option<Tensor>> =
            match &*self.last_merged.lock().unwrap_or_else(|p| p.into_inner()) {
                Some((e, m)) if e.next() == epoch => m
                    .iter()
                    .map(|t| t.as_ref().map(Tensor::shallow_clone))
                    .collect(),
                _ => Vec::new(),
            };
        // The audit starts at `score_at`; its reads end by `audit_end` at the latest.
        let deadline = follow::Deadline::at(
            self.clock.clone(),
            spec.swarm.schedule().timeline(epoch).audit_end,
        );
        let follow::Audit {
            mut rows,
            merged,
            paths,
        } = follow::audit(
            spec,
            roster,
            &self.metrics,
            epoch,
            (
                &self.stage_params,
                start
                    .iter()
                    .map(|t| t.as_ref().map(Tensor::shallow_clone))
                    .collect(),
            ),
            &deadline,
        )
        .await;
        let hotkey_of: BTreeMap<u16, Hotkey> = roster
            .assignment
            .members()
            .map(|(_, m)| (m.uid, m.hotkey))
            .collect();
        let verified: BTreeMap<Hotkey, u64> = rows
            .iter()
            .filter_map(|r| Some((*hotkey_of.get(&r.uid)?, r.listed)))
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
        let mut spot = SpotChecks {
            checked: 0,
            failed: 0,
            worst_cosine: 1.0,
            worst_norm_error: 0.0,
            worst_drift: 0.0,
        };
        for row in &mut rows {
            let Some(t) = hotkey_of.get(&row.uid).and_then(|h| tallies.get(h)) else {
                continue;
            };
            row.spot_checks = t.checks;
            row.spot_check_failures = t.failures.len() as u64;
            spot.checked += t.checks;
            spot.failed += t.failures.len() as u64;
            if let Some((cos, norm, drift)) = t.worst_pass {
                spot.worst_cosine = spot.worst_cosine.min(cos);
                spot.worst_norm_error = spot.worst_norm_error.max(norm);
                spot.worst_drift = spot.worst_drift.max(drift);
            }
            for why in &t.failures {
                warn!(
                    %epoch,
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
        Ok(Tallied {
            rows,
            merged,
            paths,
            spot,
            bytes_moved: bytes_down(&self.metrics) - down_before,
        })
    }

    /// Publish: sets the weights on chain (a failure is a warning: the next epoch sets them
    /// again), then writes the score table and the path table to storage. Where the subnet
    /// uses commit-reveal (or this cannot be read from chain), the score table is written
    /// sealed ([`export::Disclosure`]): the weights are committed timelocked, and the table
    /// must not reveal them before the chain does.
    ///
    /// # Errors
    /// A table that cannot be encoded or written.
    async fn publish(
        &self,
        epoch: Epoch,
        judgement: &Judgement,
        mut path_table: DataFrame,
    ) -> Result<Published> {
        let spec = &self.view.spec;
        if let Err(e) = weights::set(
            &self.view.client,
            self.view.netuid,
            &self.hotkey,
            &judgement.weights,
        )
        .await
        {
            warn!(%epoch, error = format!("{e:#}"), "could not set weights");
        }
        let block = *self.clock.borrow();
        let disclosure = match self.view.client.subnet_params(self.view.netuid).await {
            Ok(p) if !p.commit_reveal => export::Disclosure::Public,
            Ok(_) => export::Disclosure::Sealed,
            Err(e) => {
                warn!(%epoch, error = %e, "cannot tell whether weights are timelocked; the score table shows none");
                export::Disclosure::Sealed
            }
        };
        let key = layout::scores(&spec.name, epoch);
        let mut score_table = export::scores_frame(epoch, block, &judgement.table, disclosure)?;
        self.store
            .put_once(&key, export::encode_part(&mut score_table)?)
            .await
            .context("writing the score table")?;
        self.store
            .put_once(
                &layout::paths(&spec.name, epoch),
                export::encode_part(&mut path_table)?,
            )
            .await
            .context("writing the path table")?;
        Ok(Published {
            block,
            scores: format!("{}/{}", self.config.store.url.trim_end_matches('/'), key),
            table: score_table,
        })
    }

    /// Evaluate: the held-out loss of the epoch's `merged` model (`None` when it could not be
    /// evaluated), into the metrics with the epoch.
    async fn evaluate(&self, epoch: Epoch, merged: Vec<Option<Tensor>>) -> Option<f64> {
        let eval = self.eval_merged(epoch, merged).await;
        self.metrics.set_epoch(epoch);
        if let Some(loss) = eval {
            self.metrics.set_loss("eval", loss);
        }
        eval
    }

    /// Held-out loss of the merged model of `epoch`, through the wire codecs.
    async fn eval_merged(&self, epoch: Epoch, merged: Vec<Option<Tensor>>) -> Option<f64> {
        let spec = self.view.spec.clone();
        let mut flats = Vec::with_capacity(merged.len());
        for (stage, flat) in merged.into_iter().enumerate() {
            let Some(flat) = flat else {
                warn!(
                    %epoch,
                    %stage, "no merged weights for a stage; skipping the evaluation"
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
                    %epoch,
                    error = format!("{e:#}"),
                    "evaluating the merged model failed"
                );
                None
            }
            Err(e) => {
                warn!(%epoch, error = %e, "the evaluation task failed");
                None
            }
        }
    }

    /// Report: the `epoch scored` log line, then the same as one line of `epochs.jsonl`
    /// ([`record::append`]; a failure to append is a warning).
    fn report(
        &self,
        epoch: Epoch,
        tallied: &Tallied,
        judgement: &Judgement,
        published: &Published,
        eval: Option<f64>,
        started: (std::time::Instant, Option<f64>),
    ) {
        let Tallied {
            rows,
            paths,
            spot,
            bytes_moved,
            ..
        } = tallied;
        let samples: Vec<String> = rows
            .iter()
            .map(|r: &MinerWork| format!("uid{}/s{}:{}", r.uid, r.stage, r.work))
            .collect();
        let cost = record::Cost {
            work_s: started.0.elapsed().as_secs_f64(),
            cpu_s: sliver_common::process::cpu_seconds()
                .zip(started.1)
                .map(|(now, then)| now - then),
            peak_rss_bytes: sliver_common::process::peak_rss_bytes(),
        };
        info!(
            target: "sliver_validator::report",
            %epoch,
            eval_loss = eval.map(|l| format!("{l:.4}")),
            bytes_moved = *bytes_moved,
            samples = samples.join(" "),
            paths = paths.len(),
            spot_checks = format!(
                "{} ({} failed; passes within cosine {:.7}, norm error {:.1e}, weight drift {:.2} of the steps' reach)",
                spot.checked, spot.failed, spot.worst_cosine, spot.worst_norm_error, spot.worst_drift
            ),
            caught = judgement.caught.join(" "),
            rejected = rows.iter().map(|r| r.rejected).sum::<u64>(),
            scores = %published.scores,
            work_s = format!("{:.1}", cost.work_s),
            cpu_s = cost.cpu_s.map(|c| format!("{c:.1}")),
            peak_rss_mb = cost.peak_rss_bytes.map(|b| b >> 20),
            "epoch scored"
        );
        // The same, one JSON line per epoch in `epochs.jsonl`: what programs read.
        let report = record::EpochReport {
            epoch,
            block: published.block,
            eval_loss: eval.filter(|l| l.is_finite()),
            bytes_moved: *bytes_moved,
            miners: judgement
                .table
                .iter()
                .map(record::MinerRecord::of)
                .collect(),
            paths: paths.len() as u64,
            spot_checks: spot.clone(),
            rejected: rows.iter().map(|r| r.rejected).sum(),
            scores: published.scores.clone(),
            cost,
        };
        if let Err(e) = record::append(&self.config.dir, &report) {
            warn!(%epoch, error = %e, "could not append to the epoch record");
        }
        // And the dashboard: the record line with the score table, as a restart reads them.
        let run = RunInfo::of(&self.view.spec);
        self.dashboard
            .push(EpochView::of(&report, Some(&published.table), &run));
    }
}

/// Attribute: the table of `epoch`'s finished `paths`, and each miner's effect on the loss of
/// its paths against its stage peers ([`clasp`], with its default thresholds).
///
/// # Errors
/// When polars fails.
fn attribute(epoch: Epoch, stages: usize, paths: &[follow::Path]) -> Result<Attributed> {
    let table = clasp::paths_frame(epoch, stages, paths)?;
    let effects = clasp::attribute_by_uid(&table, stages, &clasp::Config::default())?;
    Ok(Attributed {
        paths: table,
        effects,
    })
}

/// Judge: each miner's verdict and score ([`scores::judge`]), a warning for each miner not paid,
/// the moving average `ema` updated with the scores, and from it the weights and the score
/// table's rows.
fn judge(
    epoch: Epoch,
    rows: &[MinerWork],
    effects: &BTreeMap<u16, clasp::Effect>,
    ema: &mut Ema,
) -> Judgement {
    let judged = scores::judge(rows, effects);
    let mut caught = Vec::new();
    for (j, w) in judged.iter().zip(rows) {
        if !j.caught.is_empty() {
            let why = j.reasons();
            warn!(
                %epoch,
                uid = j.uid,
                hotkey = w.hotkey,
                caught = why,
                "miner not paid this epoch"
            );
            caught.push(format!("uid{}:{why}", j.uid));
        }
    }
    ema.update(
        judged
            .iter()
            .zip(rows)
            .map(|(j, w)| (j.uid, w.hotkey.as_str(), j.score)),
    );
    let weights = Weights::from_scores(ema.by_uid().map(|(u, s)| (Uid(u), s)));
    let weight_of: BTreeMap<u16, u16> = weights
        .uids()
        .iter()
        .zip(weights.values())
        .map(|(u, w)| (u.0, *w))
        .collect();
    let table: Vec<Row> = rows
        .iter()
        .zip(judged)
        .map(|(w, judged)| Row {
            work: w.clone(),
            clasp: effects.get(&w.uid).cloned(),
            judged,
            ema: ema.score(w.uid).unwrap_or(0.0),
            weight: weight_of.get(&w.uid).copied().unwrap_or(0),
        })
        .collect();
    Judgement {
        table,
        weights,
        caught,
    }
}

/// Bytes downloaded so far, of every kind the validator reads.
fn bytes_down(m: &Metrics) -> u64 {
    ["act", "grad", "shard", "merged"]
        .iter()
        .map(|k| m.bytes("down", k))
        .sum()
}
