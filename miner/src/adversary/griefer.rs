//! `griefer`: a miner that trains honestly and turns everything published on chain against
//! its peers and the validators.
//!
//! Once an epoch, when its peers' artifacts of the epoch and merged shards of the last one are
//! in their stores (the epoch's `reduce_end`), it takes the next peer of the roster in turn as
//! its victim and, with the read key the victim published:
//!
//! - deletes, then overwrites, one of the victim's artifacts of the epoch and one of its
//!   merged shards of the last epoch (raw S3 requests, signed with the read key);
//! - pre-creates the victim's predictable keys of the next epoch (its first merged shard and,
//!   on stage 0, its first sample's activation);
//! - with each validator's published read key, pre-creates its own challenge of the next
//!   epoch in that validator's store (a challenge that exists and names nothing would spare it
//!   every spot check);
//! - poses as a validator: puts, in its own store, a challenge to the victim naming a weights
//!   version the victim claimed, and at the next round looks whether the victim answered it
//!   (an answer counts only when no validator asked the victim for the same version).
//!
//! Every attempt is logged with its outcome (`info!`, and `warn!` for one that landed), then
//! one line per round counts them. Each should be refused: a published key only reads, and
//! miners answer only hotkeys that hold a validator permit.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sliver_common::artifact::{self, ArtifactId, Hotkey, Kind};
use sliver_common::flat::WeightsHash;
use sliver_common::storage::{DEFAULT_REGION, Store, StoreConfig};
use sliver_common::{Epoch, StageIndex, layout, routing, spot_check};
use sliver_subnet::run::Roster;
use tracing::{info, warn};

use crate::node::Node;

/// The most bytes read of a victim's artifact to learn the weights version it claims.
const MAX_READ: u64 = 1 << 24;

/// What one attempt came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Attempts made.
    pub(crate) attempts: u64,
    /// Attempts that did what they tried to.
    pub(crate) landed: u64,
}

impl Tally {
    /// Logs the attempt `what` on `target` and counts it: `landed` when it did what it tried.
    fn record(&mut self, what: &str, target: &str, landed: bool, detail: &str) {
        self.attempts += 1;
        if landed {
            self.landed += 1;
            warn!(
                attempt = what,
                target, detail, "griefer: the attempt LANDED"
            );
        } else {
            info!(
                attempt = what,
                target, detail, "griefer: the attempt was refused"
            );
        }
    }
}

/// A raw S3 client on a store's bucket with the key its location published (the read key),
/// and the store's key prefix: what lets the griefer send requests `Store` never sends
/// (deletes, overwrites). `None` for a store that is not S3.
pub(crate) fn raw(config: &StoreConfig) -> Option<(Arc<dyn ObjectStore>, String)> {
    let rest = config.url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(config.region.as_deref().unwrap_or(DEFAULT_REGION))
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder = match (&config.access_key_id, &config.secret_access_key) {
        (Some(key), Some(secret)) => builder
            .with_access_key_id(key)
            .with_secret_access_key(secret),
        _ => builder.with_skip_signature(true),
    };
    let prefix = match prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    Some((Arc::new(builder.build().ok()?), prefix))
}

/// Tries to delete `key` and then to overwrite it, through `raw`.
pub(crate) async fn delete_and_overwrite(
    (raw, prefix): &(Arc<dyn ObjectStore>, String),
    key: &str,
    tally: &mut Tally,
) {
    let path = ObjectPath::from(format!("{prefix}{key}"));
    let deleted = raw.delete(&path).await;
    tally.record(
        "delete",
        key,
        deleted.is_ok(),
        &deleted.err().map_or("deleted".into(), |e| e.to_string()),
    );
    let opts = PutOptions {
        mode: PutMode::Overwrite,
        ..PutOptions::default()
    };
    let written = raw
        .put_opts(&path, PutPayload::from_static(b"griefer"), opts)
        .await;
    tally.record(
        "overwrite",
        key,
        written.is_ok(),
        &written
            .err()
            .map_or("overwritten".into(), |e| e.to_string()),
    );
}

/// Tries to create `key` in `store` (opened with the key its location published).
pub(crate) async fn pre_create(store: &Store, key: &str, bytes: Bytes, tally: &mut Tally) {
    let put = store.put_once(key, bytes).await;
    let landed = put.is_ok();
    let detail = match put {
        Ok(p) => format!("{p:?}"),
        Err(e) => e.to_string(),
    };
    tally.record("pre-create", key, landed, &detail);
}

