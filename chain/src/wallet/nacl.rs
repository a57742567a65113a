//! btcli's `$NACL` encryption of coldkey files, byte for byte as bittensor-wallet writes it with
//! libsodium: the file is `$NACL`, a random 24-byte nonce, then the XSalsa20-Poly1305
//! `secretbox` of the key file JSON (16-byte tag first). The 32-byte box key is
//! `crypto_pwhash_argon2i` of the password at libsodium's "sensitive" cost: Argon2i v1.3,
//! 8 passes over 512 MiB, one lane, with a fixed salt shared by every bittensor wallet.

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

/// The prefix of a NaCl-encrypted key file.
pub(crate) const MAGIC: &[u8] = b"$NACL";
/// bittensor-wallet's `NACL_SALT` (the Python literal `b"\x13q\x83\xdf\xf1Z\t\xbc..."`).
const SALT: [u8; 16] = [
    0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1,
];
/// libsodium's `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
const ARGON2_PASSES: u32 = 8;
/// libsodium's `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE` (512 MiB), in KiB.
const ARGON2_MEMORY_KIB: u32 = 512 * 1024;
/// libsodium always hashes with a single lane.
const ARGON2_LANES: u32 = 1;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a `$NACL` blob could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Too short to hold magic, nonce and tag.
    Truncated,
    /// Argon2 failed (allocation, in practice).
    Kdf(argon2::Error),
    /// The tag does not verify: wrong password or altered data.
    Decrypt,
}

/// Why sealing failed.
#[derive(Debug)]
pub(crate) enum SealError {
    Kdf(argon2::Error),
    Encrypt,
}

/// Whether `data` is NaCl-encrypted.
pub(crate) fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// Derives the secretbox key from a password. Takes about a second optimised, and 512 MiB.
fn derive_key(password: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, argon2::Error> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_PASSES,
        ARGON2_LANES,
        Some(KEY_LEN),
    )?;
    let argon = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    argon.hash_password_into(password, &SALT, key.as_mut())?;
    Ok(key)
}

/// Encrypts `plaintext` under `password` into a `$NACL` blob with a fresh random nonce.
pub(crate) fn seal(plaintext: &[u8], password: &[u8]) -> Result<Vec<u8>, SealError> {
    let key = derive_key(password).map_err(SealError::Kdf)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Encrypt)?;
    seal_with_key(plaintext, &key, &nonce)
}

fn seal_with_key(
    plaintext: &[u8],
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, SealError> {
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key));
    let boxed = cipher
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .map_err(|_| SealError::Encrypt)?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + boxed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// Decrypts a `$NACL` blob. The framing is checked before the (expensive) key derivation.
pub(crate) fn open(data: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if !is_sealed(data) || data.len() < MAGIC.len() + NONCE_LEN + TAG_LEN {
        return Err(OpenError::Truncated);
    }
    let key = derive_key(password).map_err(OpenError::Kdf)?;
    open_with_key(data, &key)
}

fn open_with_key(data: &[u8], key: &[u8; KEY_LEN]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let (nonce, boxed) = data[MAGIC.len()..].split_at(NONCE_LEN);
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), boxed)
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secretbox_framing_round_trips_without_the_kdf() {
        let key = [7u8; KEY_LEN];
        let nonce = [9u8; NONCE_LEN];
        let sealed = seal_with_key(b"{\"a\":1}", &key, &nonce).unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(&sealed[5..29], &nonce);
        assert_eq!(sealed.len(), 5 + NONCE_LEN + TAG_LEN + 7);
        assert_eq!(
            open_with_key(&sealed, &key).unwrap().as_slice(),
            b"{\"a\":1}"
        );
        assert!(matches!(
            open_with_key(&sealed, &[8u8; KEY_LEN]),
            Err(OpenError::Decrypt)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open_with_key(&tampered, &key),
            Err(OpenError::Decrypt)
        ));
    }

    #[test]
    fn short_blobs_are_rejected_before_key_derivation() {
        assert!(matches!(
            open(b"$NACL0123", b"pw"),
            Err(OpenError::Truncated)
        ));
        assert!(matches!(open(b"{}", b"pw"), Err(OpenError::Truncated)));
    }
}
