//! `btminer status` and `btvalidator status`: where a participant stands, from the chain and
//! the validators' published score tables, without running it.
//!
//! Everything is read the way a participant reads it while running: the metagraph (uid, stake,
//! permit, incentive, emission, the block of the last weights), the commitments (each
//! participant's announcement, the published run spec through the owner's), the roster of the
//! current epoch (the stage), and the score tables the validators publish in their stores
//! (`runs/{run}/scores/epoch=N/part.parquet`, found through their announced locations): the
//! latest table of each validator says what it scored the miner, and why it did not pay it
//! when it caught it. [`miner`] and [`validator`] gather a [`MinerStatus`] or a
//! [`ValidatorStatus`]; both print as text ([`std::fmt::Display`]) or JSON (serde).
//!
//! A miner is *training* when it is on this epoch's roster and the latest verified work a
//! validator published for it, no older than [`TRAINING_WITHIN_EPOCHS`] epochs, is not zero.
//! Its throughput is its verified samples (forward and backward) per second of an epoch, set
//! against the mean of the other miners of its stage in the same table.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::Serialize;
use sliver_chain::client::{Client, Metagraph};
use sliver_chain::wallet::AccountId32;
use sliver_common::artifact::Hotkey;
use sliver_common::storage::{Link, LinkSpec, Reach, Store, StoreConfig, Timeouts};
use sliver_common::{Epoch, RunSpec, layout};

use crate::announce::{Announcement, Role};
use crate::args::ChainArgs;
use crate::register::tao;
use crate::run::{self, RunView};

/// How many epochs old the latest verified work may be for a miner to count as training.
pub const TRAINING_WITHIN_EPOCHS: u64 = 2;

/// The largest score table read (a table is about a hundred bytes a miner).
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// Flags of `btminer status` and `btvalidator status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Subnet, wallet and chain (as the running binary takes them; `--register` does nothing
    /// here and is refused).
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Read validators' stores that are directories or on private or loopback addresses (a
    /// local subnet only, as for the running binary).
    #[arg(long = "storage.allow_local")]
    pub allow_local: bool,
    /// Print one JSON object instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// The chain a status was read from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainInfo {
    /// The network's name (`finney`, `test`, `local`, `custom`).
    pub network: String,
    /// The endpoint.
    pub endpoint: String,
    /// The subnet.
    pub netuid: u16,
    /// The block the metagraph was read at.
    pub block: u64,
}

/// The run, as the subnet owner published it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The run's name.
    pub name: String,
    /// BLAKE3 of its spec, hex.
    pub spec_blake3: String,
    /// Its stages.
    pub stages: usize,
    /// Blocks an epoch.
    pub epoch_blocks: u64,
    /// The epoch the chain is in.
    pub epoch: u64,
}

/// One miner's row of a score table, as status reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey, SS58.
    pub hotkey: String,
    /// Its stage.
    pub stage: u16,
    /// Forwards that verified and were consumed downstream.
    pub samples_forward: u64,
    /// Backwards that verified.
    pub samples_backward: u64,
    /// Artifacts recomputed.
    pub spot_checks: u64,
    /// Recomputations that did not match.
    pub spot_check_failures: u64,
    /// Its artifacts that failed verification.
    pub rejected: u64,
    /// This epoch's score (0 when caught); `None` under commit-reveal.
    pub raw_score: Option<f64>,
    /// The weight set on chain; `None` under commit-reveal.
    pub weight: Option<u16>,
    /// Why it was not paid (`spot_check`, `clasp`, `merge`, `low_work`); empty when paid.
    pub caught: Vec<String>,
    /// Its share of its stage's samples in the epoch's routing (`None` in tables written before
    /// the column).
    pub share: Option<f64>,
}

impl ScoreRow {
    /// Verified samples, forward and backward.
    pub fn samples(&self) -> u64 {
        self.samples_forward + self.samples_backward
    }
}

/// A validator's latest score table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The epoch it scored.
    pub epoch: Epoch,
    /// Its rows.
    pub rows: Vec<ScoreRow>,
}

