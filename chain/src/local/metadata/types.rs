//! Rust types that describe themselves in the metadata: what lets a storage declaration
//! (`chain/src/local/items.rs`) name a type once and get both the Rust type the local chain
//! reads and writes and the type finney's metadata gives it.
//!
//! Primitives, `Vec`s and tuples describe themselves here; types finney names with a path (an
//! account, a hash, `AxonInfo`) are marker types whose [`Meta::Rust`] is what the local chain
//! decodes with, so two finney types with one Rust representation (`AccountId32` and `H256` are
//! both `[u8; 32]`) stay two types in the metadata.

use parity_scale_codec::{Compact, Decode, Encode, Input, Output};

use super::primitives::Prims;
use super::registry::{TypeId, Types};

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

/// A type with a metadata description.
pub(crate) trait Meta {
    /// What the local chain reads or writes the value as.
    type Rust;
    /// The type's id in the registry (registering it if it is new).
    fn id(cx: &mut Cx<'_>) -> TypeId;
}

macro_rules! primitive {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl Meta for $ty {
            type Rust = $ty;
            fn id(cx: &mut Cx<'_>) -> TypeId {
                cx.p.$field
            }
        }
    )*};
}

primitive!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, u128 => u128, bool => bool);

impl Meta for Compact<u64> {
    type Rust = Compact<u64>;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.compact_u64
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

/// `sp_core::crypto::AccountId32`.
pub(crate) struct AccountId32;

impl Meta for AccountId32 {
    type Rust = [u8; 32];
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.account
    }
}

/// `primitive_types::H256`.
pub(crate) struct H256;

impl Meta for H256 {
    type Rust = [u8; 32];
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.h256
    }
}

/// `sp_runtime::generic::Digest`, kept as encoded (the local chain writes none).
pub(crate) struct GenericDigest;

impl Meta for GenericDigest {
    type Rust = Encoded;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.digest
    }
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

/// `pallet_subtensor::pallet::AxonInfo`.
pub(crate) struct AxonInfo;

impl Meta for AxonInfo {
    type Rust = crate::local::subtensor::AxonInfo;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        super::subtensor::types(cx.t, cx.p).axon_info
    }
}

/// `pallet_subtensor::pallet::PrometheusInfo` (the local chain serves none).
pub(crate) struct PrometheusInfo;

impl Meta for PrometheusInfo {
    type Rust = Encoded;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        super::subtensor::types(cx.t, cx.p).prometheus_info
    }
}

/// `frame_system::AccountInfo<Nonce, AccountData<Balance>>`.
pub(crate) struct AccountInfo;

impl Meta for AccountInfo {
    type Rust = crate::local::dispatch::AccountInfo;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        super::system::account_info(cx.t, cx.p)
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

/// `pallet_commitments::types::Registration`, kept as encoded.
pub(crate) struct Registration;

impl Meta for Registration {
    type Rust = Encoded;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        super::commitments::registration(cx.t, cx.p)
    }
}

/// `sp_runtime::MultiAddress<AccountId32, ()>` (`AccountIdLookupOf<T>`).
pub(crate) struct MultiAddress;

impl Meta for MultiAddress {
    type Rust = crate::local::dispatch::MultiAddress;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.address
    }
}

/// `pallet_commitments::types::CommitmentInfo<MaxFields>`.
pub(crate) struct CommitmentInfo;

impl Meta for CommitmentInfo {
    type Rust = crate::local::dispatch::CommitmentInfo;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        super::commitments::commitment_info(cx.t, cx.p)
    }
}

/// `frame_support::dispatch::DispatchEventInfo`: `(ref_time, proof_size)`, class, pays fee.
pub(crate) struct DispatchEventInfo;

impl Meta for DispatchEventInfo {
    type Rust = (Compact<u64>, Compact<u64>, u8, u8);
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.dispatch_event_info
    }
}

/// `sp_runtime::DispatchError`.
pub(crate) struct DispatchError;

impl Meta for DispatchError {
    type Rust = crate::local::dispatch::DispatchError;
    fn id(cx: &mut Cx<'_>) -> TypeId {
        cx.p.dispatch_error
    }
}
