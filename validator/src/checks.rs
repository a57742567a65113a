//! Spot checks: recomputing a few of each miner's artifacts from the inputs it consumed and the
//! weights it claimed (the protocol is [`sliver_common::spot_check`]).
//!
//! Once an epoch's samples are done (a quarter into its merge window), [`challenge`] picks
//! `validation.spot_checks` artifacts of every miner at random among those in its store, reads
//! them (verified like any artifact), and writes the weight hashes they claim as a challenge
//! into this validator's store. The miner puts those weight versions in its store while the
//! merge runs. After the merge, [`check`] reads each version (the bytes must hash to the claim
//! and lie within reach of the epoch's starting weights: no weight moved more than
//! `validation.weight_drift_margin` times what AdamW can move it in the steps the miner's
//! artifacts allow), reads the
//! artifact's inputs from storage (the previous stage's activation and, for a middle stage's
//! gradient, the next stage's gradient, each from the producer the artifact's evidence names;
//! the sample's text), recomputes the artifact on CPU, sends it through the same wire codec, and
//! compares ([`Agreement`]); on the last stage also the loss the miner claimed. A miner fails a
//! check when it does not answer, answers with other weights, or its artifact is not what its
//! weights compute. A pick that should not exist (past stage 0, an artifact for a sample routed
//! to another miner of its stage) fails its miner whatever it shows. An input that is not the
//! object the evidence names (its producer serves another object it signed under that name, or
//! none) fails the input's producer, proven by its own signature in the evidence, and the pick
//! counts neither way for its miner: an equivocating or vanishing producer cannot get the miner
//! that computed from what it was shown failed. Every read of a miner's store is bounded as the
//! audit's are ([`crate::follow::Deadline`]).
//!
//! The miner cannot know which artifacts will be checked: the choice is made from this
//! validator's randomness after the artifacts were signed and uploaded. One check catches a
//! miner that cheats on every artifact; one that cheats on a fraction `f` of them is caught
//! with probability `1 - (1 - f)^k` per epoch for `k` checks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use rand::seq::IndexedRandom;
use sliver_common::artifact::{ArtifactId, Header, Hotkey, Kind};
use sliver_common::assignment::Member;
use sliver_common::data::Corpus;
use sliver_common::flat::WeightsHash;
use sliver_common::layout;
use sliver_common::metrics::Metrics;
use sliver_common::model::Batch;
use sliver_common::spot_check::{self, Agreement};
use sliver_common::storage::{Put, Store, parts};
use sliver_common::{Epoch, RunSpec, Stage, StageIndex, routing};
use sliver_subnet::fetch;
use sliver_subnet::run::Roster;
use tch::{Device, Tensor};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::follow::{Deadline, within};

/// Miners whose stores are read at once.
const MINERS_AT_ONCE: usize = 8;

/// One artifact picked for recomputation.
pub struct Challenged {
    /// Its producer.
    pub miner: Hotkey,
    /// The producer's stage.
    pub stage: StageIndex,
    /// Activation or gradient.
    pub kind: Kind,
    /// The sample.
    pub id: u64,
    /// The weights it claims, if any (an artifact that claims none cannot pass).
    pub weights: Option<WeightsHash>,
    /// The loss it claims (the last stage's gradients).
    pub loss: Option<f32>,
    /// The headers of the inputs it names as evidence: what its producer was shown.
    pub inputs: Vec<Header>,
    /// Its decoded tensor.
    pub uploaded: Tensor,
}

/// What the checks found for one miner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Artifacts recomputed.
    pub checks: u64,
    /// Those that did not match, with why.
    pub failures: Vec<String>,
    /// Among the checks that passed (honest variation): the least cosine, the largest norm
    /// error, and the largest drift of claimed weights from the epoch's start, as a share of
    /// what the miner's steps allow (0 when unknown).
    pub worst_pass: Option<(f64, f64, f64)>,
}

