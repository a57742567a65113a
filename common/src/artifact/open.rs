//! Reading an artifact: every check of the [module docs](super), before the payload is touched.

use super::{
    ARTIFACT_MAGIC, ARTIFACT_VERSION, ArtifactId, FIXED_LEN, Header, Hotkey, Kind, MAX_RUN_LEN,
    Membership, SIGNATURE_LEN, verify_signature,
};
use crate::assignment::StageIndex;
use crate::codec::{CodecKind, MAX_DIMS, WireCodec};
use crate::flat::WeightsHash;
use crate::schedule::Epoch;

/// What a reader expects of one artifact: everything but the payload's content.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Run name.
    pub run: &'a str,
    /// Epoch.
    pub epoch: Epoch,
    /// Producer's stage.
    pub stage: StageIndex,
    /// Kind.
    pub kind: Kind,
    /// The id, or `None` to accept any (listing a prefix).
    pub id: Option<u64>,
    /// The hotkey whose storage prefix it was read from.
    pub producer: Hotkey,
    /// Payload codec.
    pub codec: CodecKind,
    /// Payload dims.
    pub dims: &'a [i64],
    /// Exact size of a valid payload (the codec's `encoded_len` for `dims`).
    pub payload_len: usize,
}

impl<'a> Expect<'a> {
    /// What `producer`'s artifact `at` in run `run` must be: a payload of `codec` with `dims`, of
    /// exactly the codec's length for them.
    pub fn of(
        run: &'a str,
        ArtifactId {
            epoch,
            stage,
            kind,
            id,
        }: ArtifactId,
        producer: Hotkey,
        codec: &WireCodec,
        dims: &'a [i64],
    ) -> Expect<'a> {
        Expect {
            run,
            epoch,
            stage,
            kind,
            id: Some(id),
            producer,
            codec: codec.kind(),
            dims,
            payload_len: codec.encoded_len(dims),
        }
    }
}

impl Expect<'_> {
    /// The most bytes a valid artifact of this expectation can have: check it before download.
    pub fn max_len(&self) -> u64 {
        (FIXED_LEN + self.run.len() + 4 * self.dims.len() + SIGNATURE_LEN + self.payload_len) as u64
    }
}

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Larger than the run spec allows for what it claims to be.
    #[error("{len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The header does not parse.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
    /// The signature is not the producer's.
    #[error("signature does not verify for the producer's hotkey")]
    Signature,
    /// The producer is not a registered, assigned miner this epoch.
    #[error("producer is not a registered miner assigned this epoch")]
    Unregistered,
    /// The producer is assigned to another stage.
    #[error("producer is assigned to stage {assigned}, not stage {claimed}")]
    WrongStage {
        /// Its stage this epoch.
        assigned: StageIndex,
        /// The stage the artifact claims.
        claimed: StageIndex,
    },
    /// A header field differs from what the reader asked for (read from another key).
    #[error("header {field} does not match the key it was read from")]
    Mismatch {
        /// The field.
        field: &'static str,
    },
    /// The payload's BLAKE3 differs from the header's.
    #[error("payload hash does not match the header")]
    Hash,
    /// Codec, dims or payload length are not what the receiving stage expects.
    #[error("dims {got:?} (codec {codec}), expected {expected:?}")]
    Dims {
        /// What it carries.
        got: Vec<i64>,
        /// Its codec.
        codec: CodecKind,
        /// What the receiver expects.
        expected: Vec<i64>,
    },
}

impl Rejection {
    /// A fixed label for metrics (`sliver_artifact_rejections_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "size",
            Rejection::Malformed(_) => "malformed",
            Rejection::Signature => "signature",
            Rejection::Unregistered => "unregistered",
            Rejection::WrongStage { .. } => "wrong_stage",
            Rejection::Mismatch { .. } => "mismatch",
            Rejection::Hash => "hash",
            Rejection::Dims { .. } => "dims",
        }
    }
}

