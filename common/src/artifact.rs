//! Artifacts: every object a participant puts in storage, signed by its hotkey.
//!
//! Miners read tensors that strangers upload, so an artifact is checked in full before its
//! payload is touched: its size against the exact size the run spec allows, its signature, that
//! its producer is registered and assigned to the stage it claims this epoch, that it is the
//! object the reader asked for (run, epoch, stage, kind, id, producer), the BLAKE3 of the payload,
//! and that codec and dims are the ones the receiving side expects. Each failure is a
//! [`Rejection`] whose [`reason`](Rejection::reason) is a fixed label for the metrics.
//!
//! ```text
//! offset  size    field
//! 0       4       magic "SLVA"
//! 4       1       format version (ARTIFACT_VERSION)
//! 5       1       kind (Kind as u8)
//! 6       1       codec id of the payload's wire message
//! 7       1       ndim (1..=codec::MAX_DIMS)
//! 8       8       epoch (u64 LE)
//! 16      2       stage (u16 LE)
//! 18      2       reserved, 0
//! 20      8       id: sample id, or shard (count << 32 | index)
//! 28      32      producer hotkey (sr25519 public key)
//! 60      32      BLAKE3 of the payload
//! 92      8       payload length (u64 LE)
//! 100     32      BLAKE3 of the stage weights the payload was computed with (flat fp32 LE, as
//!                 the merge lays them out), or zeros when it claims none
//! 132     4       the sample's training loss (f32 LE) on the last stage's gradients, else NaN
//! 136     1       run name length r (1..=MAX_RUN_LEN)
//! 137     r       run name (UTF-8)
//! 137+r   4*ndim  dims (u32 LE)
//! ...     64      sr25519 signature ("substrate" context) over every byte before it
//! ...     len     payload: a wire message (see `codec`)
//! ```
//!
//! The weights hash commits the producer to the weights it claims to have used before anyone
//! knows which artifacts a validator will recompute (spot checks); the loss is what CLASP
//! attributes to the sample's path.
//!
//! sr25519 is schnorrkel, the implementation the wallets use, with the `substrate` signing
//! context: an artifact signature is a plain hotkey signature of the header bytes.

use std::fmt;

use crate::codec::{CodecKind, MAX_DIMS, WireCodec};

/// Magic bytes at the start of every artifact.
pub const ARTIFACT_MAGIC: [u8; 4] = *b"SLVA";
/// Artifact format version; bump on any incompatible change.
pub const ARTIFACT_VERSION: u8 = 2;
/// Longest run name an artifact carries.
pub const MAX_RUN_LEN: usize = 64;
/// Length of an sr25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// The schnorrkel signing context Substrate and btcli use.
const SIGNING_CONTEXT: &[u8] = b"substrate";
const FIXED_LEN: usize = 137;

/// A hotkey: an sr25519 public key (= the chain's `AccountId32`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hotkey(pub [u8; 32]);

impl fmt::Display for Hotkey {
    /// Lower-case hex: the form used in storage keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hotkey({})", &self.to_string()[..16])
    }
}

impl Hotkey {
    /// The first 8 hex digits: enough to tell participants apart in logs.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }
}

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A stage's boundary activations for one sample.
    Act,
    /// The gradient with respect to a stage's input for one sample.
    Grad,
    /// One shard of a miner's stage weights, contributed to the merge.
    Shard,
    /// One shard of the merged (averaged) stage weights.
    Merged,
}

impl Kind {
    /// Every kind, in id order.
    pub const ALL: [Kind; 4] = [Kind::Act, Kind::Grad, Kind::Shard, Kind::Merged];

