//! The run: its spec as the subnet owner published it, and who takes part in each epoch.
//!
//! The owner's validator puts the canonical spec TOML in its store under
//! `specs/{blake3}.toml` and announces the hash. Everyone else reads the owner's announcement
//! from chain, fetches the spec from the owner's location and checks its BLAKE3 before parsing
//! it; a participant started with its own `--spec` refuses to run when the two differ, naming the
//! sections that differ.
//!
//! The roster of epoch `e` is computed from chain state alone, read **at** the cutoff block (the
//! first block of the previous epoch's merge window): the neurons registered then whose
//! announcement then says `miner` and carries this run's spec hash. Stage assignment follows
//! from it ([`Assignment`]). Every process reads the same block, whenever it reads, so a
//! re-commit, a deregistration or a registration after the cutoff changes no one's roster of `e`,
//! and a miner whose merge of `e - 1` is done can start `e` without waiting for its first block.
//! A node that has pruned the cutoff's state is read at its latest block instead, with a
//! warning. A member whose store this reader cannot open stays on the roster (its reads fail:
//! that member's failure, not a reshuffle of everyone's stages).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sliver_chain::client::{BlockNumber, Client, NetUid};
use sliver_chain::wallet::{AccountId32, Keypair};
use sliver_common::artifact::{Hotkey, RunId};
use sliver_common::assignment::{Assignment, Declared, Member};
use sliver_common::sizing;
use sliver_common::storage::{Link, Reach, Store, StoreConfig, Timeouts};
use sliver_common::{Epoch, RunSpec};
use tracing::{info, warn};

use crate::announce::{Announcement, Role};

/// The largest run spec read from storage.
const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Sets `keypair`'s commitment to `announcement`, unless it already says exactly that.
///
/// # Errors
/// A chain error.
pub async fn announce(
    client: &Client,
    netuid: NetUid,
    keypair: &Keypair,
    announcement: &Announcement,
) -> Result<()> {
    let current = current_announcement(client, netuid, keypair).await?;
    if current.as_ref() != Some(announcement) {
        set_announcement(client, netuid, keypair, announcement).await?;
    }
    Ok(())
}

/// A participant's announcement at its start: sets `keypair`'s commitment to `announcement`
/// unless it already says that with the work rate, stage and epochs away the chain holds (a
/// restarted miner keeps them until it measures and plans anew), so that a restart does not
/// move the commitment's block and drop the participant for an epoch. Returns the announcement
/// in effect.
///
/// # Errors
/// A chain error.
pub async fn announce_start(
    client: &Client,
    netuid: NetUid,
    keypair: &Keypair,
    announcement: &Announcement,
) -> Result<Announcement> {
    let current = current_announcement(client, netuid, keypair).await?;
    if let Some(a) = current {
        let carried = Announcement {
            rate: a.rate,
            stage: a.stage,
            away: a.away,
            ..announcement.clone()
        };
        if a == carried {
            return Ok(a);
        }
    }
    set_announcement(client, netuid, keypair, announcement).await?;
    Ok(announcement.clone())
}

/// `keypair`'s announcement on chain, if its commitment is one.
async fn current_announcement(
    client: &Client,
    netuid: NetUid,
    keypair: &Keypair,
) -> Result<Option<Announcement>> {
    let current = client
        .commitment(netuid, &keypair.account_id())
        .await
        .context("reading our commitment")?;
    Ok(current.and_then(|c| Announcement::parse(&c.data).ok()))
}

async fn set_announcement(
    client: &Client,
    netuid: NetUid,
    keypair: &Keypair,
    announcement: &Announcement,
) -> Result<()> {
    client
        .set_commitment(netuid, keypair, announcement.to_string().as_bytes())
        .await
        .context("publishing our storage location (Commitments.set_commitment)")?;
    info!(
        role = ?announcement.role,
        location = %redact(&announcement.location),
        rate = announcement.rate.map(|r| format!("{r:.3e}")),
        stage = announcement.stage.map(|s| s.to_string()),
        away = announcement.away.map(|(a, b)| format!("{a}-{b}")),
        "announced"
    );
    Ok(())
}