/// A verified artifact.
#[derive(Debug)]
pub struct Opened<'a> {
    /// Its header.
    pub header: Header,
    /// Its payload (a wire message whose hash, codec and dims were checked).
    pub payload: &'a [u8],
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Rejection> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(Rejection::Malformed("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Rejection> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64, Rejection> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// Parses the header and checks the signature, without looking at the payload.
///
/// # Errors
/// [`Rejection::Malformed`] or [`Rejection::Signature`].
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize), Rejection> {
    let mut r = Reader { bytes, at: 0 };
    if r.array::<4>()? != ARTIFACT_MAGIC {
        return Err(Rejection::Malformed("magic"));
    }
    let [version, kind, codec, ndim] = r.array::<4>()?;
    if version != ARTIFACT_VERSION {
        return Err(Rejection::Malformed("unsupported format version"));
    }
    let kind = Kind::from_id(kind).ok_or(Rejection::Malformed("kind"))?;
    let codec = CodecKind::from_id(codec).ok_or(Rejection::Malformed("codec"))?;
    let ndim = usize::from(ndim);
    if ndim == 0 || ndim > MAX_DIMS {
        return Err(Rejection::Malformed("ndim"));
    }
    let epoch = Epoch(r.u64()?);
    let stage = StageIndex(u16::from_le_bytes(r.array()?));
    if r.array::<2>()? != [0, 0] {
        return Err(Rejection::Malformed("reserved bytes"));
    }
    let id = r.u64()?;
    let producer = Hotkey(r.array()?);
    let payload_hash = r.array()?;
    let payload_len = r.u64()?;
    let weights: [u8; 32] = r.array()?;
    let weights = (weights != [0; 32]).then_some(WeightsHash(weights));
    let loss = f32::from_le_bytes(r.array()?);
    let loss = if loss.is_nan() {
        None
    } else if loss.is_finite() && loss >= 0.0 {
        Some(loss)
    } else {
        return Err(Rejection::Malformed("loss must be finite and not negative"));
    };
    let run_len = usize::from(r.array::<1>()?[0]);
    if run_len == 0 || run_len > MAX_RUN_LEN {
        return Err(Rejection::Malformed("run name length"));
    }
    let run = std::str::from_utf8(r.take(run_len)?)
        .map_err(|_| Rejection::Malformed("run name is not UTF-8"))?
        .to_owned();
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let d = u32::from_le_bytes(r.array()?);
        if d == 0 {
            return Err(Rejection::Malformed("zero dimension"));
        }
        dims.push(i64::from(d));
    }
    let signed = r.at;
    let signature: [u8; SIGNATURE_LEN] = r.array()?;
    if !verify_signature(&producer, &bytes[..signed], &signature) {
        return Err(Rejection::Signature);
    }
    let header = Header {
        run,
        epoch,
        stage,
        kind,
        id,
        codec,
        dims,
        payload_len,
        payload_hash,
        producer,
        weights,
        loss,
    };
    Ok((header, r.at))
}

/// Checks an artifact read from storage against what the reader expects and who may produce it,
/// before the payload is used.
///
/// # Errors
/// The first [`Rejection`] that applies, in the order of the module docs.
pub fn open<'a>(
    bytes: &'a [u8],
    expect: &Expect<'_>,
    members: &dyn Membership,
) -> Result<Opened<'a>, Rejection> {
    let max = expect.max_len();
    if bytes.len() as u64 > max {
        return Err(Rejection::TooLarge {
            len: bytes.len() as u64,
            max,
        });
    }
    let (header, payload_at) = read_header(bytes)?;
    match members.stage_of(&header.producer) {
        None => return Err(Rejection::Unregistered),
        Some(assigned) if assigned != header.stage => {
            return Err(Rejection::WrongStage {
                assigned,
                claimed: header.stage,
            });
        }
        Some(_) => {}
    }
    let mismatch = |field| Err(Rejection::Mismatch { field });
    if header.producer != expect.producer {
        return mismatch("producer");
    }
    if header.run != expect.run {
        return mismatch("run");
    }
    if header.epoch != expect.epoch {
        return mismatch("epoch");
    }
    if header.stage != expect.stage {
        return mismatch("stage");
    }
    if header.kind != expect.kind {
        return mismatch("kind");
    }
    if expect.id.is_some_and(|id| id != header.id) {
        return mismatch("id");
    }
    let payload = &bytes[payload_at..];
    if payload.len() as u64 != header.payload_len {
        return Err(Rejection::Malformed("payload length"));
    }
    if blake3::hash(payload).as_bytes() != &header.payload_hash {
        return Err(Rejection::Hash);
    }
    if header.codec != expect.codec
        || header.dims != expect.dims
        || payload.len() != expect.payload_len
    {
        return Err(Rejection::Dims {
            got: header.dims.clone(),
            codec: header.codec,
            expected: expect.dims.to_vec(),
        });
    }
    Ok(Opened { header, payload })
}
