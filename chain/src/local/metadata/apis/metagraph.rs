//! The types of `SubnetInfoRuntimeApi`'s metagraph family, as finney (spec 393) publishes them:
//! `pallet_subtensor::rpc_info::metagraph::{Metagraph, SelectiveMetagraph}`,
//! `rpc_info::dynamic_info::DynamicInfo` and `rpc_info::show_subnet::SubnetState`, with the
//! identity and fixed-point types they hold.

use scale_info::{TypeDefPrimitive, form::PortableForm};

use super::super::primitives::Prims;
use super::super::registry::{TypeId, Types, field};
use super::super::subtensor::SubtensorTypes;

/// `SubnetState`'s fields before `emission_history`, in finney's order. Each is also a
/// `Metagraph` field of the same name and type; the runtime API encodes them from this list.
pub(crate) const SUBNET_STATE_FIELDS: [&str; 17] = [
    "netuid",
    "hotkeys",
    "coldkeys",
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
];

/// Ids of the metagraph family's types.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetagraphTypes {
    /// `Option<Metagraph<AccountId32>>`.
    pub metagraph: TypeId,
    /// `Option<SelectiveMetagraph<AccountId32>>`.
    pub selective: TypeId,
    /// `Option<DynamicInfo<AccountId32>>`.
    pub dynamic: TypeId,
    /// `Option<SubnetState<AccountId32>>`.
    pub state: TypeId,
    /// `Option<SubnetIdentityV3>`.
    pub subnet_identity: TypeId,
    /// `substrate_fixed::FixedI64<U32>` (`I32F32`).
    pub i32f32: TypeId,
}

/// `substrate_typenum`'s `U32`: `UInt<UInt<UInt<UInt<UInt<UInt<UTerm, B1>, B0>, B0>, B0>, B0>, B0>`.
fn typenum_u32(t: &mut Types) -> TypeId {
    let uterm = t.composite("substrate_typenum::uint::UTerm", &[], Vec::new());
    let b0 = t.composite("substrate_typenum::bit::B0", &[], Vec::new());
    let b1 = t.composite("substrate_typenum::bit::B1", &[], Vec::new());
    let mut n = uterm;
    for bit in [b1, b0, b0, b0, b0, b0] {
        n = t.composite(
            "substrate_typenum::uint::UInt",
            &[("U", Some(n)), ("B", Some(bit))],
            vec![field("msb", n, "U"), field("lsb", bit, "B")],
        );
    }
    n
}

fn bytes_fields(p: &Prims, names: &[&str]) -> Vec<scale_info::Field<PortableForm>> {
    names.iter().map(|n| field(n, p.bytes, "Vec<u8>")).collect()
}