/// Picks `validation.spot_checks` artifacts of every miner of `epoch` and writes each miner's
/// challenge into `store` (this validator's). Miners' stores are read concurrently, each read
/// within [`crate::follow::peer_deadline`] and before the epoch's `reduce_end` on `clock`; a
/// miner whose store cannot be read in time is not challenged (and so not paid for checks it
/// could not get).
///
/// # Errors
/// Writing a challenge fails.
pub async fn challenge(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    (store, clock): (&Store, &watch::Receiver<u64>),
) -> Result<Vec<Challenged>> {
    let k = spec.validation.spot_checks;
    let mut out = Vec::new();
    if k == 0 {
        return Ok(out);
    }
    // Every miner's picks are read concurrently, each read bounded: a store that fails or
    // stalls costs its own miner's checks only.
    let deadline = Deadline::at(
        clock.clone(),
        spec.swarm.schedule().timeline(epoch).reduce_end,
    );
    let deadline = &deadline;
    let picks: Vec<_> = roster
        .assignment
        .members()
        .map(|(stage, m)| pick((spec, roster, metrics), (epoch, stage, *m), k, deadline))
        .collect();
    let mut picks: Vec<(Member, Vec<Challenged>)> = futures::stream::iter(picks)
        .buffer_unordered(MINERS_AT_ONCE)
        .collect()
        .await;
    picks.sort_by_key(|(m, _)| m.uid);
    for (m, picked) in picks {
        let claims: Vec<WeightsHash> = picked.iter().filter_map(|c| c.weights).collect();
        out.extend(picked);
        if claims.is_empty() {
            continue;
        }
        let key = layout::challenge(&spec.name, epoch, &m.hotkey);
        let put = store
            .put_once(&key, Bytes::from(spot_check::challenge_text(&claims)))
            .await
            .with_context(|| format!("writing the spot-check challenge {key}"))?;
        if put == Put::Exists {
            // Challenged before a restart: the miner answers that challenge, so only the picks
            // whose weights it names can be checked.
            let asked = store
                .get(&key, spot_check::max_challenge_len())
                .await
                .ok()
                .flatten()
                .and_then(|b| spot_check::parse_challenge(&b).ok())
                .unwrap_or_default();
            out.retain(|c| c.miner != m.hotkey || c.weights.is_some_and(|w| asked.contains(&w)));
        }
    }
    Ok(out)
}

/// Picks `k` of miner `m`'s artifacts at random among those its store lists, and reads them;
/// every read bounded ([`within`]).
async fn pick(
    (spec, roster, metrics): (&RunSpec, &Roster, &Metrics),
    (epoch, stage, m): (Epoch, StageIndex, Member),
    k: usize,
    deadline: &Deadline,
) -> (Member, Vec<Challenged>) {
    let stages = spec.stages.len();
    let Ok(miner_store) = roster.store(&m.hotkey) else {
        return (m, Vec::new());
    };
    let mut candidates: Vec<(Kind, u64)> = Vec::new();
    for kind in [Kind::Act, Kind::Grad] {
        let produces = match kind {
            Kind::Act => !stage.is_last(stages),
            _ => !stage.is_first(),
        };
        if !produces {
            continue;
        }
        let prefix = layout::artifacts(&spec.name, epoch, stage, &m.hotkey, kind);
        match within(spec, deadline, miner_store.list(&prefix)).await {
            Some(Ok(keys)) => candidates.extend(
                keys.iter()
                    .filter_map(|k| layout::id_of_key(k))
                    .map(|id| (kind, id)),
            ),
            Some(Err(e)) => {
                metrics.reject("unreadable_store");
                warn!(%epoch, uid = m.uid, miner = %m.hotkey.short(), error = %e, "listing a miner's artifacts for spot checks failed");
            }
            None => {
                metrics.reject("timeout");
                warn!(%epoch, uid = m.uid, miner = %m.hotkey.short(), "listing a miner's artifacts for spot checks did not end in time");
            }
        }
    }
    let picked: Vec<(Kind, u64)> = candidates
        .choose_multiple(&mut rand::rng(), k)
        .copied()
        .collect();
    let mut out = Vec::new();
    for (kind, id) in picked {
        let at = ArtifactId {
            epoch,
            stage,
            kind,
            id,
        };
        let Some(Some((header, uploaded))) = within(
            spec,
            deadline,
            fetch::boundary(spec, roster, metrics, at, &m.hotkey),
        )
        .await
        else {
            continue;
        };
        out.push(Challenged {
            miner: m.hotkey,
            stage,
            kind,
            id,
            weights: header.weights,
            loss: header.loss,
            inputs: header.inputs,
            uploaded,
        });
    }
    (m, out)
}

/// One recomputation, with everything read from storage.
struct Job {
    miner: Hotkey,
    stage: StageIndex,
    kind: Kind,
    id: u64,
    weights: Tensor,
    /// The inputs it may have consumed (none for stage 0): every verified activation of the
    /// sample that could have reached it; the check passes when any of them reproduces the
    /// artifact (a stranger's copy under the same id must not fail an honest miner).
    inputs: Vec<Tensor>,
    upstream: Option<Tensor>,
    loss: Option<f32>,
    uploaded: Tensor,
    /// The most optimizer steps the miner can have taken this epoch.
    steps: u64,
}

/// What reading an input that a picked artifact names as evidence found.
enum Shown {
    /// The very object the evidence names (same signed header): its tensor.
    Same(Tensor),
    /// Another object under the same name, signed by the same producer: it equivocated.
    Other,
    /// Nothing readable in its producer's store.
    Missing,
}

/// Reads the input `named` (an evidence header) from its producer's store, bounded by a
/// sample's timeout, and says whether it is the object the consumer was shown.
async fn read_input(spec: &RunSpec, roster: &Roster, metrics: &Metrics, named: &Header) -> Shown {
    let at = ArtifactId {
        epoch: named.epoch,
        stage: named.stage,
        kind: named.kind,
        id: named.id,
    };
    let reads = Deadline::none();
    let read = fetch::boundary(spec, roster, metrics, at, &named.producer);
    match within(spec, &reads, read).await.flatten() {
        Some((h, t)) if h.digest() == named.digest() => Shown::Same(t),
        Some((h, _)) if named.equivocates(&h) => Shown::Other,
        _ => Shown::Missing,
    }
}