/// What one validator said about the miner in its latest table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The validator's uid.
    pub validator_uid: u16,
    /// Its hotkey, SS58.
    pub validator_hotkey: String,
    /// The epoch of its latest table (`None`: no table, or it could not be read).
    pub epoch: Option<u64>,
    /// The miner's row there (`None`: the table does not score it).
    pub row: Option<ScoreRow>,
    /// Why the table could not be read, if it could not.
    pub error: Option<String>,
}

/// The miner's latest verified work and its throughput against its stage's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Work {
    /// The epoch it was scored in.
    pub epoch: u64,
    /// The validator whose table it is.
    pub validator_uid: u16,
    /// The stage it worked at.
    pub stage: u16,
    /// Verified forwards.
    pub samples_forward: u64,
    /// Verified backwards.
    pub samples_backward: u64,
    /// Verified samples per second of the epoch.
    pub samples_per_s: f64,
    /// The mean of the other miners of its stage in the same table (`None`: it was alone).
    pub stage_samples_per_s: Option<f64>,
    /// Its share of its stage's samples in that epoch's routing, which follows its announced
    /// work rate (`None` in tables written before the column).
    pub share: Option<f64>,
}

/// `btminer status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerStatus {
    /// Where it was read.
    pub chain: ChainInfo,
    /// The hotkey, SS58.
    pub hotkey: String,
    /// Whether the hotkey is registered on the subnet.
    pub registered: bool,
    /// Its uid.
    pub uid: Option<u16>,
    /// Its incentive, a fraction of 1 (the metagraph's `Incentive` / 65535).
    pub incentive: Option<f64>,
    /// What it earned at the subnet's last epoch, in rao (`Emission`).
    pub emission_rao: Option<u64>,
    /// The role its commitment announces (`None`: no Sliver announcement).
    pub announced: Option<String>,
    /// Whether its announcement carries the published spec's hash.
    pub announced_this_run: bool,
    /// The run (`None`: no spec published, or it could not be read; see `notes`).
    pub run: Option<RunInfo>,
    /// Its stage in this epoch's roster (`None`: not on it).
    pub stage: Option<u16>,
    /// Miners of that stage this epoch.
    pub stage_miners: Option<usize>,
    /// On the roster and its latest verified work is recent and not zero.
    pub training: bool,
    /// Its latest verified work.
    pub work: Option<Work>,
    /// Each validator's latest verdict.
    pub validators: Vec<Verdict>,
    /// What could not be read, and hints.
    pub notes: Vec<String>,
}

/// `btvalidator status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatorStatus {
    /// Where it was read.
    pub chain: ChainInfo,
    /// The hotkey, SS58.
    pub hotkey: String,
    /// Whether the hotkey is registered on the subnet.
    pub registered: bool,
    /// Its uid.
    pub uid: Option<u16>,
    /// Whether it holds a validator permit.
    pub validator_permit: bool,
    /// Alpha staked to it on the subnet, in rao.
    pub stake_rao: Option<u64>,
    /// The block it last set or committed weights (`None`: never).
    pub last_weights_block: Option<u64>,
    /// Blocks since then.
    pub blocks_since_weights: Option<u64>,
    /// The role its commitment announces.
    pub announced: Option<String>,
    /// Whether its announcement carries the published spec's hash.
    pub announced_this_run: bool,
    /// The run.
    pub run: Option<RunInfo>,
    /// The last epoch it published a score table for.
    pub last_epoch_scored: Option<u64>,
    /// Miners in that table.
    pub miners_scored: Option<usize>,
    /// Of them, caught (not paid).
    pub miners_caught: Option<usize>,
    /// What could not be read, and hints.
    pub notes: Vec<String>,
}

/// What both statuses read first: the chain, the metagraph, the hotkey's announcement and the
/// run.
struct Common {
    chain: ChainInfo,
    hotkey: AccountId32,
    metagraph: Metagraph,
    announcement: Option<Announcement>,
    view: Option<RunView>,
    notes: Vec<String>,
}

