//! Output structures of the runtime APIs, each declared once with [`output!`]: a Rust struct whose
//! derived SCALE encoding is what the runtime API serves, and whose fields the metadata describes,
//! each with the metadata type of its Rust type ([`Described`]) and the Rust type name finney
//! publishes for it.

use parity_scale_codec::{Compact, Encode};
use scale_info::{Field, TypeDefPrimitive, form::PortableForm};

pub(crate) use super::primitives::Prims;
pub(crate) use super::registry::{TypeId, Types, field};
pub(crate) use super::subtensor::SubtensorTypes;
use crate::local::subtensor::AxonInfo;

/// A Rust type's metadata type: the type finney publishes for values encoded from it.
pub(crate) trait Described {
    /// Registers the type (registering it again finds the same id) and returns its id.
    fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId;
}

/// An output structure declared with [`output!`].
pub(crate) trait Declared {
    /// The field names, in order.
    const NAMES: &'static [&'static str];
    /// The fields as the metadata describes them, in order.
    fn fields(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> Vec<Field<PortableForm>>;
    /// Each field SCALE-encoded, in order.
    fn encoded(&self) -> Vec<Vec<u8>>;
}

/// Declares an output structure once. Each row `name: RustType as "TypeName" = value` is a field:
/// its name; its Rust type, whose SCALE encoding is served and whose [`Described`] type the
/// metadata gives it; the Rust type name finney's metadata records for it; and its value,
/// computed from `new`'s arguments after the statements in the first braces (which may return
/// `None`: no such value). Generates the struct (`#[derive(Encode)]`), `new` and [`Declared`]:
///
/// ```text
/// output! {
///     /// `SubnetInfo` of `netuid`.
///     pub(crate) struct SubnetInfo(s: &Sub<'_, '_>, netuid: u16) {
///         let hp = SubnetHyperparams::new(s, netuid)?;
///     } {
///         netuid: Compact<u16> as "Compact<NetUid>" = Compact(netuid),
///         rho: Compact<u16> as "Compact<u16>" = hp.rho,
///     }
/// }
/// ```
macro_rules! output {
    (
        $(#[$doc:meta])*
        $vis:vis struct $name:ident($($arg:ident: $arg_ty:ty),* $(,)?) { $($prelude:tt)* } {
            $($field:ident: $ty:ty as $type_name:literal = $value:expr),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(parity_scale_codec::Encode)]
        $vis struct $name {
            $($field: $ty,)*
        }

        impl $name {
            /// The value for these arguments, or `None` where there is none.
            $vis fn new($($arg: $arg_ty),*) -> Option<Self> {
                $($prelude)*
                Some(Self { $($field: $value,)* })
            }
        }

        impl $crate::local::metadata::described::Declared for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            fn fields(
                t: &mut $crate::local::metadata::described::Types,
                p: &$crate::local::metadata::described::Prims,
                st: &$crate::local::metadata::described::SubtensorTypes,
            ) -> Vec<scale_info::Field<scale_info::form::PortableForm>> {
                use $crate::local::metadata::described::{Described, field};
                vec![$(field(stringify!($field), <$ty as Described>::ty(t, p, st), $type_name),)*]
            }

            fn encoded(&self) -> Vec<Vec<u8>> {
                vec![$(parity_scale_codec::Encode::encode(&self.$field),)*]
            }
        }
    };
}
pub(crate) use output;

/// [`Described`] for primitives.
macro_rules! primitives {
    ($($rust:ty => $prim:ident),*) => {$(
        impl Described for $rust {
            fn ty(t: &mut Types, _: &Prims, _: &SubtensorTypes) -> TypeId {
                t.prim(TypeDefPrimitive::$prim)
            }
        }
    )*};
}
primitives!(u8 => U8, u16 => U16, u64 => U64, u128 => U128, i64 => I64, i128 => I128, bool => Bool);

impl<T: Described> Described for Compact<T> {
    fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId {
        let of = T::ty(t, p, st);
        t.compact(of)
    }
}

impl<T: Described> Described for Vec<T> {
    fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId {
        let of = T::ty(t, p, st);
        t.seq(of)
    }
}