/// A field of `Metagraph`: name, type, Rust type name.
type Row = (&'static str, TypeId, String);

/// Registers the family's types.
pub(crate) fn register(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> MetagraphTypes {
    let c8 = {
        let u8 = t.u8();
        t.compact(u8)
    };
    let c16 = p.compact_u16;
    let c64 = p.compact_u64;
    let c128 = t.compact(p.u128);
    let chars = t.seq(c8);
    let frac = typenum_u32(t);
    let i128 = t.prim(TypeDefPrimitive::I128);
    let i64 = t.prim(TypeDefPrimitive::I64);
    let i96f32 = t.composite(
        "substrate_fixed::FixedI128",
        &[("Frac", Some(frac))],
        vec![field("bits", i128, "i128")],
    );
    let i32f32 = t.composite(
        "substrate_fixed::FixedI64",
        &[("Frac", Some(frac))],
        vec![field("bits", i64, "i64")],
    );
    let identity_v3 = t.composite(
        "pallet_subtensor::pallet::SubnetIdentityV3",
        &[],
        bytes_fields(
            p,
            &[
                "subnet_name",
                "github_repo",
                "subnet_contact",
                "subnet_url",
                "discord",
                "description",
                "logo_url",
                "additional",
            ],
        ),
    );
    let subnet_identity = t.option(identity_v3);
    let chain_identity = t.composite(
        "pallet_subtensor::pallet::ChainIdentityV2",
        &[],
        bytes_fields(
            p,
            &[
                "name",
                "url",
                "github_repo",
                "image",
                "discord",
                "description",
                "additional",
            ],
        ),
    );
    let maybe_chain_identity = t.option(chain_identity);
    let identities = t.seq(maybe_chain_identity);
    let accounts = t.seq(p.account);
    let axons = t.seq(st.axon_info);
    let bools = t.seq(p.bool);
    let c16s = t.seq(c16);
    let c64s = t.seq(c64);
    let account_c64 = t.tuple(&[p.account, c64]);
    let per_hotkey = t.seq(account_c64);

    let s = |x: &str| x.to_owned();
    let mut rows: Vec<Row> = vec![
        ("netuid", c16, s("Compact<NetUid>")),
        ("name", chars, s("Vec<Compact<u8>>")),
        ("symbol", chars, s("Vec<Compact<u8>>")),
        ("identity", subnet_identity, s("Option<SubnetIdentityV3>")),
        ("network_registered_at", c64, s("Compact<u64>")),
        ("owner_hotkey", p.account, s("AccountId")),
        ("owner_coldkey", p.account, s("AccountId")),
        ("block", c64, s("Compact<u64>")),
        ("tempo", c16, s("Compact<u16>")),
        ("last_step", c64, s("Compact<u64>")),
        ("blocks_since_last_step", c64, s("Compact<u64>")),
        ("subnet_emission", c64, s("Compact<u64>")),
    ];
    for (name, tn) in [
        ("alpha_in", "Compact<AlphaBalance>"),
        ("alpha_out", "Compact<AlphaBalance>"),
        ("tao_in", "Compact<TaoBalance>"),
        ("alpha_out_emission", "Compact<AlphaBalance>"),
        ("alpha_in_emission", "Compact<AlphaBalance>"),
        ("tao_in_emission", "Compact<TaoBalance>"),
        ("pending_alpha_emission", "Compact<AlphaBalance>"),
        ("pending_root_emission", "Compact<TaoBalance>"),
    ] {
        rows.push((name, c64, s(tn)));
    }
    rows.push(("subnet_volume", c128, s("Compact<u128>")));
    rows.push(("moving_price", i96f32, s("I96F32")));
    let hyper: [(&'static str, &str); 30] = [
        ("rho", "Compact<u16>"),
        ("kappa", "Compact<u16>"),
        ("min_allowed_weights", "Compact<u16>"),
        ("max_weights_limit", "Compact<u16>"),
        ("weights_version", "Compact<u64>"),
        ("weights_rate_limit", "Compact<u64>"),
        ("activity_cutoff", "Compact<u16>"),
        ("max_validators", "Compact<u16>"),
        ("num_uids", "Compact<u16>"),
        ("max_uids", "Compact<u16>"),
        ("burn", "Compact<TaoBalance>"),
        ("difficulty", "Compact<u64>"),
        ("registration_allowed", "bool"),
        ("pow_registration_allowed", "bool"),
        ("immunity_period", "Compact<u16>"),
        ("min_difficulty", "Compact<u64>"),
        ("max_difficulty", "Compact<u64>"),
        ("min_burn", "Compact<TaoBalance>"),
        ("max_burn", "Compact<TaoBalance>"),
        ("adjustment_alpha", "Compact<u64>"),
        ("adjustment_interval", "Compact<u16>"),
        ("target_regs_per_interval", "Compact<u16>"),
        ("max_regs_per_block", "Compact<u16>"),
        ("serving_rate_limit", "Compact<u64>"),
        ("commit_reveal_weights_enabled", "bool"),
        ("commit_reveal_period", "Compact<u64>"),
        ("liquid_alpha_enabled", "bool"),
        ("alpha_high", "Compact<u16>"),
        ("alpha_low", "Compact<u16>"),
        ("bonds_moving_avg", "Compact<u64>"),
    ];
    for (name, tn) in hyper {
        let ty = match tn {
            "bool" => p.bool,
            "Compact<u16>" => c16,
            _ => c64,
        };
        rows.push((name, ty, s(tn)));
    }
    rows.extend([
        ("hotkeys", accounts, s("Vec<AccountId>")),
        ("coldkeys", accounts, s("Vec<AccountId>")),
        (
            "identities",
            identities,
            s("Vec<Option<ChainIdentityOfV2>>"),
        ),
        ("axons", axons, s("Vec<AxonInfo>")),
        ("active", bools, s("Vec<bool>")),
        ("validator_permit", bools, s("Vec<bool>")),
        ("pruning_score", c16s, s("Vec<Compact<u16>>")),
        ("last_update", c64s, s("Vec<Compact<u64>>")),
        ("emission", c64s, s("Vec<Compact<AlphaBalance>>")),
        ("dividends", c16s, s("Vec<Compact<u16>>")),
        ("incentives", c16s, s("Vec<Compact<u16>>")),
        ("consensus", c16s, s("Vec<Compact<u16>>")),
        ("trust", c16s, s("Vec<Compact<u16>>")),
        ("rank", c16s, s("Vec<Compact<u16>>")),
        ("block_at_registration", c64s, s("Vec<Compact<u64>>")),
        ("alpha_stake", c64s, s("Vec<Compact<AlphaBalance>>")),
        ("tao_stake", c64s, s("Vec<Compact<TaoBalance>>")),
        ("total_stake", c64s, s("Vec<Compact<TaoBalance>>")),
        (
            "tao_dividends_per_hotkey",
            per_hotkey,
            s("Vec<(AccountId, Compact<TaoBalance>)>"),
        ),
        (
            "alpha_dividends_per_hotkey",
            per_hotkey,
            s("Vec<(AccountId, Compact<AlphaBalance>)>"),
        ),
    ]);
    let generic = [("AccountId", Some(p.account))];
    let to_fields =
        |rows: &[Row]| -> Vec<_> { rows.iter().map(|(n, ty, tn)| field(n, *ty, tn)).collect() };
    let metagraph = t.composite(
        "pallet_subtensor::rpc_info::metagraph::Metagraph",
        &generic,
        to_fields(&rows),
    );

    // `SelectiveMetagraph`: every field but `netuid` optional, then `validators` and
    // `commitments`.
    let commitment = t.tuple(&[p.account, chars]);
    let commitments = t.seq(commitment);
    let mut sel_rows: Vec<Row> = vec![rows[0].clone()];
    for (name, ty, tn) in rows[1..].iter().cloned().chain([
        ("validators", c16s, s("Vec<Compact<u16>>")),
        (
            "commitments",
            commitments,
            s("Vec<(AccountId, Vec<Compact<u8>>)>"),
        ),
    ]) {
        let opt = t.option(ty);
        sel_rows.push((name, opt, format!("Option<{tn}>")));
    }
    let selective = t.composite(
        "pallet_subtensor::rpc_info::metagraph::SelectiveMetagraph",
        &generic,
        to_fields(&sel_rows),
    );

    let pick = |names: &[&str]| -> Vec<Row> {
        names
            .iter()
            .map(|n| {
                rows.iter()
                    .find(|r| r.0 == *n)
                    .cloned()
                    .unwrap_or_else(|| panic!("metagraph field {n}"))
            })
            .collect()
    };
    let mut dyn_rows = pick(&["netuid", "owner_hotkey", "owner_coldkey"]);
    dyn_rows.push(("subnet_name", chars, s("Vec<Compact<u8>>")));
    dyn_rows.push(("token_symbol", chars, s("Vec<Compact<u8>>")));
    dyn_rows.extend(pick(&["tempo", "last_step", "blocks_since_last_step"]));
    dyn_rows.push(("emission", c64, s("Compact<u64>")));
    dyn_rows.extend(pick(&[
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
    ]));
    dyn_rows.push((
        "subnet_identity",
        subnet_identity,
        s("Option<SubnetIdentityV3>"),
    ));
    dyn_rows.extend(pick(&["moving_price"]));
    let dynamic = t.composite(
        "pallet_subtensor::rpc_info::dynamic_info::DynamicInfo",
        &generic,
        to_fields(&dyn_rows),
    );

    let mut state_rows = pick(&SUBNET_STATE_FIELDS);
    let history = t.seq(c64s);
    state_rows.push((
        "emission_history",
        history,
        s("Vec<Vec<Compact<AlphaBalance>>>"),
    ));
    let state = t.composite(
        "pallet_subtensor::rpc_info::show_subnet::SubnetState",
        &generic,
        to_fields(&state_rows),
    );

    MetagraphTypes {
        metagraph: t.option(metagraph),
        selective: t.option(selective),
        dynamic: t.option(dynamic),
        state: t.option(state),
        subnet_identity,
        i32f32,
    }
}
