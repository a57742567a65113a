//! Wire codecs: how a boundary tensor (activation or gradient) becomes bytes.
//!
//! A message is a small self-describing header followed by the codec's
//! payload. Sizes are exact and known up front ([`WireCodec::encoded_len`]),
//! so compression ratios are measured from real bytes, never estimated.
//!
//! ```text
//! offset  size      field
//! 0       4         magic "SLVW"
//! 4       1         format version (WIRE_VERSION)
//! 5       1         codec id (CodecKind as u8)
//! 6       1         ndim (1..=MAX_DIMS)
//! 7       1         reserved, must be 0
//! 8       4         values per scale row (u32 LE, 1..=numel; last row may be shorter)
//! 12      4*ndim    dims (u32 LE)
//! 12+4n   ...       payload (codec-specific, little-endian)
//! ```
//!
//! Decoding treats the bytes as hostile: they come from another miner.
//! Every length, dimension and value is checked before a tensor is built;
//! non-finite values are rejected. Each tensor has one valid encoding: the
//! reserved byte is zero, the row length is at most the number of values
//! (the encoder writes `min(row, numel)`), int8 codes are -127..=127, int4
//! codes -7..=7 with a zero padding nibble, and their scales positive (int2's rules are in its
//! module). Receivers that know what they expect use
//! [`WireCodec::decode_expected`], which refuses other dims, codecs or sizes
//! before anything is allocated.
//!
//! | codec   | payload per row of `r` values        | max error per value          |
//! |---------|--------------------------------------|------------------------------|
//! | `fp32`  | `4r`                                 | exact                        |
//! | `bf16`  | `2r`                                 | relative 2^-8                |
//! | `int8`  | f32 scale + `r` i8 (symmetric)       | absmax(row) / 254            |
//! | `uint8` | f32 min + f32 scale + `r` u8         | (max - min)(row) / 510       |
//! | `int4`  | f32 scale + `ceil(r/2)` packed nibbles | absmax(row) / 14           |
//! | `fp8`   | f32 scale + `r` E4M3 floats          | relative 2^-4 from s·2^-6 up, s·2^-10 below (s = absmax(row) / 448) |
//! | `int2`  | f32 scale + `ceil(r/4)` packed 2-bit codes | none per value (four levels, `±s/2`, `±3s/2`); about 12% of the row's mean square for Gaussian rows |
//! | `int4log` | one scale byte + `ceil(r/2)` packed nibbles | 2^(1/4) · absmax(row) / 14 |
//! | `int2log` | one scale byte + `ceil(r/4)` packed 2-bit codes | as `int2`, the scale within 2^(1/8) of int2's |
//! | `int4unit` | `ceil(r/2)` packed nibbles, no scale | √r / 14 where \|x\| ≤ √r (every value of a row of unit RMS); clipped beyond |

mod bf16;
mod fp32;
mod fp8;
mod int2;
mod int4;
mod int4log;
mod int4unit;
mod int8;
mod uint8;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[cfg(target_endian = "big")]
compile_error!("the Sliver wire format is little-endian and codecs copy host memory directly");

/// Magic bytes at the start of every wire message.
pub const WIRE_MAGIC: [u8; 4] = *b"SLVW";
/// Wire format version; bump on any incompatible change to the header or a payload.
pub const WIRE_VERSION: u8 = 1;
/// Most dimensions a wire tensor may have.
pub const MAX_DIMS: usize = 6;
/// Most values one wire tensor may hold (guards allocations driven by hostile headers).
pub const MAX_VALUES: usize = 1 << 30;

/// Which codec serializes boundary tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecKind {
    /// 32-bit floats, lossless.
    Fp32,
    /// bfloat16: fp32's range, 8 bits of mantissa.
    Bf16,
    /// Symmetric 8-bit integers with one f32 scale per row.
    Int8,
    /// Asymmetric 8-bit integers with one f32 minimum and scale per row.
    Uint8,
    /// Symmetric 4-bit integers, two per byte, with one f32 scale per row.
    Int4,
    /// 8-bit floats (E4M3) with one f32 scale per row: int8's size, a relative error.
    Fp8,
    /// Four levels (2 bits), four per byte, with one least-squares f32 scale per row.
    Int2,
    /// int4's codes with a one-byte scale per row (a quarter power of two).
    Int4Log,
    /// int4's codes on the fixed grid `√row / 7`, no scale: for rows scaled to unit RMS.
    Int4Unit,
    /// int2's codes with a one-byte scale per row (a quarter power of two).
    Int2Log,
}

impl CodecKind {
    /// Every codec, in id order.
    pub const ALL: [CodecKind; 10] = [
        CodecKind::Fp32,
        CodecKind::Bf16,
        CodecKind::Int8,
        CodecKind::Uint8,
        CodecKind::Int4,
        CodecKind::Fp8,
        CodecKind::Int2,
        CodecKind::Int4Log,
        CodecKind::Int4Unit,
        CodecKind::Int2Log,
    ];

    /// Its id in wire and artifact headers.
    pub fn id(self) -> u8 {
        match self {
            CodecKind::Fp32 => 0,
            CodecKind::Bf16 => 1,
            CodecKind::Int8 => 2,
            CodecKind::Uint8 => 3,
            CodecKind::Int4 => 4,
            CodecKind::Fp8 => 5,
            CodecKind::Int2 => 6,
            CodecKind::Int4Log => 7,
            CodecKind::Int4Unit => 8,
            CodecKind::Int2Log => 9,
        }
    }

    /// Whether a value's code depends on the other values of its row, through a scale
    /// (or minimum) computed from them. Only then may a row not span tokens
    /// ([`BoundarySpec::scales_span_tokens`](crate::spec::BoundarySpec::scales_span_tokens)).
    pub fn has_scales(self) -> bool {
        !matches!(
            self,
            CodecKind::Fp32 | CodecKind::Bf16 | CodecKind::Int4Unit
        )
    }

    /// The codec with header id `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }

    fn imp(self) -> &'static dyn Codec {
        match self {
            CodecKind::Fp32 => &fp32::Fp32,
            CodecKind::Bf16 => &bf16::Bf16,
            CodecKind::Int8 => &int8::Int8,
            CodecKind::Uint8 => &uint8::Uint8,
            CodecKind::Int4 => &int4::Int4,
            CodecKind::Fp8 => &fp8::Fp8,
            CodecKind::Int2 => &int2::Int2 { log_scale: false },
            CodecKind::Int2Log => &int2::Int2 { log_scale: true },
            CodecKind::Int4Log => &int4log::Int4Log,
            CodecKind::Int4Unit => &int4unit::Int4Unit,
        }
    }
}

impl std::fmt::Display for CodecKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodecKind::Fp32 => "fp32",
            CodecKind::Bf16 => "bf16",
            CodecKind::Int8 => "int8",
            CodecKind::Uint8 => "uint8",
            CodecKind::Int4 => "int4",
            CodecKind::Fp8 => "fp8",
            CodecKind::Int2 => "int2",
            CodecKind::Int4Log => "int4log",
            CodecKind::Int4Unit => "int4unit",
            CodecKind::Int2Log => "int2log",
        })
    }
}

