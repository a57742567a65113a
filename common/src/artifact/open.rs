//! Reading an artifact: every check of the [module docs](super), before the payload is touched.

use super::{
    ARTIFACT_MAGIC, ARTIFACT_VERSION, ArtifactId, FIXED_LEN, Header, Hotkey, Kind, MAX_INPUTS,
    MAX_RUN_LEN, MAX_SIGNED_HEADER_LEN, Membership, RunId, SIGNATURE_LEN, evidence_digest,
    verify_signature,
};
use crate::assignment::StageIndex;
use crate::codec::{CodecKind, MAX_DIMS, WireCodec};
use crate::flat::WeightsHash;
use crate::schedule::Epoch;

/// What a reader expects of one artifact: everything but the payload's content.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The run.
    pub run: &'a RunId,
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
        run: &'a RunId,
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
        let evidence = if matches!(self.kind, Kind::Act | Kind::Grad) {
            MAX_INPUTS * (2 + MAX_SIGNED_HEADER_LEN)
        } else {
            0
        };
        (FIXED_LEN
            + self.run.name.len()
            + 4 * self.dims.len()
            + SIGNATURE_LEN
            + evidence
            + self.payload_len) as u64
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
    /// The inputs it names as evidence are missing, malformed, signed by no assigned miner, or
    /// not the inputs of this artifact.
    #[error("evidence of its inputs: {0}")]
    Evidence(&'static str),
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
            Rejection::Evidence(_) => "evidence",
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

/// Parses the header, checks its signature, and reads the evidence that follows it (each entry
/// a signed header whose signature is checked too), without looking at the payload. Returns the
/// header and the payload's offset.
///
/// # Errors
/// [`Rejection::Malformed`], [`Rejection::Signature`] or [`Rejection::Evidence`].
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize), Rejection> {
    let Signed {
        mut header,
        inputs: n,
        digest: claimed,
        end,
    } = read_signed(bytes)?;
    let mut r = Reader { bytes, at: end };
    let mut signed = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(u16::from_le_bytes(r.array()?));
        if len > MAX_SIGNED_HEADER_LEN {
            return Err(Rejection::Evidence("an entry longer than a signed header"));
        }
        let entry = r.take(len)?;
        let Signed {
            header: input,
            end: used,
            ..
        } = read_signed(entry).map_err(|e| match e {
            Rejection::Signature => Rejection::Evidence("an input's signature does not verify"),
            _ => Rejection::Evidence("an input's header does not parse"),
        })?;
        if used != entry.len() {
            return Err(Rejection::Evidence(
                "an entry holds more than a signed header",
            ));
        }
        signed.push(entry);
        header.inputs.push(input);
    }
    if evidence_digest(&signed) != claimed {
        return Err(Rejection::Evidence(
            "the entries are not the ones the header commits to",
        ));
    }
    Ok((header, r.at))
}

/// One signed header, parsed and its signature checked.
struct Signed {
    /// The header, without its inputs (the evidence follows the signature).
    header: Header,
    /// How many evidence entries follow.
    inputs: usize,
    /// The evidence digest it commits to.
    digest: Option<[u8; 32]>,
    /// Where the signature ends.
    end: usize,
}

/// Parses one signed header and checks its signature.
fn read_signed(bytes: &[u8]) -> Result<Signed, Rejection> {
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
    let netuid = u16::from_le_bytes(r.array()?);
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
    let spec: [u8; 32] = r.array()?;
    let digest: [u8; 32] = r.array()?;
    let [inputs, run_len] = r.array::<2>()?;
    let inputs = usize::from(inputs);
    if inputs > MAX_INPUTS {
        return Err(Rejection::Malformed(
            "more inputs than an artifact may name",
        ));
    }
    let digest = match (inputs, digest == [0; 32]) {
        (0, true) => None,
        (n, false) if n > 0 => Some(digest),
        _ => {
            return Err(Rejection::Malformed(
                "input count and evidence digest disagree",
            ));
        }
    };
    let run_len = usize::from(run_len);
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
        netuid,
        spec,
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
        inputs: Vec::new(),
        signed: bytes[..r.at].to_vec(),
    };
    Ok(Signed {
        header,
        inputs,
        digest,
        end: r.at,
    })
}

/// The inputs an artifact of `kind` at `stage` is computed from, as (kind, stage) pairs, and
/// whether each must be named: an activation past stage 0 names the previous stage's
/// activation; a gradient names that activation and may name the next stage's gradient (a
/// middle stage's does; the last stage has none, and the header does not say which is last).
fn allowed_inputs(kind: Kind, stage: StageIndex) -> Vec<(Kind, StageIndex, bool)> {
    match kind {
        Kind::Act if !stage.is_first() => vec![(Kind::Act, stage.prev(), true)],
        Kind::Grad if !stage.is_first() => vec![
            (Kind::Act, stage.prev(), true),
            (Kind::Grad, stage.next(), false),
        ],
        _ => Vec::new(),
    }
}

/// Checks the evidence of `header` against the artifact it belongs to: the inputs this kind
/// of artifact is computed from, each once, of the same run, epoch and sample, signed by a miner
/// assigned to the input's stage.
fn check_evidence(header: &Header, members: &dyn Membership) -> Result<(), Rejection> {
    let allowed = allowed_inputs(header.kind, header.stage);
    for input in &header.inputs {
        if !allowed
            .iter()
            .any(|&(k, s, _)| (k, s) == (input.kind, input.stage))
        {
            return Err(Rejection::Evidence(
                "names an input this artifact is not computed from",
            ));
        }
        if header
            .inputs
            .iter()
            .filter(|i| (i.kind, i.stage) == (input.kind, input.stage))
            .count()
            > 1
        {
            return Err(Rejection::Evidence("names one input twice"));
        }
        if (
            input.run.as_str(),
            input.netuid,
            input.spec,
            input.epoch,
            input.id,
        ) != (
            header.run.as_str(),
            header.netuid,
            header.spec,
            header.epoch,
            header.id,
        ) {
            return Err(Rejection::Evidence(
                "names an input of another run, epoch or sample",
            ));
        }
        if members.stage_of(&input.producer) != Some(input.stage) {
            return Err(Rejection::Evidence(
                "names an input by no miner of its stage",
            ));
        }
    }
    for (kind, stage, required) in allowed {
        if required && header.input(kind, stage).is_none() {
            return Err(Rejection::Evidence(
                "does not name the input it was computed from",
            ));
        }
    }
    Ok(())
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
    if header.run != expect.run.name {
        return mismatch("run");
    }
    if header.netuid != expect.run.netuid {
        return mismatch("netuid");
    }
    if header.spec != expect.run.spec {
        return mismatch("spec");
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
    check_evidence(&header, members)?;
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
