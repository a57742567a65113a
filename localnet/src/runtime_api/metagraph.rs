//! `SubnetInfoRuntimeApi`'s metagraph family, served from the chain state: `get_metagraph`,
//! `get_all_metagraphs`, `get_selective_metagraph`, their mechanism forms (the local chain has one
//! mechanism per subnet, `0`), `get_dynamic_info`, `get_all_dynamic_info` and `get_subnet_state`.
//!
//! [`Metagraph`] declares finney's `Metagraph` field by field. `SelectiveMetagraph` is its fields
//! and then [`SelectiveExtra`]'s (the indexes `get_selective_metagraph` takes count through
//! both), each selected one in `Some`; `DynamicInfo` ([`DYNAMIC_INFO`]) and `SubnetState`
//! ([`SUBNET_STATE`], then [`EmissionHistory`]) reuse metagraph fields by name.
//!
//! Filled from state: netuid, registration block of the subnet, owner, block, tempo, last step,
//! blocks since it, the hyperparameters (as `get_subnet_hyperparams` reports them), and per uid
//! the hotkeys, coldkeys, axons, active flags, validator permits, last update, emission,
//! dividends, incentive, consensus, trust, rank, registration block, stake, validators (the uids
//! holding a permit) and commitments (each hotkey's raw `Commitments.CommitmentOf` value, as
//! finney returns it). The local chain has no pools, subnet names, identities, root stake or
//! owner hotkey, so: `name`, `symbol` are empty; `identity` and `identities` are `None`;
//! `owner_hotkey` is the owner coldkey; `alpha_in`, `tao_in`, the `*_in_emission`, pending
//! emissions and `subnet_volume` are 0; `alpha_out` is the subnet's total stake (1 TAO = 1
//! alpha, so `moving_price` is 1.0); `alpha_out_emission` and `subnet_emission` are the local
//! emission per block; `tao_stake`, `tao_dividends_per_hotkey` and `alpha_dividends_per_hotkey`
//! are 0; `total_stake` is the alpha stake; `pruning_score` is 0 (as in `NeuronInfo`).

use parity_scale_codec::{Compact, Encode};

use super::super::items::Commitments::CommitmentOf;
use super::super::items::SubtensorModule::{
    Active, Axons, BlockAtRegistration, BlocksSinceLastStep, Burn, Consensus, Dividends, Emission,
    Incentive, Keys, LastUpdate, MaxAllowedUids, NetworkRegisteredAt, Owner, Rank, SubnetOwner,
    SubnetworkN, TotalHotkeyAlpha, Trust, Uids, ValidatorPermit,
};
use super::super::metadata::apis::metagraph::{DYNAMIC_INFO, SUBNET_STATE};
use super::super::metadata::output::{Declared, output};
use super::super::metadata::types::Encoded;
use super::super::metadata::types::{AccountId32, ChainIdentityV2, I96F32, SubnetIdentityV3};
use super::super::state::Overlay;
use super::super::subtensor::EMISSION_PER_BLOCK;
use super::super::values::{AccountId, AxonInfo};
use super::SubnetHyperparams;

/// 1.0 as `I96F32` bits.
const ONE_I96F32: i128 = 1 << 32;

/// `v`, cut or padded with defaults to `n` entries.
fn pad<T: Default + Clone>(mut v: Vec<T>, n: usize) -> Vec<T> {
    v.resize(n, T::default());
    v
}

/// `v`, cut or padded with defaults to `n` entries, compact-encoded.
fn compacts<T: Default + Clone>(v: Vec<T>, n: usize) -> Vec<Compact<T>> {
    pad(v, n).into_iter().map(Compact).collect()
}

/// The hotkey of each uid of `netuid` (zero where one is missing).
fn hotkeys(s: &Overlay<'_>, netuid: u16) -> Vec<AccountId> {
    (0..SubnetworkN::get(s, &netuid))
        .map(|uid| Keys::try_get(s, &netuid, &uid).unwrap_or([0; 32]))
        .collect()
}

