//! `set_weights`, `commit_weights` and `reveal_weights`: finney's checks in finney's order,
//! weights max-upscaled to `u16::MAX`, and commits kept as `(hash, commit_block,
//! first_reveal_block, last_reveal_block)`, revealable only during epoch
//! `commit epoch + RevealPeriodEpochs`.

use parity_scale_codec::Encode;
use sp_crypto_hashing::blake2_256;

use super::{E, SubtensorEvent, epoch_index, err, set_index};
use crate::local::dispatch::{AccountId, DispatchError, Ext, pallet};
use crate::local::items::SubtensorModule::{
    CommitRevealWeightsEnabled, LastUpdate, MaxWeightsLimit, MinAllowedWeights, NetworksAdded,
    RevealPeriodEpochs, SubnetworkN, Tempo, Uids, ValidatorPermit, WeightCommits, Weights,
    WeightsSetRateLimit, WeightsVersionKey,
};
use crate::local::state::Overlay;

/// Unrevealed commits a hotkey may hold per subnet.
const MAX_COMMITS: usize = 10;

pub(super) fn set_weights(
    ext: &mut Ext<'_>,
    hotkey: &AccountId,
    netuid: u16,
    uids: &[u16],
    values: &[u16],
    version_key: u64,
    rate_limited: bool,
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    if netuid == 0 {
        return Err(err(E::CanNotSetRootNetworkWeights));
    }
    if uids.len() != values.len() {
        return Err(err(E::WeightVecNotEqualSize));
    }
    if !NetworksAdded::get(o, &netuid) {
        return Err(err(E::SubnetNotExists));
    }
    let n = SubnetworkN::get(o, &netuid);
    if uids.len() > usize::from(n) {
        return Err(err(E::UidsLengthExceedUidsInSubNet));
    }
    let uid = Uids::get(o, &netuid, hotkey).ok_or_else(|| err(E::HotKeyNotRegisteredInSubNet))?;
    let network_key = WeightsVersionKey::get(o, &netuid);
    if network_key != 0 && version_key < network_key {
        return Err(err(E::IncorrectWeightVersionKey));
    }
    let last = LastUpdate::get(o, &netuid)
        .get(usize::from(uid))
        .copied()
        .unwrap_or(0);
    if rate_limited
        && last != 0
        && block.saturating_sub(last) < WeightsSetRateLimit::get(o, &netuid)
    {
        return Err(err(E::SettingWeightsTooFast));
    }
    let self_weight = values.len() == 1 && uids.first() == Some(&uid);
    let permits = ValidatorPermit::get(o, &netuid);
    if !self_weight && !permits.get(usize::from(uid)).copied().unwrap_or(false) {
        return Err(err(E::NeuronNoValidatorPermit));
    }
    let mut seen = std::collections::BTreeSet::new();
    if !uids.iter().all(|u| seen.insert(*u)) {
        return Err(err(E::DuplicateUids));
    }
    if uids.iter().any(|u| *u >= n) {
        return Err(err(E::UidVecContainInvalidOne));
    }
    let min_len = usize::from(MinAllowedWeights::get(o, &netuid).min(n));
    if !self_weight && values.len() < min_len {
        return Err(err(E::WeightVecLengthIsLow));
    }
    let upscaled = max_upscale(values);
    let limit = MaxWeightsLimit::get(o, &netuid);
    if !self_weight && limit != u16::MAX && upscaled.iter().any(|w| *w > limit) {
        return Err(err(E::MaxWeightExceeded));
    }
    let zipped: Vec<(u16, u16)> = uids.iter().copied().zip(upscaled).collect();
    Weights::put(o, &netuid, &uid, &zipped);
    LastUpdate::update(o, &netuid, |v| set_index(v, uid, block));
    ext.deposit(pallet::SUBTENSOR, &SubtensorEvent::WeightsSet(netuid, uid));
    Ok(())
}

/// Scales weights so that the largest is `u16::MAX` (subtensor's `vec_u16_max_upscale_to_u16`).
pub(super) fn max_upscale(values: &[u16]) -> Vec<u16> {
    let max = values.iter().copied().max().unwrap_or(0);
    if max == 0 || max == u16::MAX {
        return values.to_vec();
    }
    values
        .iter()
        .map(|v| {
            let scaled = u64::from(*v) * u64::from(u16::MAX) / u64::from(max);
            u16::try_from(scaled).unwrap_or(u16::MAX)
        })
        .collect()
}

