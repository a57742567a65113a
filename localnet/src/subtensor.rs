//! `SubtensorModule` for the local chain: subnets, `burned_register`, `serve_axon`, `add_stake`,
//! `set_weights`, `commit_weights`/`reveal_weights` and a simple emission each tempo, over
//! finney's storage layout and with finney's checks, in finney's order, raising finney's errors.
//!
//! Epochs follow subtensor: epoch index `(block + netuid + 1) / (tempo + 1)`, and a subnet's epoch
//! runs at the block where `tempo - (block + netuid + 1) % (tempo + 1) == 0`. A weight commit made
//! in epoch `e` can be revealed only during epoch `e + RevealPeriodEpochs` and expires after it.
//! The emission is simpler than Yuma consensus: each epoch, validator permits go to the top
//! `MaxAllowedValidators` hotkeys by stake; incentive is the stake-weighted sum of permitted
//! validators' normalised weights; 1 TAO per block is emitted, half to miners by incentive and half
//! to validators by dividends, and added to each hotkey's stake.

use super::dispatch::{Ext, pallet};
use super::items::SubtensorModule::*;
pub(crate) use super::metadata::SubtensorError as E;
pub(crate) use super::metadata::{SubtensorCall, SubtensorEvent};
use super::state::Overlay;
use super::values::{AccountId, AxonInfo, DispatchError};

mod epoch;
mod weights;

pub(crate) use self::epoch::on_initialize;

/// Minimum stake an `add_stake` may add (finney's `DefaultMinStake`), in rao.
pub(crate) const MIN_STAKE: u64 = 2_000_000;
/// Blocks between two `serve_axon` of one hotkey (finney's `ServingRateLimit` default).
pub(crate) const SERVING_RATE_LIMIT: u64 = 50;
/// Emission per block, in rao (1 TAO).
pub(crate) const EMISSION_PER_BLOCK: u64 = 1_000_000_000;

impl SubtensorCall {
    /// Nominal `ref_time` weight.
    pub(crate) fn weight(&self) -> u64 {
        match self {
            Self::BurnedRegister { .. } => 400_000_000,
            _ => 100_000_000,
        }
    }

    /// Whether the call pays a fee on finney (weights and axons do not).
    pub(crate) fn pays_fee(&self) -> bool {
        matches!(self, Self::AddStake { .. } | Self::BurnedRegister { .. })
    }
}

fn err(e: E) -> DispatchError {
    e.into()
}

/// Sets entry `i` of a per-uid vector, growing it with `T::default()` as needed.
pub(crate) fn set_index<T: Default + Clone>(all: &mut Vec<T>, i: u16, v: T) {
    let i = usize::from(i);
    if all.len() <= i {
        all.resize(i + 1, T::default());
    }
    all[i] = v;
}

/// The epoch index of `block` on `netuid`.
pub(crate) fn epoch_index(o: &Overlay<'_>, netuid: u16, block: u64) -> u64 {
    block.saturating_add(u64::from(netuid) + 1) / (u64::from(Tempo::get(o, &netuid)) + 1)
}

/// Adds `who` to a list of accounts unless it is there.
fn add_once(all: &mut Vec<AccountId>, who: &AccountId) {
    if !all.contains(who) {
        all.push(*who);
    }
}

/// Whether `hotkey` holds a uid on `netuid`.
pub(crate) fn is_registered(ext: &mut Ext<'_>, netuid: u16, hotkey: &AccountId) -> bool {
    Uids::get(&ext.storage, &netuid, hotkey).is_some()
}

/// How a subnet is created at genesis.
#[derive(Debug, Clone)]
pub(crate) struct SubnetParams {
    /// Blocks per epoch.
    pub tempo: u16,
    /// `WeightsSetRateLimit`.
    pub weights_rate_limit: u64,
    /// `CommitRevealWeightsEnabled`.
    pub commit_reveal: bool,
    /// `RevealPeriodEpochs`.
    pub reveal_period: u64,
    /// `Burn`, rao.
    pub burn: u64,
    /// `WeightsVersionKey` (0: any).
    pub weights_version_key: u64,
}

/// Creates subnet `netuid` owned by `owner`.
pub(crate) fn create_subnet(ext: &mut Ext<'_>, netuid: u16, owner: &AccountId, p: &SubnetParams) {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    TotalNetworks::update(o, |total| *total = total.saturating_add(1));
    NetworksAdded::put(o, &netuid, &true);
    Tempo::put(o, &netuid, &p.tempo);
    WeightsSetRateLimit::put(o, &netuid, &p.weights_rate_limit);
    CommitRevealWeightsEnabled::put(o, &netuid, &p.commit_reveal);
    Burn::put(o, &netuid, &p.burn);
    WeightsVersionKey::put(o, &netuid, &p.weights_version_key);
    MinAllowedWeights::put(o, &netuid, &1);
    MaxRegistrationsPerBlock::put(o, &netuid, &64);
    RevealPeriodEpochs::put(o, &netuid, &p.reveal_period);
    NetworkRegisteredAt::put(o, &netuid, &block);
    SubnetOwner::put(o, &netuid, owner);
    ext.deposit(pallet::SUBTENSOR, &SubtensorEvent::NetworkAdded(netuid, 0));
}

