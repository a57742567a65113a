//! Rust types that describe themselves in the metadata: what lets a storage declaration
//! (`localnet/src/items.rs`) name a type once and get both the Rust type the local chain
//! reads and writes and the type finney's metadata gives it.
//!
//! Primitives, `Vec`s and tuples describe themselves here; types finney names with a path (an
//! account, a hash, `AxonInfo`) are marker types whose [`Meta::Rust`] is what the local chain
//! decodes with, so two finney types with one Rust representation (`AccountId32` and `H256` are
//! both `[u8; 32]`) stay two types in the metadata.

use parity_scale_codec::{Compact, Decode, Encode, Input, Output};

use scale_info::TypeDefPrimitive;

use super::primitives::Prims;
use super::registry::{TypeId, Types, field};

/// What a type is described with: the registry being built, the shared primitives, and the
/// outer event enum once it exists (only `System.Events` holds it).
pub(crate) struct Cx<'a> {
    /// The registry.
    pub t: &'a mut Types,
    /// The shared primitives.
    pub p: &'a Prims,
    /// `RuntimeEvent`, registered after every pallet's events.
    pub runtime_event: Option<TypeId>,
}

impl<'a> Cx<'a> {
    /// A context for types that do not involve `RuntimeEvent`.
    pub(crate) fn new(t: &'a mut Types, p: &'a Prims) -> Self {
        Self {
            t,
            p,
            runtime_event: None,
        }
    }
}

/// A type with a metadata description.
pub(crate) trait Meta {
    /// What the local chain reads or writes the value as.
    type Rust;
    /// The type's id in the registry (registering it if it is new).
    fn id(cx: &mut Cx<'_>) -> TypeId;
}

macro_rules! primitive {
    ($($ty:ty => $prim:ident),* $(,)?) => {$(
        impl Meta for $ty {
            type Rust = $ty;
            fn id(cx: &mut Cx<'_>) -> TypeId {
                cx.t.prim(TypeDefPrimitive::$prim)
            }
        }
    )*};
}

primitive!(
    u8 => U8,
    u16 => U16,
    u32 => U32,
    u64 => U64,
    u128 => U128,
    i64 => I64,
    i128 => I128,
    bool => Bool,
);

impl<T: Meta> Meta for Compact<T> {
    type Rust = Compact<T::Rust>;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let of = T::id(cx);
        cx.t.compact(of)
    }
}

impl<T: Meta> Meta for Option<T> {
    type Rust = Option<T::Rust>;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let of = T::id(cx);
        cx.t.option(of)
    }
}

impl Meta for [u16; 2] {
    type Rust = [u16; 2];
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let u16 = cx.t.u16();
        cx.t.array(2, u16)
    }
}

impl<T: Meta> Meta for Vec<T> {
    type Rust = Vec<T::Rust>;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let of = T::id(cx);
        cx.t.seq(of)
    }
}

impl<A: Meta, B: Meta> Meta for (A, B) {
    type Rust = (A::Rust, B::Rust);
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let ids = [A::id(cx), B::id(cx)];
        cx.t.tuple(&ids)
    }
}

impl<A: Meta, B: Meta, C: Meta, D: Meta> Meta for (A, B, C, D) {
    type Rust = (A::Rust, B::Rust, C::Rust, D::Rust);
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let ids = [A::id(cx), B::id(cx), C::id(cx), D::id(cx)];
        cx.t.tuple(&ids)
    }
}

