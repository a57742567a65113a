//! What every neuron does before its own work: its hotkey, registration, the run spec, its
//! store and announcement, the training text, metrics and the chain clock ([`start`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use sliver_chain::client::{Client, Endpoint, NetUid, Network, Uid};
use sliver_chain::wallet::{Keypair, PasswordSource, Wallet};
use sliver_common::data::Corpus;
use sliver_common::layout;
use sliver_common::metrics::{self, Metrics};
use sliver_common::shutdown::Shutdown;
use sliver_common::storage::{Reach, Store, StoreConfig};
use sliver_common::{DataSpec, RunSpec, StageIndex};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::announce::{Announcement, Role};
use crate::register::{self, Registration};
use crate::run::{self, RunView};
use crate::version;

/// How many epochs' time may pass without an epoch finishing before `/health` says the neuron is
/// stuck ([`Metrics::expect_progress_within`]): a miner may wait up to an epoch to join and then
/// trains one; a validator scores an epoch once the next one's merge is over.
const STUCK_AFTER_EPOCHS: u32 = 3;

/// The wallet's hotkey, with an error that says how to make one.
///
/// # Errors
/// A missing or unreadable hotkey file.
pub fn hotkey(wallet: &Wallet) -> Result<Keypair> {
    wallet.hotkey().with_context(|| {
        format!(
            "reading the hotkey {} (create it with `btcli wallet new_hotkey --wallet.name {} --wallet.hotkey {}`)",
            wallet.hotkey_path().display(),
            wallet.name(),
            wallet.hotkey_name()
        )
    })
}

/// Connects to the chain, saying where.
///
/// # Errors
/// The chain cannot be reached.
pub async fn connect(endpoint: &Endpoint) -> Result<Client> {
    info!(endpoint = endpoint.as_str(), "connecting to the chain");
    Client::connect(endpoint.clone())
        .await
        .with_context(|| format!("connecting to {}", endpoint.as_str()))
}

/// The uid of `hotkey` on `netuid`, registering it first (burned registration, paid by the
/// wallet's coldkey) when `registration` says to: the burn and the coldkey's balance are read
/// from chain and confirmed ([`register::confirm`]: on the terminal, or by `--yes`, within
/// `--max-burn`) before the coldkey is unlocked, and the burn is read again after.
///
/// # Errors
/// Not registered and `--register` not given, the burn not confirmed, or the registration failed.
pub async fn ensure_registered(
    client: &Client,
    netuid: NetUid,
    wallet: &Wallet,
    hotkey: &Keypair,
    registration: &Registration,
) -> Result<Uid> {
    if let Some(uid) = client.uid(netuid, &hotkey.account_id()).await? {
        return Ok(uid);
    }
    if !registration.register {
        bail!(
            "hotkey {} is not registered on netuid {}: pass --register (burns the registration fee from the coldkey, after asking) or run `btcli subnets register`",
            hotkey.account_id(),
            netuid.0
        );
    }
    let payer = wallet
        .coldkeypub()
        .context("reading the coldkey's public key to show what registering costs")?;
    let burn = client.subnet_params(netuid).await?.burn;
    let offer = register::Offer {
        netuid: netuid.0,
        hotkey: hotkey.account_id().to_string(),
        coldkey: payer.to_string(),
        burn,
        free: client.free_balance(&payer).await?,
    };
    {
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        register::confirm(
            &offer,
            registration,
            interactive,
            &mut stdin.lock(),
            &mut std::io::stderr(),
        )?;
    }
    let coldkey = wallet
        .coldkey(&PasswordSource::Auto)
        .context("unlocking the coldkey to pay for registration")?;
    // Unlocking may have waited on a password: the burn may have moved since it was confirmed.
    let now = client.subnet_params(netuid).await?.burn;
    if now > burn {
        bail!(
            "not registering: the burn rose from {} to {} TAO since it was confirmed; run again to see the new price",
            register::tao(burn),
            register::tao(now)
        );
    }
    let uid = client
        .burned_register(netuid, &coldkey, &hotkey.account_id())
        .await
        .context("registering (burned_register)")?;
    info!(uid = uid.0, "registered");
    Ok(uid)
}

