//! Per-block subtensor work and the epoch: registration counters reset each block, and at the
//! end of a subnet's tempo, validator permits (top `MaxAllowedValidators` by stake), incentive
//! (stake-weighted sum of permitted validators' normalised weights), dividends and emission
//! (1 TAO per block, half to miners by incentive, half to validators by dividends, added to
//! stake).

use super::EMISSION_PER_BLOCK;
use crate::dispatch::Ext;
use crate::items::SubtensorModule::{
    Active, ActivityCutoff, BlocksSinceLastStep, Consensus, Dividends, Emission, Incentive, Keys,
    LastUpdate, MaxAllowedValidators, NetworksAdded, Rank, RegistrationsThisBlock, SubnetworkN,
    Tempo, TotalHotkeyAlpha, Trust, ValidatorPermit, Weights,
};
use crate::state::Overlay;
use crate::values::AccountId;

/// Per-block subtensor work at the start of block `ext.block`: registration counters reset, and
/// the epoch of every subnet whose tempo ends here. Returns whether an epoch ran.
pub(crate) fn on_initialize(ext: &mut Ext<'_>, netuids: &[u16]) -> bool {
    let block = ext.block_u64();
    let mut ran = false;
    for &netuid in netuids {
        if !NetworksAdded::get(&ext.storage, &netuid) {
            continue;
        }
        // Due timelocked commits are revealed before the epoch, which then uses them.
        super::weights::reveal_timelocked(ext, netuid);
        let o = &mut ext.storage;
        if RegistrationsThisBlock::get(o, &netuid) != 0 {
            RegistrationsThisBlock::put(o, &netuid, &0);
        }
        let tempo = u64::from(Tempo::get(o, &netuid));
        if tempo == 0 {
            continue;
        }
        let since = BlocksSinceLastStep::get(o, &netuid);
        if tempo - (block + u64::from(netuid) + 1) % (tempo + 1) == 0 {
            epoch(o, netuid, block);
            BlocksSinceLastStep::put(o, &netuid, &0);
            ran = true;
        } else {
            BlocksSinceLastStep::put(o, &netuid, &(since + 1));
        }
    }
    ran
}

/// Permits, incentive, dividends and emission for one subnet.
fn epoch(o: &mut Overlay<'_>, netuid: u16, block: u64) {
    let n = usize::from(SubnetworkN::get(o, &netuid));
    if n == 0 {
        return;
    }
    let hotkeys: Vec<Option<AccountId>> = (0..SubnetworkN::get(o, &netuid))
        .map(|uid| Keys::try_get(o, &netuid, &uid))
        .collect();
    let stakes: Vec<u128> = hotkeys
        .iter()
        .map(|h| h.map_or(0, |h| u128::from(TotalHotkeyAlpha::get(o, &h, &netuid))))
        .collect();
    // Validator permits: the top `MaxAllowedValidators` by stake, among those with stake.
    let mut order: Vec<usize> = (0..n).filter(|&i| stakes[i] > 0).collect();
    order.sort_by(|&a, &b| stakes[b].cmp(&stakes[a]).then(a.cmp(&b)));
    order.truncate(usize::from(MaxAllowedValidators::get(o, &netuid)));
    let mut permits = vec![false; n];
    for i in order {
        permits[i] = true;
    }
    // Normalised weight rows of permitted validators.
    let rows: Vec<Vec<(usize, u128)>> = (0..n)
        .map(|i| {
            if !permits[i] {
                return Vec::new();
            }
            let uid = u16::try_from(i).unwrap_or(u16::MAX);
            Weights::get(o, &netuid, &uid)
                .into_iter()
                .filter(|(j, _)| usize::from(*j) < n)
                .map(|(j, w)| (usize::from(j), u128::from(w)))
                .collect()
        })
        .collect();
    let mut ranks = vec![0u128; n];
    for (i, row) in rows.iter().enumerate() {
        let total: u128 = row.iter().map(|(_, w)| w).sum();
        if total == 0 {
            continue;
        }
        for (j, w) in row {
            ranks[*j] += stakes[i] * w * 1_000_000 / total;
        }
    }
    let incentive = normalise(&ranks);
    let mut divs = vec![0u128; n];
    for (i, row) in rows.iter().enumerate() {
        let total: u128 = row.iter().map(|(_, w)| w).sum();
        if total == 0 {
            continue;
        }
        let agreement: u128 = row
            .iter()
            .map(|(j, w)| w * u128::from(incentive[*j]) / total)
            .sum();
        divs[i] = stakes[i] * agreement;
    }
    if divs.iter().all(|d| *d == 0) {
        divs = (0..n)
            .map(|i| if permits[i] { stakes[i] } else { 0 })
            .collect();
    }
    let dividends = normalise(&divs);
    let total = u128::from(EMISSION_PER_BLOCK) * (u128::from(Tempo::get(o, &netuid)) + 1);
    let half = total / 2;
    let inc_sum: u128 = incentive.iter().map(|v| u128::from(*v)).sum();
    let div_sum: u128 = dividends.iter().map(|v| u128::from(*v)).sum();
    let emission: Vec<u64> = (0..n)
        .map(|i| {
            let e = (half * u128::from(incentive[i]))
                .checked_div(inc_sum)
                .unwrap_or(0)
                + (half * u128::from(dividends[i]))
                    .checked_div(div_sum)
                    .unwrap_or(0);
            u64::try_from(e).unwrap_or(u64::MAX)
        })
        .collect();
    for (i, hotkey) in hotkeys.iter().enumerate() {
        if let Some(h) = hotkey
            && emission[i] > 0
        {
            TotalHotkeyAlpha::update(o, h, &netuid, |stake| {
                *stake = stake.saturating_add(emission[i]);
            });
        }
    }
    let last_update = LastUpdate::get(o, &netuid);
    let cutoff = u64::from(ActivityCutoff::get(o, &netuid));
    let active: Vec<bool> = (0..n)
        .map(|i| block.saturating_sub(last_update.get(i).copied().unwrap_or(0)) <= cutoff)
        .collect();
    Active::put(o, &netuid, &active);
    ValidatorPermit::put(o, &netuid, &permits);
    Rank::put(o, &netuid, &incentive);
    Trust::put(o, &netuid, &incentive);
    Consensus::put(o, &netuid, &incentive);
    Incentive::put(o, &netuid, &incentive);
    Dividends::put(o, &netuid, &dividends);
    Emission::put(o, &netuid, &emission);
}

/// Scales non-negative values so that they sum to `u16::MAX` (all zero stays zero).
pub(super) fn normalise(values: &[u128]) -> Vec<u16> {
    let sum: u128 = values.iter().sum();
    values
        .iter()
        .map(|v| {
            (v * u128::from(u16::MAX))
                .checked_div(sum)
                .map_or(0, |x| u16::try_from(x).unwrap_or(u16::MAX))
        })
        .collect()
}
