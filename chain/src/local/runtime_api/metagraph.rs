//! `SubnetInfoRuntimeApi`'s metagraph family, served from the chain state: `get_metagraph`,
//! `get_all_metagraphs`, `get_selective_metagraph`, their mechanism forms (the local chain has one
//! mechanism per subnet, `0`), `get_dynamic_info`, `get_all_dynamic_info` and `get_subnet_state`.
//!
//! A metagraph is built once as its fields SCALE-encoded one by one, in `SelectiveMetagraph`
//! order ([`FIELDS`]); `Metagraph` is the first [`METAGRAPH_FIELDS`] of them concatenated,
//! `SelectiveMetagraph` wraps each selected one in `Some`, and `DynamicInfo` and `SubnetState`
//! reuse them by name.
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

use super::super::dispatch::AccountId;
use super::super::metadata::apis::metagraph::SUBNET_STATE_FIELDS as SUBNET_STATE;
use super::super::state::Key;
use super::super::subtensor::{AxonInfo, EMISSION_PER_BLOCK, SERVING_RATE_LIMIT, Sub};
use super::{
    ADJUSTMENT_ALPHA, ADJUSTMENT_INTERVAL, ALPHA_HIGH, ALPHA_LOW, BONDS_MOVING_AVG, DIFFICULTY,
    KAPPA, LIQUID_ALPHA, MAX_BURN, MAX_DIFFICULTY, MIN_BURN, MIN_DIFFICULTY, REGISTRATION_ALLOWED,
    RHO, TARGET_REGS_PER_INTERVAL,
};

/// `SelectiveMetagraph`'s fields by index (the indexes `get_selective_metagraph` takes).
pub(crate) const FIELDS: [&str; 74] = [
    "netuid",
    "name",
    "symbol",
    "identity",
    "network_registered_at",
    "owner_hotkey",
    "owner_coldkey",
    "block",
    "tempo",
    "last_step",
    "blocks_since_last_step",
    "subnet_emission",
    "alpha_in",
    "alpha_out",
    "tao_in",
    "alpha_out_emission",
    "alpha_in_emission",
    "tao_in_emission",
    "pending_alpha_emission",
    "pending_root_emission",
    "subnet_volume",
    "moving_price",
    "rho",
    "kappa",
    "min_allowed_weights",
    "max_weights_limit",
    "weights_version",
    "weights_rate_limit",
    "activity_cutoff",
    "max_validators",
    "num_uids",
    "max_uids",
    "burn",
    "difficulty",
    "registration_allowed",
    "pow_registration_allowed",
    "immunity_period",
    "min_difficulty",
    "max_difficulty",
    "min_burn",
    "max_burn",
    "adjustment_alpha",
    "adjustment_interval",
    "target_regs_per_interval",
    "max_regs_per_block",
    "serving_rate_limit",
    "commit_reveal_weights_enabled",
    "commit_reveal_period",
    "liquid_alpha_enabled",
    "alpha_high",
    "alpha_low",
    "bonds_moving_avg",
    "hotkeys",
    "coldkeys",
    "identities",
    "axons",
    "active",
    "validator_permit",
    "pruning_score",
    "last_update",
    "emission",
    "dividends",
    "incentives",
    "consensus",
    "trust",
    "rank",
    "block_at_registration",
    "alpha_stake",
    "tao_stake",
    "total_stake",
    "tao_dividends_per_hotkey",
    "alpha_dividends_per_hotkey",
    "validators",
    "commitments",
];

/// How many of [`FIELDS`] `Metagraph` has (all but `validators` and `commitments`).
pub(crate) const METAGRAPH_FIELDS: usize = 72;

/// `DynamicInfo`'s fields, by the metagraph field each one is.
const DYNAMIC_INFO: [&str; 21] = [
    "netuid",
    "owner_hotkey",
    "owner_coldkey",
    "name",
    "symbol",
    "tempo",
    "last_step",
    "blocks_since_last_step",
    "subnet_emission",
    "alpha_in",
    "alpha_out",
    "tao_in",
    "alpha_out_emission",
    "alpha_in_emission",
    "tao_in_emission",
    "pending_alpha_emission",
    "pending_root_emission",
    "subnet_volume",
    "network_registered_at",
    "identity",
    "moving_price",
];

/// 1.0 as `I96F32` bits.
const ONE_I96F32: i128 = 1 << 32;

/// `substrate_fixed::FixedI128<U32>` (finney's `I96F32`).
#[derive(Encode)]
struct I96F32 {
    bits: i128,
}

/// A subnet's metagraph, field by field, SCALE-encoded, in [`FIELDS`] order.
pub(crate) struct Fields(Vec<Vec<u8>>);

/// `v`, cut or padded with defaults to `n` entries.
fn pad<T: Default + Clone>(mut v: Vec<T>, n: usize) -> Vec<T> {
    v.resize(n, T::default());
    v
}

fn compact16(v: Vec<u16>, n: usize) -> Vec<Compact<u16>> {
    pad(v, n).into_iter().map(Compact).collect()
}

