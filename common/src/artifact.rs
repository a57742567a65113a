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
//! 18      2       netuid (u16 LE): the subnet the run trains on
//! 20      8       id: sample id, or shard (count << 32 | index)
//! 28      32      producer hotkey (sr25519 public key)
//! 60      32      BLAKE3 of the payload
//! 92      8       payload length (u64 LE)
//! 100     32      BLAKE3 of the stage weights the payload was computed with (flat fp32 LE, as
//!                 the merge lays them out), or zeros when it claims none
//! 132     4       the sample's training loss (f32 LE) on the last stage's gradients, else NaN
//! 136     32      BLAKE3 of the run spec (RunSpec::hash)
//! 168     32      BLAKE3 of the evidence below (the inputs' signed headers), zeros when none
//! 200     1       number of inputs n (0..=MAX_INPUTS)
//! 201     1       run name length r (1..=MAX_RUN_LEN)
//! 202     r       run name (UTF-8)
//! 202+r   4*ndim  dims (u32 LE)
//! ...     64      sr25519 signature ("substrate" context) over every byte before it
//! ...             evidence: n times (u16 LE length L, then L bytes: the signed header, up to
//!                 and including its signature, of an input the payload was computed from)
//! ...     len     payload: a wire message (see `codec`)
//! ```
//!
//! The weights hash commits the producer to the weights it claims to have used before anyone
//! knows which artifacts a validator will recompute (spot checks); the loss is what CLASP
//! attributes to the sample's path. The netuid and the spec hash bind the artifact to one run on
//! one subnet, so that a hotkey registered on two subnets cannot have one's artifacts replayed
//! as the other's.
//!
//! The evidence is what the producer was shown: the signed headers of the artifacts it computed
//! from (a middle or last stage's activation: the previous stage's activation; a gradient: that
//! activation and, past the last stage, the next stage's gradient), each signed by its own
//! producer, and committed to by this producer's signature. A reader that is shown another
//! input than the evidence names, validly signed by the same producer for the same sample, holds
//! proof that the input's producer showed two readers two different objects (it *equivocated*):
//! the equivocator is blamed, not the miner that computed honestly from what it was shown
//! ([`Header::equivocates`]). An evidence header carries its own header only, not its inputs'
//! evidence, so evidence never nests.
//!
//! sr25519 is schnorrkel, the implementation the wallets use, with the `substrate` signing
//! context: an artifact signature is a plain hotkey signature of the header bytes.

use std::fmt;

use crate::assignment::StageIndex;
use crate::codec::CodecKind;
use crate::flat::WeightsHash;
use crate::schedule::Epoch;

/// Magic bytes at the start of every artifact.
pub const ARTIFACT_MAGIC: [u8; 4] = *b"SLVA";
/// Artifact format version; bump on any incompatible change.
pub const ARTIFACT_VERSION: u8 = 3;
/// Longest run name an artifact carries.
pub const MAX_RUN_LEN: usize = 64;
/// Length of an sr25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Most inputs an artifact names as evidence (a middle stage's gradient: its input activation
/// and the next stage's gradient).
pub const MAX_INPUTS: usize = 2;
/// The schnorrkel signing context Substrate and btcli use.
const SIGNING_CONTEXT: &[u8] = b"substrate";
const FIXED_LEN: usize = 202;

/// The longest signed header (run name and dims at their limits, signature included): the
/// most one evidence entry may hold.
pub const MAX_SIGNED_HEADER_LEN: usize =
    FIXED_LEN + MAX_RUN_LEN + 4 * crate::codec::MAX_DIMS + SIGNATURE_LEN;

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

/// Which artifact: its epoch, its producer's stage, its kind and its id. With the producer (the
/// owner of the store it sits in) this names one object ([`crate::layout::artifact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactId {
    /// Epoch it was produced in.
    pub epoch: Epoch,
    /// Pipeline stage of the producer.
    pub stage: StageIndex,
    /// What it holds.
    pub kind: Kind,
    /// Sample id, or for shards `count << 32 | index` (see [`shard_id`]).
    pub id: u64,
}

/// Which run an artifact belongs to: the run's name (part of every storage key), the subnet it
/// trains on, and the BLAKE3 of its spec. Every artifact's header names all three and every
/// reader checks them, so a run's artifacts are never taken for another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    /// The spec's `name`.
    pub name: String,
    /// The subnet.
    pub netuid: u16,
    /// [`crate::RunSpec::hash`].
    pub spec: [u8; 32],
}

impl RunId {
    /// `spec`'s run on subnet `netuid`.
    pub fn of(spec: &crate::RunSpec, netuid: u16) -> RunId {
        RunId {
            name: spec.name.clone(),
            netuid,
            spec: spec.hash(),
        }
    }
}