/// Declares marker types (`Name => Rust type: |cx| its id`) or implements [`Meta`] for Rust types
/// that are their own representation (`impl Type: |cx| its id`).
macro_rules! meta {
    ($($(#[doc = $doc:literal])* $name:ident => $rust:ty: |$cx:ident| $id:expr;)*) => {$(
        $(#[doc = $doc])*
        pub(crate) struct $name;

        impl Meta for $name {
            type Rust = $rust;
            fn id($cx: &mut Cx<'_>) -> TypeId {
                $id
            }
        }
    )*};
    ($(impl $ty:ty: |$cx:ident| $id:expr;)*) => {$(
        impl Meta for $ty {
            type Rust = Self;
            fn id($cx: &mut Cx<'_>) -> TypeId {
                $id
            }
        }
    )*};
}

meta! {
    /// `sp_core::crypto::AccountId32`.
    AccountId32 => [u8; 32]: |cx| cx.p.account;
    /// `primitive_types::H256`.
    H256 => [u8; 32]: |cx| cx.p.h256;
    /// `sp_runtime::generic::Digest`, kept as encoded (the local chain writes none).
    GenericDigest => Encoded: |cx| cx.p.digest;
    /// `pallet_commitments::types::Registration`, kept as encoded.
    Registration => Encoded: |cx| super::commitments::registration(cx.t, cx.p);
    /// `sp_runtime::MultiAddress<AccountId32, ()>` (`AccountIdLookupOf<T>`).
    MultiAddress => crate::values::MultiAddress: |cx| cx.p.address;
    /// `pallet_commitments::types::CommitmentInfo<MaxFields>`.
    CommitmentInfo => crate::values::CommitmentInfo:
        |cx| super::commitments::commitment_info(cx.t, cx.p);
    /// `frame_support::dispatch::DispatchEventInfo`: `(ref_time, proof_size)`, class, pays fee.
    DispatchEventInfo => (Compact<u64>, Compact<u64>, u8, u8): |cx| cx.p.dispatch_event_info;
    /// `BoundedVec<u8, S>` (any bound), as bytes.
    BoundedBytes => Vec<u8>: |cx| {
        let u8 = cx.p.u8;
        cx.t.bounded_vec(u8)
    };
    /// `pallet_drand::types::Pulse`.
    Pulse => crate::values::Pulse: |cx| super::drand::pulse(cx.t, cx.p);
    /// `pallet_drand::types::BeaconConfiguration`.
    BeaconConfiguration => crate::values::BeaconConfiguration:
        |cx| super::drand::beacon_configuration(cx.t, cx.p);
    /// `sp_runtime::DispatchError`.
    DispatchError => crate::values::DispatchError: |cx| cx.p.dispatch_error;
}

meta! {
    impl crate::values::AxonInfo: |cx| super::subtensor::types(cx.t, cx.p).axon_info;
    impl crate::values::PrometheusInfo:
        |cx| super::subtensor::types(cx.t, cx.p).prometheus_info;
    impl crate::values::AccountInfo: |cx| super::system::account_info(cx.t, cx.p);
}

/// A value the local chain keeps SCALE-encoded as it built it (event records, commitment
/// registrations): written and served as bytes, never decoded. Decoding takes all of the input,
/// which a storage value is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Encoded(pub Vec<u8>);

impl Encode for Encoded {
    fn size_hint(&self) -> usize {
        self.0.len()
    }

    fn encode_to<O: Output + ?Sized>(&self, dest: &mut O) {
        dest.write(&self.0);
    }
}

impl Decode for Encoded {
    fn decode<I: Input>(input: &mut I) -> Result<Self, parity_scale_codec::Error> {
        let len = input.remaining_len()?.unwrap_or(0);
        let mut bytes = vec![0u8; len];
        input.read(&mut bytes)?;
        Ok(Self(bytes))
    }
}

/// `Vec<frame_system::EventRecord<RuntimeEvent, H256>>`, kept as encoded.
pub(crate) struct EventRecords;

impl Meta for EventRecords {
    type Rust = Encoded;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        let event = cx.runtime_event.unwrap_or(cx.p.unit);
        debug_assert!(
            cx.runtime_event.is_some(),
            "System.Events is described after RuntimeEvent"
        );
        super::system::event_records(cx.t, cx.p, event)
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

        impl Meta for $name {
            type Rust = Self;
            fn id(cx: &mut Cx<'_>) -> TypeId {
                let frac = typenum_u32(cx.t);
                let bits = $bits::id(cx);
                let fields = vec![field("bits", bits, stringify!($bits))];
                cx.t.composite($path, &[("Frac", Some(frac))], fields)
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
            fn encode_to<W: Output + ?Sized>(&self, _: &mut W) {
                match *self {}
            }
        }

        impl Meta for $name {
            type Rust = Self;
            fn id(cx: &mut Cx<'_>) -> TypeId {
                let bytes = cx.p.bytes;
                let fields = [$($field),*].iter().map(|n| field(n, bytes, "Vec<u8>")).collect();
                cx.t.composite($path, &[], fields)
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
