//! Timelock encryption to a drand round: how commit-reveal v4 hides weights until the chain
//! reveals them.
//!
//! A validator encrypts its weights to a future round of a drand beacon (finney: drand's
//! *quicknet*, a BLS threshold beacon that signs round `r` every 3 s). Nobody can decrypt before
//! the beacon publishes its signature of that round; once it has, anyone can, and the chain
//! does, in the block hook that applies due commits. The scheme is Boneh-Franklin identity-based
//! encryption on BLS12-381 with the round as the identity (`sha256(round as u64, big-endian)`),
//! signatures in G1 (48 bytes) and the beacon's public key in G2 (96 bytes), wrapping an
//! AES-256-GCM key; ciphertexts are the ark-serialize compressed `TLECiphertext` that subtensor
//! decodes (`244 + plaintext` bytes). The arithmetic is the `timelock` crate (Ideal Labs), the
//! implementation subtensor itself uses, so what is encrypted here decrypts on finney.
//!
//! [`Beacon`] says which beacon and when its rounds fall; [`encrypt`] and [`decrypt`] are the
//! two directions; [`LocalBeacon`] is `btlocalnet`'s own beacon key, which signs rounds exactly
//! as drand does so that the whole path runs offline.

use ark_ec::{CurveGroup, Group};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use sha2::{Digest, Sha256};
use tle::curves::drand::TinyBLS381;
use tle::ibe::fullident::Identity;
use tle::stream_ciphers::AESGCMStreamCipherProvider;
use tle::tlock::{TLECiphertext, tld};
use w3f_bls::EngineBLS;

/// drand quicknet's public key (G2, compressed).
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
/// drand quicknet's first round, Unix seconds.
pub const QUICKNET_GENESIS: u64 = 1_692_803_367;
/// Seconds between quicknet rounds.
pub const QUICKNET_PERIOD: u64 = 3;

/// Length of a beacon public key (compressed G2).
pub const PUBLIC_KEY_LEN: usize = 96;
/// Length of a round signature (compressed G1).
pub const SIGNATURE_LEN: usize = 48;

/// Timelock encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelockError {
    /// A public key, signature or ciphertext is not a valid encoding.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The signature is not the one for the round the ciphertext names.
    #[error("the signature does not open this ciphertext (another round, or not the beacon's)")]
    WrongSignature,
    /// Encryption failed.
    #[error("encryption failed")]
    Encrypt,
}

/// A drand-style beacon: its key and its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// Public key, compressed G2.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Unix second of round 1.
    pub genesis_time: u64,
    /// Seconds between rounds.
    pub period: u64,
}

impl Beacon {
    /// drand quicknet, which finney's `Drand` pallet follows.
    pub fn quicknet() -> Beacon {
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(QUICKNET_PUBLIC_KEY, &mut public_key)
            .unwrap_or_else(|_| unreachable!("the quicknet key constant is 96 bytes of hex"));
        Beacon {
            public_key,
            genesis_time: QUICKNET_GENESIS,
            period: QUICKNET_PERIOD,
        }
    }

    /// The latest round published at Unix time `secs` (0 before genesis).
    pub fn round_at(&self, secs: f64) -> u64 {
        let since = secs - self.genesis_time as f64;
        if since < 0.0 {
            return 0;
        }
        (since / self.period.max(1) as f64).floor() as u64 + 1
    }

    /// When round `round` is published, Unix seconds.
    pub fn time_of(&self, round: u64) -> u64 {
        self.genesis_time + round.saturating_sub(1) * self.period
    }
}

/// The message a beacon signs for `round`: `sha256(round as u64, big-endian)`.
fn round_message(round: u64) -> Vec<u8> {
    Sha256::digest(round.to_be_bytes()).to_vec()
}

fn identity(round: u64) -> Identity {
    Identity::new(b"", vec![round_message(round)])
}

/// Encrypts `plaintext` so that it opens with the beacon's signature of `round`.
///
/// # Errors
/// [`TimelockError::Malformed`] when `public_key` is not a G2 point.
pub fn encrypt(
    public_key: &[u8; PUBLIC_KEY_LEN],
    round: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, TimelockError> {
    let pk = <TinyBLS381 as EngineBLS>::PublicKeyGroup::deserialize_compressed(&public_key[..])
        .map_err(|_| TimelockError::Malformed("beacon public key"))?;
    let mut rng = rand_core::OsRng;
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rng, &mut key);
    let ct = tle::tlock::tle::<TinyBLS381, AESGCMStreamCipherProvider, _>(
        pk,
        key,
        plaintext,
        identity(round),
        rng,
    )
    .map_err(|_| TimelockError::Encrypt)?;
    let mut out = Vec::new();
    ct.serialize_compressed(&mut out)
        .map_err(|_| TimelockError::Encrypt)?;
    Ok(out)
}