/// The header of an artifact: what it is, who made it, and the payload's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Run name.
    pub run: String,
    /// The subnet the run trains on.
    pub netuid: u16,
    /// BLAKE3 of the run spec.
    pub spec: [u8; 32],
    /// Epoch it was produced in.
    pub epoch: Epoch,
    /// Pipeline stage of the producer.
    pub stage: StageIndex,
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
    pub weights: Option<WeightsHash>,
    /// The sample's training loss (the last stage's gradients).
    pub loss: Option<f32>,
    /// The signed headers of the inputs the payload was computed from, as the producer was
    /// shown them (each verified: signature, run, epoch, sample); empty for an evidence header
    /// itself, which carries none.
    pub inputs: Vec<Header>,
    /// The header's signed bytes as read, signature included: what a consumer embeds as
    /// evidence, and what tells two objects under one name apart ([`Header::digest`]).
    pub signed: Vec<u8>,
}

impl Header {
    /// BLAKE3 of the signed header: equal for two reads of one object, different for two
    /// objects (or two claims) under one name.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.signed).as_bytes()
    }

    /// Whether `other`, read from this header's producer for the same artifact (run, epoch,
    /// stage, kind, id), is a different object: proof, both being signed by the producer, that
    /// it showed two readers two different things.
    pub fn equivocates(&self, other: &Header) -> bool {
        self.producer == other.producer
            && (self.run.as_str(), self.netuid, self.spec)
                == (other.run.as_str(), other.netuid, other.spec)
            && (self.epoch, self.stage, self.kind, self.id)
                == (other.epoch, other.stage, other.kind, other.id)
            && self.digest() != other.digest()
    }

    /// The evidence input of `kind` from `stage`, if the producer named one.
    pub fn input(&self, kind: Kind, stage: StageIndex) -> Option<&Header> {
        self.inputs
            .iter()
            .find(|h| h.kind == kind && h.stage == stage)
    }
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
    fn stage_of(&self, hotkey: &Hotkey) -> Option<StageIndex>;
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

/// BLAKE3 of the evidence entries as laid out (each: u16 LE length, then the signed header),
/// or `None` when there are none.
fn evidence_digest(signed: &[&[u8]]) -> Option<[u8; 32]> {
    if signed.is_empty() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    for s in signed {
        h.update(&(s.len() as u16).to_le_bytes());
        h.update(s);
    }
    Some(*h.finalize().as_bytes())
}

mod open;
mod seal;