/// Executes a subtensor call signed by `who`.
pub(crate) fn dispatch(
    ext: &mut Ext<'_>,
    who: &AccountId,
    call: &SubtensorCall,
) -> Result<(), DispatchError> {
    match call {
        SubtensorCall::BurnedRegister { netuid, hotkey } => {
            burned_register(ext, who, *netuid, hotkey)
        }
        SubtensorCall::ServeAxon {
            netuid,
            version,
            ip,
            port,
            ip_type,
            protocol,
            placeholder1,
            placeholder2,
        } => {
            let axon = AxonInfo {
                block: 0,
                version: *version,
                ip: *ip,
                port: *port,
                ip_type: *ip_type,
                protocol: *protocol,
                placeholder1: *placeholder1,
                placeholder2: *placeholder2,
            };
            serve_axon(ext, who, *netuid, axon)
        }
        SubtensorCall::AddStake {
            hotkey,
            netuid,
            amount_staked,
        } => add_stake(ext, who, hotkey, *netuid, *amount_staked),
        SubtensorCall::SetWeights {
            netuid,
            dests,
            weights,
            version_key,
        } => {
            if CommitRevealWeightsEnabled::get(&ext.storage, netuid) {
                return Err(err(E::CommitRevealEnabled));
            }
            self::weights::set_weights(ext, who, *netuid, dests, weights, *version_key, true)
        }
        SubtensorCall::CommitWeights {
            netuid,
            commit_hash,
        } => weights::commit_weights(ext, who, *netuid, *commit_hash),
        SubtensorCall::RevealWeights {
            netuid,
            uids,
            values,
            salt,
            version_key,
        } => weights::reveal_weights(ext, who, *netuid, uids, values, salt, *version_key),
        SubtensorCall::CommitTimelockedWeights {
            netuid,
            commit,
            reveal_round,
            commit_reveal_version,
        } => weights::commit_timelocked(
            ext,
            who,
            *netuid,
            commit,
            *reveal_round,
            *commit_reveal_version,
        ),
        // Described in the metadata; `Call::decode_all` refuses it before it gets here.
        SubtensorCall::RegisterNetwork { .. } => Err(err(E::CallDisabled)),
    }
}

fn burned_register(
    ext: &mut Ext<'_>,
    coldkey: &AccountId,
    netuid: u16,
    hotkey: &AccountId,
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    let o = &ext.storage;
    if netuid == 0 {
        return Err(err(E::RegistrationNotPermittedOnRootSubnet));
    }
    if !NetworksAdded::get(o, &netuid) {
        return Err(err(E::SubnetNotExists));
    }
    if RegistrationsThisBlock::get(o, &netuid) >= MaxRegistrationsPerBlock::get(o, &netuid) {
        return Err(err(E::TooManyRegistrationsThisBlock));
    }
    if Uids::get(o, &netuid, hotkey).is_some() {
        return Err(err(E::HotKeyAlreadyRegisteredInSubNet));
    }
    if let Some(owner) = Owner::try_get(o, hotkey)
        && owner != *coldkey
    {
        return Err(err(E::NonAssociatedColdKey));
    }
    let burn = Burn::get(o, &netuid);
    if ext.account(coldkey).free < burn {
        return Err(err(E::NotEnoughBalanceToStake));
    }
    ext.burn(coldkey, burn)
        .map_err(|()| err(E::NotEnoughBalanceToStake))?;

    let o = &mut ext.storage;
    Owner::put(o, hotkey, coldkey);
    OwnedHotkeys::update(o, coldkey, |owned| add_once(owned, hotkey));
    let n = SubnetworkN::get(o, &netuid);
    let uid = if n < MaxAllowedUids::get(o, &netuid) {
        SubnetworkN::put(o, &netuid, &(n + 1));
        n
    } else {
        let uid =
            prune_candidate(o, netuid, n, block).ok_or_else(|| err(E::NoNeuronIdAvailable))?;
        if let Some(old) = Keys::try_get(o, &netuid, &uid) {
            Uids::remove(o, &netuid, &old);
            Axons::remove(o, &netuid, &old);
        }
        Weights::remove(o, &netuid, &uid);
        uid
    };
    Keys::put(o, &netuid, &uid, hotkey);
    Uids::put(o, &netuid, hotkey, &uid);
    BlockAtRegistration::put(o, &netuid, &uid, &block);
    Active::update(o, &netuid, |v| set_index(v, uid, true));
    Rank::update(o, &netuid, |v| set_index(v, uid, 0));
    Trust::update(o, &netuid, |v| set_index(v, uid, 0));
    Consensus::update(o, &netuid, |v| set_index(v, uid, 0));
    Incentive::update(o, &netuid, |v| set_index(v, uid, 0));
    Dividends::update(o, &netuid, |v| set_index(v, uid, 0));
    Emission::update(o, &netuid, |v| set_index(v, uid, 0));
    LastUpdate::update(o, &netuid, |v| set_index(v, uid, block));
    ValidatorPermit::update(o, &netuid, |v| set_index(v, uid, false));
    RegistrationsThisBlock::update(o, &netuid, |regs| *regs = regs.saturating_add(1));
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::NeuronRegistered(netuid, uid, *hotkey),
    );
    Ok(())
}

