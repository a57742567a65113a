//! `roster-churn`: re-commits its announcement every epoch, right after the roster's cutoff.
//!
//! Each commitment spells its location differently while naming the same store (the region
//! named, then left to its default; on a filesystem store, a trailing `/` added, then dropped),
//! so the miner keeps training and stays on every roster: what it tests is that a re-commit
//! after the cutoff moves no one's stage, because every participant reads the roster at the
//! cutoff block.

use std::convert::Infallible;

use sliver_chain::wallet::Keypair;
use sliver_common::storage::DEFAULT_REGION;
use sliver_subnet::announce::Announcement;
use sliver_subnet::run;
use tracing::{info, warn};

use crate::node::Node;

/// The query option `churned` adds and drops.
const REGION: &str = "region=";

/// The `n`th spelling of `location`: the same store, written differently on odd and even `n`.
/// An S3 location names its region on odd `n` and leaves it to the default on even `n` (a
/// location naming another region than the default keeps it: dropping it would move the
/// store); a filesystem location ends in `/` on odd `n`.
pub(crate) fn churned(location: &str, n: u64) -> String {
    let odd = n % 2 == 1;
    if !location.starts_with("s3://") {
        let bare = location.trim_end_matches('/');
        return if odd {
            format!("{bare}/")
        } else {
            bare.to_owned()
        };
    }
    let (url, query) = location.split_once('?').unwrap_or((location, ""));
    let default = format!("{REGION}{DEFAULT_REGION}");
    let mut options: Vec<&str> = query.split('&').filter(|o| !o.is_empty()).collect();
    if options
        .iter()
        .any(|o| o.starts_with(REGION) && *o != default)
    {
        return location.to_owned();
    }
    options.retain(|o| !o.starts_with(REGION));
    if odd {
        options.push(&default);
    }
    if options.is_empty() {
        url.to_owned()
    } else {
        format!("{url}?{}", options.join("&"))
    }
}

/// Commits `announced` with a new spelling of its location one block after every roster
/// cutoff, until shutdown. A commit that fails is logged and tried again at the next cutoff.
pub(super) async fn run(
    node: Node,
    hotkey: Keypair,
    announced: Announcement,
) -> Result<(), Infallible> {
    let schedule = node.spec().swarm.schedule();
    let mut clock = node.clock.clone();
    let mut n = 0u64;
    loop {
        let block = node.block();
        let epoch = schedule.epoch_of(block);
        // The cutoff of the next epoch's roster is this epoch's merge window's first block.
        let mut target = schedule.roster_cutoff(epoch.next()) + 1;
        if block >= target {
            target = schedule.roster_cutoff(epoch.next().next()) + 1;
        }
        let reached = tokio::select! {
            r = clock.wait_for(|b| *b >= target) => r.is_ok(),
            () = node.cancel.cancelled() => false,
        };
        if !reached {
            return Ok(());
        }
        n += 1;
        let announcement = Announcement {
            location: churned(&announced.location, n),
            ..announced.clone()
        };
        match run::announce(&node.view.client, node.view.netuid, &hotkey, &announcement).await {
            Ok(()) => info!(
                block = target,
                commit = n,
                location = %run::redact(&announcement.location),
                "roster-churn: re-committed the announcement after the roster cutoff"
            ),
            Err(e) => warn!(error = %format!("{e:#}"), "roster-churn: the re-commit failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sliver_common::storage::StoreConfig;

    use super::*;

    #[test]
    fn every_spelling_names_the_same_store() {
        let s3 = "s3://bkt/p?endpoint=http%3A%2F%2F127.0.0.1%3A9&region=us-east-1&key=K&secret=S";
        let spellings: Vec<String> = (0..4).map(|n| churned(s3, n)).collect();
        assert_ne!(spellings[0], spellings[1], "consecutive commits differ");
        assert_eq!(spellings[0], spellings[2]);
        assert_eq!(spellings[1], spellings[3]);
        let configs: Vec<StoreConfig> = spellings
            .iter()
            .map(|l| StoreConfig::from_location(l).unwrap())
            .collect();
        for c in &configs {
            assert_eq!(c.url, "s3://bkt/p");
            assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9"));
            assert_eq!(
                c.region.as_deref().unwrap_or(DEFAULT_REGION),
                DEFAULT_REGION
            );
            assert_eq!(
                (c.access_key_id.as_deref(), c.secret_access_key.as_deref()),
                (Some("K"), Some("S"))
            );
        }
        // Another region is kept: dropping it would name another store.
        let far = "s3://bkt?region=eu-west-1";
        assert_eq!(churned(far, 1), far);
        assert_eq!(churned(far, 2), far);
        // A bare s3 location gains the default region, then loses it again.
        assert_eq!(churned("s3://bkt", 1), "s3://bkt?region=us-east-1");
        assert_eq!(churned("s3://bkt", 2), "s3://bkt");
        // A directory: a trailing slash, then none.
        assert_eq!(churned("/tmp/store", 1), "/tmp/store/");
        assert_eq!(churned("/tmp/store", 2), "/tmp/store");
    }
}
