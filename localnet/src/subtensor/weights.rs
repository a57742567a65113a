//! `set_weights`, `commit_weights` and `reveal_weights`: finney's checks in finney's order,
//! weights max-upscaled to `u16::MAX`, and commits kept as `(hash, commit_block,
//! first_reveal_block, last_reveal_block)`, revealable only during epoch
//! `commit epoch + RevealPeriodEpochs`.
//!
//! `commit_timelocked_weights` (commit-reveal v4): the weights are encrypted to a drand round;
//! the commit is queued under the epoch it counts in (the next one when it lands on the block
//! where the epoch runs), and [`reveal_timelocked`], run every block before the epoch, opens the
//! queue of epoch `current - RevealPeriodEpochs` with the stored pulses and sets what decrypts:
//! a commit whose pulse is not there yet waits for a later block of that epoch; older queues
//! are dropped; a commit that does not decrypt, or whose payload names another hotkey or breaks
//! a weights rule, is dropped (finney logs and drops it too).

use parity_scale_codec::Encode;
use sp_crypto_hashing::blake2_256;

use super::{E, SubtensorEvent, epoch_index, err, set_index};
use crate::dispatch::{Ext, pallet};
use crate::items::Drand::Pulses;
use crate::items::SubtensorModule::{
    CommitRevealWeightsEnabled, CommitRevealWeightsVersion, LastUpdate, MaxWeightsLimit,
    MinAllowedWeights, NetworksAdded, RevealPeriodEpochs, SubnetworkN, Tempo,
    TimelockedWeightCommits, Uids, ValidatorPermit, WeightCommits, Weights, WeightsSetRateLimit,
    WeightsVersionKey,
};
use crate::runtime::decode_all;
use crate::state::Overlay;
use crate::values::{AccountId, DispatchError};

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

/// The uid of `hotkey`, which may commit at `block`: registered, and its last update at least
/// `WeightsSetRateLimit` blocks ago.
fn committer(
    o: &Overlay<'_>,
    netuid: u16,
    hotkey: &AccountId,
    block: u64,
) -> Result<u16, DispatchError> {
    let uid = Uids::get(o, &netuid, hotkey).ok_or_else(|| err(E::HotKeyNotRegisteredInSubNet))?;
    let last = LastUpdate::get(o, &netuid)
        .get(usize::from(uid))
        .copied()
        .unwrap_or(0);
    if last != 0 && block.saturating_sub(last) < WeightsSetRateLimit::get(o, &netuid) {
        return Err(err(E::CommittingWeightsTooFast));
    }
    Ok(uid)
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
    let uid = committer(o, netuid, hotkey, block)?;
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

/// Whether `netuid`'s epoch runs at `block` (subtensor's `blocks_until_next_epoch == 0`).
fn runs_epoch(o: &Overlay<'_>, netuid: u16, block: u64) -> bool {
    let tempo = u64::from(Tempo::get(o, &netuid));
    tempo != 0 && tempo - (block + u64::from(netuid) + 1) % (tempo + 1) == 0
}

pub(super) fn commit_timelocked(
    ext: &mut Ext<'_>,
    hotkey: &AccountId,
    netuid: u16,
    commit: &[u8],
    reveal_round: u64,
    version: u16,
) -> Result<(), DispatchError> {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    if !NetworksAdded::get(o, &netuid) {
        return Err(err(E::SubnetNotExists));
    }
    if !CommitRevealWeightsEnabled::get(o, &netuid) {
        return Err(err(E::CommitRevealDisabled));
    }
    if version != CommitRevealWeightsVersion::get(o) {
        return Err(err(E::IncorrectCommitRevealVersion));
    }
    let uid = committer(o, netuid, hotkey, block)?;
    let epoch = epoch_index(o, netuid, block) + u64::from(runs_epoch(o, netuid, block));
    let mut queue = TimelockedWeightCommits::get(o, &netuid, &epoch);
    if queue.iter().filter(|c| c.0 == *hotkey).count() >= MAX_COMMITS {
        return Err(err(E::TooManyUnrevealedCommits));
    }
    queue.push((*hotkey, block, commit.to_vec(), reveal_round));
    TimelockedWeightCommits::put(o, &netuid, &epoch, &queue);
    LastUpdate::update(o, &netuid, |v| set_index(v, uid, block));
    ext.deposit(
        pallet::SUBTENSOR,
        &SubtensorEvent::TimelockedWeightsCommitted(
            *hotkey,
            netuid,
            blake2_256(commit),
            reveal_round,
        ),
    );
    Ok(())
}

/// What a timelocked commit decrypts to: `(hotkey, uids, values, version_key)`, SCALE (the
/// legacy form without the hotkey is accepted too, as finney does).
type Payload = (Vec<u8>, Vec<u16>, Vec<u16>, u64);

/// Reveals the due timelocked commits of `netuid` (see the module docs).
pub(crate) fn reveal_timelocked(ext: &mut Ext<'_>, netuid: u16) {
    let block = ext.block_u64();
    let o = &mut ext.storage;
    let Some(reveal_epoch) =
        epoch_index(o, netuid, block).checked_sub(RevealPeriodEpochs::get(o, &netuid))
    else {
        return;
    };
    if let Some(older) = reveal_epoch.checked_sub(1) {
        TimelockedWeightCommits::remove(o, &netuid, &older);
    }
    let queue = TimelockedWeightCommits::get(o, &netuid, &reveal_epoch);
    if queue.is_empty() {
        return;
    }
    let mut waiting = Vec::new();
    for (who, commit_block, commit, round) in queue {
        let Some(pulse) = Pulses::get(&ext.storage, &round) else {
            waiting.push((who, commit_block, commit, round));
            continue;
        };
        let opened = sliver_chain::timelock::decrypt(&commit, &pulse.signature);
        let payload = opened.ok().and_then(|plain| {
            decode_all::<Payload>(&plain).or_else(|| {
                decode_all::<(Vec<u16>, Vec<u16>, u64)>(&plain)
                    .map(|(u, v, k)| (who.to_vec(), u, v, k))
            })
        });
        let Some((hotkey, uids, values, version_key)) = payload else {
            tracing::debug!(
                netuid,
                round,
                "a timelocked commit did not decrypt; dropped"
            );
            continue;
        };
        if hotkey.as_slice() != who.as_slice() {
            tracing::debug!(netuid, "a timelocked commit names another hotkey; dropped");
            continue;
        }
        ext.storage.begin();
        // A reveal by the chain is not the hotkey's update: `LastUpdate` stays the commit's.
        let last_update = LastUpdate::get(&ext.storage, &netuid);
        match set_weights(ext, &who, netuid, &uids, &values, version_key, false) {
            Ok(()) => {
                LastUpdate::put(&mut ext.storage, &netuid, &last_update);
                ext.storage.commit();
                ext.deposit(
                    pallet::SUBTENSOR,
                    &SubtensorEvent::TimelockedWeightsRevealed(netuid, who),
                );
            }
            Err(e) => {
                ext.storage.rollback();
                tracing::debug!(netuid, error = ?e, "revealed weights refused; dropped");
            }
        }
    }
    let o = &mut ext.storage;
    if waiting.is_empty() {
        TimelockedWeightCommits::remove(o, &netuid, &reveal_epoch);
    } else {
        TimelockedWeightCommits::put(o, &netuid, &reveal_epoch, &waiting);
    }
}