async fn common(args: &StatusArgs) -> Result<(Common, Arc<Client>)> {
    if args.chain.register {
        bail!("status does not register: run the miner or validator with --register");
    }
    let wallet = args.chain.wallet()?;
    let hotkey = wallet.hotkeypub().with_context(|| {
        format!(
            "reading the hotkey's public key ({})",
            wallet.hotkey_path().display()
        )
    })?;
    let endpoint = args.chain.endpoint()?;
    let netuid = args.chain.netuid();
    let client = Arc::new(
        Client::connect(endpoint.clone())
            .await
            .with_context(|| format!("connecting to {}", endpoint.as_str()))?,
    );
    let metagraph = client
        .metagraph(netuid)
        .await
        .context("reading the metagraph")?;
    let announcement = client
        .commitment(netuid, &hotkey)
        .await
        .context("reading the hotkey's commitment")?
        .and_then(|c| Announcement::parse(&c.data).ok());
    let reach = if args.allow_local {
        Reach::Local
    } else {
        Reach::Public
    };
    let mut notes = Vec::new();
    let timeouts = Timeouts::default();
    let view = match run::discover_spec(&client, netuid, Duration::ZERO, (reach, timeouts)).await {
        Ok(spec) => Some(spec),
        Err(e) => {
            notes.push(format!("the run spec could not be read: {e:#}"));
            None
        }
    };
    let chain = ChainInfo {
        network: endpoint.network().name().to_owned(),
        endpoint: endpoint.as_str().to_owned(),
        netuid: netuid.0,
        block: metagraph.block.0,
    };
    let view = view.map(|spec| {
        RunView::new(
            client.clone(),
            netuid,
            spec,
            (reach, timeouts, Link::new(LinkSpec::default())),
        )
    });
    Ok((
        Common {
            chain,
            hotkey,
            metagraph,
            announcement,
            view,
            notes,
        },
        client,
    ))
}

fn run_info(spec: &RunSpec, block: u64) -> RunInfo {
    RunInfo {
        name: spec.name.clone(),
        spec_blake3: hex::encode(spec.hash()),
        stages: spec.stages.len(),
        epoch_blocks: spec.swarm.epoch_blocks,
        epoch: spec.swarm.schedule().epoch_of(block).get(),
    }
}

fn role_name(role: Role) -> String {
    format!("{role:?}").to_lowercase()
}

/// The latest score table in a validator's `store` for the run `run`, if it published one.
///
/// # Errors
/// A listing or read that failed, or a table that does not parse.
pub async fn latest_table(store: &Store, run: &str) -> Result<Option<Table>> {
    let folders = store
        .list_folders(&format!("runs/{run}/scores"))
        .await
        .context("listing the score tables")?;
    let Some(epoch) = folders
        .iter()
        .filter_map(|f| f.strip_prefix("epoch=")?.parse::<u64>().ok())
        .max()
    else {
        return Ok(None);
    };
    let epoch = Epoch(epoch);
    let key = layout::scores(run, epoch);
    let Some(bytes) = store
        .get(&key, MAX_TABLE_BYTES)
        .await
        .with_context(|| format!("reading {key}"))?
    else {
        return Ok(None);
    };
    let rows = read_scores(bytes).with_context(|| format!("reading {key}"))?;
    Ok(Some(Table { epoch, rows }))
}

/// The rows of a score table (Parquet, as `btvalidator` writes it).
///
/// # Errors
/// Not Parquet, or a column missing or of another type.
pub fn read_scores(bytes: Bytes) -> Result<Vec<ScoreRow>> {
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    // The Parquet schema's own types (u16, u64, f64, bool, UTF-8), whichever Arrow types the
    // writer recorded.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?.build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .with_context(|| format!("no column {name}"))
        };
        let (uid, hotkey, stage) = (column("uid")?, column("hotkey")?, column("stage")?);
        let (fwd, bwd) = (column("samples_forward")?, column("samples_backward")?);
        let (checks, failures) = (column("spot_checks")?, column("spot_check_failures")?);
        let (rejected, raw, weight) =
            (column("rejected")?, column("raw_score")?, column("weight")?);
        let caught = column("caught")?;
        let share = batch.column_by_name("share").cloned();
        for i in 0..batch.num_rows() {
            let n = |c: &dyn Array, name: &str| {
                uint(c, i).with_context(|| format!("column {name}, row {i}"))
            };
            rows.push(ScoreRow {
                uid: u16::try_from(n(uid.as_ref(), "uid")?).context("uid")?,
                hotkey: text(hotkey.as_ref(), i).unwrap_or_default(),
                stage: u16::try_from(n(stage.as_ref(), "stage")?).context("stage")?,
                samples_forward: n(fwd.as_ref(), "samples_forward")?,
                samples_backward: n(bwd.as_ref(), "samples_backward")?,
                spot_checks: n(checks.as_ref(), "spot_checks")?,
                spot_check_failures: n(failures.as_ref(), "spot_check_failures")?,
                rejected: n(rejected.as_ref(), "rejected")?,
                raw_score: float(raw.as_ref(), i),
                weight: uint(weight.as_ref(), i).and_then(|w| u16::try_from(w).ok()),
                caught: text(caught.as_ref(), i)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                share: share.as_ref().and_then(|c| float(c.as_ref(), i)),
            });
        }
    }
    Ok(rows)
}