/// A task on `shutdown`'s tracker that follows the latest finalized block through one
/// subscription to finalized heads ([`Client::finalized_heads`]): the node pushes each block,
/// so the clock costs the node no request per block, whatever the block time. When the
/// subscription ends (the connection dropped, the node restarted) it subscribes again after
/// `retry`. The receiver always holds the newest block.
pub fn clock(
    client: Arc<Client>,
    first: u64,
    retry: Duration,
    shutdown: &Shutdown,
) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(first);
    let cancel = shutdown.token();
    shutdown.spawn("chain clock", async move {
        let mut failures = 0u32;
        loop {
            let heads = tokio::select! {
                () = cancel.cancelled() => return Ok::<(), Infallible>(()),
                heads = client.finalized_heads() => heads,
            };
            match heads {
                Ok(heads) => {
                    let mut heads = std::pin::pin!(heads);
                    loop {
                        let next = tokio::select! {
                            () = cancel.cancelled() => return Ok(()),
                            next = heads.next() => next,
                        };
                        match next {
                            Some(Ok(b)) => {
                                failures = 0;
                                tx.send_if_modified(|cur| {
                                    let newer = b.0 > *cur;
                                    if newer {
                                        *cur = b.0;
                                    }
                                    newer
                                });
                            }
                            Some(Err(e)) => {
                                warn!(error = %e, "following the chain's finalized heads failed; subscribing again");
                                break;
                            }
                            None => {
                                warn!("the chain ended the finalized-heads subscription; subscribing again");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(50) {
                        warn!(error = %e, failures, "subscribing to the chain's finalized heads failed; retrying");
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(retry) => {}
            }
        }
    });
    rx
}

/// Refuses to run a release older than the one the subnet requires: the subnet's
/// `WeightsVersionKey` against this build's ([`version::check`]).
///
/// # Errors
/// [`version::Outdated`], naming the release to install, or the key cannot be read.
pub async fn check_release(client: &Client, netuid: NetUid) -> Result<()> {
    let key = version::chain_key(client, netuid)
        .await
        .context("reading the subnet's weights_version_key")?;
    version::check(netuid, key)?;
    info!(
        release = %version::RELEASE,
        version_key = version::RELEASE.key(),
        subnet_version_key = key,
        "this release is current for the subnet"
    );
    Ok(())
}

/// A task on `shutdown`'s tracker that keeps `/health`'s current epoch
/// ([`Metrics::set_current_epoch`]) with the chain clock: a request to `/health` then costs no
/// chain call.
fn follow_epoch(
    metrics: &Metrics,
    mut clock: watch::Receiver<u64>,
    schedule: sliver_common::schedule::Schedule,
    shutdown: &Shutdown,
) {
    let (metrics, cancel) = (metrics.clone(), shutdown.token());
    metrics.set_current_epoch(schedule.epoch_of(*clock.borrow()));
    shutdown.spawn("epoch for /health", async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                changed = clock.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
            let block = *clock.borrow_and_update();
            metrics.set_current_epoch(schedule.epoch_of(block));
        }
        Ok::<(), Infallible>(())
    });
}

/// What every neuron does first: read its hotkey, connect, check that this release is current
/// ([`check_release`], before anything is paid), and make sure it is registered (registering as
/// `registration` says). Returns the hotkey, the client and the uid.
///
/// # Errors
/// As [`hotkey`], [`connect`], [`check_release`] and [`ensure_registered`].
pub async fn join(
    wallet: &Wallet,
    endpoint: &Endpoint,
    netuid: NetUid,
    registration: &Registration,
) -> Result<(Keypair, Arc<Client>, Uid)> {
    let hotkey = hotkey(wallet)?;
    let client = Arc::new(connect(endpoint).await?);
    check_release(&client, netuid).await?;
    let uid = ensure_registered(&client, netuid, wallet, &hotkey, registration).await?;
    Ok((hotkey, client, uid))
}

/// What [`start`] needs: the flags `btminer` and `btvalidator` share.
pub struct StartConfig<'a> {
    /// [`Role::Miner`] or [`Role::Validator`] (a validator whose coldkey owns the subnet
    /// publishes the run spec and announces itself as [`Role::Owner`]).
    pub role: Role,
    /// The wallet whose hotkey this neuron runs as.
    pub wallet: &'a Wallet,
    /// The chain.
    pub endpoint: &'a Endpoint,
    /// The subnet.
    pub netuid: NetUid,
    /// Whether to register by burning if not registered, and how to confirm the burn.
    pub register: Registration,
    /// This neuron's store.
    pub store: &'a StoreConfig,
    /// The run spec given with `--spec`, with the path it came from: checked against the
    /// published one (or published, by the owner).
    pub spec: Option<&'a (RunSpec, String)>,
    /// A data source in place of the spec's (`--data`).
    pub data: Option<&'a str>,
    /// The port to serve `/metrics` and `/health` on, if any.
    pub metrics_port: Option<u16>,
    /// A location to announce in place of the store's own, unverified: only the tests'
    /// `store-denial` adversary sets one ([`denied_location`]).
    pub announce_instead: Option<String>,
    /// How long to wait for the subnet owner to publish the run spec
    /// (`--neuron.spec_wait_secs`).
    pub spec_wait: Duration,
}

/// A started neuron: everything its own work needs.
pub struct Neuron {
    /// Its hotkey.
    pub hotkey: Keypair,
    /// Its uid on the subnet.
    pub uid: Uid,
    /// The run as seen from chain (the client, the netuid and the verified spec).
    pub view: Arc<RunView>,
    /// Its own store, announced in its commitment.
    pub store: Store,
    /// What it announced (a miner announces it again with its measured work rate).
    pub announcement: Announcement,
    /// The run's text (the spec's data, or `--data`).
    pub corpus: Arc<Corpus>,
    /// Its metrics, served when a port was given.
    pub metrics: Metrics,
    /// The latest finalized block.
    pub clock: watch::Receiver<u64>,
}

/// Starts a neuron, in order: a check that peers can read what it will announce (before
/// anything is paid); hotkey, chain, the release check ([`check_release`]) and registration; its
/// store; the run spec (the owner's,
/// checked against `--spec`, or published by the owner's validator); its announcement; one
/// start-up line ([`started_line`]); the run's text; metrics; the chain clock (a task on
/// `shutdown`'s tracker).
///
/// # Errors
/// The first step that fails, saying which.
pub async fn start(cfg: StartConfig<'_>, shutdown: &Shutdown) -> Result<Neuron> {
    start_with_routes(cfg, metrics::Routes::new(), shutdown).await
}

/// [`start`], serving `routes` beside `/metrics` and `/health` on the metrics port when there
/// is one ([`metrics::serve_with`]): the validator's dashboard.
///
/// # Errors
/// As [`start`].
pub async fn start_with_routes(
    cfg: StartConfig<'_>,
    routes: metrics::Routes,
    shutdown: &Shutdown,
) -> Result<Neuron> {
    let network = cfg.endpoint.network();
    let location = cfg
        .store
        .to_location()
        .with_context(|| format!("the location to publish for storage {}", cfg.store))?;
    check_announceable(network, &location)?;
    check_reach(network, cfg.store.reach)?;
    if let Some(other) = &cfg.announce_instead {
        check_announceable(network, other)?;
    }
    let (hotkey, client, uid) = join(cfg.wallet, cfg.endpoint, cfg.netuid, &cfg.register).await?;
    let store = Store::open(cfg.store).with_context(|| format!("opening storage {}", cfg.store))?;
    let is_owner = if cfg.role == Role::Validator {
        let owner = client.subnet_owner(cfg.netuid).await?;
        cfg.wallet.coldkeypub().is_ok_and(|c| c == owner)
    } else {
        false
    };
    let (spec, role) = if is_owner {
        let Some((spec, _)) = cfg.spec else {
            bail!("this validator's coldkey owns the subnet: pass --spec to publish the run spec");
        };
        let hash = run::publish_spec(&store, spec).await?;
        info!(run = spec.name, spec = %hex::encode(&hash[..4]), "published the run spec as subnet owner");
        (spec.clone(), Role::Owner)
    } else {
        let peers = (cfg.store.reach, cfg.store.timeouts);
        let spec = run::discover_spec(&client, cfg.netuid, cfg.spec_wait, peers).await?;
        if let Some((expected, path)) = cfg.spec {
            run::check_same_spec(expected, &spec, path)?;
        }
        (spec, cfg.role)
    };
    let location = match &cfg.announce_instead {
        Some(other) => other.clone(),
        None => verified_location(cfg.store, &store, &hotkey).await?,
    };
    let announcement = Announcement {
        role,
        spec: spec.hash(),
        rate: None,
        stage: None,
        away: None,
        location,
    };
    let announcement = run::announce_start(&client, cfg.netuid, &hotkey, &announcement).await?;
    let corpus = Arc::new(load_text(&spec, cfg.data).await?);
    let metrics = Metrics::new(if cfg.role == Role::Miner {
        "miner"
    } else {
        "validator"
    });
    metrics.identify(metrics::Identity {
        network: network.name().to_owned(),
        netuid: cfg.netuid.0,
        hotkey: hotkey.account_id().to_string(),
        uid: uid.0,
    });
    if let Some(port) = cfg.metrics_port {
        metrics::serve_with(metrics.clone(), port, routes, shutdown.token()).await?;
    }
    let first = client.current_block().await?.0;
    let block_time = client
        .block_time()
        .await
        .context("reading the chain's block time")?;
    // A dropped subscription is taken up again a block later.
    let clock = clock(client.clone(), first, block_time, shutdown);
    follow_epoch(&metrics, clock.clone(), spec.swarm.schedule(), shutdown);
    let epoch =
        block_time.saturating_mul(u32::try_from(spec.swarm.epoch_blocks).unwrap_or(u32::MAX));
    metrics.expect_progress_within(epoch.saturating_mul(STUCK_AFTER_EPOCHS));
    let peers = (cfg.store.reach, cfg.store.timeouts, cfg.store.link.clone());
    let view = Arc::new(RunView::new(client, cfg.netuid, spec, peers));
    let stage = if role == Role::Miner {
        let stage = stage_now(&view, &hotkey, first).await;
        metrics.set_stage(stage);
        Some(stage)
    } else {
        None
    };
    info!(
        "{}",
        started_line(cfg.endpoint, cfg.netuid, &hotkey, uid, role, stage)
    );
    Ok(Neuron {
        hotkey,
        uid,
        view,
        store,
        announcement,
        corpus,
        metrics,
        clock,
    })
}

/// A miner's stage in the epoch at `block`, if its roster (read from chain now, and kept for the
/// worker) has it: `None` for a miner not on it yet, which is placed when its announcement
/// counts, or when the roster cannot be read.
async fn stage_now(view: &RunView, hotkey: &Keypair, block: u64) -> Option<StageIndex> {
    let epoch = view.spec.swarm.schedule().at(block).epoch;
    let me = crate::signer::hotkey_of(&hotkey.account_id());
    match view.roster(epoch).await {
        Ok(roster) => roster.assignment.position(&me).map(|(stage, _)| stage),
        Err(e) => {
            warn!(%epoch, error = format!("{e:#}"), "cannot read this epoch's roster to tell the stage");
            None
        }
    }
}

/// The one line a neuron logs once started: network, endpoint, netuid, hotkey (SS58), uid, role
/// and, for a miner, its stage; a miner not on the current epoch's roster yet has no stage
/// until one is assigned, and says so (the worker's line that it joined names the stage).
pub fn started_line(
    endpoint: &Endpoint,
    netuid: NetUid,
    hotkey: &Keypair,
    uid: Uid,
    role: Role,
    stage: Option<Option<StageIndex>>,
) -> String {
    let stage = match stage {
        None => "none (validators check every stage)".to_owned(),
        Some(Some(s)) => s.to_string(),
        Some(None) => {
            "not yet assigned (named by the first epoch's \"joined\" line, once on the roster)"
                .to_owned()
        }
    };
    format!(
        "started: network {} | endpoint {} | netuid {} | hotkey {} | uid {} | role {} | stage {stage}",
        endpoint.network(),
        endpoint.as_str(),
        netuid.0,
        hotkey.account_id(),
        uid.0,
        format!("{role:?}").to_lowercase(),
    )
}

/// Refuses, off the local network, a location that no peer on another machine can read: a
/// directory (a plain path or `file://`), or an S3 endpoint on this machine's loopback. On
/// [`Network::Local`] (`btlocalnet`, a node on 127.0.0.1) anything goes, as the local subnet
/// runs on directories.
///
/// # Errors
/// Such a location on a non-local network, naming the flags that fix it.
pub fn check_announceable(network: Network, location: &str) -> Result<()> {
    if network == Network::Local {
        return Ok(());
    }
    let fix = "pass --storage.url s3://BUCKET/PREFIX with --storage.endpoint https://... (unless AWS), \
               --storage.access_key_id and --storage.secret_access_key (the write key, or AWS_* \
               variables) and --storage.read_access_key_id and --storage.read_secret_access_key \
               (a read-only key peers read with; none for a public-read bucket)";
    let shown = run::redact(location);
    if !location.starts_with("s3://") {
        bail!(
            "on {network}, no peer can read the directory {shown}, and a miner whose artifacts \
             no one reads earns nothing: {fix}"
        );
    }
    let endpoint = StoreConfig::from_location(location)?.endpoint;
    if let Some(endpoint) = endpoint
        && is_loopback_url(&endpoint)
    {
        bail!(
            "on {network}, no peer can reach the storage endpoint {endpoint} (this machine's \
             loopback): {fix}"
        );
    }
    Ok(())
}

/// Refuses `--storage.allow_local` on finney, the testnet and the archive node: it lets this
/// process read the directories and private or loopback endpoints that strangers' announced
/// locations name, which only a local subnet of one's own processes needs. A custom endpoint
/// (a devnet on a private network, say) keeps it, with a warning.
///
/// # Errors
/// `reach` is [`Reach::Local`] on a public network.
pub fn check_reach(network: Network, reach: Reach) -> Result<()> {
    if reach != Reach::Local {
        return Ok(());
    }
    match network {
        Network::Local => Ok(()),
        Network::Custom => {
            warn!(
                "--storage.allow_local on a custom endpoint: peers' announced locations may point this process at directories and private addresses"
            );
            Ok(())
        }
        // Finney, the testnet, the archive node, and any public network named later.
        _ => bail!(
            "--storage.allow_local is for a local subnet: on {network} it would let a stranger's announced location point this process at its own files and private network; leave it off"
        ),
    }
}

/// Whether an http(s) URL's host is this machine's loopback.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// This neuron's location, once checked: others can list its store through it and cannot write
/// it ([`Store::verify_published`]).
async fn verified_location(
    config: &StoreConfig,
    store: &Store,
    hotkey: &Keypair,
) -> Result<String> {
    let location = config.to_location()?;
    // A fresh key each start: a probe that outlived a crash is never mistaken for this one.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let probe = layout::probe(&crate::signer::hotkey_of(&hotkey.account_id()), nonce);
    store
        .verify_published(&location, config.reach, &probe)
        .await
        .with_context(|| format!("checking the location this neuron publishes for {config}"))?;
    Ok(location)
}

/// What the tests' `store-denial` adversary announces for `config`: the same store, with a read
/// key the store does not know (every read is refused); for a filesystem store, a directory
/// beside it that holds nothing.
///
/// # Errors
/// A config that cannot be published at all.
pub fn denied_location(config: &StoreConfig) -> Result<String> {
    let mut denied = config.clone();
    if denied.url.starts_with("s3://") {
        denied.read_access_key_id = Some("store-denial".into());
        denied.read_secret_access_key = Some("store-denial".into());
    } else {
        denied.url = format!("{}-denied", denied.url.trim_end_matches('/'));
    }
    Ok(denied.to_location()?)
}

/// The run's text: the spec's data (its prepared shards when it names them, read by range), or
/// `data` in its place; its tokenizer must fit the model.
async fn load_text(spec: &RunSpec, source: Option<&str>) -> Result<Corpus> {
    let mut data: DataSpec = spec.data.clone();
    if let Some(d) = source {
        // `--data` is text to read: it replaces the sources and any prepared shards.
        data.sources = vec![d.to_owned()];
        data.shards = None;
        data.manifest_blake3 = None;
    }
    let corpus = Corpus::load(&data)
        .await
        .context("loading the run's text")?;
    if corpus.vocab_size() > spec.model.vocab_size {
        bail!(
            "the {:?} tokenizer has {} tokens but model.vocab_size is {}",
            corpus.tokenizer().kind(),
            corpus.vocab_size(),
            spec.model.vocab_size
        );
    }
    Ok(corpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3: &str = "s3://bucket/miner?endpoint=https%3A%2F%2Fs3.example.org&key=RK&secret=RS";

    #[test]
    fn allow_local_is_refused_on_public_networks() {
        for network in [Network::Finney, Network::Test, Network::Archive] {
            let err = check_reach(network, Reach::Local).unwrap_err().to_string();
            assert!(
                err.contains("--storage.allow_local") && err.contains(network.name()),
                "{err}"
            );
            check_reach(network, Reach::Public).unwrap();
        }
        check_reach(Network::Local, Reach::Local).unwrap();
        check_reach(Network::Custom, Reach::Local).unwrap();
    }

    #[test]
    fn off_the_local_network_a_directory_is_not_announced() {
        for network in [
            Network::Finney,
            Network::Test,
            Network::Archive,
            Network::Custom,
        ] {
            for dir in ["file:///home/me/.sliver/store", "/home/me/.sliver/store"] {
                let err = check_announceable(network, dir).unwrap_err().to_string();
                assert!(
                    err.contains(network.name())
                        && err.contains("--storage.url s3://")
                        && err.contains("--storage.endpoint")
                        && err.contains("--storage.read_access_key_id"),
                    "{err}"
                );
            }
            let loopback = "s3://bucket/miner?endpoint=http%3A%2F%2F127.0.0.1%3A9000";
            let err = check_announceable(network, loopback)
                .unwrap_err()
                .to_string();
            assert!(err.contains("loopback"), "{err}");
            check_announceable(network, S3).unwrap();
            check_announceable(network, "s3://bucket/public").unwrap();
        }
        // The secret never reaches the error.
        let err = check_announceable(
            Network::Finney,
            "s3://bucket/m?endpoint=http%3A%2F%2Flocalhost%3A9000&secret=RS",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("RS"), "{err}");
    }

    #[test]
    fn on_the_local_network_a_directory_is_announced_as_before() {
        for location in [
            "file:///tmp/runs/localnet/store/miner0",
            "/tmp/store",
            "s3://bucket/miner?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
            S3,
        ] {
            check_announceable(Network::Local, location).unwrap();
        }
    }

    #[test]
    fn the_start_up_line_names_where_and_who() {
        let endpoint = Endpoint::resolve(Some("test"), None).unwrap();
        let hotkey = Keypair::from_seed(&[7; 32]);
        let line = |role, stage| started_line(&endpoint, NetUid(9), &hotkey, Uid(4), role, stage);
        let miner = line(Role::Miner, Some(Some(StageIndex(1))));
        let ss58 = hotkey.ss58_address();
        assert!(ss58.starts_with('5'), "{ss58}");
        assert_eq!(
            miner,
            format!(
                "started: network test | endpoint {} | netuid 9 | hotkey {ss58} | uid 4 | role miner | stage 1",
                endpoint.as_str()
            )
        );
        assert_eq!(miner.lines().count(), 1);
        let waiting = line(Role::Miner, Some(None));
        assert!(waiting.contains("stage not yet assigned"), "{waiting}");
        let validator = line(Role::Owner, None);
        assert!(validator.contains("role owner | stage none"), "{validator}");
    }
}