fn compact64(v: Vec<u64>, n: usize) -> Vec<Compact<u64>> {
    pad(v, n).into_iter().map(Compact).collect()
}

fn st(item: &str) -> Key {
    Key::new("SubtensorModule", item)
}

impl Fields {
    /// The metagraph of `netuid` at block `block`, or `None` when the subnet does not exist.
    pub(crate) fn build(s: &mut Sub<'_, '_>, netuid: u16, block: u64) -> Option<Self> {
        if !s.added(netuid) {
            return None;
        }
        let n = usize::from(s.n(netuid));
        let owner: AccountId = s.0.get_or(&st("SubnetOwner").id(&netuid).build(), [0; 32]);
        let registered_at: u64 =
            s.0.get_or(&st("NetworkRegisteredAt").id(&netuid).build(), 0);
        let since = s.since_step(netuid);
        let hotkeys: Vec<AccountId> = (0..s.n(netuid))
            .map(|uid| s.key(netuid, uid).unwrap_or([0; 32]))
            .collect();
        let coldkeys: Vec<AccountId> = hotkeys
            .iter()
            .map(|h| s.owner(h).unwrap_or([0; 32]))
            .collect();
        let stakes: Vec<u64> = hotkeys.iter().map(|h| s.stake(h, netuid)).collect();
        let axons: Vec<AxonInfo> = hotkeys
            .iter()
            .map(|h| {
                s.0.get(&st("Axons").id(&netuid).b2(h).build())
                    .unwrap_or_default()
            })
            .collect();
        let registered: Vec<u64> = (0..s.n(netuid))
            .map(|uid| {
                s.0.get_or(&st("BlockAtRegistration").id(&netuid).id(&uid).build(), 0)
            })
            .collect();
        let permits = pad(s.vec::<bool>("ValidatorPermit", netuid), n);
        let validators: Vec<Compact<u16>> = (0..s.n(netuid))
            .filter(|&uid| permits[usize::from(uid)])
            .map(Compact)
            .collect();
        let commitments: Vec<(AccountId, Vec<Compact<u8>>)> = hotkeys
            .iter()
            .filter_map(|h| {
                let key = Key::new("Commitments", "CommitmentOf")
                    .id(&netuid)
                    .tx(h)
                    .build();
                let raw = s.0.get_raw(&key)?;
                Some((*h, raw.into_iter().map(Compact).collect()))
            })
            .collect();
        let zeros: Vec<Compact<u64>> = vec![Compact(0); n];
        let zero_per_hotkey: Vec<(AccountId, Compact<u64>)> =
            hotkeys.iter().map(|h| (*h, Compact(0u64))).collect();
        let total_stake: u64 = stakes.iter().fold(0u64, |a, b| a.saturating_add(*b));
        let c16 = |v: u16| Compact(v).encode();
        let c64 = |v: u64| Compact(v).encode();
        let nothing: Vec<Compact<u8>> = Vec::new();

        let fields = vec![
            c16(netuid),
            nothing.encode(),
            nothing.encode(),
            None::<()>.encode(),
            c64(registered_at),
            owner.encode(),
            owner.encode(),
            c64(block),
            c16(s.tempo(netuid)),
            c64(block.saturating_sub(since)),
            c64(since),
            c64(EMISSION_PER_BLOCK),
            // alpha_in, alpha_out, tao_in
            c64(0),
            c64(total_stake),
            c64(0),
            // alpha_out_emission, alpha_in_emission, tao_in_emission, pending alpha and root
            c64(EMISSION_PER_BLOCK),
            c64(0),
            c64(0),
            c64(0),
            c64(0),
            Compact(0u128).encode(),
            I96F32 { bits: ONE_I96F32 }.encode(),
            c16(RHO),
            c16(KAPPA),
            c16(s.min_weights(netuid)),
            c16(s.max_weight(netuid)),
            c64(s.version_key(netuid)),
            c64(s.rate_limit(netuid)),
            c16(s.activity_cutoff(netuid)),
            c16(s.max_validators(netuid)),
            c16(s.n(netuid)),
            c16(s.max_uids(netuid)),
            c64(s.burn(netuid)),
            c64(DIFFICULTY),
            REGISTRATION_ALLOWED.encode(),
            // pow_registration_allowed: the local chain registers by burn only
            false.encode(),
            c16(s.immunity(netuid)),
            c64(MIN_DIFFICULTY),
            c64(MAX_DIFFICULTY),
            c64(MIN_BURN),
            c64(MAX_BURN),
            c64(ADJUSTMENT_ALPHA),
            c16(ADJUSTMENT_INTERVAL),
            c16(TARGET_REGS_PER_INTERVAL),
            c16(s.max_regs(netuid)),
            c64(SERVING_RATE_LIMIT),
            s.cr_enabled(netuid).encode(),
            c64(s.reveal_period(netuid)),
            LIQUID_ALPHA.encode(),
            c16(ALPHA_HIGH),
            c16(ALPHA_LOW),
            c64(BONDS_MOVING_AVG),
            hotkeys.encode(),
            coldkeys.encode(),
            vec![None::<()>; n].encode(),
            axons.encode(),
            pad(s.vec::<bool>("Active", netuid), n).encode(),
            permits.encode(),
            // pruning_score
            vec![Compact(0u16); n].encode(),
            compact64(s.vec("LastUpdate", netuid), n).encode(),
            compact64(s.vec("Emission", netuid), n).encode(),
            compact16(s.vec("Dividends", netuid), n).encode(),
            compact16(s.vec("Incentive", netuid), n).encode(),
            compact16(s.vec("Consensus", netuid), n).encode(),
            compact16(s.vec("Trust", netuid), n).encode(),
            compact16(s.vec("Rank", netuid), n).encode(),
            compact64(registered, n).encode(),
            compact64(stakes.clone(), n).encode(),
            // tao_stake: no root stake
            zeros.encode(),
            // total_stake = alpha + root weight * tao, with no tao
            compact64(stakes, n).encode(),
            zero_per_hotkey.encode(),
            zero_per_hotkey.encode(),
            validators.encode(),
            commitments.encode(),
        ];
        debug_assert_eq!(fields.len(), FIELDS.len());
        Some(Self(fields))
    }

