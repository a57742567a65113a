//! Weights on chain: `set_weights`, or commit then reveal where the subnet requires it, with the
//! subnet's version key, never faster than its rate limit.

use std::sync::Arc;

use anyhow::{Context, Result};
use sliver_chain::client::{Client, Error, NetUid, Weights};
use sliver_chain::wallet::Keypair;
use tracing::{info, warn};

/// Sets `weights` from `hotkey`: directly, or as a commit whose reveal runs in the background.
/// A rate-limited attempt is skipped with a warning (the next epoch sets them again).
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
    let version = params.weights_version_key;
    let result = if params.commit_reveal {
        match client
            .commit_weights(netuid, hotkey, weights, version)
            .await
        {
            Ok(pending) => {
                let (client, hotkey) = (client.clone(), hotkey.clone());
                tokio::spawn(async move {
                    match client.reveal_when_ready(&hotkey, &pending).await {
                        Ok(_) => info!("weights revealed"),
                        Err(e) => warn!(error = %e, "revealing weights failed"),
                    }
                });
                info!("weights committed; the reveal follows when the chain allows it");
                Ok(())
            }
            Err(e) => Err(e),
        }
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