/// A location with any `secret=` value hidden, for logs.
pub fn redact(location: &str) -> String {
    match location.find("secret=") {
        Some(i) => {
            let rest = &location[i + 7..];
            let end = rest.find('&').map_or("", |j| &rest[j..]);
            format!("{}secret=[redacted]{end}", &location[..i])
        }
        None => location.to_owned(),
    }
}

/// Publishes `spec` as the run's: puts it in the owner's store and returns its hash.
///
/// # Errors
/// A storage error.
pub async fn publish_spec(store: &Store, spec: &RunSpec) -> Result<[u8; 32]> {
    let hash = spec.hash();
    store
        .put_once(
            &sliver_common::layout::spec(&hash),
            bytes::Bytes::from(spec.to_toml()),
        )
        .await
        .context("publishing the run spec")?;
    Ok(hash)
}

/// The run spec the subnet owner published, fetched from its store (read under `reach`, within
/// `timeouts`: the flags', the spec being unknown yet) and verified; waits up to `wait` for the
/// owner to announce it.
///
/// # Errors
/// No owner announcement in time, an unreadable or tampered spec.
pub async fn discover_spec(
    client: &Client,
    netuid: NetUid,
    wait: Duration,
    (reach, timeouts): (Reach, Timeouts),
) -> Result<RunSpec> {
    let deadline = tokio::time::Instant::now() + wait;
    let owner = client.subnet_owner(netuid).await?;
    let (announcement, hotkey) = loop {
        if let Some(found) = owner_announcement(client, netuid, &owner).await? {
            break found;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the subnet owner ({owner}) has not published a run spec on netuid {} (waited {wait:?})",
                netuid.0
            );
        }
        info!("waiting for the subnet owner to publish the run spec");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let store = StoreConfig::from_location(&announcement.location)
        .and_then(|c| Store::open_peer(&StoreConfig { timeouts, ..c }, reach))
        .with_context(|| {
            format!(
                "opening the owner's store ({})",
                redact(&announcement.location)
            )
        })?;
    let key = sliver_common::layout::spec(&announcement.spec);
    let bytes = store.get(&key, MAX_SPEC_BYTES).await?.with_context(|| {
        format!("the owner {hotkey} announced a spec but {key} is not in its store")
    })?;
    let got = blake3::hash(&bytes);
    if got.as_bytes() != &announcement.spec {
        bail!(
            "the run spec in the owner's store has BLAKE3 {got}, but the owner announced {}",
            hex::encode(announcement.spec)
        );
    }
    let text = std::str::from_utf8(&bytes).context("the published run spec is not UTF-8")?;
    RunSpec::from_toml(text).context("the published run spec")
}

async fn owner_announcement(
    client: &Client,
    netuid: NetUid,
    owner: &AccountId32,
) -> Result<Option<(Announcement, AccountId32)>> {
    let metagraph = client.metagraph(netuid).await?;
    let commitments = client.commitments(netuid).await?;
    for (hotkey, c) in commitments {
        let owned = metagraph
            .by_hotkey(&hotkey)
            .is_some_and(|n| &n.coldkey == owner);
        if !owned {
            continue;
        }
        if let Ok(a) = Announcement::parse(&c.data)
            && a.role == Role::Owner
        {
            return Ok(Some((a, hotkey)));
        }
    }
    Ok(None)
}

/// Refuses a local spec that differs from the published one, naming the sections that differ.
///
/// # Errors
/// The mismatch.
pub fn check_same_spec(local: &RunSpec, published: &RunSpec, local_path: &str) -> Result<()> {
    if local.hash() == published.hash() {
        return Ok(());
    }
    let l = toml::Value::try_from(local).context("encoding the local spec")?;
    let p = toml::Value::try_from(published).context("encoding the published spec")?;
    let mut differ = Vec::new();
    if let (Some(l), Some(p)) = (l.as_table(), p.as_table()) {
        let keys: std::collections::BTreeSet<&String> = l.keys().chain(p.keys()).collect();
        for k in keys {
            if l.get(k) != p.get(k) {
                differ.push(k.as_str());
            }
        }
    }
    bail!(
        "run spec mismatch: {local_path} (BLAKE3 {}) differs from the spec the subnet owner published (BLAKE3 {}) in: {}",
        hex::encode(local.hash()),
        hex::encode(published.hash()),
        differ.join(", ")
    )
}

