//! Structural comparison of types across two registries.
//!
//! Two types have the same shape when their paths, type parameters, field names and Rust type
//! names, variant names and indices, and definitions agree, recursively; ids and docs do not
//! matter. The outer and pallet `Call`/`Event`/`Error` enums may be a *subset* on the local side
//! (the local chain has fewer calls), but every variant it has must be finney's.

use std::collections::HashSet;

use scale_info::{Field, PortableRegistry, TypeDef, form::PortableForm};

/// Compares types `l` (local) and `f` (finney), pushing one line per mismatch into `errs`.
pub struct Shapes<'a> {
    local: &'a PortableRegistry,
    finney: &'a PortableRegistry,
    seen: HashSet<(u32, u32)>,
    /// Mismatches found so far.
    pub errs: Vec<String>,
}

const SUBSET_ENUMS: [&str; 6] = [
    "Call",
    "Event",
    "Error",
    "RuntimeCall",
    "RuntimeEvent",
    "RuntimeError",
];

impl<'a> Shapes<'a> {
    pub fn new(local: &'a PortableRegistry, finney: &'a PortableRegistry) -> Self {
        Self {
            local,
            finney,
            seen: HashSet::new(),
            errs: Vec::new(),
        }
    }

    fn err(&mut self, at: &str, msg: String) {
        self.errs.push(format!("{at}: {msg}"));
    }

    /// Compares two types; `at` names where they were reached from, for messages.
    pub fn same(&mut self, at: &str, l: u32, f: u32) {
        if !self.seen.insert((l, f)) {
            return;
        }
        let (Some(lt), Some(ft)) = (self.local.resolve(l), self.finney.resolve(f)) else {
            self.err(at, format!("unresolvable type id (local {l}, finney {f})"));
            return;
        };
        let path = ft.path.segments.join("::");
        let at = if path.is_empty() {
            at.to_owned()
        } else {
            format!("{at} <{path}>")
        };
        if lt.path != ft.path {
            self.err(
                &at,
                format!(
                    "path {:?} vs finney {:?}",
                    lt.path.segments, ft.path.segments
                ),
            );
            return;
        }
        if lt.type_params.len() != ft.type_params.len() {
            self.err(
                &at,
                format!(
                    "{} type params vs finney {}",
                    lt.type_params.len(),
                    ft.type_params.len()
                ),
            );
        }
        for (lp, fp) in lt.type_params.iter().zip(&ft.type_params) {
            if lp.name != fp.name {
                self.err(&at, format!("type param {} vs finney {}", lp.name, fp.name));
            }
            match (lp.ty, fp.ty) {
                (Some(a), Some(b)) => self.same(&format!("{at}<{}>", lp.name), a.id, b.id),
                (None, None) => {}
                _ => self.err(
                    &at,
                    format!(
                        "type param {} bound {:?} vs finney {:?}",
                        lp.name, lp.ty, fp.ty
                    ),
                ),
            }
        }
        match (&lt.type_def, &ft.type_def) {
            (TypeDef::Composite(a), TypeDef::Composite(b)) => {
                self.fields(&at, &a.fields, &b.fields)
            }
            (TypeDef::Variant(a), TypeDef::Variant(b)) => {
                let subset = ft
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| SUBSET_ENUMS.contains(&s.as_str()));
                if !subset && a.variants.len() != b.variants.len() {
                    self.err(
                        &at,
                        format!(
                            "{} variants vs finney {}",
                            a.variants.len(),
                            b.variants.len()
                        ),
                    );
                }
                for lv in &a.variants {
                    let Some(fv) = b.variants.iter().find(|v| v.name == lv.name) else {
                        self.err(&at, format!("variant {} is not finney's", lv.name));
                        continue;
                    };
                    if lv.index != fv.index {
                        self.err(
                            &at,
                            format!(
                                "variant {} index {} vs finney {}",
                                lv.name, lv.index, fv.index
                            ),
                        );
                    }
                    self.fields(&format!("{at}::{}", lv.name), &lv.fields, &fv.fields);
                }
            }
            (TypeDef::Sequence(a), TypeDef::Sequence(b)) => {
                self.same(&format!("{at}[..]"), a.type_param.id, b.type_param.id)
            }
            (TypeDef::Array(a), TypeDef::Array(b)) => {
                if a.len != b.len {
                    self.err(&at, format!("array of {} vs finney {}", a.len, b.len));
                }
                self.same(&format!("{at}[..]"), a.type_param.id, b.type_param.id);
            }
            (TypeDef::Tuple(a), TypeDef::Tuple(b)) => {
                if a.fields.len() != b.fields.len() {
                    self.err(
                        &at,
                        format!(
                            "{}-tuple vs finney {}-tuple",
                            a.fields.len(),
                            b.fields.len()
                        ),
                    );
                }
                for (i, (x, y)) in a.fields.iter().zip(&b.fields).enumerate() {
                    self.same(&format!("{at}.{i}"), x.id, y.id);
                }
            }
            (TypeDef::Primitive(a), TypeDef::Primitive(b)) => {
                if a != b {
                    self.err(&at, format!("{a:?} vs finney {b:?}"));
                }
            }
            (TypeDef::Compact(a), TypeDef::Compact(b)) => {
                self.same(&format!("Compact<{at}>"), a.type_param.id, b.type_param.id)
            }
            (TypeDef::BitSequence(a), TypeDef::BitSequence(b)) => {
                self.same(
                    &format!("{at}.store"),
                    a.bit_store_type.id,
                    b.bit_store_type.id,
                );
                self.same(
                    &format!("{at}.order"),
                    a.bit_order_type.id,
                    b.bit_order_type.id,
                );
            }
            (a, b) => self.err(&at, format!("{} vs finney {}", kind(a), kind(b))),
        }
    }

    fn fields(&mut self, at: &str, a: &[Field<PortableForm>], b: &[Field<PortableForm>]) {
        if a.len() != b.len() {
            let names = |fs: &[Field<PortableForm>]| {
                fs.iter()
                    .map(|f| format!("{:?}", f.name))
                    .collect::<Vec<_>>()
            };
            self.err(
                at,
                format!("fields {:?} vs finney {:?}", names(a), names(b)),
            );
            return;
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let name = x.name.clone().unwrap_or_else(|| i.to_string());
            if x.name != y.name || x.type_name != y.type_name {
                self.err(
                    at,
                    format!(
                        "field {:?}: {:?} vs finney {:?}: {:?}",
                        x.name, x.type_name, y.name, y.type_name
                    ),
                );
            }
            self.same(&format!("{at}.{name}"), x.ty.id, y.ty.id);
        }
    }
}