/// The commit hash subtensor checks a reveal against: `BlakeTwo256(SCALE(hotkey, netuid_index,
/// uids, values, salt, version_key))`.
pub(crate) fn commit_hash(
    hotkey: &AccountId,
    netuid: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    blake2_256(&(hotkey, netuid, uids, values, salt, version_key).encode())
}

pub(super) fn commit_weights(
    ext: &mut Ext<'_>,
    hotkey: &AccountId,
    netuid: u16,
    hash: [u8; 32],
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    if !CommitRevealWeightsEnabled::get(o, &netuid) {
        return Err(err(E::CommitRevealDisabled));
    }
    let uid = Uids::get(o, &netuid, hotkey).ok_or_else(|| err(E::HotKeyNotRegisteredInSubNet))?;
    let last = LastUpdate::get(o, &netuid)
        .get(usize::from(uid))
        .copied()
        .unwrap_or(0);
    if last != 0 && block.saturating_sub(last) < WeightsSetRateLimit::get(o, &netuid) {
        return Err(err(E::CommittingWeightsTooFast));
    }
    let tempo = u64::from(Tempo::get(o, &netuid));
    let reveal_epoch =
        epoch_index(o, netuid, block).saturating_add(RevealPeriodEpochs::get(o, &netuid));
    let first_reveal = reveal_epoch
        .saturating_mul(tempo + 1)
        .saturating_sub(u64::from(netuid) + 1);
    let last_reveal = first_reveal.saturating_add(tempo);
    let mut commits = WeightCommits::get(o, &netuid, hotkey).unwrap_or_default();
    commits.retain(|c| !is_expired(o, netuid, c.1, block));
    if commits.len() >= MAX_COMMITS {
        return Err(err(E::TooManyUnrevealedCommits));
    }
    commits.push((hash, block, first_reveal, last_reveal));
    WeightCommits::put(o, &netuid, hotkey, &commits);
    LastUpdate::update(o, &netuid, |v| set_index(v, uid, block));
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::WeightsCommitted(*hotkey, netuid, hash),
    );
    Ok(())
}

fn is_expired(o: &Overlay<'_>, netuid: u16, commit_block: u64, block: u64) -> bool {
    epoch_index(o, netuid, block)
        > epoch_index(o, netuid, commit_block).saturating_add(RevealPeriodEpochs::get(o, &netuid))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn reveal_weights(
    ext: &mut Ext<'_>,
    hotkey: &AccountId,
    netuid: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    if !CommitRevealWeightsEnabled::get(o, &netuid) {
        return Err(err(E::CommitRevealDisabled));
    }
    let mut commits =
        WeightCommits::get(o, &netuid, hotkey).ok_or_else(|| err(E::NoWeightsCommitFound))?;
    let provided = commit_hash(hotkey, netuid, uids, values, salt, version_key);
    let mut expired = Vec::new();
    while let Some(c) = commits.first() {
        if is_expired(o, netuid, c.1, block) {
            expired.push(c.0);
            commits.remove(0);
        } else {
            break;
        }
    }
    let Some(position) = commits.iter().position(|c| c.0 == provided) else {
        return Err(if expired.contains(&provided) {
            err(E::ExpiredWeightCommit)
        } else if commits.is_empty() {
            err(E::NoWeightsCommitFound)
        } else {
            err(E::InvalidRevealCommitHashNotMatch)
        });
    };
    let commit_epoch = epoch_index(o, netuid, commits[position].1);
    if epoch_index(o, netuid, block)
        != commit_epoch.saturating_add(RevealPeriodEpochs::get(o, &netuid))
    {
        return Err(err(E::RevealTooEarly));
    }
    commits.drain(..=position);
    if commits.is_empty() {
        WeightCommits::remove(o, &netuid, hotkey);
    } else {
        WeightCommits::put(o, &netuid, hotkey, &commits);
    }
    set_weights(ext, hotkey, netuid, uids, values, version_key, false)?;
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::WeightsRevealed(*hotkey, netuid, provided),
    );
    Ok(())
}