/// An unsigned integer cell; `None` when null or not an integer column.
fn uint(c: &dyn arrow_array::Array, i: usize) -> Option<u64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, UInt16Type, UInt32Type, UInt64Type};
    if c.is_null(i) {
        return None;
    }
    let any = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    c.as_primitive_opt::<UInt16Type>()
        .map(|a| u64::from(a.value(i)))
        .or_else(|| {
            c.as_primitive_opt::<UInt32Type>()
                .map(|a| u64::from(a.value(i)))
        })
        .or_else(|| c.as_primitive_opt::<UInt64Type>().map(|a| a.value(i)))
        .or_else(|| {
            any(c
                .as_primitive_opt::<Int32Type>()
                .map(|a| i64::from(a.value(i))))
        })
        .or_else(|| any(c.as_primitive_opt::<Int64Type>().map(|a| a.value(i))))
}

/// A float cell; `None` when null or not a float column.
fn float(c: &dyn arrow_array::Array, i: usize) -> Option<f64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    (!c.is_null(i))
        .then(|| c.as_primitive_opt::<Float64Type>().map(|a| a.value(i)))
        .flatten()
}

/// A text cell; `None` when null or not a text column.
fn text(c: &dyn arrow_array::Array, i: usize) -> Option<String> {
    use arrow_array::cast::AsArray;
    if c.is_null(i) {
        return None;
    }
    c.as_string_opt::<i32>()
        .map(|a| a.value(i).to_owned())
        .or_else(|| c.as_string_opt::<i64>().map(|a| a.value(i).to_owned()))
        .or_else(|| c.as_string_view_opt().map(|a| a.value(i).to_owned()))
}