/// Who takes part in one epoch, at which stage, and where to read them.
#[derive(Debug, Clone)]
pub struct Roster {
    /// The run: every artifact read against this roster must name it.
    pub run: RunId,
    /// The epoch.
    pub epoch: Epoch,
    /// Miners by stage.
    pub assignment: Assignment,
    /// Each miner's store.
    pub stores: HashMap<Hotkey, Store>,
}

impl Roster {
    /// The store of `hotkey`.
    ///
    /// # Errors
    /// When it is not on the roster.
    pub fn store(&self, hotkey: &Hotkey) -> Result<&Store> {
        self.stores.get(hotkey).with_context(|| {
            format!(
                "miner {} is not on the roster of epoch {}",
                hotkey.short(),
                self.epoch
            )
        })
    }
}

/// Reads rosters from chain, caching opened stores by location.
pub struct RunView {
    /// The chain client.
    pub client: Arc<Client>,
    /// The subnet.
    pub netuid: NetUid,
    /// The run spec.
    pub spec: RunSpec,
    /// The run's name, subnet and spec hash, as artifacts name them.
    pub run: RunId,
    /// Which peers' locations are read.
    reach: Reach,
    /// The emulated link this participant's own store is behind, shared by its peers' stores
    /// (transparent outside benchmarks and tests).
    link: Link,
    /// How long a request to a peer's store may take: the storage flags' timeouts, bounded by
    /// the spec's per-read deadline ([`Timeouts::within`]).
    timeouts: Timeouts,
    stores: Mutex<HashMap<String, Store>>,
    /// The rosters read at their cutoff block, newest last: a roster never changes once its
    /// cutoff is final, so each is read from the chain once per process.
    rosters: Mutex<Vec<Roster>>,
}

/// How many epochs' rosters a [`RunView`] keeps: the epoch being trained, the one being
/// audited or merged from, and the next.
const ROSTERS_KEPT: usize = 4;

impl RunView {
    /// A view of `spec`'s run on `netuid`, reading peers' stores under `reach`, with `timeouts`
    /// (the storage flags') bounded by the spec's per-read deadline
    /// ([`crate::fetch::peer_deadline`], [`Timeouts::within`]), through `link`.
    pub fn new(
        client: Arc<Client>,
        netuid: NetUid,
        spec: RunSpec,
        (reach, timeouts, link): (Reach, Timeouts, Link),
    ) -> Self {
        let timeouts = timeouts.within(crate::fetch::peer_deadline(&spec));
        let run = RunId::of(&spec, netuid.0);
        Self {
            client,
            netuid,
            spec,
            run,
            reach,
            link,
            timeouts,
            stores: Mutex::new(HashMap::new()),
            rosters: Mutex::new(Vec::new()),
        }
    }