impl<T: Described> Described for Option<T> {
    fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId {
        let of = T::ty(t, p, st);
        t.option(of)
    }
}

impl<A: Described, B: Described> Described for (A, B) {
    fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId {
        let a = A::ty(t, p, st);
        let b = B::ty(t, p, st);
        t.tuple(&[a, b])
    }
}

/// `AccountId` (`sp_core::crypto::AccountId32`).
impl Described for [u8; 32] {
    fn ty(_: &mut Types, p: &Prims, _: &SubtensorTypes) -> TypeId {
        p.account
    }
}

impl Described for [u16; 2] {
    fn ty(t: &mut Types, _: &Prims, _: &SubtensorTypes) -> TypeId {
        let u16 = t.u16();
        t.array(2, u16)
    }
}

impl Described for AxonInfo {
    fn ty(_: &mut Types, _: &Prims, st: &SubtensorTypes) -> TypeId {
        st.axon_info
    }
}

/// `pallet_subtensor::pallet::PrometheusInfo`; the local chain serves only the default one.
#[derive(Default, Encode)]
pub(crate) struct PrometheusInfo {
    /// Block served at.
    block: u64,
    /// Version.
    version: u32,
    /// IP address.
    ip: u128,
    /// Port.
    port: u16,
    /// 4 or 6.
    ip_type: u8,
}

impl Described for PrometheusInfo {
    fn ty(_: &mut Types, _: &Prims, st: &SubtensorTypes) -> TypeId {
        st.prometheus_info
    }
}

/// `substrate_typenum`'s `U32`, the fraction bits of finney's fixed-point types:
/// `UInt<UInt<UInt<UInt<UInt<UInt<UTerm, B1>, B0>, B0>, B0>, B0>, B0>`.
pub(crate) fn typenum_u32(t: &mut Types) -> TypeId {
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

/// Fixed-point types: `substrate_fixed`'s with 32 fraction bits, as their bits.
macro_rules! fixed {
    ($($(#[$doc:meta])* $name:ident($bits:ident) = $path:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Encode)]
        pub(crate) struct $name {
            /// The value times 2^32.
            pub bits: $bits,
        }

        impl Described for $name {
            fn ty(t: &mut Types, p: &Prims, st: &SubtensorTypes) -> TypeId {
                let frac = typenum_u32(t);
                let bits = $bits::ty(t, p, st);
                let fields = vec![field("bits", bits, stringify!($bits))];
                t.composite($path, &[("Frac", Some(frac))], fields)
            }
        }
    )*};
}
fixed! {
    /// `substrate_fixed::FixedI128<U32>` (finney's `I96F32`).
    I96F32(i128) = "substrate_fixed::FixedI128";
    /// `substrate_fixed::FixedI64<U32>` (finney's `I32F32`).
    I32F32(i64) = "substrate_fixed::FixedI64";
}

/// Identities: structs of byte strings. The local chain has none, so the Rust types are
/// uninhabited and only `None` is ever served.
macro_rules! identities {
    ($($(#[$doc:meta])* $name:ident = $path:literal [$($field:literal),*];)*) => {$(
        $(#[$doc])*
        #[derive(Clone)]
        pub(crate) enum $name {}

        impl Encode for $name {
            fn encode_to<W: parity_scale_codec::Output + ?Sized>(&self, _: &mut W) {
                match *self {}
            }
        }

        impl Described for $name {
            fn ty(t: &mut Types, p: &Prims, _: &SubtensorTypes) -> TypeId {
                let fields = [$($field),*].iter().map(|n| field(n, p.bytes, "Vec<u8>")).collect();
                t.composite($path, &[], fields)
            }
        }
    )*};
}
identities! {
    /// `pallet_subtensor::pallet::SubnetIdentityV3`.
    SubnetIdentityV3 = "pallet_subtensor::pallet::SubnetIdentityV3" [
        "subnet_name", "github_repo", "subnet_contact", "subnet_url", "discord", "description",
        "logo_url", "additional"
    ];
    /// `pallet_subtensor::pallet::ChainIdentityV2`.
    ChainIdentityV2 = "pallet_subtensor::pallet::ChainIdentityV2" [
        "name", "url", "github_repo", "image", "discord", "description", "additional"
    ];
}