/// Recomputes every challenged artifact and tallies the results by miner. `start` holds each
/// stage's weights at the start of the epoch (the previous epoch's merge), when known.
///
/// # Errors
/// The recomputation task failed (a libtorch error or a panic).
pub async fn check(
    spec: &RunSpec,
    roster: &Roster,
    metrics: &Metrics,
    epoch: Epoch,
    mut challenged: Vec<Challenged>,
    (corpus, stage_params, start): (&Arc<Corpus>, &[i64], Vec<Option<Tensor>>),
    (verified, clock): (&BTreeMap<Hotkey, u64>, &watch::Receiver<u64>),
) -> Result<BTreeMap<Hotkey, Tally>> {
    // Miners answer until the schedule's answer deadline; an answer not there yet is waited
    // for until then.
    let deadline = spec.swarm.schedule().timeline(epoch).answer_end;
    let stages = spec.stages.len();
    let mut tallies: BTreeMap<Hotkey, Tally> = BTreeMap::new();
    // The picks in order of the version they claim: each version is read once, its picks
    // recomputed, and it is dropped before the next is read, so the validator holds one
    // stage's weights at a time (besides the epoch's starting weights), however many miners
    // and versions it checks.
    challenged.sort_by_key(|c| (c.miner, c.weights));
    let mut recomputer = Recomputer {
        spec: spec.clone(),
        corpus: Arc::clone(corpus),
        start,
        models: (0..stages).map(|_| None).collect(),
    };
    let mut jobs: Vec<Job> = Vec::new();
    // The version in memory, and why each version that could not be used failed (looked for
    // once: another pick claiming it fails for the same reason without waiting again).
    let mut held: Option<((Hotkey, WeightsHash), Tensor)> = None;
    let mut unusable: std::collections::HashMap<(Hotkey, WeightsHash), String> =
        std::collections::HashMap::new();
    // Each read of a miner's store is bounded by a sample's timeout alone: the answer deadline
    // ends the wait for an answer not there yet, not the reading of what is there (a stalling
    // store must not use up the deadline of the miners checked after it).
    let reads = Deadline::none();
    // Inputs already blamed on their producer: one fault counted once, however many picks
    // named it.
    let mut blame: HashSet<(Hotkey, Kind, u64)> = HashSet::new();
    for c in challenged {
        let tally = tallies.entry(c.miner).or_default();
        // Past stage 0 an artifact exists only for a sample routed to its producer: one for a
        // sample routed elsewhere has no inputs the miner could have received, and fails
        // whatever else it shows.
        if let Some(why) = unrouted(spec, roster, epoch, &c) {
            tally.checks += 1;
            tally.failures.push(why);
            continue;
        }
        let Some(claim) = c.weights else {
            tally.checks += 1;
            tally.failures.push("an artifact claims no weights".into());
            continue;
        };
        // The inputs, as the evidence names them: the previous stage's activation and, for a
        // middle stage's gradient, the next stage's gradient. An input that is not the object
        // the miner was shown is its producer's fault, proven by the producer's own signature:
        // another object under the same name (it equivocated), or none at all.
        let needs_grad = c.kind == Kind::Grad && !c.stage.is_last(stages);
        if needs_grad && !c.inputs.iter().any(|h| h.kind == Kind::Grad) {
            tally.checks += 1;
            tally.failures.push(format!(
                "gradient {} names no gradient it was computed from",
                c.id
            ));
            continue;
        }
        let (mut inputs, mut upstream, mut blamed) = (Vec::new(), None, false);
        for named in &c.inputs {
            let (kind, id, consumer) = (named.kind.as_str(), named.id, c.miner.short());
            let why = match read_input(spec, roster, metrics, named).await {
                Shown::Same(t) if named.kind == Kind::Act => {
                    inputs.push(t);
                    continue;
                }
                Shown::Same(t) => {
                    upstream = Some(t);
                    continue;
                }
                Shown::Other => format!(
                    "equivocated: showed the validator another {kind} {id} than the one it signed for miner {consumer}"
                ),
                Shown::Missing => {
                    format!("does not serve {kind} {id}, which it signed for miner {consumer}")
                }
            };
            blamed = true;
            if blame.insert((named.producer, named.kind, named.id)) {
                warn!(%epoch, producer = %named.producer.short(), consumer = %c.miner.short(), why, "an input named as evidence is not what its producer serves");
                let t = tallies.entry(named.producer).or_default();
                t.checks += 1;
                t.failures.push(why);
            }
        }
        if blamed {
            continue;
        }
        let Ok(miner_store) = roster.store(&c.miner) else {
            continue;
        };
        let version = (c.miner, claim);
        if let Some(why) = unusable.get(&version) {
            let tally = tallies.entry(c.miner).or_default();
            tally.checks += 1;
            tally.failures.push(why.clone());
            continue;
        }
        if held.as_ref().is_none_or(|(v, _)| *v != version) {
            // Another version: the held one's picks are recomputed and it is dropped first.
            held = None;
            let done = recomputer.run(std::mem::take(&mut jobs)).await?;
            record(&mut tallies, done);
            let params = stage_params
                .get(c.stage.index())
                .copied()
                .unwrap_or(0)
                .max(0) as u64;
            let key = layout::weights_answer(&spec.name, epoch, c.stage, &c.miner, &claim);
            match read_version(
                spec,
                miner_store,
                (&key, claim, params),
                metrics,
                (&reads, clock, deadline),
            )
            .await
            {
                Ok(Some(weights)) => held = Some((version, weights)),
                Ok(None) => continue,
                Err(why) => {
                    let tally = tallies.entry(c.miner).or_default();
                    tally.checks += 1;
                    tally.failures.push(why.clone());
                    unusable.insert(version, why);
                    continue;
                }
            }
        }
        let Some((_, weights)) = held.as_ref() else {
            continue;
        };
        jobs.push(Job {
            miner: c.miner,
            stage: c.stage,
            kind: c.kind,
            id: c.id,
            weights: weights.shallow_clone(),
            inputs,
            upstream,
            loss: c.loss,
            uploaded: c.uploaded,
            // One step per `accumulate` backwards (bounded by the artifacts the audit listed of
            // the miner's own samples), one at the epoch's end, and the forwards of samples in
            // flight run on weights predicted up to two steps ahead. When the audit listed none
            // (its store could not be listed in time, or this validator ran out of its own
            // audit time: the scale benchmark's busy machine caught honest miners so), nothing
            // is known of its steps, and the most an epoch allows bounds them.
            steps: match verified.get(&c.miner).copied() {
                Some(listed) if listed > 0 => listed / spec.optimizer.accumulate.max(1) as u64 + 3,
                _ => sliver_common::merge::max_epoch_steps(
                    spec,
                    roster.assignment.stage(StageIndex::FIRST).len(),
                ),
            },
        });
    }
    drop(held);
    let done = recomputer.run(jobs).await?;
    record(&mut tallies, done);
    Ok(tallies)
}