/// The victim of `epoch`'s round: the roster's other miners in turn.
fn victim(roster: &Roster, me: Hotkey, epoch: Epoch) -> Option<(StageIndex, Hotkey)> {
    let others: Vec<(StageIndex, Hotkey)> = roster
        .assignment
        .members()
        .filter(|(_, m)| m.hotkey != me)
        .map(|(s, m)| (s, m.hotkey))
        .collect();
    (!others.is_empty()).then(|| others[(epoch.0 % others.len() as u64) as usize])
}

/// A posed challenge waiting for the next round: the victim, its stage, the epoch and the
/// version asked for.
struct Posed {
    victim: Hotkey,
    stage: StageIndex,
    epoch: Epoch,
    hash: WeightsHash,
}

/// One round of attacks per epoch, at the epoch's `reduce_end`, until shutdown.
pub(super) async fn run(node: Node) -> Result<(), Infallible> {
    let schedule = node.spec().swarm.schedule();
    let mut clock = node.clock.clone();
    let mut posed: Option<Posed> = None;
    let mut total = Tally::default();
    loop {
        let block = node.block();
        let mut timeline = schedule.at(block);
        if block >= timeline.reduce_end {
            timeline = schedule.timeline(timeline.epoch.next());
        }
        let at = timeline.reduce_end;
        let reached = tokio::select! {
            r = clock.wait_for(|b| *b >= at) => r.is_ok(),
            () = node.cancel.cancelled() => false,
        };
        if !reached {
            return Ok(());
        }
        let mut tally = Tally::default();
        if let Some(p) = posed.take() {
            answered(&node, &p, &mut tally).await;
        }
        posed = round(&node, timeline.epoch, &mut tally).await;
        total.attempts += tally.attempts;
        total.landed += tally.landed;
        info!(
            epoch = %timeline.epoch,
            attempts = tally.attempts,
            landed = tally.landed,
            total_attempts = total.attempts,
            total_landed = total.landed,
            "griefer: round done"
        );
    }
}

/// Whether the victim of a posed challenge answered it (put the version asked for).
async fn answered(node: &Node, p: &Posed, tally: &mut Tally) {
    let Ok(roster) = node.view.roster(p.epoch).await else {
        return;
    };
    let Ok(store) = roster.store(&p.victim) else {
        return;
    };
    let answer = layout::weights_answer(&node.spec().name, p.epoch, p.stage, &p.victim, &p.hash);
    // An answer is put in parts, the first one first.
    let key = sliver_common::storage::parts::key(&answer, 0);
    let found = match store.exists(&key).await {
        Ok(found) => found,
        Err(e) => {
            info!(error = %e, "griefer: cannot look for the victim's answer");
            return;
        }
    };
    if found && validator_asked(node, p).await {
        // A validator's own spot check asked the victim for the same version, so the answer
        // tells nothing about the posed challenge.
        info!(
            target = %key,
            "griefer: a validator asked the victim for the same version; the attempt is not counted"
        );
        return;
    }
    tally.record(
        "pose as a validator",
        &key,
        found,
        if found {
            "the victim put the version asked for, and no validator had asked for it"
        } else {
            "the victim did not answer a challenge from a hotkey without a validator permit"
        },
    );
}