/// The uid a registration on a full subnet replaces: the lowest emission outside the immunity
/// period, else the lowest emission of all.
fn prune_candidate(o: &Overlay<'_>, netuid: u16, n: u16, block: u64) -> Option<u16> {
    let emission = Emission::get(o, &netuid);
    let immunity = u64::from(ImmunityPeriod::get(o, &netuid));
    let registered_at = |uid: u16| BlockAtRegistration::get(o, &netuid, &uid);
    let score = |uid: u16| emission.get(usize::from(uid)).copied().unwrap_or(0);
    let outside: Vec<u16> = (0..n)
        .filter(|&u| block.saturating_sub(registered_at(u)) >= immunity)
        .collect();
    let pool: Vec<u16> = if outside.is_empty() {
        (0..n).collect()
    } else {
        outside
    };
    pool.into_iter().min_by_key(|&u| (score(u), u))
}

fn serve_axon(
    ext: &mut Ext<'_>,
    hotkey: &AccountId,
    netuid: u16,
    mut axon: AxonInfo,
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    if Uids::get(&ext.storage, &netuid, hotkey).is_none() {
        return Err(err(E::HotKeyNotRegisteredInNetwork));
    }
    if !matches!(axon.ip_type, 4 | 6) {
        return Err(err(E::InvalidIpType));
    }
    if !valid_ip(axon.ip_type, axon.ip) {
        return Err(err(E::InvalidIpAddress));
    }
    if let Some(prev) = Axons::get(&ext.storage, &netuid, hotkey)
        && prev.block != 0
        && block.saturating_sub(prev.block) < SERVING_RATE_LIMIT
    {
        return Err(err(E::ServingRateLimitExceeded));
    }
    axon.block = block;
    Axons::put(&mut ext.storage, &netuid, hotkey, &axon);
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::AxonServed(netuid, *hotkey),
    );
    Ok(())
}

/// Finney's address check: not zero, IPv4 within range and not 127.0.0.1, IPv6 not `::`,
/// `::1` or all ones.
pub(crate) fn valid_ip(ip_type: u8, ip: u128) -> bool {
    match ip_type {
        4 => ip != 0 && ip < u128::from(u32::MAX) && ip != 0x7f00_0001,
        6 => ip != 0 && ip != 1 && ip != u128::MAX,
        _ => false,
    }
}

fn add_stake(
    ext: &mut Ext<'_>,
    coldkey: &AccountId,
    hotkey: &AccountId,
    netuid: u16,
    amount: u64,
) -> Result<(), DispatchError> {
    let o = &mut ext.storage;
    if !NetworksAdded::get(o, &netuid) {
        return Err(err(E::SubnetNotExists));
    }
    if Owner::try_get(o, hotkey).is_none() {
        return Err(err(E::HotKeyAccountNotExists));
    }
    if amount < MIN_STAKE {
        return Err(err(E::AmountTooLow));
    }
    TotalHotkeyAlpha::update(o, hotkey, &netuid, |stake| {
        *stake = stake.saturating_add(amount);
    });
    StakingHotkeys::update(o, coldkey, |staked| add_once(staked, hotkey));
    ext.withdraw(coldkey, amount)
        .map_err(|()| err(E::NotEnoughBalanceToStake))?;
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::StakeAdded(*coldkey, *hotkey, amount, amount, netuid, 0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use parity_scale_codec::Encode;

    use super::*;

    #[test]
    fn errors_encode_with_finneys_indices() {
        assert_eq!(
            err(E::SettingWeightsTooFast).encode(),
            vec![3, 7, 28, 0, 0, 0]
        );
        assert_eq!(E::NAMES[E::SubnetNotExists as usize], "SubnetNotExists");
    }

    #[test]
    fn upscale_and_normalise() {
        assert_eq!(weights::max_upscale(&[1, 2]), vec![32767, 65535]);
        assert_eq!(epoch::normalise(&[1, 1, 2]), vec![16383, 16383, 32767]);
        assert!(valid_ip(4, 0x0a00_0001));
        assert!(!valid_ip(4, 0x7f00_0001));
    }
}