    fn open(&self, location: &str) -> Result<Store> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(location) {
            return Ok(s.clone());
        }
        let config = StoreConfig {
            timeouts: self.timeouts,
            link: self.link.clone(),
            ..StoreConfig::from_location(location)?
        };
        let store = Store::open_peer(&config, self.reach)?;
        stores.insert(location.to_owned(), store.clone());
        Ok(store)
    }

    /// The roster of `epoch` (read once the chain has passed the first block of the previous
    /// epoch's merge window, the cutoff for announcements).
    ///
    /// # Errors
    /// A chain error.
    pub async fn roster(&self, epoch: Epoch) -> Result<Roster> {
        let cached = |rosters: &Vec<Roster>| rosters.iter().find(|r| r.epoch == epoch).cloned();
        if let Some(r) = cached(&self.rosters.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(r);
        }
        let (roster, at_cutoff) = self.read_roster(epoch).await?;
        if at_cutoff {
            let mut rosters = self.rosters.lock().unwrap_or_else(|p| p.into_inner());
            if cached(&rosters).is_none() {
                rosters.push(roster.clone());
                rosters.sort_by_key(|r| r.epoch);
                let excess = rosters.len().saturating_sub(ROSTERS_KEPT);
                rosters.drain(..excess);
            }
        }
        Ok(roster)
    }

    /// The roster of `epoch` from the chain, and whether it was read at its cutoff block (the
    /// one every participant reads) rather than at the latest block.
    async fn read_roster(&self, epoch: Epoch) -> Result<(Roster, bool)> {
        let start = self.spec.swarm.schedule().roster_cutoff(epoch);
        let cutoff = BlockNumber(start);
        let at_cutoff = async {
            let metagraph = self.client.metagraph_at(self.netuid, cutoff).await?;
            let commitments = self.client.commitments_at(self.netuid, cutoff).await?;
            Ok::<_, sliver_chain::client::Error>((metagraph, commitments))
        };
        let (metagraph, commitments, at_cutoff) = match at_cutoff.await {
            Ok((metagraph, commitments)) => (metagraph, commitments, true),
            Err(e) => {
                warn!(%epoch, block = start, error = %e, "cannot read the chain at the roster's cutoff block (a pruned node?); reading the latest block, which other participants may not");
                (
                    self.client.metagraph(self.netuid).await?,
                    self.client.commitments(self.netuid).await?,
                    false,
                )
            }
        };
        let mut members = Vec::new();
        let mut declared = HashMap::new();
        let mut stores = HashMap::new();
        for (account, c) in commitments {
            let Some(uid) = metagraph.uid_of(&account) else {
                continue;
            };
            let Ok(a) = Announcement::parse(&c.data) else {
                continue;
            };
            if a.role != Role::Miner
                || a.spec != self.run.spec
                || c.block.0 > start
                || a.away_in(epoch)
            {
                continue;
            }
            let hotkey = Hotkey(account.0);
            match self.open(&a.location) {
                Ok(store) => {
                    stores.insert(hotkey, store);
                }
                Err(e) => {
                    warn!(miner = %hotkey.short(), error = %e, "cannot open the miner's announced store; it stays on the roster, unread");
                }
            }
            let paid = metagraph.neuron(uid).is_some_and(|n| n.incentive > 0);
            declared.insert(
                hotkey,
                Declared {
                    rate: a.rate,
                    stage: a.stage,
                    paid,
                },
            );
            members.push(Member { uid: uid.0, hotkey });
        }
        let work: Vec<f64> = (0..self.spec.stages.len())
            .map(|s| sizing::work_per_sample(&self.spec, s).unwrap_or(1.0))
            .collect();
        let assignment = Assignment::declared(
            &work,
            &members,
            |m| declared.get(&m.hotkey).copied().unwrap_or_default(),
            self.spec.swarm.max_rate_ratio,
        );
        let roster = Roster {
            run: self.run.clone(),
            epoch,
            assignment,
            stores,
        };
        Ok((roster, at_cutoff))
    }

    /// The stores of the validators of this run (the owner's included): registered hotkeys
    /// that hold a validator permit and announced this run's spec, with their announced store,
    /// by hotkey. Any hotkey can announce itself a validator; only the chain's permit (stake)
    /// makes it one, so a miner answers no one else. A store that cannot be opened is left out
    /// with a warning.
    ///
    /// # Errors
    /// A chain error.
    pub async fn validator_stores(&self) -> Result<Vec<(Hotkey, Store)>> {
        let metagraph = self.client.metagraph(self.netuid).await?;
        let commitments = self.client.commitments(self.netuid).await?;
        let mut out = Vec::new();
        for (account, c) in commitments {
            let permitted = metagraph
                .uid_of(&account)
                .and_then(|uid| metagraph.neuron(uid))
                .is_some_and(|n| n.validator_permit);
            if !permitted {
                continue;
            }
            let Ok(a) = Announcement::parse(&c.data) else {
                continue;
            };
            if a.role == Role::Miner || a.spec != self.run.spec {
                continue;
            }
            match self.open(&a.location) {
                Ok(store) => out.push((Hotkey(account.0), store)),
                Err(e) => {
                    warn!(validator = %Hotkey(account.0).short(), error = %e, "cannot open the validator's announced store; leaving it out");
                }
            }
        }
        out.sort_by_key(|(h, _)| *h);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            redact("s3://b/p?endpoint=x&key=AK&secret=SK&region=r"),
            "s3://b/p?endpoint=x&key=AK&secret=[redacted]&region=r"
        );
        assert_eq!(redact("s3://b?secret=SK"), "s3://b?secret=[redacted]");
        assert_eq!(redact("/tmp/store"), "/tmp/store");
    }
}