/// Whether a validator with a permit challenged the victim of `p` for the same version in the
/// same epoch. A validator that cannot be read counts as having asked: the griefer then claims
/// nothing it cannot show.
async fn validator_asked(node: &Node, p: &Posed) -> bool {
    let Ok(validators) = node.view.validator_stores().await else {
        return true;
    };
    let key = layout::challenge(&node.spec().name, p.epoch, &p.victim);
    for (_, v) in &validators {
        match v.get(&key, MAX_READ).await {
            Ok(Some(bytes)) => match spot_check::parse_challenge(&bytes) {
                Ok(hashes) if !hashes.contains(&p.hash) => {}
                _ => return true,
            },
            Ok(None) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Every attack of one round on `epoch`'s victim; returns the challenge it posed, if any.
async fn round(node: &Node, epoch: Epoch, tally: &mut Tally) -> Option<Posed> {
    let spec = node.spec();
    let run = &spec.name;
    let me = node.me();
    let roster = match node.view.roster(epoch).await {
        Ok(r) => r,
        Err(e) => {
            info!(error = %format!("{e:#}"), "griefer: no roster this round");
            return None;
        }
    };
    let (stage, victim) = victim(&roster, me, epoch)?;
    let Ok(store) = roster.store(&victim) else {
        info!(victim = %victim.short(), "griefer: the victim's store cannot be opened");
        return None;
    };
    let stages = spec.stages.len();
    let kind = if stage.is_last(stages) {
        Kind::Grad
    } else {
        Kind::Act
    };
    let listed = store
        .list(&layout::artifacts(run, epoch, stage, &victim, kind))
        .await
        .unwrap_or_default();
    let shards = match epoch.prev() {
        Some(prev) => store
            .list(&layout::artifacts(run, prev, stage, &victim, Kind::Merged))
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    info!(
        %epoch,
        victim = %victim.short(),
        %stage,
        artifacts = listed.len(),
        merged_shards = shards.len(),
        "griefer: attacking a peer with the read key it published"
    );
    match raw(store.config()) {
        Some(raw) => {
            for key in listed.first().into_iter().chain(shards.first()) {
                delete_and_overwrite(&raw, key, tally).await;
            }
        }
        None => info!("griefer: the victim's store is not S3; no raw requests"),
    }
    // The victim's keys of the next epoch, before it writes them.
    let next = epoch.next();
    let count = roster.assignment.stage(stage).len() as u32;
    let mut keys = vec![layout::artifact(
        run,
        &victim,
        ArtifactId {
            epoch: next,
            stage,
            kind: Kind::Merged,
            id: artifact::shard_id(0, count.max(1)),
        },
    )];
    if stage.is_first() {
        let id = routing::sample_id(run, next, &victim, 0);
        keys.push(layout::artifact(
            run,
            &victim,
            ArtifactId {
                epoch: next,
                stage,
                kind: Kind::Act,
                id,
            },
        ));
    }
    for key in &keys {
        pre_create(store, key, Bytes::from_static(b"griefer"), tally).await;
    }
    // Its own challenge of the next epoch, empty, in every validator's store.
    match node.view.validator_stores().await {
        Ok(validators) => {
            for (_, v) in &validators {
                let key = layout::challenge(run, next, &me);
                let text = spot_check::challenge_text(&[]);
                pre_create(v, &key, Bytes::from(text), tally).await;
            }
        }
        Err(e) => info!(error = %format!("{e:#}"), "griefer: cannot read the validators"),
    }
    // Pose as a validator: a challenge to the victim for a version it claimed.
    let hash = match listed.first() {
        Some(key) => match store.get(key, MAX_READ).await {
            Ok(Some(bytes)) => artifact::read_header(&bytes)
                .ok()
                .and_then(|(h, _)| h.weights),
            _ => None,
        },
        None => None,
    }?;
    let key = layout::challenge(run, epoch, &victim);
    let text = spot_check::challenge_text(&[hash]);
    match node.store.put_once(&key, Bytes::from(text)).await {
        Ok(_) => info!(
            victim = %victim.short(),
            %hash,
            "griefer: put a challenge to the victim in its own store, as a validator would"
        ),
        Err(e) => info!(error = %e, "griefer: cannot put its challenge"),
    }
    Some(Posed {
        victim,
        stage,
        epoch,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use sliver_common::storage::Reach;
    use sliver_common::testing::S3Server;

    use super::*;

    /// What a peer published: its store's config as a reader opens it, with the read key.
    fn published(server: &S3Server) -> StoreConfig {
        let location = server.config("local").to_location().unwrap();
        StoreConfig::from_location(&location).unwrap()
    }

    /// With the read key a peer published, the griefer's deletes, overwrites and pre-creations
    /// are all refused and the peer's object stands; the same requests with the write key land
    /// (so the test tells the two apart).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_published_read_key_writes_nothing() {
        let server = S3Server::spawn("sliver");
        let own = Store::open(&server.config("local")).unwrap();
        let key = "runs/r/e1/s0/ab/merged/4294967296";
        own.put_once(key, Bytes::from_static(b"honest"))
            .await
            .unwrap();
        let config = published(&server);
        let peer = Store::open_peer(&config, Reach::Local).unwrap();

        let mut tally = Tally::default();
        let read = raw(&config).expect("an S3 store");
        delete_and_overwrite(&read, key, &mut tally).await;
        pre_create(
            &peer,
            "runs/r/e2/s0/ab/merged/4294967296",
            Bytes::from_static(b"x"),
            &mut tally,
        )
        .await;
        assert_eq!(
            tally,
            Tally {
                attempts: 3,
                landed: 0
            }
        );
        let kept = own.get(key, 1 << 10).await.unwrap().unwrap();
        assert_eq!(kept.as_ref(), b"honest");
        assert!(
            !own.exists("runs/r/e2/s0/ab/merged/4294967296")
                .await
                .unwrap()
        );

        let mut tally = Tally::default();
        let write = raw(&server.config("local")).unwrap();
        delete_and_overwrite(&write, key, &mut tally).await;
        assert_eq!(
            tally,
            Tally {
                attempts: 2,
                landed: 2
            }
        );
        let replaced = own.get(key, 1 << 10).await.unwrap().unwrap();
        assert_eq!(replaced.as_ref(), b"griefer");
    }

    #[test]
    fn no_raw_client_for_a_directory() {
        assert!(raw(&StoreConfig::at("/tmp/store")).is_none());
    }
}