/// A wire message could not be produced or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The message is shorter than its header says.
    #[error("wire message truncated: need {needed} bytes, got {got}")]
    Truncated {
        /// Bytes the header implies.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The message does not start with [`WIRE_MAGIC`].
    #[error("not a Sliver wire message (bad magic {found:02x?})")]
    BadMagic {
        /// The first bytes found.
        found: [u8; 4],
    },
    /// The message was written by an incompatible format version.
    #[error("unsupported wire format version {found} (this build reads {WIRE_VERSION})")]
    Version {
        /// Version in the header.
        found: u8,
    },
    /// The codec id is unknown.
    #[error("unknown codec id {0} in wire header")]
    UnknownCodec(u8),
    /// The message uses a different codec than the receiver expects.
    #[error("wire message uses codec {found}, expected {expected}")]
    WrongCodec {
        /// Codec the receiver expects.
        expected: CodecKind,
        /// Codec in the header.
        found: CodecKind,
    },
    /// The header's shape is malformed or too large.
    #[error("bad wire shape {dims:?} (row {row}): {reason}")]
    BadShape {
        /// Dimensions from the header.
        dims: Vec<u64>,
        /// Values per row from the header.
        row: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A header byte that must be zero is not.
    #[error("wire header reserved byte is {found}, must be 0")]
    Reserved {
        /// The byte found.
        found: u8,
    },
    /// The message is not the one the receiver expects (dims, row length or size).
    #[error("wire message is not what the receiver expects: {reason}")]
    Unexpected {
        /// What differs.
        reason: String,
    },
    /// A quantized value or scale outside the codec's canonical range.
    #[error("{what}")]
    OutOfRange {
        /// What is wrong.
        what: &'static str,
    },
    /// The message is longer than its header says.
    #[error("wire message has {extra} trailing bytes after the payload")]
    Trailing {
        /// Extra bytes.
        extra: usize,
    },
    /// The tensor (or a decoded scale) holds NaN or infinity.
    #[error("{what} holds non-finite values")]
    NonFinite {
        /// Which part: "tensor", "scales", ...
        what: &'static str,
    },
    /// libtorch failed on a codec operation.
    #[error("tensor operation failed in codec {codec}")]
    Torch {
        /// The codec.
        codec: CodecKind,
        /// The error.
        #[source]
        source: tch::TchError,
    },
}

/// One codec's payload format. Implementations see the tensor as `rows`
/// rows of `row` values (the last row possibly shorter, `numel` in all), as a
/// contiguous f32 CPU tensor padded with zeros to `rows * row` values.
trait Codec: Sync {
    /// Payload bytes for `numel` values in `rows` rows.
    fn payload_len(&self, numel: usize, rows: usize) -> usize;
    /// Appends the payload for `x` (shape `[rows, row]`, padded) to `out`.
    fn encode(&self, x: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError>;
    /// Reads `payload` (exactly `payload_len` bytes) back into a `[rows, row]` f32 tensor (padded with zeros).
    fn decode(
        &self,
        payload: &[u8],
        numel: usize,
        rows: usize,
        row: usize,
    ) -> Result<Tensor, CodecError>;
}

/// A codec together with its row length: what a stage boundary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireCodec {
    kind: CodecKind,
    row: usize,
}

/// A decoded wire header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireHeader {
    /// Codec of the payload.
    pub codec: CodecKind,
    /// Values per scale row.
    pub row: usize,
    /// Tensor dimensions.
    pub dims: Vec<i64>,
}

impl WireCodec {
    /// A codec whose quantization rows hold `row` values; `row = 0` means one row per
    /// slice of the last dimension.
    pub fn new(kind: CodecKind, row: usize) -> Self {
        Self { kind, row }
    }

    /// The codec.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Values per scale row for a tensor of shape `dims`: never more than it holds, so each
    /// tensor has one encoding.
    fn row_len(&self, dims: &[i64]) -> usize {
        let numel = dims.iter().map(|&d| d.max(1) as usize).product::<usize>();
        let row = if self.row != 0 {
            self.row
        } else {
            dims.last().map_or(1, |&d| d.max(1) as usize)
        };
        row.min(numel).max(1)
    }

    /// Exact size in bytes of the message [`encode`](Self::encode) writes for a tensor of shape `dims`.
    pub fn encoded_len(&self, dims: &[i64]) -> usize {
        let numel: usize = dims.iter().map(|&d| d as usize).product();
        let row = self.row_len(dims);
        header_len(dims.len()) + self.kind.imp().payload_len(numel, numel.div_ceil(row))
    }

    /// Serializes a float tensor (any device) to a wire message.
    ///
    /// # Errors
    /// [`CodecError::NonFinite`] if the tensor holds NaN or infinity,
    /// [`CodecError::BadShape`] for a shape the header cannot carry.
    pub fn encode(&self, t: &Tensor) -> Result<Vec<u8>, CodecError> {
        let torch = |source| CodecError::Torch {
            codec: self.kind,
            source,
        };
        let dims = t.size();
        let numel: usize = dims.iter().map(|&d| d as usize).product();
        let row = self.row_len(&dims);
        check_shape(
            &dims.iter().map(|&d| d as u64).collect::<Vec<_>>(),
            row as u64,
        )?;
        let x = t
            .f_detach()
            .and_then(|x| x.f_to_device(Device::Cpu))
            .and_then(|x| x.f_to_kind(Kind::Float))
            .map_err(torch)?;
        if !all_finite(&x).map_err(torch)? {
            return Err(CodecError::NonFinite { what: "tensor" });
        }
        let rows = numel.div_ceil(row);
        let flat = x.f_reshape([numel as i64]).map_err(torch)?;
        let padded = if rows * row > numel {
            Tensor::f_cat(
                &[
                    flat,
                    Tensor::zeros([(rows * row - numel) as i64], (Kind::Float, Device::Cpu)),
                ],
                0,
            )
            .map_err(torch)?
        } else {
            flat
        };
        let grid = padded
            .f_reshape([rows as i64, row as i64])
            .and_then(|g| g.f_contiguous())
            .map_err(torch)?;

        let mut out = Vec::with_capacity(self.encoded_len(&dims));
        out.extend_from_slice(&WIRE_MAGIC);
        out.extend_from_slice(&[WIRE_VERSION, self.kind.id(), dims.len() as u8, 0]);
        out.extend_from_slice(&(row as u32).to_le_bytes());
        for &d in &dims {
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        self.kind
            .imp()
            .encode(&grid, numel, &mut out)
            .map_err(torch)?;
        debug_assert_eq!(out.len(), self.encoded_len(&dims));
        Ok(out)
    }

    /// Reads a wire message that must use this codec, onto `device`.
    ///
    /// # Errors
    /// Every way the bytes can be malformed, see [`CodecError`]; also
    /// [`CodecError::WrongCodec`] when the message uses another codec.
    pub fn decode(&self, bytes: &[u8], device: Device) -> Result<Tensor, CodecError> {
        let header = read_header(bytes)?;
        if header.codec != self.kind {
            return Err(CodecError::WrongCodec {
                expected: self.kind,
                found: header.codec,
            });
        }
        decode_with(&header, bytes, device)
    }

    /// Reads a wire message that must hold a tensor of exactly `dims`, in this codec with its
    /// row length, in at most `max_bytes`: what a receiver that knows what it asked for uses.
    /// Everything is checked against the expectation before anything is allocated.
    ///
    /// # Errors
    /// [`CodecError::Unexpected`] for another size, shape or row length,
    /// [`CodecError::WrongCodec`] for another codec, and every way the bytes can be malformed.
    pub fn decode_expected(
        &self,
        bytes: &[u8],
        dims: &[i64],
        max_bytes: usize,
        device: Device,
    ) -> Result<Tensor, CodecError> {
        let unexpected = |reason: String| CodecError::Unexpected { reason };
        if bytes.len() > max_bytes {
            return Err(unexpected(format!(
                "{} bytes, more than the limit of {max_bytes}",
                bytes.len()
            )));
        }
        let expected_len = self.encoded_len(dims);
        if bytes.len() != expected_len {
            return Err(unexpected(format!(
                "{} bytes, expected {expected_len} for dims {dims:?}",
                bytes.len()
            )));
        }
        let header = read_header(bytes)?;
        if header.codec != self.kind {
            return Err(CodecError::WrongCodec {
                expected: self.kind,
                found: header.codec,
            });
        }
        if header.dims != dims {
            return Err(unexpected(format!(
                "dims {:?}, expected {dims:?}",
                header.dims
            )));
        }
        let row = self.row_len(dims);
        if header.row != row {
            return Err(unexpected(format!(
                "row length {}, expected {row}",
                header.row
            )));
        }
        decode_with(&header, bytes, device)
    }
}

/// Reads any wire message, whatever its codec.
///
/// # Errors
/// See [`CodecError`].
pub fn decode(bytes: &[u8], device: Device) -> Result<(WireHeader, Tensor), CodecError> {
    let header = read_header(bytes)?;
    let t = decode_with(&header, bytes, device)?;
    Ok((header, t))
}

fn header_len(ndim: usize) -> usize {
    12 + 4 * ndim
}

fn check_shape(dims: &[u64], row: u64) -> Result<(), CodecError> {
    let bad = |reason| CodecError::BadShape {
        dims: dims.to_vec(),
        row,
        reason,
    };
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(bad("must have 1 to 6 dimensions"));
    }
    if dims.iter().any(|&d| d == 0 || d > u32::MAX as u64) {
        return Err(bad("every dimension must be in 1..=u32::MAX"));
    }
    let numel = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("too many values"))?;
    if numel > MAX_VALUES as u64 {
        return Err(bad("too many values"));
    }
    if row == 0 || row > numel {
        return Err(bad("row length must be in 1..=number of values"));
    }
    Ok(())
}

