//! The metagraph of a subnet: who is registered at which uid, with what stake, permit, axon
//! and activity, read from `SubtensorModule` storage at one block.
//!
//! It is read from storage items (`SubnetworkN`, `Keys`, `Owner`, `TotalHotkeyAlpha`,
//! `Axons`, `ValidatorPermit`, `Active`, `LastUpdate`, `Incentive`) rather than the
//! `get_metagraph` runtime API, so that it works the same against finney and against a chain
//! that serves only storage; all reads are pinned to the same block.

use std::collections::BTreeMap;

use subxt::ext::futures::future::try_join_all;
use subxt::utils::AccountId32;

use super::axon::{AxonInfo, ip_from_chain};
use super::error::Error;
use super::ids::{BlockNumber, NetUid, Uid};
use super::runtime::api;
use super::storage::{At, fetch, iter, try_fetch};

/// One registered neuron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neuron {
    /// Its uid.
    pub uid: Uid,
    /// Its hotkey (the account that signs its extrinsics).
    pub hotkey: AccountId32,
    /// The coldkey owning the hotkey (`Owner`).
    pub coldkey: AccountId32,
    /// Alpha staked to the hotkey on this subnet, in rao (`TotalHotkeyAlpha`).
    pub stake: u64,
    /// Whether it may set weights on others (`ValidatorPermit`).
    pub validator_permit: bool,
    /// Whether it counts as active (`Active`).
    pub active: bool,
    /// Its axon, if it served one (`Axons`).
    pub axon: Option<AxonInfo>,
    /// The block it last set or committed weights (`LastUpdate`; 0 if never).
    pub last_update: BlockNumber,
    /// Its incentive, as a fraction of `u16::MAX` (`Incentive`).
    pub incentive: u16,
}

/// A subnet's neurons at one block, ordered by uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metagraph {
    /// The subnet.
    pub netuid: NetUid,
    /// The block it was read at.
    pub block: BlockNumber,
    /// The neurons, `neurons[i].uid == Uid(i)`.
    pub neurons: Vec<Neuron>,
}

impl Metagraph {
    /// The neuron at `uid`.
    pub fn neuron(&self, uid: Uid) -> Option<&Neuron> {
        self.neurons.get(usize::from(uid.0))
    }

    /// The neuron whose hotkey is `hotkey`.
    pub fn by_hotkey(&self, hotkey: &AccountId32) -> Option<&Neuron> {
        self.neurons.iter().find(|n| &n.hotkey == hotkey)
    }

    /// The uid of `hotkey`, if registered.
    pub fn uid_of(&self, hotkey: &AccountId32) -> Option<Uid> {
        self.by_hotkey(hotkey).map(|n| n.uid)
    }

    /// The neurons holding a validator permit.
    pub fn validators(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.validator_permit)
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.neurons.len()
    }

    /// Whether no neuron is registered.
    pub fn is_empty(&self) -> bool {
        self.neurons.is_empty()
    }
}

/// Reads the metagraph of `netuid` at `at`.
pub(crate) async fn read(at: &At, netuid: NetUid) -> Result<Metagraph, Error> {
    let st = api::storage().subtensor_module();
    let net = netuid.0;
    if !fetch(at, st.networks_added(), (net,)).await? {
        return Err(Error::SubnetNotFound { netuid });
    }
    let n = fetch(at, st.subnetwork_n(), (net,)).await?;

    let mut hotkeys: Vec<Option<AccountId32>> = vec![None; usize::from(n)];
    for ((_, uid), hotkey) in iter(at, st.keys(), (net,)).await? {
        if let Some(slot) = hotkeys.get_mut(usize::from(uid)) {
            *slot = Some(hotkey);
        }
    }
    let hotkeys = hotkeys
        .into_iter()
        .enumerate()
        .map(|(uid, h)| {
            h.ok_or_else(|| {
                Error::malformed(
                    "SubtensorModule.Keys",
                    format!("subnet {netuid} has {n} neurons but no hotkey at uid {uid}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let axons: BTreeMap<AccountId32, AxonInfo> = iter(at, st.axons(), (net,))
        .await?
        .into_iter()
        .map(|((_, hotkey), a)| {
            let info = AxonInfo {
                addr: ip_from_chain(a.ip, a.ip_type, a.port),
                version: a.version,
                protocol: a.protocol,
                block: BlockNumber(a.block),
            };
            (hotkey, info)
        })
        .collect();
    let permits = fetch(at, st.validator_permit(), (net,)).await?;
    let active = fetch(at, st.active(), (net,)).await?;
    let last_update = fetch(at, st.last_update(), (net,)).await?;
    let incentive = fetch(at, st.incentive(), (net,)).await?;

    let owners = try_join_all(hotkeys.iter().map(|h| fetch(at, st.owner(), (*h,)))).await?;
    let stakes = try_join_all(
        hotkeys
            .iter()
            .map(|h| fetch(at, st.total_hotkey_alpha(), (*h, net))),
    )
    .await?;

    let neurons = hotkeys
        .into_iter()
        .zip(owners.into_iter().zip(stakes))
        .enumerate()
        .map(|(i, (hotkey, (coldkey, stake)))| Neuron {
            uid: Uid(u16::try_from(i).unwrap_or(u16::MAX)),
            axon: axons.get(&hotkey).copied(),
            hotkey,
            coldkey,
            stake,
            validator_permit: permits.get(i).copied().unwrap_or(false),
            active: active.get(i).copied().unwrap_or(false),
            last_update: BlockNumber(last_update.get(i).copied().unwrap_or(0)),
            incentive: incentive.get(i).copied().unwrap_or(0),
        })
        .collect();
    Ok(Metagraph {
        netuid,
        block: BlockNumber(at.block_number()),
        neurons,
    })
}

/// The uid of `hotkey` on `netuid` at `at` (`Uids`).
pub(crate) async fn uid_of(
    at: &At,
    netuid: NetUid,
    hotkey: &AccountId32,
) -> Result<Option<Uid>, Error> {
    let st = api::storage().subtensor_module();
    Ok(try_fetch(at, st.uids(), (netuid.0, *hotkey))
        .await?
        .map(Uid))
}