/// Opens `ciphertext` with a beacon's round signature.
///
/// # Errors
/// [`TimelockError::Malformed`] for bytes that are not a ciphertext or a G1 point,
/// [`TimelockError::WrongSignature`] when the signature is not the one of the ciphertext's round.
pub fn decrypt(ciphertext: &[u8], signature: &[u8]) -> Result<Vec<u8>, TimelockError> {
    let ct = TLECiphertext::<TinyBLS381>::deserialize_compressed(ciphertext)
        .map_err(|_| TimelockError::Malformed("timelock ciphertext"))?;
    let sig = <TinyBLS381 as EngineBLS>::SignatureGroup::deserialize_compressed(signature)
        .map_err(|_| TimelockError::Malformed("round signature"))?;
    tld::<TinyBLS381, AESGCMStreamCipherProvider>(ct, sig)
        .map_err(|_| TimelockError::WrongSignature)
}

/// A beacon key of our own: `btlocalnet`'s, which signs rounds as drand signs them (the BLS
/// signature of `sha256(round as u64, big-endian)` hashed to G1 with quicknet's domain), so that what
/// [`encrypt`] sealed to its public key opens with its pulses.
pub struct LocalBeacon {
    secret: <TinyBLS381 as EngineBLS>::Scalar,
}

impl LocalBeacon {
    /// The key derived from `seed` (a local chain's beacon need not be secret: it is a test
    /// network's, derived like its dev accounts).
    pub fn from_seed(seed: &[u8]) -> LocalBeacon {
        use ark_ff::PrimeField;
        let digest = Sha256::digest([b"sliver local beacon".as_slice(), seed].concat());
        LocalBeacon {
            secret: <TinyBLS381 as EngineBLS>::Scalar::from_le_bytes_mod_order(&digest),
        }
    }

    /// The public key, compressed G2.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let pk =
            (<TinyBLS381 as EngineBLS>::PublicKeyGroup::generator() * self.secret).into_affine();
        let mut out = [0u8; PUBLIC_KEY_LEN];
        // A compressed G2 point is exactly 96 bytes.
        let _ = pk.serialize_compressed(&mut out[..]);
        out
    }

    /// The signature of `round`, compressed G1: what drand publishes as the round's pulse.
    pub fn sign(&self, round: u64) -> [u8; SIGNATURE_LEN] {
        let sig = identity(round)
            .extract::<TinyBLS381>(self.secret)
            .0
            .into_affine();
        let mut out = [0u8; SIGNATURE_LEN];
        let _ = sig.serialize_compressed(&mut out[..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// drand quicknet's real signature of round 1000.
    const QUICKNET_ROUND_1000: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

    #[test]
    fn sealed_to_quicknet_opens_with_drands_real_signature_only() {
        let beacon = Beacon::quicknet();
        let ct = encrypt(&beacon.public_key, 1000, b"weights").unwrap();
        assert_eq!(ct.len(), 244 + b"weights".len());
        let sig = hex::decode(QUICKNET_ROUND_1000).unwrap();
        assert_eq!(decrypt(&ct, &sig).unwrap(), b"weights");
        let other = encrypt(&beacon.public_key, 1001, b"weights").unwrap();
        assert_eq!(decrypt(&other, &sig), Err(TimelockError::WrongSignature));
    }

    #[test]
    fn a_local_beacon_opens_what_was_sealed_to_it() {
        let local = LocalBeacon::from_seed(b"test");
        let ct = encrypt(&local.public_key(), 7, b"hello").unwrap();
        assert_eq!(decrypt(&ct, &local.sign(7)).unwrap(), b"hello");
        assert_eq!(
            decrypt(&ct, &local.sign(8)),
            Err(TimelockError::WrongSignature)
        );
        let stranger = LocalBeacon::from_seed(b"other");
        assert_eq!(
            decrypt(&ct, &stranger.sign(7)),
            Err(TimelockError::WrongSignature)
        );
    }

    #[test]
    fn hostile_bytes_are_refused() {
        let local = LocalBeacon::from_seed(b"test");
        let ct = encrypt(&local.public_key(), 7, b"hello").unwrap();
        assert!(matches!(
            decrypt(&ct[..ct.len() - 1], &local.sign(7)),
            Err(TimelockError::Malformed(_))
        ));
        assert!(matches!(
            decrypt(&ct, &[0u8; 48]),
            Err(TimelockError::Malformed(_) | TimelockError::WrongSignature)
        ));
        assert!(matches!(
            encrypt(&[1u8; 96], 7, b"x"),
            Err(TimelockError::Malformed(_))
        ));
        let mut long = vec![0xffu8; 1 << 16];
        long[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decrypt(&long, &local.sign(7)).is_err());
    }

    #[test]
    fn rounds_follow_the_beacon_clock() {
        let q = Beacon::quicknet();
        assert_eq!(q.round_at(QUICKNET_GENESIS as f64 - 1.0), 0);
        assert_eq!(q.round_at(QUICKNET_GENESIS as f64), 1);
        assert_eq!(q.round_at(QUICKNET_GENESIS as f64 + 3.0), 2);
        assert_eq!(q.time_of(2), QUICKNET_GENESIS + 3);
    }
}