    /// The storage key segment (`act`, `grad`, `shard`, `merged`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Act => "act",
            Kind::Grad => "grad",
            Kind::Shard => "shard",
            Kind::Merged => "merged",
        }
    }

    fn id(self) -> u8 {
        match self {
            Kind::Act => 1,
            Kind::Grad => 2,
            Kind::Shard => 3,
            Kind::Merged => 4,
        }
    }

    fn from_id(id: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// The storage key of an artifact: `runs/{run}/e{epoch}/s{stage}/{producer}/{kind}/{id}`.
///
/// Every key has exactly one writer (the producer is in it), so write-once puts never race.
pub fn key(run: &str, epoch: u64, stage: usize, producer: &Hotkey, kind: Kind, id: u64) -> String {
    format!("{}{id}", prefix(run, epoch, stage, producer, kind))
}

/// The prefix under which `producer` puts its artifacts of `kind` for (`epoch`, `stage`).
pub fn prefix(run: &str, epoch: u64, stage: usize, producer: &Hotkey, kind: Kind) -> String {
    format!("runs/{run}/e{epoch}/s{stage}/{producer}/{}/", kind.as_str())
}

/// The id at the end of a key listed under [`prefix`], if it is one.
pub fn id_of_key(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.parse().ok()
}

/// The header of an artifact: what it is, who made it, and the payload's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Run name.
    pub run: String,
    /// Epoch it was produced in.
    pub epoch: u64,
    /// Pipeline stage of the producer.
    pub stage: u16,
    /// What it holds.
    pub kind: Kind,
    /// Sample id, or for shards `count << 32 | index` (see [`shard_id`]).
    pub id: u64,
    /// Codec of the payload's wire message.
    pub codec: CodecKind,
    /// Dimensions of the payload's tensor.
    pub dims: Vec<i64>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// BLAKE3 of the payload.
    pub payload_hash: [u8; 32],
    /// The producer's hotkey.
    pub producer: Hotkey,
    /// BLAKE3 of the weights the producer says it computed the payload with.
    pub weights: Option<[u8; 32]>,
    /// The sample's training loss (the last stage's gradients).
    pub loss: Option<f32>,
}

/// The id of shard `index` of `count`.
pub fn shard_id(index: u32, count: u32) -> u64 {
    (u64::from(count) << 32) | u64::from(index)
}

/// `(index, count)` of a shard id.
pub fn shard_of(id: u64) -> (u32, u32) {
    ((id & 0xFFFF_FFFF) as u32, (id >> 32) as u32)
}

/// Signs artifact headers: a participant's hotkey.
pub trait Signer: Send + Sync {
    /// The hotkey's public key.
    fn hotkey(&self) -> Hotkey;
    /// An sr25519 signature of `message` under the `substrate` context.
    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN];
}

/// Who may produce artifacts for a stage this epoch.
pub trait Membership {
    /// The stage `hotkey` is assigned to, or `None` if it is not a registered, assigned miner.
    fn stage_of(&self, hotkey: &Hotkey) -> Option<usize>;
}

/// Whether `signature` is `hotkey`'s sr25519 signature of `message` (`substrate` context).
pub fn verify_signature(hotkey: &Hotkey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(public) = schnorrkel::PublicKey::from_bytes(&hotkey.0) else {
        return false;
    };
    let Ok(signature) = schnorrkel::Signature::from_bytes(signature) else {
        return false;
    };
    public
        .verify_simple(SIGNING_CONTEXT, message, &signature)
        .is_ok()
}