/// Parses and checks a wire header without touching the payload.
///
/// # Errors
/// See [`CodecError`].
pub fn read_header(bytes: &[u8]) -> Result<WireHeader, CodecError> {
    if bytes.len() < header_len(0) {
        return Err(CodecError::Truncated {
            needed: header_len(0),
            got: bytes.len(),
        });
    }
    let magic: [u8; 4] = bytes[0..4].try_into().unwrap_or_default();
    if magic != WIRE_MAGIC {
        return Err(CodecError::BadMagic { found: magic });
    }
    if bytes[4] != WIRE_VERSION {
        return Err(CodecError::Version { found: bytes[4] });
    }
    let codec = CodecKind::from_id(bytes[5]).ok_or(CodecError::UnknownCodec(bytes[5]))?;
    if bytes[7] != 0 {
        return Err(CodecError::Reserved { found: bytes[7] });
    }
    let ndim = bytes[6] as usize;
    let u32_at = |at: usize| {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as u64
    };
    let row = u32_at(8);
    if ndim == 0 || ndim > MAX_DIMS {
        return Err(CodecError::BadShape {
            dims: vec![],
            row,
            reason: "must have 1 to 6 dimensions",
        });
    }
    if bytes.len() < header_len(ndim) {
        return Err(CodecError::Truncated {
            needed: header_len(ndim),
            got: bytes.len(),
        });
    }
    let dims: Vec<u64> = (0..ndim).map(|i| u32_at(12 + 4 * i)).collect();
    check_shape(&dims, row)?;
    Ok(WireHeader {
        codec,
        row: row as usize,
        dims: dims.into_iter().map(|d| d as i64).collect(),
    })
}

fn decode_with(header: &WireHeader, bytes: &[u8], device: Device) -> Result<Tensor, CodecError> {
    let numel: usize = header.dims.iter().map(|&d| d as usize).product();
    let rows = numel.div_ceil(header.row);
    let start = header_len(header.dims.len());
    let needed = start + header.codec.imp().payload_len(numel, rows);
    if bytes.len() < needed {
        return Err(CodecError::Truncated {
            needed,
            got: bytes.len(),
        });
    }
    if bytes.len() > needed {
        return Err(CodecError::Trailing {
            extra: bytes.len() - needed,
        });
    }
    let grid = header
        .codec
        .imp()
        .decode(&bytes[start..], numel, rows, header.row)?;
    let torch = |source| CodecError::Torch {
        codec: header.codec,
        source,
    };
    let t = grid
        .f_reshape([(rows * header.row) as i64])
        .and_then(|f| f.f_narrow(0, 0, numel as i64))
        .and_then(|f| f.f_reshape(header.dims.as_slice()))
        .map_err(torch)?;
    if !all_finite(&t).map_err(torch)? {
        return Err(CodecError::NonFinite { what: "tensor" });
    }
    t.f_to_device(device).map_err(torch)
}

fn all_finite(t: &Tensor) -> Result<bool, tch::TchError> {
    Ok(t.f_isfinite()?.f_all()?.int64_value(&[]) != 0)
}

/// Copies the raw bytes of a contiguous CPU tensor's first `numel` values.
fn tensor_bytes(t: &Tensor, numel: usize, out: &mut Vec<u8>) -> Result<(), tch::TchError> {
    let flat = t
        .f_reshape([-1])?
        .f_narrow(0, 0, numel as i64)?
        .f_contiguous()?;
    let width = flat.kind().elt_size_in_bytes();
    let start = out.len();
    out.resize(start + numel * width, 0);
    flat.f_copy_data_u8(&mut out[start..], numel)?;
    Ok(())
}

/// Builds a `[rows, row]` tensor of `kind` from the raw bytes of `numel` values, padding with zeros.
fn tensor_from_bytes(
    bytes: &[u8],
    kind: Kind,
    numel: usize,
    rows: usize,
    row: usize,
) -> Result<Tensor, tch::TchError> {
    let t = Tensor::f_from_data_size(bytes, &[numel as i64], kind)?;
    let pad = rows * row - numel;
    let t = if pad > 0 {
        Tensor::f_cat(
            &[
                t.shallow_clone(),
                Tensor::f_zeros([pad as i64], (kind, Device::Cpu))?,
            ],
            0,
        )?
    } else {
        t
    };
    t.f_reshape([rows as i64, row as i64])
}