/// Reads the weight version `claim` a miner put at `key` in answer to a challenge, in parts
/// ([`sliver_common::storage::parts`], each read bounded alone), looking again at each new block
/// until `deadline` while a part is not there: the weights, `Ok(None)` when they hash right but
/// cannot be read as a flat tensor, or why the miner fails the check.
async fn read_version(
    spec: &RunSpec,
    store: &Store,
    (key, claim, params): (&str, WeightsHash, u64),
    metrics: &Metrics,
    (reads, clock, deadline): (&Deadline, &watch::Receiver<u64>, u64),
) -> Result<Option<Tensor>, String> {
    let len = params * 4;
    let mut bytes = Vec::with_capacity(len as usize);
    for (i, range) in parts::ranges(len, parts::PART_LEN).enumerate() {
        let part = parts::key(key, i);
        // Each read bounded: a store that stalls fails its own miner's check.
        let get = || within(spec, reads, store.get(&part, range.end - range.start));
        let mut got = get().await;
        let mut blocks = clock.clone();
        while matches!(got, Some(Ok(None)) | None) && *blocks.borrow() < deadline {
            if blocks.changed().await.is_err() {
                break;
            }
            got = get().await;
        }
        let got = match got.unwrap_or(Ok(None)) {
            Ok(Some(b)) => b,
            Ok(None) => return Err("did not show the weights it claimed".into()),
            Err(e) => return Err(format!("its claimed weights: {e}")),
        };
        metrics.add_bytes("down", "weights", got.len() as u64);
        if got.len() as u64 != range.end - range.start {
            return Err("showed weights that are not the ones it claimed".into());
        }
        bytes.extend_from_slice(&got);
    }
    if WeightsHash::of_bytes(&bytes) != claim {
        return Err("showed weights that are not the ones it claimed".into());
    }
    Ok(sliver_common::flat::flat_from_bytes(&bytes))
}

/// Counts each recomputation's verdict in its miner's tally.
fn record(tallies: &mut BTreeMap<Hotkey, Tally>, done: Vec<(Hotkey, Verdict)>) {
    for (miner, verdict) in done {
        let tally = tallies.entry(miner).or_default();
        tally.checks += 1;
        match verdict {
            Ok((a, drift)) => {
                let worst = tally.worst_pass.get_or_insert((1.0, 0.0, 0.0));
                worst.0 = worst.0.min(a.cosine);
                worst.1 = worst.1.max((a.norm_ratio - 1.0).abs());
                worst.2 = worst.2.max(drift.unwrap_or(0.0));
            }
            Err(why) => tally.failures.push(why),
        }
    }
}