output! {
    /// `Metagraph` of `netuid` at block `block`.
    pub(crate) struct Metagraph(s: &Overlay<'_>, netuid: u16, block: u64) {
        let hp = SubnetHyperparams::new(s, netuid)?;
        let n = usize::from(SubnetworkN::get(s, &netuid));
        let owner: AccountId = SubnetOwner::get(s, &netuid);
        let registered_at: u64 =
            NetworkRegisteredAt::get(s, &netuid);
        let since = BlocksSinceLastStep::get(s, &netuid);
        let hotkeys = hotkeys(s, netuid);
        let stakes: Vec<u64> = hotkeys.iter().map(|h| TotalHotkeyAlpha::get(s, h, &netuid)).collect();
        let total_stake: u64 = stakes.iter().fold(0u64, |a, b| a.saturating_add(*b));
        let zero_per_hotkey: Vec<(AccountId, Compact<u64>)> =
            hotkeys.iter().map(|h| (*h, Compact(0u64))).collect();
    } {
        netuid: Compact<u16> as "Compact<NetUid>" = Compact(netuid),
        name: Vec<Compact<u8>> as "Vec<Compact<u8>>" = Vec::new(),
        symbol: Vec<Compact<u8>> as "Vec<Compact<u8>>" = Vec::new(),
        identity: Option<SubnetIdentityV3> as "Option<SubnetIdentityV3>" = None,
        network_registered_at: Compact<u64> as "Compact<u64>" = Compact(registered_at),
        owner_hotkey: AccountId32 as "AccountId" = owner,
        owner_coldkey: AccountId32 as "AccountId" = owner,
        block: Compact<u64> as "Compact<u64>" = Compact(block),
        tempo: Compact<u16> as "Compact<u16>" = hp.tempo,
        last_step: Compact<u64> as "Compact<u64>" = Compact(block.saturating_sub(since)),
        blocks_since_last_step: Compact<u64> as "Compact<u64>" = Compact(since),
        subnet_emission: Compact<u64> as "Compact<u64>" = Compact(EMISSION_PER_BLOCK),
        alpha_in: Compact<u64> as "Compact<AlphaBalance>" = Compact(0),
        alpha_out: Compact<u64> as "Compact<AlphaBalance>" = Compact(total_stake),
        tao_in: Compact<u64> as "Compact<TaoBalance>" = Compact(0),
        alpha_out_emission: Compact<u64> as "Compact<AlphaBalance>" = Compact(EMISSION_PER_BLOCK),
        alpha_in_emission: Compact<u64> as "Compact<AlphaBalance>" = Compact(0),
        tao_in_emission: Compact<u64> as "Compact<TaoBalance>" = Compact(0),
        pending_alpha_emission: Compact<u64> as "Compact<AlphaBalance>" = Compact(0),
        pending_root_emission: Compact<u64> as "Compact<TaoBalance>" = Compact(0),
        subnet_volume: Compact<u128> as "Compact<u128>" = Compact(0),
        moving_price: I96F32 as "I96F32" = I96F32 { bits: ONE_I96F32 },
        rho: Compact<u16> as "Compact<u16>" = hp.rho,
        kappa: Compact<u16> as "Compact<u16>" = hp.kappa,
        min_allowed_weights: Compact<u16> as "Compact<u16>" = hp.min_allowed_weights,
        max_weights_limit: Compact<u16> as "Compact<u16>" = hp.max_weights_limit,
        weights_version: Compact<u64> as "Compact<u64>" = hp.weights_version,
        weights_rate_limit: Compact<u64> as "Compact<u64>" = hp.weights_rate_limit,
        activity_cutoff: Compact<u16> as "Compact<u16>" = hp.activity_cutoff,
        max_validators: Compact<u16> as "Compact<u16>" = hp.max_validators,
        num_uids: Compact<u16> as "Compact<u16>" = Compact(SubnetworkN::get(s, &netuid)),
        max_uids: Compact<u16> as "Compact<u16>" = Compact(MaxAllowedUids::get(s, &netuid)),
        burn: Compact<u64> as "Compact<TaoBalance>" = Compact(Burn::get(s, &netuid)),
        difficulty: Compact<u64> as "Compact<u64>" = hp.difficulty,
        registration_allowed: bool as "bool" = hp.registration_allowed,
        // The local chain registers by burn only.
        pow_registration_allowed: bool as "bool" = false,
        immunity_period: Compact<u16> as "Compact<u16>" = hp.immunity_period,
        min_difficulty: Compact<u64> as "Compact<u64>" = hp.min_difficulty,
        max_difficulty: Compact<u64> as "Compact<u64>" = hp.max_difficulty,
        min_burn: Compact<u64> as "Compact<TaoBalance>" = hp.min_burn,
        max_burn: Compact<u64> as "Compact<TaoBalance>" = hp.max_burn,
        adjustment_alpha: Compact<u64> as "Compact<u64>" = hp.adjustment_alpha,
        adjustment_interval: Compact<u16> as "Compact<u16>" = hp.adjustment_interval,
        target_regs_per_interval: Compact<u16> as "Compact<u16>" = hp.target_regs_per_interval,
        max_regs_per_block: Compact<u16> as "Compact<u16>" = hp.max_regs_per_block,
        serving_rate_limit: Compact<u64> as "Compact<u64>" = hp.serving_rate_limit,
        commit_reveal_weights_enabled: bool as "bool" = hp.commit_reveal_weights_enabled,
        commit_reveal_period: Compact<u64> as "Compact<u64>" = hp.commit_reveal_period,
        liquid_alpha_enabled: bool as "bool" = hp.liquid_alpha_enabled,
        alpha_high: Compact<u16> as "Compact<u16>" = hp.alpha_high,
        alpha_low: Compact<u16> as "Compact<u16>" = hp.alpha_low,
        bonds_moving_avg: Compact<u64> as "Compact<u64>" = hp.bonds_moving_avg,
        hotkeys: Vec<AccountId32> as "Vec<AccountId>" = hotkeys.clone(),
        coldkeys: Vec<AccountId32> as "Vec<AccountId>" =
            hotkeys.iter().map(|h| Owner::try_get(s, h).unwrap_or([0; 32])).collect(),
        identities: Vec<Option<ChainIdentityV2>> as "Vec<Option<ChainIdentityOfV2>>" =
            vec![None; n],
        axons: Vec<AxonInfo> as "Vec<AxonInfo>" = hotkeys
            .iter()
            .map(|h| {
                Axons::get(s, &netuid, h)
                    .unwrap_or_default()
            })
            .collect(),
        active: Vec<bool> as "Vec<bool>" = pad(Active::get(s, &netuid), n),
        validator_permit: Vec<bool> as "Vec<bool>" = pad(ValidatorPermit::get(s, &netuid), n),
        pruning_score: Vec<Compact<u16>> as "Vec<Compact<u16>>" = vec![Compact(0); n],
        last_update: Vec<Compact<u64>> as "Vec<Compact<u64>>" =
            compacts(LastUpdate::get(s, &netuid), n),
        emission: Vec<Compact<u64>> as "Vec<Compact<AlphaBalance>>" =
            compacts(Emission::get(s, &netuid), n),
        dividends: Vec<Compact<u16>> as "Vec<Compact<u16>>" =
            compacts(Dividends::get(s, &netuid), n),
        incentives: Vec<Compact<u16>> as "Vec<Compact<u16>>" =
            compacts(Incentive::get(s, &netuid), n),
        consensus: Vec<Compact<u16>> as "Vec<Compact<u16>>" =
            compacts(Consensus::get(s, &netuid), n),
        trust: Vec<Compact<u16>> as "Vec<Compact<u16>>" = compacts(Trust::get(s, &netuid), n),
        rank: Vec<Compact<u16>> as "Vec<Compact<u16>>" = compacts(Rank::get(s, &netuid), n),
        block_at_registration: Vec<Compact<u64>> as "Vec<Compact<u64>>" = (0..SubnetworkN::get(s, &netuid))
            .map(|uid| {
                Compact(BlockAtRegistration::get(s, &netuid, &uid))
            })
            .collect(),
        alpha_stake: Vec<Compact<u64>> as "Vec<Compact<AlphaBalance>>" =
            compacts(stakes.clone(), n),
        // No root stake.
        tao_stake: Vec<Compact<u64>> as "Vec<Compact<TaoBalance>>" = vec![Compact(0); n],
        // Alpha stake + root weight × tao stake, with no tao stake.
        total_stake: Vec<Compact<u64>> as "Vec<Compact<TaoBalance>>" = compacts(stakes, n),
        tao_dividends_per_hotkey: Vec<(AccountId32, Compact<u64>)>
            as "Vec<(AccountId, Compact<TaoBalance>)>" = zero_per_hotkey.clone(),
        alpha_dividends_per_hotkey: Vec<(AccountId32, Compact<u64>)>
            as "Vec<(AccountId, Compact<AlphaBalance>)>" = zero_per_hotkey,
    }
}

