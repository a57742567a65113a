//! Pieces every pallet description is made of: storage entries with their hashers and defaults,
//! constants, and the [`Pallet`] record that the outer enums and the metadata are assembled from.

use frame_metadata::v16::{
    ItemDeprecationInfo, PalletConstantMetadata, PalletStorageMetadata, StorageEntryMetadata,
    StorageEntryModifier, StorageEntryType, StorageHasher,
};
use parity_scale_codec::Encode;
use scale_info::form::PortableForm;

use super::registry::{TypeId, Types};

/// Pallet indices, as finney's `construct_runtime!` gives them: the first byte of every call,
/// event and module error of the pallet.
pub(crate) mod index {
    /// `System`.
    pub(crate) const SYSTEM: u8 = 0;
    /// `Timestamp`.
    pub(crate) const TIMESTAMP: u8 = 2;
    /// `Balances`.
    pub(crate) const BALANCES: u8 = 5;
    /// `SubtensorModule`.
    pub(crate) const SUBTENSOR: u8 = 7;
    /// `Commitments`.
    pub(crate) const COMMITMENTS: u8 = 18;
    /// `Drand`.
    pub(crate) const DRAND: u8 = 26;
}

/// Declares a pallet's `Error` enum once: the Rust enum the dispatch code raises (a
/// `DispatchError::Module` of the pallet, the variant's position as its index) and `NAMES`, the
/// variants in index order, which the metadata lists.
macro_rules! pallet_errors {
    ($(#[doc = $doc:literal])* $name:ident of $pallet:expr; $($variant:ident),* $(,)?) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        #[allow(dead_code)] // Finney's whole list; the local chain raises some of them.
        pub(crate) enum $name {
            $(#[doc = stringify!($variant)] $variant,)*
        }

        impl $name {
            /// The variants' names, in index order.
            pub(crate) const NAMES: &'static [&'static str] = &[$(stringify!($variant)),*];
        }

        impl From<$name> for crate::values::DispatchError {
            fn from(e: $name) -> Self {
                Self::Module {
                    index: $pallet,
                    error: e as u8,
                }
            }
        }
    };
}
pub(crate) use pallet_errors;

/// One pallet of the local runtime, before it is turned into `PalletMetadata`.
#[derive(Debug)]
pub(crate) struct Pallet {
    /// Pallet name, as in finney's `construct_runtime!`.
    pub name: &'static str,
    /// Pallet index: the first byte of its calls, events and errors.
    pub index: u8,
    /// Storage entries, if the pallet has storage: filled from `items.rs`'s declarations when
    /// the metadata is assembled.
    pub storage: Option<PalletStorageMetadata<PortableForm>>,
    /// The pallet's `Call` enum and the type name the outer `RuntimeCall` gives it.
    pub calls: Option<TypeId>,
    /// The pallet's `Event` enum and the type name the outer `RuntimeEvent` gives it.
    pub event: Option<(TypeId, &'static str)>,
    /// The pallet's `Error` enum and the type name the outer `RuntimeError` gives it.
    pub error: Option<(TypeId, &'static str)>,
    /// Constants.
    pub constants: Vec<PalletConstantMetadata<PortableForm>>,
}

/// Storage entries of one pallet.
#[derive(Debug)]
pub(crate) struct Storage {
    prefix: &'static str,
    entries: Vec<StorageEntryMetadata<PortableForm>>,
}

impl Storage {
    /// Entries under `prefix` (the pallet name).
    pub(crate) fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            entries: Vec::new(),
        }
    }

    /// A `StorageValue` with a default.
    pub(crate) fn value(&mut self, name: &str, ty: TypeId, default: impl Encode) -> &mut Self {
        self.push(
            name,
            StorageEntryModifier::Default,
            StorageEntryType::Plain(ty.into()),
            default.encode(),
        )
    }

    /// A `StorageValue` read as `Option` (absent = `None`).
    pub(crate) fn optional_value(&mut self, name: &str, ty: TypeId) -> &mut Self {
        self.push(
            name,
            StorageEntryModifier::Optional,
            StorageEntryType::Plain(ty.into()),
            vec![0],
        )
    }

    /// A map with a default (`ValueQuery`); `keys` are (hasher, key type) from outermost in.
    pub(crate) fn map(
        &mut self,
        t: &mut Types,
        name: &str,
        keys: &[(StorageHasher, TypeId)],
        value: TypeId,
        default: impl Encode,
    ) -> &mut Self {
        let ty = map_type(t, keys, value);
        self.push(name, StorageEntryModifier::Default, ty, default.encode())
    }

    /// A map read as `Option` (`OptionQuery`).
    pub(crate) fn optional_map(
        &mut self,
        t: &mut Types,
        name: &str,
        keys: &[(StorageHasher, TypeId)],
        value: TypeId,
    ) -> &mut Self {
        let ty = map_type(t, keys, value);
        self.push(name, StorageEntryModifier::Optional, ty, vec![0])
    }

    fn push(
        &mut self,
        name: &str,
        modifier: StorageEntryModifier,
        ty: StorageEntryType<PortableForm>,
        default: Vec<u8>,
    ) -> &mut Self {
        self.entries.push(StorageEntryMetadata {
            name: name.to_owned(),
            modifier,
            ty,
            default,
            docs: Vec::new(),
            deprecation_info: ItemDeprecationInfo::NotDeprecated,
        });
        self
    }

    /// The finished storage metadata.
    pub(crate) fn finish(self) -> PalletStorageMetadata<PortableForm> {
        PalletStorageMetadata {
            prefix: self.prefix.to_owned(),
            entries: self.entries,
        }
    }
}

fn map_type(
    t: &mut Types,
    keys: &[(StorageHasher, TypeId)],
    value: TypeId,
) -> StorageEntryType<PortableForm> {
    let hashers = keys.iter().map(|(h, _)| h.clone()).collect();
    let key = match keys {
        [(_, single)] => *single,
        many => t.tuple(&many.iter().map(|(_, k)| *k).collect::<Vec<_>>()),
    };
    StorageEntryType::Map {
        hashers,
        key: key.into(),
        value: value.into(),
    }
}

/// A constant with its SCALE-encoded value.
pub(crate) fn constant(
    name: &str,
    ty: TypeId,
    value: impl Encode,
) -> PalletConstantMetadata<PortableForm> {
    PalletConstantMetadata {
        name: name.to_owned(),
        ty: ty.into(),
        value: value.encode(),
        docs: Vec::new(),
        deprecation_info: ItemDeprecationInfo::NotDeprecated,
    }
}

/// Declares a pallet's `Call` or `Event` enum once: the Rust enum the local runtime decodes
/// calls into or encodes events from (each variant's codec index is finney's), and
/// `describe`, the same enum for the metadata. Each field is `name: Type as "TypeName"` (a
/// tuple variant's fields are unnamed: `Type as "TypeName"`), `Type` being what finney's
/// metadata calls it ([`Meta`](super::types::Meta)) and `TypeName` the Rust type name finney
/// publishes; a variant whose metadata name differs from its Rust one (calls are snake case)
/// names it with `as "name"`.
macro_rules! pallet_enum {
    (@name $var:ident) => { stringify!($var) };
    (@name $var:ident $name:literal) => { $name };
    (
        $(#[$attr:meta])*
        $name:ident = $path:literal [$($param:literal),*] {
            $(
                $(#[doc = $vdoc:literal])*
                $var:ident $(as $mname:literal)? = $idx:literal
                    $({ $($f:ident: $fty:ty as $fname:literal),* $(,)? })?
                    $(( $($aty:ty as $aname:literal),* $(,)? ))?
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        pub(crate) enum $name {
            $(
                $(#[doc = $vdoc])*
                #[codec(index = $idx)]
                $var $({ $($f: <$fty as Meta>::Rust),* })? $(( $(<$aty as Meta>::Rust),* ))?,
            )*
        }

        impl $name {
            /// The enum as finney's metadata describes it.
            pub(crate) fn describe(cx: &mut Cx<'_>) -> TypeId {
                let variants = vec![$(
                    var(
                        pallet_enum!(@name $var $($mname)?),
                        $idx,
                        vec![
                            $($(field(stringify!($f), <$fty as Meta>::id(cx), $fname)),*)?
                            $($(anon(<$aty as Meta>::id(cx), Some($aname))),*)?
                        ],
                    ),
                )*];
                let params = [$(($param, None)),*];
                cx.t.variant($path, &params, variants)
            }
        }
    };
}
pub(crate) use pallet_enum;