/// Runs recomputations on a blocking thread, keeping one stage model per stage (built on first
/// use) and the epoch's starting weights from one batch of jobs to the next.
struct Recomputer {
    spec: RunSpec,
    corpus: Arc<Corpus>,
    start: Vec<Option<Tensor>>,
    models: Vec<Option<Stage>>,
}

impl Recomputer {
    /// Recomputes `jobs` off the async runtime.
    async fn run(&mut self, jobs: Vec<Job>) -> Result<Vec<(Hotkey, Verdict)>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (spec, corpus) = (self.spec.clone(), Arc::clone(&self.corpus));
        let start = std::mem::take(&mut self.start);
        let mut models = std::mem::take(&mut self.models);
        let (start, models, results) = tokio::task::spawn_blocking(move || {
            let results = recompute_all(&spec, &corpus, &start, &mut models, jobs);
            (start, models, results)
        })
        .await
        .context("the spot-check task failed")?;
        self.start = start;
        self.models = models;
        results
    }
}

/// Why the picked artifact `c` should not exist, if its routing says so: past stage 0, an
/// artifact of a sample the routing gives another miner of its stage (stage 0's ids name their
/// origin only through a counter the validator does not know, so they are not judged here).
fn unrouted(spec: &RunSpec, roster: &Roster, epoch: Epoch, c: &Challenged) -> Option<String> {
    if c.stage.is_first() {
        return None;
    }
    let routed =
        routing::route(&spec.name, epoch, c.id, c.stage, &roster.assignment).map(|m| m.hotkey);
    (routed != Some(c.miner)).then(|| {
        format!(
            "{} {} is for a sample not routed to it",
            c.kind.as_str(),
            c.id
        )
    })
}

/// One recomputation's outcome: how close it came and how far the claimed weights drifted (a
/// share of what the miner's steps allow; `None` when the epoch's start is unknown), or why it
/// failed.
type Verdict = Result<(Agreement, Option<f64>), String>;

/// Runs every job on the CPU, one stage model per stage (in `models`, built on first use)
/// reused across jobs.
fn recompute_all(
    spec: &RunSpec,
    corpus: &Corpus,
    start: &[Option<Tensor>],
    models: &mut [Option<Stage>],
    jobs: Vec<Job>,
) -> Result<Vec<(Hotkey, Verdict)>> {
    let tol = &spec.validation;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let slot = &mut models[job.stage.index()];
        if slot.is_none() {
            *slot = Some(Stage::new(spec, job.stage.index(), Device::Cpu)?);
        }
        let Some(stage) = slot.as_mut() else {
            continue;
        };
        // The sample's tokens: a failure to read them (a shard's store) is this validator's,
        // never the miner's, so it fails the checks instead of a verdict.
        let batch = routing::sample_batch(spec, corpus, job.id, Device::Cpu)
            .with_context(|| format!("reading the tokens of sample {}", job.id))?;
        // The largest change of one weight since the epoch's start, in units of what the
        // miner's steps allow.
        let drift = start
            .get(job.stage.index())
            .and_then(Option::as_ref)
            .map(|w0| {
                let moved = (&job.weights - w0).abs().max().double_value(&[]);
                let w_max = w0.abs().max().double_value(&[]) + moved;
                let allowed = spec.optimizer.max_step_change(w_max) * job.steps as f64;
                moved / allowed.max(1e-30)
            });
        let verdict = match drift {
            Some(d) if d.is_nan() || d > tol.weight_drift_margin => Err(format!(
                "claimed weights moved {d:.2} times what {} optimizer steps allow since the epoch's start (at most {})",
                job.steps, tol.weight_drift_margin
            )),
            _ => match sliver_common::flat::load_flat(stage.var_store_mut(), &job.weights) {
                Ok(()) => recompute(spec, &batch, stage, &job).map(|a| (a, drift)),
                Err(e) => Err(format!("its claimed weights do not load: {e}")),
            },
        };
        debug!(
            miner = %job.miner.short(),
            stage = job.stage.0,
            kind = job.kind.as_str(),
            id = job.id,
            ?verdict,
            drift,
            "spot check"
        );
        out.push((job.miner, verdict));
    }
    Ok(out)
}

/// Recomputes one artifact on `stage` (its claimed weights loaded) from each candidate input
/// and compares: the first that reproduces it passes, else the first one's mismatch stands.
fn recompute(spec: &RunSpec, batch: &Batch, stage: &Stage, job: &Job) -> Result<Agreement, String> {
    let inputs: Vec<Option<&Tensor>> = if job.inputs.is_empty() {
        vec![None]
    } else {
        job.inputs.iter().map(Some).collect()
    };
    let mut first = None;
    for input in inputs {
        match recompute_from(spec, batch, stage, job, input) {
            Ok(a) => return Ok(a),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| "nothing to recompute".into()))
}

