//! A small builder for the local chain's portable type registry.
//!
//! Substrate runtimes get their type registry from `#[derive(TypeInfo)]` on real Rust types; the
//! local chain instead describes finney's types directly, because what matters to clients is the
//! *shape* finney publishes (paths such as `sp_core::crypto::AccountId32`, field names, variant
//! indices), not the Rust types we happen to decode with. [`Types`] wraps scale-info's
//! [`PortableRegistryBuilder`], which interns structurally, so describing a type twice yields one id.

use scale_info::{
    Field, Path, PortableRegistry, PortableRegistryBuilder, Type, TypeDef, TypeDefArray,
    TypeDefCompact, TypeDefComposite, TypeDefPrimitive, TypeDefSequence, TypeDefTuple,
    TypeDefVariant, TypeParameter, Variant, form::PortableForm,
};

/// Id of a type in the registry being built.
pub(crate) type TypeId = u32;

/// A type parameter as scale-info records it: a name and, unless the parameter is skipped
/// (a pallet's `T: Config`), the type it was instantiated with.
pub(crate) type Param<'a> = (&'a str, Option<TypeId>);

/// Builder of the local chain's type registry.
#[derive(Debug, Default)]
pub(crate) struct Types {
    builder: PortableRegistryBuilder,
}

impl Types {
    /// An empty registry.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The finished registry, ids in registration order.
    pub(crate) fn finish(&self) -> PortableRegistry {
        self.builder.finish()
    }

    fn register(&mut self, path: &str, params: &[Param<'_>], def: TypeDef<PortableForm>) -> TypeId {
        let segments = if path.is_empty() {
            Vec::new()
        } else {
            path.split("::").map(str::to_owned).collect()
        };
        let params = params
            .iter()
            .map(|(name, ty)| TypeParameter::new_portable((*name).to_owned(), ty.map(Into::into)))
            .collect::<Vec<_>>();
        let ty = Type::new(Path { segments }, params, def, Vec::new());
        self.builder.register_type(ty)
    }

    /// A primitive.
    pub(crate) fn prim(&mut self, p: TypeDefPrimitive) -> TypeId {
        self.register("", &[], TypeDef::Primitive(p))
    }

    /// `u8`.
    pub(crate) fn u8(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::U8)
    }