/// Reads `btminer status`.
///
/// # Errors
/// The wallet, the chain or the metagraph cannot be read; what else cannot be read is a note.
pub async fn miner(args: &StatusArgs) -> Result<MinerStatus> {
    let (mut c, client) = common(args).await?;
    let me = c.metagraph.by_hotkey(&c.hotkey).cloned();
    let mut status = MinerStatus {
        chain: c.chain.clone(),
        hotkey: c.hotkey.to_string(),
        registered: me.is_some(),
        uid: me.as_ref().map(|n| n.uid.0),
        incentive: me
            .as_ref()
            .map(|n| f64::from(n.incentive) / f64::from(u16::MAX)),
        emission_rao: me.as_ref().map(|n| n.emission),
        announced: c.announcement.as_ref().map(|a| role_name(a.role)),
        announced_this_run: false,
        run: None,
        stage: None,
        stage_miners: None,
        training: false,
        work: None,
        validators: Vec::new(),
        notes: Vec::new(),
    };
    if !status.registered {
        c.notes.push(format!(
            "not registered on netuid {}: run btminer with --register (burns the registration fee)",
            c.chain.netuid
        ));
    }
    let Some(view) = &c.view else {
        status.notes = c.notes;
        return Ok(status);
    };
    let run = run_info(&view.spec, c.chain.block);
    status.announced_this_run = c
        .announcement
        .as_ref()
        .is_some_and(|a| a.role == Role::Miner && a.spec == view.run.spec);
    let epoch = Epoch(run.epoch);
    let me_hotkey = Hotkey(c.hotkey.0);
    match view.roster(epoch).await {
        Ok(roster) => {
            if let Some((stage, _)) = roster.assignment.position(&me_hotkey) {
                status.stage = Some(stage.0);
                status.stage_miners = Some(roster.assignment.stage(stage).len());
            }
        }
        Err(e) => c.notes.push(format!(
            "the roster of epoch {epoch} could not be read: {e:#}"
        )),
    }
    if status.registered && !status.announced_this_run {
        c.notes.push(
            "no miner announcement for this run: the miner announces itself when it starts".into(),
        );
    } else if status.registered && status.stage.is_none() {
        c.notes.push(format!(
            "not on the roster of epoch {epoch}: an announcement counts from the first merge window after it"
        ));
    }
    let epoch_secs = match client.block_time().await {
        Ok(t) => t.as_secs_f64() * view.spec.swarm.epoch_blocks as f64,
        Err(e) => {
            c.notes
                .push(format!("the chain's block time could not be read: {e}"));
            0.0
        }
    };
    let stores = match view.validator_stores().await {
        Ok(s) => s,
        Err(e) => {
            c.notes
                .push(format!("the validators' stores could not be listed: {e:#}"));
            Vec::new()
        }
    };
    let mine = c.hotkey.to_string();
    // The validators with the most stake first: their table is the one work is read from.
    let mut stores: Vec<_> = stores
        .into_iter()
        .filter_map(|(h, s)| {
            let n = c.metagraph.by_hotkey(&AccountId32(h.0))?;
            Some((n.uid.0, n.stake, AccountId32(h.0), s))
        })
        .collect();
    stores.sort_by_key(|(uid, stake, _, _)| (std::cmp::Reverse(*stake), *uid));
    for (uid, _, hotkey, store) in stores {
        let mut verdict = Verdict {
            validator_uid: uid,
            validator_hotkey: hotkey.to_string(),
            epoch: None,
            row: None,
            error: None,
        };
        match latest_table(&store, &view.spec.name).await {
            Ok(Some(table)) => {
                verdict.epoch = Some(table.epoch.get());
                verdict.row = table.rows.iter().find(|r| r.hotkey == mine).cloned();
                if let (None, Some(row)) = (&status.work, &verdict.row) {
                    status.work = Some(work_of(row, &table, uid, epoch_secs));
                }
            }
            Ok(None) => {}
            Err(e) => verdict.error = Some(format!("{e:#}")),
        }
        status.validators.push(verdict);
    }
    if status.validators.is_empty() {
        c.notes
            .push("no validator of this run holds a permit and announced a store".into());
    }
    status.training = status.stage.is_some()
        && status.work.as_ref().is_some_and(|w| {
            w.samples_forward + w.samples_backward > 0
                && w.epoch + TRAINING_WITHIN_EPOCHS >= run.epoch
        });
    status.run = Some(run);
    status.notes = c.notes;
    Ok(status)
}

fn work_of(row: &ScoreRow, table: &Table, validator_uid: u16, epoch_secs: f64) -> Work {
    let rate = |samples: u64| {
        if epoch_secs > 0.0 {
            samples as f64 / epoch_secs
        } else {
            0.0
        }
    };
    let peers: Vec<f64> = table
        .rows
        .iter()
        .filter(|r| r.stage == row.stage && r.hotkey != row.hotkey)
        .map(|r| rate(r.samples()))
        .collect();
    Work {
        epoch: table.epoch.get(),
        validator_uid,
        stage: row.stage,
        samples_forward: row.samples_forward,
        samples_backward: row.samples_backward,
        samples_per_s: rate(row.samples()),
        stage_samples_per_s: (!peers.is_empty())
            .then(|| peers.iter().sum::<f64>() / peers.len() as f64),
        share: row.share,
    }
}

