//! What every neuron does before its own work: its hotkey, registration, and the chain clock.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sliver_chain::client::{Client, Endpoint, NetUid, Uid};
use sliver_chain::wallet::{Keypair, PasswordSource, Wallet};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
/// wallet's coldkey) when `register` is set.
///
/// # Errors
/// Not registered and `register` not set, or the registration failed.
pub async fn ensure_registered(
    client: &Client,
    netuid: NetUid,
    wallet: &Wallet,
    hotkey: &Keypair,
    register: bool,
) -> Result<Uid> {
    if let Some(uid) = client.uid(netuid, &hotkey.account_id()).await? {
        return Ok(uid);
    }
    if !register {
        bail!(
            "hotkey {} is not registered on netuid {}: pass --register (burns the registration fee from the coldkey) or run `btcli subnets register`",
            hotkey.account_id(),
            netuid.0
        );
    }
    let coldkey = wallet
        .coldkey(&PasswordSource::Auto)
        .context("unlocking the coldkey to pay for registration")?;
    let uid = client
        .burned_register(netuid, &coldkey, &hotkey.account_id())
        .await
        .context("registering (burned_register)")?;
    info!(uid = uid.0, "registered");
    Ok(uid)
}

/// A task that follows the latest finalized block; the receiver always holds the newest.
pub fn clock(client: Arc<Client>, first: u64, cancel: CancellationToken) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            match client.current_block().await {
                Ok(b) => {
                    failures = 0;
                    tx.send_if_modified(|cur| {
                        let newer = b.0 > *cur;
                        if newer {
                            *cur = b.0;
                        }
                        newer
                    });
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(50) {
                        warn!(error = %e, "reading the chain head failed; retrying");
                    }
                }
            }
        }
    });
    rx
}

/// What every neuron does first: read its hotkey, connect, and make sure it is registered
/// (registering when `register` is set). Returns the hotkey, the client and the uid.
///
/// # Errors
/// As [`hotkey`], [`connect`] and [`ensure_registered`].
pub async fn join(
    wallet: &Wallet,
    endpoint: &Endpoint,
    netuid: NetUid,
    register: bool,
) -> Result<(Keypair, Arc<Client>, Uid)> {
    let hotkey = hotkey(wallet)?;
    let client = Arc::new(connect(endpoint).await?);
    let uid = ensure_registered(&client, netuid, wallet, &hotkey, register).await?;
    Ok((hotkey, client, uid))
}
