//! The metagraph of a subnet: who is registered at which uid, with what stake, permit, axon
//! and activity, at one block.
//!
//! It is one runtime-API call, `SubnetInfoRuntimeApi::get_metagraph`, which finney and the
//! local chain both serve: reading the same from `SubtensorModule` storage takes two reads per
//! neuron (`Owner`, `TotalHotkeyAlpha` are keyed by hotkey), hundreds of requests per read on a
//! full subnet, where public nodes allow about one request a second. Only the uid of one hotkey
//! is read from storage (`Uids`), a single read.

use subxt::utils::AccountId32;

use super::axon::{AxonInfo, ip_from_chain};
use super::error::Error;
use super::ids::{BlockNumber, NetUid, Uid};
use super::runtime::api;
use super::storage::{At, try_fetch};

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
    /// What it earned at the subnet's last epoch, in rao of the subnet's alpha (`Emission`).
    pub emission: u64,
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

/// Reads the metagraph of `netuid` at `at` with one runtime-API call.
pub(crate) async fn read(at: &At, netuid: NetUid) -> Result<Metagraph, Error> {
    let call = api::runtime_apis()
        .subnet_info_runtime_api()
        .get_metagraph(netuid.0);
    let m = at
        .runtime_apis()
        .call(call)
        .await
        .map_err(|e| Error::rpc("calling SubnetInfoRuntimeApi_get_metagraph", e))?
        .ok_or(Error::SubnetNotFound { netuid })?;
    let n = m.hotkeys.len();
    let malformed = |what: &str, len: usize| {
        Error::malformed(
            "SubnetInfoRuntimeApi_get_metagraph",
            format!("{n} hotkeys but {len} {what}"),
        )
    };
    for (what, len) in [
        ("coldkeys", m.coldkeys.len()),
        ("axons", m.axons.len()),
        ("alpha stakes", m.alpha_stake.len()),
    ] {
        if len != n {
            return Err(malformed(what, len));
        }
    }
    let neurons = m
        .hotkeys
        .into_iter()
        .zip(m.coldkeys)
        .zip(m.axons.into_iter().zip(m.alpha_stake))
        .enumerate()
        .map(|(i, ((hotkey, coldkey), (a, stake)))| Neuron {
            uid: Uid(u16::try_from(i).unwrap_or(u16::MAX)),
            hotkey,
            coldkey,
            stake: stake.0,
            validator_permit: m.validator_permit.get(i).copied().unwrap_or(false),
            active: m.active.get(i).copied().unwrap_or(false),
            // An axon never served is all zeros.
            axon: (a.ip != 0 || a.port != 0 || a.block != 0).then(|| AxonInfo {
                addr: ip_from_chain(a.ip, a.ip_type, a.port),
                version: a.version,
                protocol: a.protocol,
                block: BlockNumber(a.block),
            }),
            last_update: BlockNumber(m.last_update.get(i).map_or(0, |c| c.0)),
            incentive: m.incentives.get(i).map_or(0, |c| c.0),
            emission: m.emission.get(i).map_or(0, |c| c.0),
        })
        .collect();
    Ok(Metagraph {
        netuid,
        block: BlockNumber(at.block_number()),
        neurons,
    })
}
