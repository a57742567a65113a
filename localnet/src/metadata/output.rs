//! Output structures of the runtime APIs, each declared once with [`output!`]: a Rust struct whose
//! derived SCALE encoding is what the runtime API serves, and whose fields the metadata describes,
//! each with the metadata type named by its [`Meta`](super::types::Meta) type and the Rust type
//! name finney publishes for it.

use scale_info::{Field, form::PortableForm};

use super::types::Cx;

/// An output structure declared with [`output!`].
pub(crate) trait Declared {
    /// The field names, in order.
    const NAMES: &'static [&'static str];
    /// The fields as the metadata describes them, in order.
    fn fields(cx: &mut Cx<'_>) -> Vec<Field<PortableForm>>;
    /// Each field SCALE-encoded, in order.
    fn encoded(&self) -> Vec<Vec<u8>>;
}

/// Declares an output structure once. Each row `name: RustType as "TypeName" = value` is a field:
/// its name; its type as finney's metadata names it ([`Meta`](super::types::Meta)), whose Rust type's
/// SCALE encoding is served; the Rust type name finney's metadata records for it; and its value,
/// computed from `new`'s arguments after the statements in the first braces (which may return
/// `None`: no such value). Generates the struct (`#[derive(Encode)]`), `new` and [`Declared`]:
///
/// ```text
/// output! {
///     /// `SubnetInfo` of `netuid`.
///     pub(crate) struct SubnetInfo(s: &Overlay<'_>, netuid: u16) {
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
            $($field: <$ty as $crate::metadata::types::Meta>::Rust,)*
        }

        impl $name {
            /// The value for these arguments, or `None` where there is none.
            $vis fn new($($arg: $arg_ty),*) -> Option<Self> {
                $($prelude)*
                Some(Self { $($field: $value,)* })
            }
        }

        impl $crate::metadata::output::Declared for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            fn fields(
                cx: &mut $crate::metadata::types::Cx<'_>,
            ) -> Vec<scale_info::Field<scale_info::form::PortableForm>> {
                use $crate::metadata::types::Meta;
                vec![$($crate::metadata::registry::field(
                    stringify!($field),
                    <$ty as Meta>::id(cx),
                    $type_name,
                ),)*]
            }

            fn encoded(&self) -> Vec<Vec<u8>> {
                vec![$(parity_scale_codec::Encode::encode(&self.$field),)*]
            }
        }
    };
}
pub(crate) use output;