/// [`recompute`] from one input.
fn recompute_from(
    spec: &RunSpec,
    batch: &Batch,
    stage: &Stage,
    job: &Job,
    input: Option<&Tensor>,
) -> Result<Agreement, String> {
    let torch = |e: &dyn std::fmt::Display| format!("recomputing failed: {e}");
    let (recomputed, loss) = if job.kind == Kind::Act {
        let fwd = tch::no_grad(|| stage.forward(input, batch)).map_err(|e| torch(&e))?;
        (fwd.output().shallow_clone(), None)
    } else {
        let fwd = stage.forward(input, batch).map_err(|e| torch(&e))?;
        let loss = job
            .upstream
            .is_none()
            .then(|| fwd.output().double_value(&[]));
        let g = stage
            .backward(fwd, job.upstream.as_ref())
            .map_err(|e| torch(&e))?
            .ok_or_else(|| "stage 0 has no input gradient".to_owned())?;
        (g, loss)
    };
    let codec = if job.kind == Kind::Grad {
        spec.gradient_codec()
    } else {
        spec.activation_codec()
    };
    let wire = codec
        .encode(&recomputed)
        .and_then(|m| codec.decode(&m, Device::Cpu))
        .map_err(|e| torch(&e))?;
    let a = Agreement::of(&job.uploaded, &wire);
    if let Some(why) = a.mismatch(&spec.validation) {
        return Err(format!("{} {} {why}", job.kind.as_str(), job.id));
    }
    if let Some(loss) = loss {
        let claimed = job.loss.map_or(f64::NAN, f64::from);
        let error = (claimed - loss).abs() / loss.abs().max(1e-12);
        if error.is_nan() || error > spec.validation.max_loss_error {
            return Err(format!(
                "claimed loss {claimed:.5} where its weights give {loss:.5}"
            ));
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sliver_common::codec::CodecKind;
    use sliver_common::testing::{small_corpus, tiny_spec};

    /// Stage 1 of three: an activation and an input gradient, each recomputed from its weights
    /// and inputs, pass as uploaded and fail scaled, from other weights or with a wrong loss.
    #[test]
    fn recomputation_passes_honest_artifacts_and_fails_cheats() {
        let spec = tiny_spec(&[[0, 1], [1, 2], [2, 3]], 8, CodecKind::Int8, false);
        let corpus = small_corpus(&spec);
        let id = 12345u64;
        let dims = spec.wire_dims();
        let x = Tensor::randn(dims, (tch::Kind::Float, Device::Cpu));
        let g = Tensor::randn(dims, (tch::Kind::Float, Device::Cpu)) * 1e-3;
        let mut models = Vec::new();
        for s in 0..3 {
            models.push(Stage::new(&spec, s, Device::Cpu).unwrap());
        }
        let wire = |kind: Kind, t: &Tensor| {
            let c = if kind == Kind::Grad {
                spec.gradient_codec()
            } else {
                spec.activation_codec()
            };
            c.decode(&c.encode(t).unwrap(), Device::Cpu).unwrap()
        };
        let batch = routing::sample_batch(&spec, &corpus, id, Device::Cpu).unwrap();
        let act = tch::no_grad(|| models[1].forward(Some(&x), &batch))
            .unwrap()
            .output()
            .shallow_clone();
        let fwd = models[1].forward(Some(&x), &batch).unwrap();
        let grad = models[1].backward(fwd, Some(&g)).unwrap().unwrap();
        let fwd = models[2].forward(Some(&x), &batch).unwrap();
        let loss = fwd.output().double_value(&[]) as f32;
        let last_grad = models[2].backward(fwd, None).unwrap().unwrap();
        let job = |stage: usize, kind: Kind, uploaded: Tensor, loss: Option<f32>| Job {
            miner: Hotkey([stage as u8; 32]),
            stage: StageIndex::at(stage),
            kind,
            id,
            weights: sliver_common::flat::flatten(models[stage].var_store()).unwrap(),
            inputs: vec![x.shallow_clone()],
            upstream: (stage == 1 && kind == Kind::Grad).then(|| g.shallow_clone()),
            loss,
            uploaded,
            steps: 10,
        };
        let honest = [
            job(1, Kind::Act, wire(Kind::Act, &act), None),
            job(1, Kind::Grad, wire(Kind::Grad, &grad), None),
            job(2, Kind::Grad, wire(Kind::Grad, &last_grad), Some(loss)),
        ];
        let start = vec![None, None, None];
        let fresh = || -> Vec<Option<Stage>> { (0..3).map(|_| None).collect() };
        for (_, verdict) in
            recompute_all(&spec, &corpus, &start, &mut fresh(), honest.into()).unwrap()
        {
            let (a, _) = verdict.unwrap();
            assert!(
                a.cosine > 0.9999 && (a.norm_ratio - 1.0).abs() < 1e-4,
                "{a}"
            );
        }
        let mut other = job(1, Kind::Act, wire(Kind::Act, &act), None);
        other.weights = &other.weights * 1.05;
        let cheats = [
            job(1, Kind::Act, wire(Kind::Act, &(&act * 1.1)), None),
            job(1, Kind::Grad, wire(Kind::Grad, &grad.randn_like()), None),
            job(
                2,
                Kind::Grad,
                wire(Kind::Grad, &last_grad),
                Some(loss * 0.9),
            ),
            other,
        ];
        for (n, (_, verdict)) in recompute_all(&spec, &corpus, &start, &mut fresh(), cheats.into())
            .unwrap()
            .into_iter()
            .enumerate()
        {
            assert!(verdict.is_err(), "cheat {n} passed: {verdict:?}");
        }
        // Weights far from the epoch's start fail before anything is recomputed.
        let w0 = sliver_common::flat::flatten(models[1].var_store()).unwrap();
        let mut far = job(1, Kind::Act, wire(Kind::Act, &act), None);
        far.weights = &far.weights * 3.0;
        let start = vec![None, Some(w0), None];
        let (_, verdict) = recompute_all(&spec, &corpus, &start, &mut fresh(), vec![far])
            .unwrap()
            .remove(0);
        assert!(verdict.unwrap_err().contains("optimizer steps allow"));
    }

    /// A pick whose own routing says it should not exist (a stage-1 gradient for a sample
    /// routed to the miner's peer) fails its producer, whatever it claims; none of its inputs,
    /// weights or answers are read.
    #[tokio::test]
    async fn a_pick_for_a_sample_not_routed_to_its_miner_fails_it() {
        use sliver_common::assignment::Assignment;
        let spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        let corpus = Arc::new(small_corpus(&spec));
        let members: Vec<Member> = (0..4u16)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8 + 1; 32]),
            })
            .collect();
        let roster = Roster {
            run: sliver_common::testing::test_run(&spec.name),
            epoch: Epoch(1),
            assignment: Assignment::new(2, &members),
            stores: std::collections::HashMap::new(),
        };
        let stage1 = roster.assignment.stage(StageIndex(1));
        assert_eq!(stage1.len(), 2);
        let (miner, peer) = (stage1[0].hotkey, stage1[1].hotkey);
        let id = (0..)
            .find(|id| {
                routing::route(&spec.name, Epoch(1), *id, StageIndex(1), &roster.assignment)
                    .is_some_and(|m| m.hotkey == peer)
            })
            .unwrap();
        let pick = Challenged {
            miner,
            stage: StageIndex(1),
            kind: Kind::Grad,
            id,
            weights: Some(WeightsHash::of_bytes(&[0u8; 4])),
            loss: Some(1.0),
            inputs: Vec::new(),
            uploaded: Tensor::zeros(spec.wire_dims().as_slice(), (tch::Kind::Float, Device::Cpu)),
        };
        let (_tx, clock) = watch::channel(0u64);
        let tallies = check(
            &spec,
            &roster,
            &Metrics::new("validator"),
            Epoch(1),
            vec![pick],
            (&corpus, &[0, 0], Vec::new()),
            (&BTreeMap::new(), &clock),
        )
        .await
        .unwrap();
        let t = &tallies[&miner];
        assert_eq!(t.checks, 1);
        assert!(t.failures[0].contains("not routed to it"), "{t:?}");
    }

    /// A stage-1 pick names, as evidence, the stage-0 activation its miner was shown. When the
    /// stage-0 miner's store serves the validator another activation it signed under that name,
    /// or none, the stage-0 miner fails (its own signature proves it), and the stage-1 miner is
    /// neither recomputed against the wrong input nor failed.
    #[tokio::test]
    async fn an_input_that_is_not_what_the_miner_was_shown_fails_its_producer() {
        use sliver_common::artifact::{self, Signer, Unsealed};
        use sliver_common::assignment::Assignment;
        use sliver_common::storage::StoreConfig;
        use sliver_subnet::signer::HotkeySigner as Key;

        let spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        let corpus = Arc::new(small_corpus(&spec));
        let keys: Vec<Key> = (0..2)
            .map(|_| Key(sliver_chain::wallet::Keypair::generate()))
            .collect();
        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores: Vec<Store> = dirs
            .iter()
            .map(|d| Store::open(&StoreConfig::filesystem(d.path())).unwrap())
            .collect();
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                uid: i as u16,
                hotkey: k.hotkey(),
            })
            .collect();
        let roster = Roster {
            run: sliver_common::testing::test_run(&spec.name),
            epoch: Epoch(1),
            assignment: Assignment::new(2, &members),
            stores: keys
                .iter()
                .zip(&stores)
                .map(|(k, s)| (k.hotkey(), s.clone()))
                .collect(),
        };
        let a = roster.assignment.stage(StageIndex(0))[0].hotkey;
        let b = roster.assignment.stage(StageIndex(1))[0].hotkey;
        let (ka, sa) = if keys[0].hotkey() == a {
            (&keys[0], &stores[0])
        } else {
            (&keys[1], &stores[1])
        };
        let codec = spec.activation_codec();
        let dims = spec.wire_dims();
        let at = ArtifactId {
            epoch: Epoch(1),
            stage: StageIndex(0),
            kind: Kind::Act,
            id: 7,
        };
        let sealed = |seed: f64| {
            let t = Tensor::ones(dims.as_slice(), (tch::Kind::Float, Device::Cpu)) * seed;
            artifact::seal(
                Unsealed {
                    run: &roster.run,
                    at,
                    codec: codec.kind(),
                    dims: &dims,
                    weights: None,
                    loss: None,
                    inputs: &[],
                },
                &codec.encode(&t).unwrap(),
                ka,
            )
            .unwrap()
        };
        let shown_to_b = artifact::read_header(&sealed(1.0)).unwrap().0;
        let pick = || Challenged {
            miner: b,
            stage: StageIndex(1),
            kind: Kind::Grad,
            id: 7,
            weights: Some(WeightsHash::of_bytes(&[0u8; 4])),
            loss: Some(1.0),
            inputs: vec![shown_to_b.clone()],
            uploaded: Tensor::zeros(dims.as_slice(), (tch::Kind::Float, Device::Cpu)),
        };
        let (_tx, clock) = watch::channel(u64::MAX);
        let run_check = || async {
            check(
                &spec,
                &roster,
                &Metrics::new("validator"),
                Epoch(1),
                vec![pick(), pick()],
                (&corpus, &[0, 0], Vec::new()),
                (&BTreeMap::new(), &clock),
            )
            .await
            .unwrap()
        };
        // Nothing under the name: the producer does not serve what it signed.
        let tallies = run_check().await;
        assert_eq!(tallies[&a].checks, 1, "{tallies:?}");
        assert!(
            tallies[&a].failures[0].contains("does not serve"),
            "{tallies:?}"
        );
        assert!(
            tallies.get(&b).is_none_or(|t| t.failures.is_empty()),
            "{tallies:?}"
        );
        // Another object it signed under the name: it equivocated.
        let key = layout::artifact(&spec.name, &a, at);
        sa.put_once(&key, sealed(2.0).into()).await.unwrap();
        let tallies = run_check().await;
        assert_eq!(
            tallies[&a].checks, 1,
            "blamed once for two picks: {tallies:?}"
        );
        assert!(
            tallies[&a].failures[0].contains("equivocated"),
            "{tallies:?}"
        );
        assert!(
            tallies.get(&b).is_none_or(|t| t.failures.is_empty()),
            "{tallies:?}"
        );
    }

    /// A version put in parts is read back whole and checked against its claim; a part missing
    /// once the deadline passed, or bytes that hash to another claim, fail the miner.
    #[tokio::test]
    async fn a_version_is_read_in_parts_and_checked() {
        let spec = tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&sliver_common::storage::StoreConfig::filesystem(dir.path())).unwrap();
        let params = parts::PART_LEN / 2 + 1_000;
        let flat = Tensor::randn([params as i64], (tch::Kind::Float, Device::Cpu));
        let bytes = sliver_common::flat::flat_bytes(&flat).unwrap();
        let claim = WeightsHash::of_bytes(&bytes);
        let n = parts::ranges(params * 4, parts::PART_LEN).count();
        assert_eq!(n, 3);
        for (i, r) in parts::ranges(params * 4, parts::PART_LEN)
            .enumerate()
            .skip(1)
        {
            let part = bytes[r.start as usize..r.end as usize].to_vec();
            store
                .put_once(&parts::key("w", i), part.into())
                .await
                .unwrap();
        }
        let metrics = Metrics::new("validator");
        // The clock stands past the answer deadline: what is missing is not waited for.
        let (_tx, clock) = watch::channel(10u64);
        let reads = Deadline::none();
        let read = |claim| {
            read_version(
                &spec,
                &store,
                ("w", claim, params),
                &metrics,
                (&reads, &clock, 5),
            )
        };
        assert_eq!(
            read(claim).await.unwrap_err(),
            "did not show the weights it claimed"
        );
        let first = bytes[..parts::PART_LEN as usize].to_vec();
        store
            .put_once(&parts::key("w", 0), first.into())
            .await
            .unwrap();
        let got = read(claim).await.unwrap().unwrap();
        assert!(got.equal(&flat));
        assert_eq!(
            metrics.bytes("down", "weights"),
            params * 4,
            "the first read stops at the missing part"
        );
        assert_eq!(
            read(WeightsHash([3; 32])).await.unwrap_err(),
            "showed weights that are not the ones it claimed"
        );
        // A store answering a part longer than it can be is refused from its size, before its
        // body is read: the miner fails its check, and the read costs nothing more.
        store
            .put_once(
                &parts::key("big", 0),
                vec![0u8; parts::PART_LEN as usize + 1].into(),
            )
            .await
            .unwrap();
        let before = metrics.bytes("down", "weights");
        let why = read_version(
            &spec,
            &store,
            ("big", claim, params),
            &metrics,
            (&reads, &clock, 5),
        )
        .await
        .unwrap_err();
        assert!(why.starts_with("its claimed weights:"), "{why}");
        assert_eq!(metrics.bytes("down", "weights"), before);
    }
}