    /// `u16` (also finney's `NetUid`, `NetUidStorageIndex` and `MechId`, which are transparent).
    pub(crate) fn u16(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::U16)
    }

    /// `u32`.
    pub(crate) fn u32(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::U32)
    }

    /// `u64` (also finney's `TaoBalance` and `AlphaBalance`, which are transparent).
    pub(crate) fn u64(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::U64)
    }

    /// `u128`.
    pub(crate) fn u128(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::U128)
    }

    /// `bool`.
    pub(crate) fn bool(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::Bool)
    }

    /// `str`.
    pub(crate) fn str(&mut self) -> TypeId {
        self.prim(TypeDefPrimitive::Str)
    }

    /// `()`.
    pub(crate) fn unit(&mut self) -> TypeId {
        self.tuple(&[])
    }

    /// `Vec<of>`.
    pub(crate) fn seq(&mut self, of: TypeId) -> TypeId {
        self.register("", &[], TypeDef::Sequence(TypeDefSequence::new(of.into())))
    }

    /// `Vec<u8>`.
    pub(crate) fn bytes(&mut self) -> TypeId {
        let u8 = self.u8();
        self.seq(u8)
    }

    /// `[of; len]`.
    pub(crate) fn array(&mut self, len: u32, of: TypeId) -> TypeId {
        self.register("", &[], TypeDef::Array(TypeDefArray::new(len, of.into())))
    }

    /// `[u8; len]`.
    pub(crate) fn byte_array(&mut self, len: u32) -> TypeId {
        let u8 = self.u8();
        self.array(len, u8)
    }

    /// A tuple.
    pub(crate) fn tuple(&mut self, of: &[TypeId]) -> TypeId {
        let def = TypeDefTuple::new_portable(of.iter().map(|&id| id.into()));
        self.register("", &[], TypeDef::Tuple(def))
    }

    /// `Compact<of>`.
    pub(crate) fn compact(&mut self, of: TypeId) -> TypeId {
        self.register("", &[], TypeDef::Compact(TypeDefCompact::new(of.into())))
    }

    /// A struct.
    pub(crate) fn composite(
        &mut self,
        path: &str,
        params: &[Param<'_>],
        fields: Vec<Field<PortableForm>>,
    ) -> TypeId {
        let def = TypeDef::Composite(TypeDefComposite { fields });
        self.register(path, params, def)
    }

    /// An enum.
    pub(crate) fn variant(
        &mut self,
        path: &str,
        params: &[Param<'_>],
        variants: Vec<Variant<PortableForm>>,
    ) -> TypeId {
        let def = TypeDef::Variant(TypeDefVariant { variants });
        self.register(path, params, def)
    }

    /// An enum whose variants carry no data, indexed from 0 in order.
    pub(crate) fn unit_enum(&mut self, path: &str, params: &[Param<'_>], names: &[&str]) -> TypeId {
        let variants = names
            .iter()
            .enumerate()
            .map(|(i, name)| var(name, index_u8(i), vec![]))
            .collect();
        self.variant(path, params, variants)
    }

    /// `Option<of>`.
    pub(crate) fn option(&mut self, of: TypeId) -> TypeId {
        let variants = vec![var("None", 0, vec![]), var("Some", 1, vec![anon(of, None)])];
        self.variant("Option", &[("T", Some(of))], variants)
    }

    /// `Result<ok, err>`.
    pub(crate) fn result(&mut self, ok: TypeId, err: TypeId) -> TypeId {
        let variants = vec![
            var("Ok", 0, vec![anon(ok, None)]),
            var("Err", 1, vec![anon(err, None)]),
        ];
        self.variant("Result", &[("T", Some(ok)), ("E", Some(err))], variants)
    }

    /// `bounded_collections::bounded_vec::BoundedVec<of, S>`.
    pub(crate) fn bounded_vec(&mut self, of: TypeId) -> TypeId {
        let seq = self.seq(of);
        self.composite(
            "bounded_collections::bounded_vec::BoundedVec",
            &[("T", Some(of)), ("S", None)],
            vec![anon(seq, Some("Vec<T>"))],
        )
    }
}

/// A named field with its Rust type name as finney's metadata spells it.
pub(crate) fn field(name: &str, ty: TypeId, type_name: &str) -> Field<PortableForm> {
    Field {
        name: Some(name.to_owned()),
        ty: ty.into(),
        type_name: Some(type_name.to_owned()),
        docs: Vec::new(),
    }
}

/// An unnamed (tuple-struct or tuple-variant) field.
pub(crate) fn anon(ty: TypeId, type_name: Option<&str>) -> Field<PortableForm> {
    named(None, ty, type_name)
}

/// A field in full: optional name, type, optional Rust type name.
pub(crate) fn named(
    name: Option<&str>,
    ty: TypeId,
    type_name: Option<&str>,
) -> Field<PortableForm> {
    Field {
        name: name.map(str::to_owned),
        ty: ty.into(),
        type_name: type_name.map(str::to_owned),
        docs: Vec::new(),
    }
}

/// An enum variant.
pub(crate) fn var(
    name: &str,
    index: u8,
    fields: Vec<Field<PortableForm>>,
) -> Variant<PortableForm> {
    Variant {
        name: name.to_owned(),
        fields,
        index,
        docs: Vec::new(),
    }
}

/// A variant index from a position in a list known to be shorter than 256.
///
/// # Panics
/// If `i > 255`: every list this is used on is a fixed table well under that.
#[allow(
    clippy::expect_used,
    reason = "used only on fixed tables well under 256 entries (documented panic)"
)]
pub(crate) fn index_u8(i: usize) -> u8 {
    u8::try_from(i).expect("enum tables have at most 256 variants")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structurally_equal_types_share_an_id() {
        let mut t = Types::new();
        let a = t.bytes();
        let b = t.bytes();
        assert_eq!(a, b);
        let o1 = t.option(a);
        let o2 = t.option(b);
        assert_eq!(o1, o2);
        let reg = t.finish();
        assert_eq!(
            reg.resolve(o1).map(|ty| ty.path.segments.clone()),
            Some(vec!["Option".to_owned()])
        );
    }
}