output! {
    /// The fields `SelectiveMetagraph` has after [`Metagraph`]'s, for `netuid`.
    pub(crate) struct SelectiveExtra(s: &Overlay<'_>, netuid: u16) {
        let hotkeys = hotkeys(s, netuid);
        let permits = pad(ValidatorPermit::get(s, &netuid), usize::from(SubnetworkN::get(s, &netuid)));
    } {
        validators: Vec<Compact<u16>> as "Vec<Compact<u16>>" = (0..SubnetworkN::get(s, &netuid))
            .filter(|&uid| permits[usize::from(uid)])
            .map(Compact)
            .collect(),
        commitments: Vec<(AccountId32, Vec<Compact<u8>>)> as "Vec<(AccountId, Vec<Compact<u8>>)>" =
            hotkeys
                .iter()
                .filter_map(|h| {
                    let Encoded(raw) = CommitmentOf::get(s, &netuid, h)?;
                    Some((*h, raw.into_iter().map(Compact).collect()))
                })
                .collect(),
    }
}

output! {
    /// The field `SubnetState` of `netuid` has after [`SUBNET_STATE`], given the subnets there
    /// are (`netuids`).
    pub(crate) struct EmissionHistory(s: &Overlay<'_>, netuid: u16, netuids: &[u16]) {
        let hotkeys: Vec<AccountId> = (0..SubnetworkN::get(s, &netuid))
            .filter_map(|uid| Keys::try_get(s, &netuid, &uid))
            .collect();
    } {
        // For each subnet, the last emission there of each hotkey of `netuid` (0 where it holds
        // no uid).
        emission_history: Vec<Vec<Compact<u64>>> as "Vec<Vec<Compact<AlphaBalance>>>" = netuids
            .iter()
            .map(|&other| {
                let emission: Vec<u64> = Emission::get(s, &other);
                hotkeys
                    .iter()
                    .map(|h| {
                        let uid = Uids::get(s, &other, h).map(usize::from);
                        Compact(uid.and_then(|u| emission.get(u).copied()).unwrap_or(0))
                    })
                    .collect()
            })
            .collect(),
    }
}

