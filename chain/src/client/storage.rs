//! Typed storage reads at one block, with errors that name the storage item, and the subnet
//! parameters the client checks before sending weights.

use subxt::storage::Address;

use super::config::SubtensorConfig;
use super::error::Error;
use super::ids::{BlockNumber, NetUid};
use super::runtime::api;

/// A client pinned to one block: every read through it sees the same state.
pub(crate) type At = subxt::OnlineClientAtBlock<SubtensorConfig>;

fn item<A: Address>(addr: &A) -> String {
    format!("{}.{}", addr.pallet_name(), addr.entry_name())
}

fn storage_error<A: Address>(addr: &A, e: subxt::error::StorageError) -> Error {
    match e {
        subxt::error::StorageError::IncompatibleCodegen
        | subxt::error::StorageError::StorageEntryNotFound { .. }
        | subxt::error::StorageError::PalletNameNotFound(_) => {
            Error::IncompatibleRuntime { item: item(addr) }
        }
        e => Error::rpc(format!("reading {}", item(addr)), e),
    }
}

/// The value at `keys`, or the item's default.
pub(crate) async fn fetch<A: Address>(
    at: &At,
    addr: A,
    keys: A::KeyParts,
) -> Result<A::Value, Error> {
    let value = at
        .storage()
        .fetch(&addr, keys)
        .await
        .map_err(|e| storage_error(&addr, e))?;
    value.decode().map_err(|e| Error::malformed(item(&addr), e))
}

/// The value at `keys`, `None` if absent (for items without a default).
pub(crate) async fn try_fetch<A: Address>(
    at: &At,
    addr: A,
    keys: A::KeyParts,
) -> Result<Option<A::Value>, Error> {
    let value = at
        .storage()
        .try_fetch(&addr, keys)
        .await
        .map_err(|e| storage_error(&addr, e))?;
    value
        .map(|v| v.decode().map_err(|e| Error::malformed(item(&addr), e)))
        .transpose()
}

/// Every `(key parts, value)` under the prefix `prefix`.
pub(crate) async fn iter<A, P>(
    at: &At,
    addr: A,
    prefix: P,
) -> Result<Vec<(A::KeyParts, A::Value)>, Error>
where
    A: Address,
    P: subxt::storage::PrefixOf<A::KeyParts>,
{
    let mut entries = at
        .storage()
        .iter(&addr, prefix)
        .await
        .map_err(|e| storage_error(&addr, e))?;
    let mut out = Vec::new();
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| storage_error(&addr, e))?;
        let key = entry
            .key()
            .and_then(|k| k.decode())
            .map_err(|e| Error::malformed(item(&addr), e))?;
        let value = entry
            .value()
            .decode()
            .map_err(|e| Error::malformed(item(&addr), e))?;
        out.push((key, value));
    }
    Ok(out)
}

/// The subnet parameters that decide whether and how weights can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetParams {
    /// The subnet.
    pub netuid: NetUid,
    /// The block these were read at.
    pub block: BlockNumber,
    /// `Tempo`: blocks per epoch.
    pub tempo: u16,
    /// `WeightsSetRateLimit`: blocks between two weight settings (or commits) of one uid.
    pub weights_rate_limit: u64,
    /// `WeightsVersionKey`: the least version key weights must carry (0: any).
    pub weights_version_key: u64,
    /// `CommitRevealWeightsEnabled`.
    pub commit_reveal: bool,
    /// `RevealPeriodEpochs`: epochs between a commit and its reveal.
    pub reveal_period: u64,
    /// `SubnetworkN`: registered neurons.
    pub n: u16,
    /// `MaxAllowedUids`.
    pub max_uids: u16,
    /// `Burn`: the registration cost in rao.
    pub burn: u64,
}

/// Reads [`SubnetParams`] at `at`.
pub(crate) async fn subnet_params(at: &At, netuid: NetUid) -> Result<SubnetParams, Error> {
    let st = api::storage().subtensor_module();
    let n = netuid.0;
    if !fetch(at, st.networks_added(), (n,)).await? {
        return Err(Error::SubnetNotFound { netuid });
    }
    Ok(SubnetParams {
        netuid,
        block: BlockNumber(at.block_number()),
        tempo: fetch(at, st.tempo(), (n,)).await?,
        weights_rate_limit: fetch(at, st.weights_set_rate_limit(), (n,)).await?,
        weights_version_key: fetch(at, st.weights_version_key(), (n,)).await?,
        commit_reveal: fetch(at, st.commit_reveal_weights_enabled(), (n,)).await?,
        reveal_period: fetch(at, st.reveal_period_epochs(), (n,)).await?,
        n: fetch(at, st.subnetwork_n(), (n,)).await?,
        max_uids: fetch(at, st.max_allowed_uids(), (n,)).await?,
        burn: fetch(at, st.burn(), (n,)).await?,
    })
}