/// Reads `btvalidator status`.
///
/// # Errors
/// The wallet, the chain or the metagraph cannot be read; what else cannot be read is a note.
pub async fn validator(args: &StatusArgs) -> Result<ValidatorStatus> {
    let (mut c, _client) = common(args).await?;
    let me = c.metagraph.by_hotkey(&c.hotkey).cloned();
    let last = me.as_ref().map(|n| n.last_update.0).filter(|b| *b > 0);
    let mut status = ValidatorStatus {
        chain: c.chain.clone(),
        hotkey: c.hotkey.to_string(),
        registered: me.is_some(),
        uid: me.as_ref().map(|n| n.uid.0),
        validator_permit: me.as_ref().is_some_and(|n| n.validator_permit),
        stake_rao: me.as_ref().map(|n| n.stake),
        last_weights_block: last,
        blocks_since_weights: last.map(|b| c.chain.block.saturating_sub(b)),
        announced: c.announcement.as_ref().map(|a| role_name(a.role)),
        announced_this_run: false,
        run: None,
        last_epoch_scored: None,
        miners_scored: None,
        miners_caught: None,
        notes: Vec::new(),
    };
    if !status.registered {
        c.notes.push(format!(
            "not registered on netuid {}: run btvalidator with --register (burns the registration fee)",
            c.chain.netuid
        ));
    } else if !status.validator_permit {
        c.notes.push(
            "no validator permit: the chain gives permits to the most staked neurons; miners answer only permitted validators"
                .into(),
        );
    }
    if let Some(view) = &c.view {
        status.run = Some(run_info(&view.spec, c.chain.block));
        status.announced_this_run = c
            .announcement
            .as_ref()
            .is_some_and(|a| a.role != Role::Miner && a.spec == view.run.spec);
        match &c.announcement {
            Some(a) if status.announced_this_run => {
                let read = StoreConfig::from_location(&a.location)
                    .and_then(|cfg| {
                        Store::open_peer(
                            &cfg,
                            if args.allow_local {
                                Reach::Local
                            } else {
                                Reach::Public
                            },
                        )
                    });
                match read {
                    Ok(store) => match latest_table(&store, &view.spec.name).await {
                        Ok(Some(table)) => {
                            status.last_epoch_scored = Some(table.epoch.get());
                            status.miners_scored = Some(table.rows.len());
                            status.miners_caught =
                                Some(table.rows.iter().filter(|r| !r.caught.is_empty()).count());
                        }
                        Ok(None) => c.notes.push("no score table published yet".into()),
                        Err(e) => c
                            .notes
                            .push(format!("its score tables could not be read: {e:#}")),
                    },
                    Err(e) => c.notes.push(format!(
                        "its announced store could not be opened: {e} (on a local subnet pass --storage.allow_local)"
                    )),
                }
            }
            _ => c.notes.push(
                "no validator announcement for this run: the validator announces itself when it starts"
                    .into(),
            ),
        }
    }
    status.notes = c.notes;
    Ok(status)
}

/// Runs `status` for `role` ([`Role::Miner`], or a validator) and returns what to print: text,
/// or one JSON object with `--json`.
///
/// # Errors
/// As [`miner`] and [`validator`].
pub async fn run(role: Role, args: &StatusArgs) -> Result<String> {
    let (text, json) = if role == Role::Miner {
        let s = miner(args).await?;
        (s.to_string(), serde_json::to_string_pretty(&s)?)
    } else {
        let s = validator(args).await?;
        (s.to_string(), serde_json::to_string_pretty(&s)?)
    };
    Ok(if args.json { json + "\n" } else { text })
}

fn opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn chain_line(f: &mut fmt::Formatter<'_>, c: &ChainInfo, hotkey: &str) -> fmt::Result {
    writeln!(
        f,
        "network {} ({}) | netuid {} | block {}",
        c.network, c.endpoint, c.netuid, c.block
    )?;
    writeln!(f, "hotkey      {hotkey}")
}

fn run_line(f: &mut fmt::Formatter<'_>, run: Option<&RunInfo>) -> fmt::Result {
    match run {
        Some(r) => writeln!(
            f,
            "run         {} (spec {}) | {} stages | epoch {} ({} blocks each)",
            r.name,
            &r.spec_blake3[..8.min(r.spec_blake3.len())],
            r.stages,
            r.epoch,
            r.epoch_blocks
        ),
        None => writeln!(f, "run         unknown (no published spec read)"),
    }
}

fn notes(f: &mut fmt::Formatter<'_>, notes: &[String]) -> fmt::Result {
    for n in notes {
        writeln!(f, "note: {n}")?;
    }
    Ok(())
}