/// The [`Metagraph`] fields `names`, SCALE-encoded one after the other.
fn pick<'a>(m: &Metagraph, names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let fields = m.encoded();
    names
        .into_iter()
        .filter_map(|name| Metagraph::NAMES.iter().position(|f| *f == name))
        .filter_map(|i| fields.get(i))
        .flatten()
        .copied()
        .collect()
}

/// `SelectiveMetagraph` of `netuid` at `block` with the fields at `indexes` (and always
/// `netuid`), SCALE-encoded.
pub(crate) fn selective(
    s: &Overlay<'_>,
    netuid: u16,
    block: u64,
    indexes: &[u16],
) -> Option<Vec<u8>> {
    let fields = Metagraph::new(s, netuid, block)?.encoded();
    let extra = SelectiveExtra::new(s, netuid)?.encoded();
    let mut out = Vec::new();
    for (i, field) in fields.into_iter().chain(extra).enumerate() {
        if i == 0 {
            out.extend(field);
        } else if indexes.iter().any(|&x| usize::from(x) == i) {
            out.push(1);
            out.extend(field);
        } else {
            out.push(0);
        }
    }
    Some(out)
}

/// `DynamicInfo` of `netuid` at `block`, SCALE-encoded.
pub(crate) fn dynamic_info(s: &Overlay<'_>, netuid: u16, block: u64) -> Option<Vec<u8>> {
    let m = Metagraph::new(s, netuid, block)?;
    Some(pick(&m, DYNAMIC_INFO.map(|(_, field)| field)))
}

/// `SubnetState` of `netuid` at `block`, SCALE-encoded; `netuids` are the subnets there are.
pub(crate) fn subnet_state(
    s: &Overlay<'_>,
    netuid: u16,
    block: u64,
    netuids: &[u16],
) -> Option<Vec<u8>> {
    let m = Metagraph::new(s, netuid, block)?;
    let history = EmissionHistory::new(s, netuid, netuids)?;
    Some([pick(&m, SUBNET_STATE), history.encode()].concat())
}

#[cfg(test)]
mod tests {
    use frame_metadata::RuntimeMetadata;
    use scale_info::TypeDef;

    use super::{DYNAMIC_INFO, Declared, EmissionHistory, Metagraph, SUBNET_STATE, SelectiveExtra};

    /// The field order served is the one the metadata describes, and every field `DynamicInfo`
    /// and `SubnetState` take from the metagraph is one.
    #[test]
    fn fields_follow_the_metadata() {
        let RuntimeMetadata::V16(m) = crate::metadata::runtime_metadata().1 else {
            panic!("V16")
        };
        let names = |path: &str| -> Vec<String> {
            let ty = m
                .types
                .types
                .iter()
                .find(|t| t.ty.path.segments.join("::") == path)
                .unwrap_or_else(|| panic!("{path} is in the metadata"));
            let TypeDef::Composite(c) = &ty.ty.type_def else {
                panic!("{path} is a struct")
            };
            c.fields.iter().filter_map(|f| f.name.clone()).collect()
        };
        let selective = names("pallet_subtensor::rpc_info::metagraph::SelectiveMetagraph");
        assert_eq!(
            selective,
            [Metagraph::NAMES, SelectiveExtra::NAMES].concat()
        );
        let metagraph = names("pallet_subtensor::rpc_info::metagraph::Metagraph");
        assert_eq!(metagraph, Metagraph::NAMES);
        let dynamic = names("pallet_subtensor::rpc_info::dynamic_info::DynamicInfo");
        assert_eq!(dynamic, DYNAMIC_INFO.map(|(name, _)| name));
        let state = names("pallet_subtensor::rpc_info::show_subnet::SubnetState");
        assert_eq!(state, [&SUBNET_STATE[..], EmissionHistory::NAMES].concat());
        for (_, field) in DYNAMIC_INFO {
            assert!(Metagraph::NAMES.contains(&field), "{field}");
        }
        for field in SUBNET_STATE {
            assert!(Metagraph::NAMES.contains(&field), "{field}");
        }
    }
}