    fn named(&self, name: &str) -> &[u8] {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .and_then(|i| self.0.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// `Metagraph`, SCALE-encoded.
    pub(crate) fn metagraph(&self) -> Vec<u8> {
        self.0[..METAGRAPH_FIELDS].concat()
    }

    /// `SelectiveMetagraph` with the fields at `indexes` (and always `netuid`), SCALE-encoded.
    pub(crate) fn selective(&self, indexes: &[u16]) -> Vec<u8> {
        let mut out = self.0[0].clone();
        for (i, f) in self.0.iter().enumerate().skip(1) {
            if indexes.iter().any(|&x| usize::from(x) == i) {
                out.push(1);
                out.extend_from_slice(f);
            } else {
                out.push(0);
            }
        }
        out
    }

    /// `DynamicInfo`, SCALE-encoded.
    pub(crate) fn dynamic_info(&self) -> Vec<u8> {
        DYNAMIC_INFO
            .iter()
            .flat_map(|f| self.named(f).to_vec())
            .collect()
    }

    /// `SubnetState`, SCALE-encoded; `history` is `emission_history` (per subnet, the emission
    /// of each of this subnet's hotkeys there).
    pub(crate) fn subnet_state(&self, history: &[Vec<u64>]) -> Vec<u8> {
        let mut out: Vec<u8> = SUBNET_STATE
            .iter()
            .flat_map(|f| self.named(f).to_vec())
            .collect();
        let history: Vec<Vec<Compact<u64>>> = history
            .iter()
            .map(|v| v.iter().copied().map(Compact).collect())
            .collect();
        history.encode_to(&mut out);
        out
    }
}

/// `emission_history` of `netuid`'s `SubnetState`: for each subnet in `netuids`, the last
/// emission there of each hotkey of `netuid` (0 where it holds no uid).
pub(crate) fn emission_history(s: &mut Sub<'_, '_>, netuid: u16, netuids: &[u16]) -> Vec<Vec<u64>> {
    let hotkeys: Vec<AccountId> = (0..s.n(netuid))
        .filter_map(|uid| s.key(netuid, uid))
        .collect();
    netuids
        .iter()
        .map(|&other| {
            let emission: Vec<u64> = s.vec("Emission", other);
            hotkeys
                .iter()
                .map(|h| {
                    s.uid(other, h)
                        .and_then(|u| emission.get(usize::from(u)).copied())
                        .unwrap_or(0)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use frame_metadata::RuntimeMetadata;
    use scale_info::TypeDef;

    use super::{DYNAMIC_INFO, FIELDS, METAGRAPH_FIELDS, SUBNET_STATE};

    /// The field order served is the one the metadata describes.
    #[test]
    fn fields_follow_the_metadata() {
        let RuntimeMetadata::V16(m) = crate::local::metadata::runtime_metadata().1 else {
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
        assert_eq!(selective, FIELDS);
        let metagraph = names("pallet_subtensor::rpc_info::metagraph::Metagraph");
        assert_eq!(metagraph, FIELDS[..METAGRAPH_FIELDS]);
        let dynamic = names("pallet_subtensor::rpc_info::dynamic_info::DynamicInfo");
        let renamed: Vec<&str> = DYNAMIC_INFO
            .iter()
            .map(|f| match *f {
                "name" => "subnet_name",
                "symbol" => "token_symbol",
                "subnet_emission" => "emission",
                "identity" => "subnet_identity",
                other => other,
            })
            .collect();
        assert_eq!(dynamic, renamed);
        let state = names("pallet_subtensor::rpc_info::show_subnet::SubnetState");
        assert_eq!(state[..state.len() - 1], SUBNET_STATE);
        assert_eq!(state.last().map(String::as_str), Some("emission_history"));
    }
}
