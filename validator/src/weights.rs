//! Weights on chain: `set_weights`, or, where the subnet requires commit-reveal, a timelocked
//! commit (`commit_timelocked_weights`, commit-reveal v4, as finney's validators send today)
//! that the chain itself decrypts and applies in the reveal epoch, so nothing is lost if this
//! validator stops before then; never faster than its rate limit. The weights carry this
//! release's version key ([`version::RELEASE`]); when the subnet's `WeightsVersionKey` asks for
//! a later release, none are set and the error names the release to install.

use std::sync::Arc;

use anyhow::{Context, Result};
use sliver_chain::client::{Client, Error, NetUid, Weights};
use sliver_chain::wallet::Keypair;
use sliver_subnet::version;
use tracing::{error, info, warn};

/// Sets `weights` from `hotkey`: directly, or as a timelocked commit the chain reveals.
/// A rate-limited attempt is skipped with a warning (the next epoch sets them again); an
/// outdated release ([`version::check`]) sets none, logging the error that names the release.
///
/// # Errors
/// A chain error other than the rate limit.
pub async fn set(
    client: &Arc<Client>,
    netuid: NetUid,
    hotkey: &Keypair,
    weights: &Weights,
) -> Result<()> {
    if weights.is_empty() {
        warn!("no miner earned weight this epoch; not setting weights");
        return Ok(());
    }
    let params = client.subnet_params(netuid).await?;
    // An outdated release sets no weights: the subnet asks for a newer one.
    if let Err(outdated) = version::check(netuid, params.weights_version_key) {
        error!(error = %outdated, "not setting weights");
        return Ok(());
    }
    // Our own key: no lower than the chain's (checked above), so subtensor accepts it.
    let version = version::RELEASE.key();
    let result = if params.commit_reveal {
        client
            .commit_timelocked_weights(netuid, hotkey, weights, version)
            .await
            .map(|c| {
                info!(
                    reveal_round = c.reveal_round,
                    reveal_from_block = c.window.first.0,
                    "weights committed, timelocked; the chain reveals them"
                );
            })
    } else {
        client
            .set_weights(netuid, hotkey, weights, version)
            .await
            .map(|included| info!(block = included.block.0, "weights set"))
    };
    match result {
        Err(e @ Error::RateLimited { .. }) => {
            warn!(error = %e, "weights rate-limited; they are set again next epoch");
            Ok(())
        }
        other => other.context("setting weights"),
    }
}