fn kind(def: &TypeDef<PortableForm>) -> &'static str {
    match def {
        TypeDef::Composite(_) => "struct",
        TypeDef::Variant(_) => "enum",
        TypeDef::Sequence(_) => "sequence",
        TypeDef::Array(_) => "array",
        TypeDef::Tuple(_) => "tuple",
        TypeDef::Primitive(_) => "primitive",
        TypeDef::Compact(_) => "compact",
        TypeDef::BitSequence(_) => "bit sequence",
    }
}

#[cfg(test)]
mod tests {
    use scale_info::{
        Field, Path, PortableRegistry, PortableRegistryBuilder, Type, TypeDef, TypeDefComposite,
        TypeDefPrimitive, TypeDefVariant, Variant, form::PortableForm,
    };

    use super::Shapes;

    fn registry(variant_index: u8, type_name: &str) -> (PortableRegistry, u32, u32) {
        let mut b = PortableRegistryBuilder::new();
        let u16 = b.register_type(Type::new(
            Path::default(),
            vec![],
            TypeDef::Primitive(TypeDefPrimitive::U16),
            vec![],
        ));
        let field = Field::<PortableForm> {
            name: Some("netuid".into()),
            ty: u16.into(),
            type_name: Some(type_name.into()),
            docs: vec![],
        };
        let s = b.register_type(Type::new(
            Path {
                segments: vec!["m".into(), "S".into()],
            },
            vec![],
            TypeDef::Composite(TypeDefComposite {
                fields: vec![field],
            }),
            vec![],
        ));
        let e = b.register_type(Type::new(
            Path {
                segments: vec!["m".into(), "E".into()],
            },
            vec![],
            TypeDef::Variant(TypeDefVariant {
                variants: vec![Variant {
                    name: "A".into(),
                    fields: vec![],
                    index: variant_index,
                    docs: vec![],
                }],
            }),
            vec![],
        ));
        (b.finish(), s, e)
    }

    /// The checker is only worth something if it notices differences.
    #[test]
    fn differences_are_reported() {
        let (a, a_struct, a_enum) = registry(0, "NetUid");
        let (b, b_struct, b_enum) = registry(1, "u16");
        let mut same = Shapes::new(&a, &a);
        same.same("struct", a_struct, a_struct);
        same.same("enum", a_enum, a_enum);
        assert!(same.errs.is_empty(), "{:?}", same.errs);

        let mut diff = Shapes::new(&a, &b);
        diff.same("struct", a_struct, b_struct);
        diff.same("enum", a_enum, b_enum);
        diff.same("struct vs enum", a_struct, b_enum);
        assert_eq!(diff.errs.len(), 3, "{:?}", diff.errs);
        assert!(diff.errs[0].contains("NetUid"), "{}", diff.errs[0]);
        assert!(
            diff.errs[1].contains("index 0 vs finney 1"),
            "{}",
            diff.errs[1]
        );
    }
}