/// A signed artifact as bytes: header, signature, payload.
///
/// # Errors
/// [`Rejection::Malformed`] when the header cannot be written (run name too long, bad dims).
pub fn seal(
    header_fields: Unsealed<'_>,
    payload: &[u8],
    signer: &dyn Signer,
) -> Result<Vec<u8>, Rejection> {
    let Unsealed {
        run,
        epoch,
        stage,
        kind,
        id,
        codec,
        dims,
        weights,
        loss,
    } = header_fields;
    if loss.is_some_and(|l| !l.is_finite() || l < 0.0) {
        return Err(Rejection::Malformed("loss must be finite and not negative"));
    }
    if run.is_empty() || run.len() > MAX_RUN_LEN {
        return Err(Rejection::Malformed("run name must be 1 to 64 bytes"));
    }
    if dims.is_empty()
        || dims.len() > MAX_DIMS
        || dims.iter().any(|&d| d < 1 || d > u32::MAX as i64)
    {
        return Err(Rejection::Malformed("dims"));
    }
    let mut out = Vec::with_capacity(FIXED_LEN + run.len() + 4 * dims.len() + 64 + payload.len());
    out.extend_from_slice(&ARTIFACT_MAGIC);
    out.extend_from_slice(&[ARTIFACT_VERSION, kind.id(), codec.id(), dims.len() as u8]);
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&stage.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&signer.hotkey().0);
    out.extend_from_slice(blake3::hash(payload).as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&weights.unwrap_or([0; 32]));
    out.extend_from_slice(&loss.unwrap_or(f32::NAN).to_le_bytes());
    out.push(run.len() as u8);
    out.extend_from_slice(run.as_bytes());
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_le_bytes());
    }
    let signature = signer.sign(&out);
    out.extend_from_slice(&signature);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The fields of a header that the producer chooses; the rest are computed by [`seal`].
#[derive(Debug, Clone, Copy)]
pub struct Unsealed<'a> {
    /// Run name.
    pub run: &'a str,
    /// Epoch.
    pub epoch: u64,
    /// Producer's stage.
    pub stage: u16,
    /// Kind.
    pub kind: Kind,
    /// Sample or shard id.
    pub id: u64,
    /// Payload codec.
    pub codec: CodecKind,
    /// Payload dims.
    pub dims: &'a [i64],
    /// BLAKE3 of the weights the payload was computed with, if it was computed with any.
    pub weights: Option<[u8; 32]>,
    /// The sample's training loss, on the last stage's gradients.
    pub loss: Option<f32>,
}