/// The first `numel` values of the padded `[rows, row]` grid an encoder is given, and `row`:
/// for codecs that quantize in Rust rather than in libtorch (int2, int4log).
fn row_values(x: &Tensor, numel: usize) -> Result<(Vec<f32>, usize), tch::TchError> {
    let row = x.size().get(1).copied().unwrap_or(1).max(1) as usize;
    let mut values = vec![0f32; numel];
    x.f_reshape([-1])?
        .f_narrow(0, 0, numel as i64)?
        .f_contiguous()?
        .f_copy_data(&mut values, numel)?;
    Ok((values, row))
}

/// The `[rows, row]` f32 grid a decoder returns, from `rows * row` values.
fn grid_of(
    values: &[f32],
    rows: usize,
    row: usize,
    codec: CodecKind,
) -> Result<Tensor, CodecError> {
    Tensor::f_from_slice(values)
        .and_then(|t| t.f_reshape([rows as i64, row as i64]))
        .map_err(|source| CodecError::Torch { codec, source })
}

/// Reads `rows` little-endian f32 values (per-row scales or minima).
fn f32_column(bytes: &[u8], rows: usize) -> Result<Tensor, CodecError> {
    let t = Tensor::f_from_data_size(&bytes[..rows * 4], &[rows as i64, 1], Kind::Float).map_err(
        |source| CodecError::Torch {
            codec: CodecKind::Fp32,
            source,
        },
    )?;
    if !all_finite(&t).map_err(|source| CodecError::Torch {
        codec: CodecKind::Fp32,
        source,
    })? {
        return Err(CodecError::NonFinite { what: "scales" });
    }
    Ok(t)
}

/// Symmetric quantization of each row of `x` to integer codes in `-levels..=levels`: returns
/// the per-row scales (`absmax / levels`, an all-zero row getting the smallest positive scale,
/// so every scale is positive) and the codes as `int8`, shaped like `x`. int8 and int4 share it.
fn quantize_symmetric(x: &Tensor, levels: f64) -> Result<(Tensor, Tensor), tch::TchError> {
    let absmax = x.f_abs()?.f_amax([1].as_slice(), true)?;
    let scale = (absmax / levels).f_clamp_min(f32::MIN_POSITIVE as f64)?;
    let q = (x / &scale)
        .f_round()?
        .f_clamp(-levels, levels)?
        .f_to_kind(Kind::Int8)?;
    Ok((scale, q))
}

/// The inverse of [`quantize_symmetric`]: `numel` int8 `codes` (already range-checked by the
/// codec) times their row's `scale`, refused unless every scale is positive.
fn dequantize_symmetric(
    codes: &[u8],
    scale: Tensor,
    numel: usize,
    rows: usize,
    row: usize,
    codec: CodecKind,
) -> Result<Tensor, CodecError> {
    positive_scales(&scale, codec)?;
    tensor_from_bytes(codes, Kind::Int8, numel, rows, row)
        .and_then(|q| q.f_to_kind(Kind::Float))
        .map(|q| q * scale)
        .map_err(|source| CodecError::Torch { codec, source })
}