impl fmt::Display for MinerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        chain_line(f, &self.chain, &self.hotkey)?;
        match self.uid {
            Some(uid) => writeln!(f, "registered  yes, uid {uid}")?,
            None => writeln!(f, "registered  no")?,
        }
        writeln!(
            f,
            "announced   {}{}",
            opt(self.announced.as_deref()),
            if self.announced_this_run {
                " (this run)"
            } else {
                ""
            }
        )?;
        run_line(f, self.run.as_ref())?;
        match (self.stage, self.stage_miners) {
            (Some(s), Some(n)) => writeln!(f, "stage       {s} ({n} miners this epoch)")?,
            _ => writeln!(f, "stage       not on this epoch's roster")?,
        }
        writeln!(
            f,
            "training    {}",
            if self.training { "yes" } else { "no" }
        )?;
        match &self.work {
            Some(w) => writeln!(
                f,
                "last work   epoch {} (validator uid {}): {} forward + {} backward verified, {:.2} samples/s; stage {} peers {}; routed {} of the stage's samples",
                w.epoch,
                w.validator_uid,
                w.samples_forward,
                w.samples_backward,
                w.samples_per_s,
                w.stage,
                w.stage_samples_per_s
                    .map_or_else(|| "none".to_owned(), |p| format!("{p:.2} samples/s")),
                w.share
                    .map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", 100.0 * s)),
            )?,
            None => writeln!(f, "last work   none verified in a published table")?,
        }
        writeln!(
            f,
            "incentive   {} | emission {} (rao {})",
            self.incentive
                .map_or_else(|| "-".to_owned(), |i| format!("{i:.6}")),
            self.emission_rao.map_or_else(|| "-".to_owned(), tao),
            opt(self.emission_rao)
        )?;
        if self.validators.is_empty() {
            writeln!(f, "validators  none found")?;
        }
        for v in &self.validators {
            write!(f, "validator   uid {} ", v.validator_uid)?;
            match (&v.error, v.epoch, &v.row) {
                (Some(e), _, _) => writeln!(f, "table unreadable: {e}")?,
                (None, None, _) => writeln!(f, "no table published yet")?,
                (None, Some(e), None) => writeln!(f, "epoch {e}: not scored")?,
                (None, Some(e), Some(r)) => {
                    let verdict = if r.caught.is_empty() {
                        "paid".to_owned()
                    } else {
                        format!("caught: {}", r.caught.join(", "))
                    };
                    writeln!(
                        f,
                        "epoch {e}: score {} weight {} | {verdict} | spot checks {}/{} failed | rejected {}",
                        r.raw_score
                            .map_or_else(|| "sealed".to_owned(), |s| format!("{s:.4}")),
                        r.weight
                            .map_or_else(|| "sealed".to_owned(), |w| w.to_string()),
                        r.spot_check_failures,
                        r.spot_checks,
                        r.rejected
                    )?;
                }
            }
        }
        notes(f, &self.notes)
    }
}

impl fmt::Display for ValidatorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        chain_line(f, &self.chain, &self.hotkey)?;
        match self.uid {
            Some(uid) => writeln!(f, "registered  yes, uid {uid}")?,
            None => writeln!(f, "registered  no")?,
        }
        writeln!(
            f,
            "permit      {}",
            if self.validator_permit { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "stake       {} (rao {})",
            self.stake_rao.map_or_else(|| "-".to_owned(), tao),
            opt(self.stake_rao)
        )?;
        match (self.last_weights_block, self.blocks_since_weights) {
            (Some(b), Some(ago)) => {
                writeln!(f, "weights     last set at block {b} ({ago} blocks ago)")?
            }
            _ => writeln!(f, "weights     never set")?,
        }
        writeln!(
            f,
            "announced   {}{}",
            opt(self.announced.as_deref()),
            if self.announced_this_run {
                " (this run)"
            } else {
                ""
            }
        )?;
        run_line(f, self.run.as_ref())?;
        match self.last_epoch_scored {
            Some(e) => writeln!(
                f,
                "scored      epoch {e}: {} miners, {} caught",
                opt(self.miners_scored),
                opt(self.miners_caught)
            )?,
            None => writeln!(f, "scored      no table published")?,
        }
        notes(f, &self.notes)
    }
}