/// What a reader expects of one artifact: everything but the payload's content.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Run name.
    pub run: &'a str,
    /// Epoch.
    pub epoch: u64,
    /// Producer's stage.
    pub stage: u16,
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
    /// What `producer`'s artifact of (`epoch`, `stage`, `kind`, `id`) in run `run` must be: a
    /// payload of `codec` with `dims`, of exactly the codec's length for them.
    pub fn of(
        run: &'a str,
        (epoch, stage, kind, id): (u64, usize, Kind, u64),
        producer: Hotkey,
        codec: &WireCodec,
        dims: &'a [i64],
    ) -> Expect<'a> {
        Expect {
            run,
            epoch,
            stage: stage as u16,
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
        assigned: usize,
        /// The stage the artifact claims.
        claimed: u16,
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
    let epoch = r.u64()?;
    let stage = u16::from_le_bytes(r.array()?);
    if r.array::<2>()? != [0, 0] {
        return Err(Rejection::Malformed("reserved bytes"));
    }
    let id = r.u64()?;
    let producer = Hotkey(r.array()?);
    let payload_hash = r.array()?;
    let payload_len = r.u64()?;
    let weights: [u8; 32] = r.array()?;
    let weights = (weights != [0; 32]).then_some(weights);
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
        Some(assigned) if assigned != usize::from(header.stage) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Key(schnorrkel::Keypair);
    impl Signer for Key {
        fn hotkey(&self) -> Hotkey {
            Hotkey(self.0.public.to_bytes())
        }
        fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
            self.0
                .sign(schnorrkel::signing_context(SIGNING_CONTEXT).bytes(message))
                .to_bytes()
        }
    }
    fn key(seed: u8) -> Key {
        let mini = schnorrkel::MiniSecretKey::from_bytes(&[seed; 32]).unwrap();
        Key(mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519))
    }
    struct Stages(Vec<(Hotkey, usize)>);
    impl Membership for Stages {
        fn stage_of(&self, hotkey: &Hotkey) -> Option<usize> {
            self.0.iter().find(|(h, _)| h == hotkey).map(|(_, s)| *s)
        }
    }

    const DIMS: [i64; 2] = [2, 3];
    fn unsealed() -> Unsealed<'static> {
        Unsealed {
            run: "r",
            epoch: 3,
            stage: 1,
            kind: Kind::Act,
            id: 42,
            codec: CodecKind::Fp32,
            dims: &DIMS,
            weights: Some([7; 32]),
            loss: Some(2.5),
        }
    }
    fn expect(producer: Hotkey) -> Expect<'static> {
        Expect {
            run: "r",
            epoch: 3,
            stage: 1,
            kind: Kind::Act,
            id: Some(42),
            producer,
            codec: CodecKind::Fp32,
            dims: &DIMS,
            payload_len: 5,
        }
    }

    #[test]
    fn a_sealed_artifact_opens_and_each_tampering_is_named() {
        let k = key(1);
        let members = Stages(vec![(k.hotkey(), 1)]);
        let bytes = seal(unsealed(), b"hello", &k).unwrap();
        let opened = open(&bytes, &expect(k.hotkey()), &members).unwrap();
        assert_eq!(opened.payload, b"hello");
        assert_eq!(opened.header.id, 42);
        assert_eq!(opened.header.weights, Some([7; 32]));
        assert_eq!(opened.header.loss, Some(2.5));
        // Claims left out read back as none.
        let plain = Unsealed {
            weights: None,
            loss: None,
            ..unsealed()
        };
        let opened = read_header(&seal(plain, b"hello", &k).unwrap()).unwrap().0;
        assert_eq!((opened.weights, opened.loss), (None, None));
        // A loss that is not a loss is refused when sealing.
        for loss in [f32::NAN, f32::INFINITY, -1.0] {
            let bad = Unsealed {
                loss: Some(loss),
                ..unsealed()
            };
            assert_eq!(seal(bad, b"hello", &k).unwrap_err().reason(), "malformed");
        }

        // A flipped payload byte: the hash.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&bad, &expect(k.hotkey()), &members).unwrap_err(),
            Rejection::Hash
        );
        // A flipped header byte: the signature.
        let mut bad = bytes.clone();
        bad[9] ^= 1;
        assert_eq!(
            open(&bad, &expect(k.hotkey()), &members).unwrap_err(),
            Rejection::Signature
        );
        // Too long for what it claims.
        let mut bad = bytes.clone();
        bad.push(0);
        assert_eq!(
            open(&bad, &expect(k.hotkey()), &members)
                .unwrap_err()
                .reason(),
            "size"
        );
        // Unregistered and wrongly staged producers.
        let other = key(2);
        let forged = seal(unsealed(), b"hello", &other).unwrap();
        assert_eq!(
            open(&forged, &expect(other.hotkey()), &members).unwrap_err(),
            Rejection::Unregistered
        );
        let staged = Stages(vec![(k.hotkey(), 0)]);
        assert_eq!(
            open(&bytes, &expect(k.hotkey()), &staged)
                .unwrap_err()
                .reason(),
            "wrong_stage"
        );
        // Read from another producer's prefix.
        let members2 = Stages(vec![(k.hotkey(), 1), (other.hotkey(), 1)]);
        assert_eq!(
            open(&bytes, &expect(other.hotkey()), &members2).unwrap_err(),
            Rejection::Mismatch { field: "producer" }
        );
        // Other dims than the receiver expects.
        let mut e = expect(k.hotkey());
        let dims = [3, 2];
        e.dims = &dims;
        assert_eq!(open(&bytes, &e, &members).unwrap_err().reason(), "dims");
        // Truncated anywhere: malformed, never a panic.
        for cut in 0..bytes.len() - 5 {
            let r = open(&bytes[..cut], &expect(k.hotkey()), &members).unwrap_err();
            assert!(
                matches!(r, Rejection::Malformed(_) | Rejection::Signature),
                "{cut}: {r}"
            );
        }
    }

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(shard_of(shard_id(3, 7)), (3, 7));
        assert_eq!(Hotkey([0xab; 32]).short(), "abababab");
    }
}
