//! Commitments: the bytes a neuron publishes for its subnet with `Commitments.set_commitment`
//! (for Sliver, where its artifacts can be read).
//!
//! On chain a commitment is up to `MaxFields` (3 on finney) fields of the `Data` enum, whose
//! `RawN` variants hold `N <= 128` bytes. Data of up to 128 bytes is one `RawN` field, exactly as
//! bittensor's `commit`/`get_commitment` write and read it; longer data is cut into up to three
//! fields, which [`Client::commitment`](super::Client::commitment) joins again. Hash and
//! timelock fields written by other tools are skipped when reading.
//!
//! The generated `Data` type is replaced by `scale_value::Value` (see `runtime.rs`): the enum
//! has 134 variants, one per length, and a `Value` names the variant by its length directly.

use subxt::ext::scale_value::{Composite, Primitive, Value, ValueDef};

use super::error::Error;
use super::ids::BlockNumber;

/// Bytes one `RawN` field holds.
pub const MAX_FIELD_BYTES: usize = 128;
/// Fields one commitment holds on finney (`Commitments.MaxFields`).
pub const MAX_FIELDS: usize = 3;
/// The largest commitment [`Call::set_commitment`](super::Call::set_commitment) writes.
pub const MAX_COMMITMENT_BYTES: usize = MAX_FIELD_BYTES * MAX_FIELDS;

/// A neuron's commitment as read from chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The block it was set at.
    pub block: BlockNumber,
    /// The bytes of its `Raw` fields, joined.
    pub data: Vec<u8>,
}

/// `data` as `Data::RawN` fields.
pub(crate) fn to_fields(data: &[u8]) -> Result<Vec<Value>, Error> {
    if data.len() > MAX_COMMITMENT_BYTES {
        return Err(Error::CommitmentTooLarge {
            len: data.len(),
            max: MAX_COMMITMENT_BYTES,
        });
    }
    if data.is_empty() {
        return Ok(vec![raw_field(&[])]);
    }
    Ok(data.chunks(MAX_FIELD_BYTES).map(raw_field).collect())
}

fn raw_field(chunk: &[u8]) -> Value {
    Value::unnamed_variant(format!("Raw{}", chunk.len()), [Value::from_bytes(chunk)])
}

/// The bytes of the `RawN` fields among `fields`, joined.
pub(crate) fn from_fields(fields: &[Value]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for field in fields {
        let ValueDef::Variant(variant) = &field.value else {
            return Err(Error::malformed(
                "Commitments.CommitmentOf",
                "a field is not a Data variant",
            ));
        };
        let Some(len) = variant.name.strip_prefix("Raw") else {
            continue;
        };
        let len: usize = len.parse().map_err(|_| {
            Error::malformed(
                "Commitments.CommitmentOf",
                format!("unknown field {}", variant.name),
            )
        })?;
        let bytes = variant
            .values
            .values()
            .next()
            .map(bytes_of)
            .transpose()?
            .unwrap_or_default();
        if bytes.len() != len {
            return Err(Error::malformed(
                "Commitments.CommitmentOf",
                format!("{} holds {} bytes", variant.name, bytes.len()),
            ));
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

fn bytes_of(value: &Value) -> Result<Vec<u8>, Error> {
    let bad = || {
        Error::malformed(
            "Commitments.CommitmentOf",
            "a Raw field is not a byte array",
        )
    };
    let ValueDef::Composite(Composite::Unnamed(items)) = &value.value else {
        return Err(bad());
    };
    items
        .iter()
        .map(|v| match &v.value {
            ValueDef::Primitive(Primitive::U128(b)) => u8::try_from(*b).map_err(|_| bad()),
            _ => Err(bad()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_data_is_one_raw_field_and_long_data_splits() {
        let fields = to_fields(b"s3://bucket/run").unwrap();
        assert_eq!(fields.len(), 1);
        let ValueDef::Variant(v) = &fields[0].value else {
            panic!()
        };
        assert_eq!(v.name, "Raw15");
        assert_eq!(from_fields(&fields).unwrap(), b"s3://bucket/run");

        let long: Vec<u8> = (0..300u16).map(|i| (i % 251) as u8).collect();
        let fields = to_fields(&long).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(from_fields(&fields).unwrap(), long);

        let err = to_fields(&[0; MAX_COMMITMENT_BYTES + 1]).unwrap_err();
        assert!(err.to_string().contains("385"), "{err}");
    }

    #[test]
    fn non_raw_fields_are_skipped() {
        let fields = vec![
            Value::unnamed_variant("BlakeTwo256", [Value::from_bytes([1u8; 32])]),
            raw_field(b"abc"),
        ];
        assert_eq!(from_fields(&fields).unwrap(), b"abc");
    }
}