pub use open::{Expect, Opened, Rejection, open, read_header};
pub use seal::{Unsealed, seal};

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
    struct Stages(Vec<(Hotkey, StageIndex)>);
    impl Membership for Stages {
        fn stage_of(&self, hotkey: &Hotkey) -> Option<StageIndex> {
            self.0.iter().find(|(h, _)| h == hotkey).map(|(_, s)| *s)
        }
    }

    const DIMS: [i64; 2] = [2, 3];
    static RUN: std::sync::LazyLock<RunId> = std::sync::LazyLock::new(|| RunId {
        name: "r".into(),
        netuid: 9,
        spec: [5; 32],
    });
    fn unsealed() -> Unsealed<'static> {
        Unsealed {
            run: &RUN,
            at: ArtifactId {
                epoch: Epoch(3),
                stage: StageIndex(0),
                kind: Kind::Act,
                id: 42,
            },
            codec: CodecKind::Fp32,
            dims: &DIMS,
            weights: Some(WeightsHash([7; 32])),
            loss: Some(2.5),
            inputs: &[],
        }
    }
    fn expect(producer: Hotkey) -> Expect<'static> {
        Expect {
            run: &RUN,
            epoch: Epoch(3),
            stage: StageIndex(0),
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
        let members = Stages(vec![(k.hotkey(), StageIndex(0))]);
        let bytes = seal(unsealed(), b"hello", &k).unwrap();
        let opened = open(&bytes, &expect(k.hotkey()), &members).unwrap();
        assert_eq!(opened.payload, b"hello");
        assert_eq!(opened.header.id, 42);
        assert_eq!(opened.header.weights, Some(WeightsHash([7; 32])));
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
        // Too long for what it claims (room for evidence included), or longer than its header
        // says.
        let mut bad = bytes.clone();
        bad.push(0);
        assert_eq!(
            open(&bad, &expect(k.hotkey()), &members).unwrap_err(),
            Rejection::Malformed("payload length")
        );
        bad.resize(expect(k.hotkey()).max_len() as usize + 1, 0);
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
        let staged = Stages(vec![(k.hotkey(), StageIndex(1))]);
        assert_eq!(
            open(&bytes, &expect(k.hotkey()), &staged)
                .unwrap_err()
                .reason(),
            "wrong_stage"
        );
        // Read from another producer's prefix.
        let members2 = Stages(vec![
            (k.hotkey(), StageIndex(0)),
            (other.hotkey(), StageIndex(0)),
        ]);
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
    fn an_artifact_of_another_subnet_or_spec_is_refused() {
        let k = key(1);
        let members = Stages(vec![(k.hotkey(), StageIndex(0))]);
        let bytes = seal(unsealed(), b"hello", &k).unwrap();
        let mut e = expect(k.hotkey());
        let other_subnet = RunId {
            netuid: 10,
            ..RUN.clone()
        };
        e.run = &other_subnet;
        assert_eq!(
            open(&bytes, &e, &members).unwrap_err(),
            Rejection::Mismatch { field: "netuid" }
        );
        let other_spec = RunId {
            spec: [6; 32],
            ..RUN.clone()
        };
        e.run = &other_spec;
        assert_eq!(
            open(&bytes, &e, &members).unwrap_err(),
            Rejection::Mismatch { field: "spec" }
        );
    }

    /// A stage-1 activation carries the stage-0 activation it was computed from, signed by its
    /// producer; a reader shown another stage-0 object for the sample proves equivocation.
    #[test]
    fn evidence_names_the_inputs_and_proves_equivocation() {
        let (a, b) = (key(1), key(2));
        let members = Stages(vec![
            (a.hotkey(), StageIndex(0)),
            (b.hotkey(), StageIndex(1)),
        ]);
        let input = read_header(&seal(unsealed(), b"shown to b", &a).unwrap())
            .unwrap()
            .0;
        let at1 = ArtifactId {
            stage: StageIndex(1),
            ..unsealed().at
        };
        let inputs = [&input];
        let downstream = Unsealed {
            at: at1,
            inputs: &inputs,
            ..unsealed()
        };
        let bytes = seal(downstream, b"out", &b).unwrap();
        let e1 = Expect {
            stage: StageIndex(1),
            payload_len: 3,
            ..expect(b.hotkey())
        };
        let opened = open(&bytes, &e1, &members).unwrap();
        let named = opened.header.input(Kind::Act, StageIndex(0)).unwrap();
        assert_eq!(named.digest(), input.digest());
        assert_eq!(named.payload_hash, *blake3::hash(b"shown to b").as_bytes());
        // What the validator is shown: another object, signed by the same producer.
        let shown = read_header(&seal(unsealed(), b"shown to v", &a).unwrap())
            .unwrap()
            .0;
        assert!(named.equivocates(&shown) && !named.equivocates(&input));

        // A stage-1 activation that names no input, an input of another sample, or one signed
        // by no stage-0 miner, is refused.
        let bare = seal(
            Unsealed {
                at: at1,
                ..unsealed()
            },
            b"out",
            &b,
        )
        .unwrap();
        assert_eq!(open(&bare, &e1, &members).unwrap_err().reason(), "evidence");
        let other_id = read_header(
            &seal(
                Unsealed {
                    at: ArtifactId {
                        id: 43,
                        ..unsealed().at
                    },
                    ..unsealed()
                },
                b"x",
                &a,
            )
            .unwrap(),
        )
        .unwrap()
        .0;
        let wrong = [&other_id];
        let bytes = seal(
            Unsealed {
                inputs: &wrong,
                ..downstream
            },
            b"out",
            &b,
        )
        .unwrap();
        assert_eq!(
            open(&bytes, &e1, &members).unwrap_err().reason(),
            "evidence"
        );
        let stranger = read_header(&seal(unsealed(), b"x", &key(3)).unwrap())
            .unwrap()
            .0;
        let forged = [&stranger];
        let bytes = seal(
            Unsealed {
                inputs: &forged,
                ..downstream
            },
            b"out",
            &b,
        )
        .unwrap();
        assert_eq!(
            open(&bytes, &e1, &members).unwrap_err().reason(),
            "evidence"
        );
        // A tampered evidence entry: its signature (or the digest the header signed) fails.
        let mut bytes = seal(downstream, b"out", &b).unwrap();
        let (_, payload_at) = read_header(&bytes).unwrap();
        bytes[payload_at - 10] ^= 1;
        assert_eq!(
            open(&bytes, &e1, &members).unwrap_err().reason(),
            "evidence"
        );
    }

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(shard_of(shard_id(3, 7)), (3, 7));
        assert_eq!(Hotkey([0xab; 32]).short(), "abababab");
    }
}