/// Refuses a scale column with a zero or negative entry: the symmetric codecs write
/// positive scales only, so each tensor has one encoding.
fn positive_scales(scale: &Tensor, codec: CodecKind) -> Result<(), CodecError> {
    let positive = scale
        .f_gt(0.0)
        .and_then(|p| p.f_all())
        .map_err(|source| CodecError::Torch { codec, source })?;
    if bool::try_from(positive).unwrap_or(false) {
        Ok(())
    } else {
        Err(CodecError::OutOfRange {
            what: "quantization scales must be positive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::{Component, Init};

    /// Gaussian values of spread 3, the same for a seed whatever other tests run beside it
    /// (libtorch's generator is global to the process, and tests run on several threads).
    fn sample(dims: &[i64], seed: u64) -> Tensor {
        Init::new(seed, Component::Head).normal(dims, 3.0)
    }

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    #[test]
    fn sizes_are_exact_for_every_codec_and_row() {
        for kind in CodecKind::ALL {
            for row in [0, 1, 7, 64, 1000] {
                for dims in [vec![2i64, 5, 8], vec![3, 17], vec![1]] {
                    let c = WireCodec::new(kind, row);
                    let bytes = c.encode(&sample(&dims, 1)).unwrap();
                    assert_eq!(
                        bytes.len(),
                        c.encoded_len(&dims),
                        "{kind} row {row} dims {dims:?}"
                    );
                }
            }
        }
        // Hand-computed: [4, 16] int8 with one scale per 16 values = 4 rows.
        assert_eq!(
            WireCodec::new(CodecKind::Int8, 0).encoded_len(&[4, 16]),
            12 + 8 + 4 * 4 + 64
        );
        assert_eq!(
            WireCodec::new(CodecKind::Uint8, 32).encoded_len(&[4, 16]),
            12 + 8 + 2 * 8 + 64
        );
        // Two values per byte; an odd count rounds up to a whole byte.
        assert_eq!(
            WireCodec::new(CodecKind::Int4, 32).encoded_len(&[4, 16]),
            12 + 8 + 2 * 4 + 32
        );
        assert_eq!(
            WireCodec::new(CodecKind::Int4, 0).encoded_len(&[3, 5]),
            12 + 8 + 3 * 4 + 8
        );
        // Four values per byte; 15 values round up to 4 bytes.
        // One byte of scale per row.
        assert_eq!(
            WireCodec::new(CodecKind::Int4Log, 16).encoded_len(&[4, 16]),
            12 + 8 + 4 + 32
        );
        // No scale at all.
        assert_eq!(
            WireCodec::new(CodecKind::Int4Unit, 16).encoded_len(&[4, 16]),
            12 + 8 + 32
        );
        assert_eq!(
            WireCodec::new(CodecKind::Int4Unit, 0).encoded_len(&[3, 5]),
            12 + 8 + 8
        );
        assert_eq!(
            WireCodec::new(CodecKind::Int2, 32).encoded_len(&[4, 16]),
            12 + 8 + 2 * 4 + 16
        );
        assert_eq!(
            WireCodec::new(CodecKind::Int2, 0).encoded_len(&[3, 5]),
            12 + 8 + 3 * 4 + 4
        );
        // int2 with one byte of scale per row.
        assert_eq!(
            WireCodec::new(CodecKind::Int2Log, 32).encoded_len(&[4, 16]),
            12 + 8 + 2 + 16
        );
        assert_eq!(
            WireCodec::new(CodecKind::Int2Log, 0).encoded_len(&[3, 5]),
            12 + 8 + 3 + 4
        );
        assert_eq!(
            WireCodec::new(CodecKind::Bf16, 0).encoded_len(&[4, 16]),
            12 + 8 + 128
        );
        // fp8: int8's layout, one f32 scale per row and a byte per value.
        assert_eq!(
            WireCodec::new(CodecKind::Fp8, 32).encoded_len(&[4, 16]),
            12 + 8 + 2 * 4 + 64
        );
        assert_eq!(
            WireCodec::new(CodecKind::Fp32, 0).encoded_len(&[4, 16]),
            12 + 8 + 256
        );
    }

    #[test]
    fn round_trip_errors_are_within_each_codecs_bound() {
        let x = sample(&[4, 32, 24], 2);
        for row in [0usize, 50] {
            // fp32: exact.
            let c = WireCodec::new(CodecKind::Fp32, row);
            let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
            assert_eq!(max_abs(&(&y - &x)), 0.0);

            // bf16: 8 mantissa bits, round to nearest: relative error <= 2^-8.
            let c = WireCodec::new(CodecKind::Bf16, row);
            let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
            let excess = ((&y - &x).abs() - x.abs() * 2f64.powi(-8))
                .max()
                .double_value(&[]);
            assert!(excess <= 0.0, "bf16 error exceeds bound by {excess}");

            // int8 / uint8 / int4: per row, error <= half a quantization step.
            let r = if row == 0 { 24 } else { row };
            let n = x.numel();
            let rows = n.div_ceil(r);
            let pad = |t: &Tensor| {
                let f = t.reshape([-1]);
                Tensor::cat(
                    &[
                        f,
                        Tensor::zeros([(rows * r - n) as i64], (Kind::Float, Device::Cpu)),
                    ],
                    0,
                )
                .reshape([rows as i64, r as i64])
            };
            let grid = pad(&x);
            let absmax = grid.abs().amax([1].as_slice(), true);
            let range = grid.amax([1].as_slice(), true) - grid.amin([1].as_slice(), true);
            for (kind, step) in [
                (CodecKind::Int8, absmax / 127.0),
                (CodecKind::Uint8, range / 255.0),
                (CodecKind::Int4, grid.abs().amax([1].as_slice(), true) / 7.0),
                // The one-byte scale is at most a quarter power of two above absmax / 7.
                (
                    CodecKind::Int4Log,
                    grid.abs().amax([1].as_slice(), true) / 7.0 * 2f64.powf(0.25),
                ),
            ] {
                let c = WireCodec::new(kind, row);
                let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
                let err = pad(&(&y - &x)).abs();
                let excess = (err - step * 0.5 * (1.0 + 1e-5) - 1e-7)
                    .max()
                    .double_value(&[]);
                assert!(
                    excess <= 0.0,
                    "{kind} row {row}: error exceeds half a step by {excess}"
                );
            }

            // int4unit's bound holds for rows of unit RMS only: see
            // int4unit_covers_unit_rms_rows_and_has_one_encoding.

            // int2 has no per-value bound (it clips), but on Gaussian rows its squared error
            // is at most the best four-level quantizer's for a known spread (Lloyd-Max: 0.1175
            // of the mean square; a short row's own scale fits it a little closer), and no
            // value changes sign.
            // int2log's scale, within 2^(1/8) of int2's, adds well under a point to that.
            for (kind, most) in [(CodecKind::Int2, 0.13), (CodecKind::Int2Log, 0.135)] {
                let c = WireCodec::new(kind, row);
                let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
                let relative = (&y - &x).square().sum(Kind::Float).double_value(&[])
                    / x.square().sum(Kind::Float).double_value(&[]);
                assert!(
                    (0.08..most).contains(&relative),
                    "{kind} row {row}: relative squared error {relative}"
                );
                assert_eq!(
                    (y.sign() * x.sign())
                        .lt(0.0)
                        .sum(Kind::Int64)
                        .int64_value(&[]),
                    0,
                    "{kind} row {row}: a value changed sign"
                );
            }
        }
    }

    #[test]
    fn constant_and_zero_rows_survive() {
        let x = Tensor::zeros([3, 8], (Kind::Float, Device::Cpu));
        let _ = x.get(1).fill_(2.5);
        for kind in CodecKind::ALL {
            let c = WireCodec::new(kind, 0);
            let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
            // int4log's scales are powers of 2^(1/4): a constant comes back within half a
            // step (2.5 = 6 · 2^(5/4) / 1.0091), zeros exactly.
            // int4unit's step is √8 / 7 for these rows of 8, and 2.5 is within its grid.
            let bound = match kind {
                CodecKind::Int4Log => 2.5 / 7.0 * 2f64.powf(0.25) / 2.0,
                CodecKind::Int4Unit => 8f64.sqrt() / 7.0 / 2.0,
                // int2log's scale is the quarter power of two nearest int2's exact one.
                CodecKind::Int2Log => 2.5 * (2f64.powf(0.125) - 1.0) + 1e-6,
                _ => 1e-6,
            };
            assert!(max_abs(&(&y - &x)) < bound, "{kind}");
            assert_eq!(max_abs(&y.get(0)), 0.0, "{kind}: a zero row stays zero");
        }
    }

    #[test]
    fn hostile_messages_are_rejected() {
        let c = WireCodec::new(CodecKind::Int8, 0);
        let good = c.encode(&sample(&[2, 8], 3)).unwrap();

        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            c.decode(&bad, Device::Cpu),
            Err(CodecError::BadMagic { .. })
        ));
        let mut bad = good.clone();
        bad[4] = 9;
        assert!(matches!(
            c.decode(&bad, Device::Cpu),
            Err(CodecError::Version { found: 9 })
        ));
        let mut bad = good.clone();
        bad[5] = 77;
        assert!(matches!(
            c.decode(&bad, Device::Cpu),
            Err(CodecError::UnknownCodec(77))
        ));
        assert!(matches!(
            c.decode(&good[..good.len() - 1], Device::Cpu),
            Err(CodecError::Truncated { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            c.decode(&long, Device::Cpu),
            Err(CodecError::Trailing { extra: 1 })
        ));
        assert!(matches!(
            WireCodec::new(CodecKind::Bf16, 0).decode(&good, Device::Cpu),
            Err(CodecError::WrongCodec {
                expected: CodecKind::Bf16,
                found: CodecKind::Int8
            })
        ));
        // A header claiming a huge tensor is refused before any allocation.
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            c.decode(&huge, Device::Cpu),
            Err(CodecError::BadShape { .. })
        ));
        // A NaN scale is corrupt data, not a tensor.
        let mut nan = good.clone();
        nan[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            c.decode(&nan, Device::Cpu),
            Err(CodecError::NonFinite { what: "scales" })
        ));
        // Non-finite input is refused at the sender.
        let x = sample(&[2, 8], 4);
        let _ = x.get(0).get(0).fill_(f64::INFINITY);
        assert!(matches!(c.encode(&x), Err(CodecError::NonFinite { .. })));
        // fp32 payloads carrying NaN are refused at the receiver.
        let f = WireCodec::new(CodecKind::Fp32, 0);
        let mut bytes = f.encode(&sample(&[2, 8], 5)).unwrap();
        bytes[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            f.decode(&bytes, Device::Cpu),
            Err(CodecError::NonFinite { what: "tensor" })
        ));
    }

    #[test]
    fn any_codec_decodes_through_the_header() {
        let x = sample(&[3, 4], 6);
        let bytes = WireCodec::new(CodecKind::Bf16, 0).encode(&x).unwrap();
        let (header, y) = decode(&bytes, Device::Cpu).unwrap();
        assert_eq!(
            header,
            WireHeader {
                codec: CodecKind::Bf16,
                row: 4,
                dims: vec![3, 4]
            }
        );
        assert_eq!(y.size(), vec![3, 4]);
    }

    /// The message from the issue that made the decoder pad 1 value to 2^32 - 1: SLVW, version 1,
    /// fp32, one dim, row length 0xFFFFFFFF, one value. 20 bytes.
    #[test]
    fn a_row_longer_than_the_tensor_is_refused_before_allocating() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&WIRE_MAGIC);
        msg.extend_from_slice(&[WIRE_VERSION, CodecKind::Fp32.id(), 1, 0]);
        msg.extend_from_slice(&u32::MAX.to_le_bytes());
        msg.extend_from_slice(&1u32.to_le_bytes());
        msg.extend_from_slice(&1.0f32.to_le_bytes());
        assert_eq!(msg.len(), 20);
        assert!(matches!(
            decode(&msg, Device::Cpu),
            Err(CodecError::BadShape {
                row: 0xFFFF_FFFF,
                ..
            })
        ));
        // The encoder writes the canonical row length for a tensor smaller than its row.
        let c = WireCodec::new(CodecKind::Int8, 2048);
        let bytes = c.encode(&sample(&[3, 5], 1)).unwrap();
        assert_eq!(read_header(&bytes).unwrap().row, 15);
        assert_eq!(c.decode(&bytes, Device::Cpu).unwrap().size(), vec![3, 5]);
    }

    #[test]
    fn one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Int8, 0);
        let good = c.encode(&sample(&[2, 8], 3)).unwrap();
        let mut reserved = good.clone();
        reserved[7] = 1;
        assert!(matches!(
            c.decode(&reserved, Device::Cpu),
            Err(CodecError::Reserved { found: 1 })
        ));
        // A 20-byte header, two rows: 8 bytes of scales, then the codes.
        let mut minus_128 = good.clone();
        minus_128[20 + 8] = 0x80;
        assert!(matches!(
            c.decode(&minus_128, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        let mut negative_scale = good.clone();
        let s = f32::from_le_bytes(negative_scale[20..24].try_into().unwrap());
        negative_scale[20..24].copy_from_slice(&(-s).to_le_bytes());
        assert!(matches!(
            c.decode(&negative_scale, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
    }

    /// Each `(offset, byte, why)` written into `good` makes a message `c` refuses as out of
    /// range.
    fn refuses_edits(c: WireCodec, good: &[u8], edits: &[(usize, u8, &str)]) {
        for &(at, byte, why) in edits {
            let mut bad = good.to_vec();
            bad[at] = byte;
            assert!(
                matches!(
                    c.decode(&bad, Device::Cpu),
                    Err(CodecError::OutOfRange { .. })
                ),
                "{why}"
            );
        }
    }

    /// [`refuses_edits`], and a zero first scale (bytes 20..24 of a two-dimensional message)
    /// is refused too.
    fn refuses_out_of_range(c: WireCodec, good: &[u8], edits: &[(usize, u8, &str)]) {
        refuses_edits(c, good, edits);
        let mut zero_scale = good.to_vec();
        zero_scale[20..24].copy_from_slice(&0f32.to_le_bytes());
        assert!(matches!(
            c.decode(&zero_scale, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
    }

    #[test]
    fn int4_has_one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Int4, 0);
        // [3, 5]: three rows of five values, 12 bytes of scales, 8 bytes of nibbles
        // (15 values, so the last high nibble is padding).
        let x = sample(&[3, 5], 8);
        let good = c.encode(&x).unwrap();
        let codes = 20 + 12;
        assert_eq!(good.len(), codes + 8);
        assert_eq!(good[good.len() - 1] >> 4, 0);
        let y = c.decode(&good, Device::Cpu).unwrap();
        // The largest value of each row is exactly +-7 steps.
        let absmax = x.abs().amax([1].as_slice(), false);
        let back = y.abs().amax([1].as_slice(), false);
        assert!(max_abs(&(absmax - back)) < 1e-5);
        refuses_out_of_range(
            c,
            &good,
            &[
                (codes, 0x08, "low nibble -8"),
                (codes, 0x80, "high nibble -8"),
                (
                    good.len() - 1,
                    good[good.len() - 1] | 0x10,
                    "padding nibble",
                ),
            ],
        );
        // Every code -7..=7 survives the packing, in order.
        let steps = Tensor::arange_start(-7, 8, (Kind::Float, Device::Cpu));
        let y = c.decode(&c.encode(&steps).unwrap(), Device::Cpu).unwrap();
        assert!(max_abs(&(y - steps)) < 1e-6);
    }

    #[test]
    fn int2_has_one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Int2, 0);
        // [3, 5]: three rows of five values, 12 bytes of scales, 4 bytes of codes (15 values,
        // so the last byte's top two bits are padding).
        let x = sample(&[3, 5], 8);
        let good = c.encode(&x).unwrap();
        let codes = 20 + 12;
        assert_eq!(good.len(), codes + 4);
        assert_eq!(good[good.len() - 1] >> 6, 0);
        // Decoding and encoding again gives the same codes (they stay on their side of the
        // row's root mean square) and the scales written, to within the f32 rounding of
        // `1.5 · s` in the decoded values.
        let y = c.decode(&good, Device::Cpu).unwrap();
        let again = c.encode(&y).unwrap();
        assert_eq!(again[codes..], good[codes..]);
        for r in 0..3 {
            let scale =
                |m: &[u8]| f32::from_le_bytes(m[20 + 4 * r..24 + 4 * r].try_into().unwrap());
            let (a, b) = (scale(&good), scale(&again));
            assert!((a - b).abs() <= a * 2f32.powi(-22), "row {r}: {a} then {b}");
        }
        // Row 0 is values 0..5: all of byte 0 and the low two bits of byte 1. A row of
        // nothing but outer codes is refused.
        let mut all_outer = good.clone();
        all_outer[codes] = 0xff;
        all_outer[codes + 1] = (all_outer[codes + 1] & !0b11) | 0b11;
        refuses_out_of_range(
            c,
            &good,
            &[(good.len() - 1, good[good.len() - 1] | 0x40, "padding bits")],
        );
        assert!(matches!(
            c.decode(&all_outer, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        let mut negative_zero = good.clone();
        negative_zero[20..24].copy_from_slice(&(-0f32).to_le_bytes());
        assert!(matches!(
            c.decode(&negative_zero, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        // An all-zero row is written with scale 0 and +0.5 codes, and only that way.
        let zeros = Tensor::zeros([1, 4], (Kind::Float, Device::Cpu));
        let z = c.encode(&zeros).unwrap();
        assert_eq!(&z[20..], &[0, 0, 0, 0, 0b1010_1010]);
        let mut other = z.clone();
        other[24] = 0b1010_1011;
        assert!(matches!(
            c.decode(&other, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        // Every level survives the packing, in order, and the outliers are clipped to 1.5 s.
        let x = Tensor::from_slice(&[-4.0f32, -0.3, 0.3, 4.0, 0.3, -0.3, 0.3, -0.3]).view([1, 8]);
        let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
        let s = max_abs(&y) / 1.5;
        let levels = Tensor::from_slice(&[-1.5f32, -0.5, 0.5, 1.5, 0.5, -0.5, 0.5, -0.5]) * s;
        assert!(max_abs(&(y - levels.view([1, 8]))) < 1e-6);
    }

    #[test]
    fn int4log_has_one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Int4Log, 0);
        // [3, 5]: three scale bytes, then 15 codes in 8 bytes (the last high nibble padding).
        let x = sample(&[3, 5], 8);
        let good = c.encode(&x).unwrap();
        let codes = 20 + 3;
        assert_eq!(good.len(), codes + 8);
        // Decoding and encoding again gives the same bytes.
        let y = c.decode(&good, Device::Cpu).unwrap();
        assert_eq!(c.encode(&y).unwrap(), good);
        // Each row's largest code is 6 or 7: its scale is the smallest that reaches absmax.
        let steps = (y.abs().amax([1].as_slice(), false) / x.abs().amax([1].as_slice(), false))
            .min()
            .double_value(&[]);
        assert!(steps > 0.85, "{steps}");
        refuses_edits(
            c,
            &good,
            &[
                (codes, 0x08, "low nibble -8"),
                (
                    good.len() - 1,
                    good[good.len() - 1] | 0x10,
                    "padding nibble",
                ),
                (20, 0, "scale byte 0 with nonzero codes"),
            ],
        );
        // A row whose largest code is 5 has a smaller scale that fits: not this encoding.
        let five = Tensor::from_slice(&[5.0f32, -2.0, 1.0, 0.0]).view([1, 4]);
        let mut msg = c.encode(&(&five / 5.0 * 7.0)).unwrap();
        // Scale byte 192 (scale 1), then codes 7, -3 | 1, 0.
        assert_eq!(&msg[20..], &[192, 0xd7, 0x01]);
        msg[21] = 0x05 | (0x0e << 4); // codes 5, -2
        assert!(matches!(
            c.decode(&msg, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        // Zero codes under a nonzero scale byte: the zero row has one encoding, byte 0.
        let zeros = c
            .encode(&Tensor::zeros([1, 4], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert_eq!(&zeros[20..], &[0, 0, 0]);
        let mut other = zeros.clone();
        other[20] = 100;
        assert!(matches!(
            c.decode(&other, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        // The scale's range: 2^-48 (byte 1) to 2^15.75 (byte 255).
        let tiny = Tensor::from_slice(&[7.0f32 * 2f32.powi(-48), 0.0]).view([1, 2]);
        assert_eq!(c.encode(&tiny).unwrap()[20], 1);
    }

    #[test]
    fn int2log_has_one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Int2Log, 0);
        // [3, 5]: three scale bytes, then 15 codes in 4 bytes (the last two bits padding).
        let x = sample(&[3, 5], 8);
        let good = c.encode(&x).unwrap();
        let codes = 20 + 3;
        assert_eq!(good.len(), codes + 4);
        // Each scale is the quarter power of two nearest int2's least-squares scale.
        let exact = WireCodec::new(CodecKind::Int2, 0).encode(&x).unwrap();
        for r in 0..3 {
            let s = f32::from_le_bytes(exact[20 + 4 * r..24 + 4 * r].try_into().unwrap());
            let e = f64::from(good[20 + r]);
            assert!(
                (4.0 * f64::from(s).log2() + 192.0 - e).abs() <= 0.5,
                "row {r}"
            );
        }
        assert_eq!(good[codes..], exact[20 + 12..], "int2's codes");
        // Decoding and encoding again gives the same bytes: a scale on the grid is its own
        // nearest.
        let y = c.decode(&good, Device::Cpu).unwrap();
        assert_eq!(c.encode(&y).unwrap(), good);
        // Row 0 is values 0..5: all of code byte 0 and the low two bits of the next.
        refuses_edits(
            c,
            &good,
            &[
                (good.len() - 1, good[good.len() - 1] | 0x40, "padding bits"),
                (20, 0, "scale byte 0 with codes other than +0.5"),
            ],
        );
        let mut all_outer = good.clone();
        all_outer[codes] = 0xff;
        all_outer[codes + 1] = (all_outer[codes + 1] & !0b11) | 0b11;
        assert!(matches!(
            c.decode(&all_outer, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
        // An all-zero row is scale byte 0 and +0.5 codes, and only that.
        let zeros = c
            .encode(&Tensor::zeros([1, 4], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert_eq!(&zeros[20..], &[0, 0b1010_1010]);
        let mut other = zeros.clone();
        other[21] = 0b1010_1011;
        assert!(matches!(
            c.decode(&other, Device::Cpu),
            Err(CodecError::OutOfRange { .. })
        ));
    }

    #[test]
    fn int4unit_covers_unit_rms_rows_and_has_one_encoding() {
        let c = WireCodec::new(CodecKind::Int4Unit, 0);
        // The extreme unit-RMS row of 7 values: all of its square sum in one value, √7,
        // which is code 7 exactly; nothing is clipped.
        let edge =
            Tensor::from_slice(&[0f32, 0.0, -(7f32.sqrt()), 0.0, 0.0, 0.0, 0.0]).view([1, 7]);
        let y = c.decode(&c.encode(&edge).unwrap(), Device::Cpu).unwrap();
        assert!(max_abs(&(&y - &edge)) < 1e-6);
        // Rows scaled to unit RMS come back within half a step, √7 / 14, whatever their
        // spread: the grid does not depend on the values.
        for spread in [1e-3, 1.0, 1e3] {
            let x = sample(&[16, 7], 9) * spread;
            let unit = &x
                / x.square()
                    .mean_dim([1].as_slice(), true, Kind::Float)
                    .sqrt();
            let y = c.decode(&c.encode(&unit).unwrap(), Device::Cpu).unwrap();
            assert!(
                max_abs(&(&y - &unit)) <= 7f64.sqrt() / 14.0 + 1e-6,
                "{spread}"
            );
        }
        // Beyond √r a value is clipped to code 7.
        let big = Tensor::from_slice(&[10f32, -10.0]).view([1, 2]);
        let y = c.decode(&c.encode(&big).unwrap(), Device::Cpu).unwrap();
        assert!(max_abs(&(y.abs() - 2f64.sqrt())) < 1e-6);
        // [3, 5]: 15 codes in 8 bytes, the last high nibble padding; nothing else.
        let good = c.encode(&sample(&[3, 5], 8)).unwrap();
        assert_eq!(good.len(), 20 + 8);
        let y = c.decode(&good, Device::Cpu).unwrap();
        assert_eq!(c.encode(&y).unwrap(), good);
        refuses_edits(
            c,
            &good,
            &[
                (20, 0x08, "low nibble -8"),
                (20, 0x80, "high nibble -8"),
                (
                    good.len() - 1,
                    good[good.len() - 1] | 0x10,
                    "padding nibble",
                ),
            ],
        );
    }

    #[test]
    fn fp8_error_is_relative_across_magnitudes() {
        // One row spanning 2^-14 .. 2^4 of its maximum: int8 rounds everything below
        // absmax/254 to zero; fp8 keeps each value to a relative 2^-4 (3 mantissa bits,
        // round to nearest) down to 2^-6 of its scale (absmax / 448).
        let exps = Tensor::arange_start(-14, 5, (Kind::Float, Device::Cpu));
        let signs = Tensor::from_slice(&[1.0f32, -1.0])
            .repeat([10])
            .narrow(0, 0, 19);
        let x = (Tensor::from(2.0f32).pow(&exps) * 1.37 * signs).view([1, 19]);
        let c = WireCodec::new(CodecKind::Fp8, 0);
        let y = c.decode(&c.encode(&x).unwrap(), Device::Cpu).unwrap();
        let scale = max_abs(&x) / 448.0;
        let normal = x.abs().ge(scale * 2f64.powi(-6));
        let relative: Tensor = x.abs() * 2f64.powi(-4);
        let bound = relative.where_scalarother(&normal, scale * 2f64.powi(-10));
        let err: Tensor = (&y - &x).abs();
        let excess = (err - bound * (1.0 + 1e-6)).max().double_value(&[]);
        assert!(excess <= 0.0, "fp8 error exceeds its bound by {excess}");
        // Every value survived with its sign: none became zero.
        assert_eq!(
            y.sign()
                .ne_tensor(&x.sign())
                .sum(Kind::Int64)
                .int64_value(&[]),
            0
        );
        let i8 = WireCodec::new(CodecKind::Int8, 0);
        let z = i8.decode(&i8.encode(&x).unwrap(), Device::Cpu).unwrap();
        assert!(z.eq(0.0).sum(Kind::Int64).int64_value(&[]) >= 8);
        // The row's largest value is exact: 448 is an E4M3 value.
        assert!((max_abs(&y) - max_abs(&x)).abs() <= max_abs(&x) * 1e-6);
    }

    #[test]
    fn fp8_has_one_encoding_per_tensor() {
        let c = WireCodec::new(CodecKind::Fp8, 0);
        // Values that round to zero from below are written +0, never -0.
        let x = Tensor::from_slice(&[1.0f32, -1e-30, 0.5, -0.0]).view([1, 4]);
        let good = c.encode(&x).unwrap();
        let codes = 20 + 4;
        assert_eq!(good.len(), codes + 4);
        assert!(!good[codes..].contains(&0x80), "{:02x?}", &good[codes..]);
        refuses_out_of_range(
            c,
            &good,
            &[
                (codes + 1, 0x80, "negative zero"),
                (codes + 1, 0x7f, "NaN"),
                (codes + 1, 0xff, "negative NaN"),
            ],
        );
        // Every other byte is a finite E4M3 value and decodes.
        let all: Vec<u8> = (0u8..=255)
            .filter(|b| b & 0x7f != 0x7f && *b != 0x80)
            .collect();
        let mut msg = good[..12].to_vec();
        msg[6] = 1; // one dimension
        msg[8..12].copy_from_slice(&(all.len() as u32).to_le_bytes());
        msg.extend_from_slice(&(all.len() as u32).to_le_bytes());
        msg.extend_from_slice(&1f32.to_le_bytes());
        msg.extend_from_slice(&all);
        let y = decode(&msg, Device::Cpu).unwrap().1;
        assert_eq!(y.numel(), 253);
        assert_eq!(max_abs(&y), 448.0);
        // And re-encodes to the same bytes: one encoding.
        assert_eq!(c.encode(&y).unwrap()[16..], msg[16..]);
    }

    #[test]
    fn decode_expected_refuses_anything_but_what_was_asked_for() {
        let c = WireCodec::new(CodecKind::Int8, 16);
        let x = sample(&[2, 4, 8], 7);
        let bytes = c.encode(&x).unwrap();
        let dims = [2, 4, 8];
        let limit = c.encoded_len(&dims);
        let y = c
            .decode_expected(&bytes, &dims, limit, Device::Cpu)
            .unwrap();
        assert_eq!(y.size(), dims.to_vec());
        for (other, why) in [(&[4, 2, 8][..], "dims"), (&[2, 4, 9][..], "size")] {
            let err = c
                .decode_expected(&bytes, other, usize::MAX, Device::Cpu)
                .unwrap_err();
            assert!(matches!(err, CodecError::Unexpected { .. }), "{why}: {err}");
        }
        assert!(matches!(
            c.decode_expected(&bytes, &dims, limit - 1, Device::Cpu),
            Err(CodecError::Unexpected { .. })
        ));
        // The same tensor with another row length is not the expected encoding.
        let other_row = WireCodec::new(CodecKind::Int8, 8).encode(&x).unwrap();
        assert!(
            c.decode_expected(&other_row, &dims, usize::MAX, Device::Cpu)
                .is_err()
        );
        let fp32 = WireCodec::new(CodecKind::Fp32, 16).encode(&x).unwrap();
        assert!(
            c.decode_expected(&fp32, &dims, usize::MAX, Device::Cpu)
                .is_err()
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn codecs() -> impl Strategy<Value = CodecKind> {
            prop_oneof![
                Just(CodecKind::Fp32),
                Just(CodecKind::Bf16),
                Just(CodecKind::Int8),
                Just(CodecKind::Uint8),
                Just(CodecKind::Int4),
                Just(CodecKind::Fp8),
                Just(CodecKind::Int2),
                Just(CodecKind::Int4Log),
                Just(CodecKind::Int4Unit),
                Just(CodecKind::Int2Log),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Arbitrary bytes never panic, and whatever decodes holds no more values than
            /// its bytes could carry, four per byte at the densest (int2): no allocation is
            /// driven by the header alone.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok((_, t)) = decode(&bytes, Device::Cpu) {
                    prop_assert!(t.numel() <= 4 * bytes.len());
                }
            }

            /// A valid header followed by arbitrary bytes: never a panic, never more values
            /// than the bytes carry.
            #[test]
            fn mutated_messages_never_panic(
                codec in codecs(),
                rows in 1i64..6,
                cols in 1i64..40,
                row in 0usize..64,
                flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            ) {
                let c = WireCodec::new(codec, row);
                let mut bytes = c.encode(&Tensor::randn([rows, cols], (Kind::Float, Device::Cpu))).unwrap();
                for (at, v) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = v;
                }
                if let Ok((_, t)) = decode(&bytes, Device::Cpu) {
                    prop_assert!(t.numel() <= 4 * bytes.len());
                }
                let _ = c.decode_expected(&bytes, &[rows, cols], usize::MAX, Device::Cpu);
            }

            /// Whatever is encoded decodes to the same shape, and a second trip through the
            /// codec moves it by no more than rounding.
            #[test]
            fn round_trips_are_stable(
                codec in codecs(),
                rows in 1i64..6,
                cols in 1i64..40,
                row in 0usize..64,
                seed in any::<i64>(),
            ) {
                tch::manual_seed(seed);
                let c = WireCodec::new(codec, row);
                let x = Tensor::randn([rows, cols], (Kind::Float, Device::Cpu));
                let bytes = c.encode(&x).unwrap();
                prop_assert_eq!(bytes.len(), c.encoded_len(&[rows, cols]));
                let y = c.decode_expected(&bytes, &[rows, cols], bytes.len(), Device::Cpu).unwrap();
                prop_assert_eq!(y.size(), vec![rows, cols]);
                let z = c.decode(&c.encode(&y).unwrap(), Device::Cpu).unwrap();
                let moved = (&z - &y).abs().max().double_value(&[]);
                let scale = y.abs().max().double_value(&[]);
                prop_assert!(moved <= scale / 100.0 + 1e-6, "moved {} of {}", moved, scale);
            }
        }
    }
}
