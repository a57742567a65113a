//! sr25519 keypairs as btcli stores them: a BIP39 phrase, the 32-byte mini-secret derived from it
//! (`secretSeed`), or only the 64-byte expanded secret key (`privateKey`).
//!
//! The derivations are Substrate's, so a phrase gives the same account here as in btcli,
//! polkadot.js or `subxt-signer`: the phrase's BIP39 *entropy* goes through PBKDF2-HMAC-SHA512
//! (2048 rounds, salt `"mnemonic"`, no password) and the first 32 bytes are the mini-secret, which
//! schnorrkel expands in Ed25519 mode. Signatures use the signing context `b"substrate"`.

use schnorrkel::{ExpansionMode, MiniSecretKey, SecretKey};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use subxt_utils_accountid32::AccountId32;
use zeroize::Zeroizing;

use super::error::KeyError;

/// Length of `secretSeed`, the mini-secret.
pub const SEED_LEN: usize = 32;
/// Length of `privateKey`, schnorrkel's expanded secret key (scalar, then nonce).
pub const PRIVATE_KEY_LEN: usize = 64;
/// Length of an sr25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Substrate's sr25519 signing context; the chain verifies extrinsic signatures under it.
const SIGNING_CONTEXT: &[u8] = b"substrate";
/// Words in a newly generated phrase, as btcli's default (`--n-words 12`).
const NEW_PHRASE_ENTROPY_LEN: usize = 16;

/// An sr25519 keypair, with the secret material it was made from.
///
/// `Debug` prints the SS58 address and `[redacted]`; the secret never leaves except through
/// [`Keypair::phrase`], [`Keypair::seed`] and [`Keypair::private_key`]. Secret key bytes are
/// zeroed on drop.
///
/// The chain client signs extrinsics with [`Keypair::sign`]: its signature is what
/// `MultiSignature::Sr25519` carries, and [`Keypair::account_id`] is the signer's `AccountId32`.
pub struct Keypair {
    pair: schnorrkel::Keypair,
    origin: Origin,
}

/// What the keypair was made from, kept so that it can be written back in full.
enum Origin {
    Phrase {
        phrase: SecretString,
        seed: SecretBox<[u8; SEED_LEN]>,
    },
    Seed(SecretBox<[u8; SEED_LEN]>),
    PrivateKey,
}

impl Keypair {
    /// A new keypair from a fresh random 12-word phrase (128 bits of OS randomness), as
    /// `btcli wallet create` makes.
    ///
    /// # Panics
    ///
    /// If the operating system has no randomness to give, which leaves nothing safe to do.
    #[allow(
        clippy::expect_used,
        reason = "no randomness from the OS leaves nothing safe to do; 16 bytes are valid BIP39 entropy (documented panic)"
    )]
    pub fn generate() -> Self {
        let mut entropy = Zeroizing::new([0u8; NEW_PHRASE_ENTROPY_LEN]);
        getrandom::fill(entropy.as_mut()).expect("the OS random number generator must work");
        let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_ref())
            .expect("16 bytes are a valid BIP39 entropy length");
        Self::from_mnemonic(&mnemonic)
    }

    /// The keypair of an English BIP39 phrase, as btcli's `regen_coldkey --mnemonic` derives it.
    ///
    /// Whitespace between words is normalised; the phrase stored is the normalised one.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidPhrase`] for unknown words, a wrong word count or a bad checksum.
    pub fn from_phrase(phrase: &str) -> Result<Self, KeyError> {
        let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, phrase)
            .map_err(|_| KeyError::InvalidPhrase)?;
        Ok(Self::from_mnemonic(&mnemonic))
    }

    #[allow(
        clippy::expect_used,
        reason = "a parsed mnemonic always has 16 to 32 bytes of entropy"
    )]
    fn from_mnemonic(mnemonic: &bip39::Mnemonic) -> Self {
        let (entropy, len) = mnemonic.to_entropy_array();
        let entropy = Zeroizing::new(entropy);
        let mini = substrate_bip39::mini_secret_from_entropy(&entropy[..len], "")
            .expect("a parsed mnemonic has 16 to 32 bytes of entropy");
        let seed = Zeroizing::new(mini.to_bytes());
        Keypair {
            pair: mini.expand_to_keypair(ExpansionMode::Ed25519),
            origin: Origin::Phrase {
                phrase: SecretString::from(mnemonic.to_string()),
                seed: SecretBox::new(Box::new(*seed)),
            },
        }
    }

    /// The keypair of a 32-byte mini-secret (btcli's `secretSeed`).
    #[allow(clippy::expect_used, reason = "any 32 bytes are a mini-secret key")]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mini = MiniSecretKey::from_bytes(seed).expect("any 32 bytes are a mini-secret key");
        Keypair {
            pair: mini.expand_to_keypair(ExpansionMode::Ed25519),
            origin: Origin::Seed(SecretBox::new(Box::new(*seed))),
        }
    }

    /// The keypair of a 64-byte expanded secret key (btcli's `privateKey`, schnorrkel's
    /// `SecretKey::to_bytes` layout). Such a keypair has no phrase or seed to write back.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidPrivateKey`] if the first 32 bytes are not a canonical scalar.
    pub fn from_private_key(private_key: &[u8; PRIVATE_KEY_LEN]) -> Result<Self, KeyError> {
        let secret = SecretKey::from_bytes(private_key).map_err(|_| KeyError::InvalidPrivateKey)?;
        Ok(Keypair {
            pair: secret.to_keypair(),
            origin: Origin::PrivateKey,
        })
    }

    /// The public key, which is the account id on chain.
    pub fn account_id(&self) -> AccountId32 {
        AccountId32(self.pair.public.to_bytes())
    }

    /// The account's SS58 address with Bittensor's (and Substrate's generic) prefix 42.
    pub fn ss58_address(&self) -> String {
        self.account_id().to_string()
    }

    /// Signs `message` under the `substrate` context, as the chain expects for extrinsics and
    /// as `btcli`/`bittensor-wallet` sign messages. sr25519 signatures are randomised: signing
    /// twice gives two different, equally valid signatures.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let context = schnorrkel::signing_context(SIGNING_CONTEXT);
        self.pair.sign(context.bytes(message)).to_bytes()
    }

    /// The BIP39 phrase, if the keypair was made from one.
    pub fn phrase(&self) -> Option<&SecretString> {
        match &self.origin {
            Origin::Phrase { phrase, .. } => Some(phrase),
            Origin::Seed(_) | Origin::PrivateKey => None,
        }
    }

    /// The 32-byte mini-secret, if the keypair was made from a phrase or a seed.
    pub fn seed(&self) -> Option<&SecretBox<[u8; SEED_LEN]>> {
        match &self.origin {
            Origin::Phrase { seed, .. } | Origin::Seed(seed) => Some(seed),
            Origin::PrivateKey => None,
        }
    }

    /// The 64-byte expanded secret key (btcli's `privateKey`); every keypair has one.
    pub fn private_key(&self) -> SecretBox<[u8; PRIVATE_KEY_LEN]> {
        SecretBox::new(Box::new(self.pair.secret.to_bytes()))
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        let origin = match &self.origin {
            Origin::Phrase { phrase, seed } => Origin::Phrase {
                phrase: phrase.clone(),
                seed: SecretBox::new(Box::new(*seed.expose_secret())),
            },
            Origin::Seed(seed) => Origin::Seed(SecretBox::new(Box::new(*seed.expose_secret()))),
            Origin::PrivateKey => Origin::PrivateKey,
        };
        Keypair {
            pair: self.pair.clone(),
            origin,
        }
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("ss58_address", &format_args!("{}", self.account_id()))
            .field("secret", &format_args!("[redacted]"))
            .finish()
    }
}

/// Whether `signature` is `account`'s sr25519 signature of `message` under the `substrate`
/// context (what [`Keypair::sign`] produces).
pub fn verify(account: &AccountId32, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(public) = schnorrkel::PublicKey::from_bytes(&account.0) else {
        return false;
    };
    let Ok(signature) = schnorrkel::Signature::from_bytes(signature) else {
        return false;
    };
    public
        .verify_simple(SIGNING_CONTEXT, message, &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Substrate's development phrase; its root account is well known.
    const DEV_PHRASE: &str =
        "bottom drive obey lake curtain smoke basket hold race lonely fit walk";
    const DEV_ROOT_SS58: &str = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";

    #[test]
    fn phrase_matches_substrate_and_subxt_signer() {
        let ours = Keypair::from_phrase(DEV_PHRASE).unwrap();
        assert_eq!(ours.ss58_address(), DEV_ROOT_SS58);
        let mnemonic = subxt_signer::bip39::Mnemonic::parse(DEV_PHRASE).unwrap();
        let theirs = subxt_signer::sr25519::Keypair::from_phrase(&mnemonic, None).unwrap();
        assert_eq!(ours.account_id().0, theirs.public_key().0);
    }

    #[test]
    fn seed_and_private_key_give_the_same_account() {
        let from_phrase = Keypair::from_phrase(DEV_PHRASE).unwrap();
        let seed = *from_phrase.seed().unwrap().expose_secret();
        let private_key = *from_phrase.private_key().expose_secret();
        let from_seed = Keypair::from_seed(&seed);
        let from_private = Keypair::from_private_key(&private_key).unwrap();
        assert_eq!(from_seed.account_id(), from_phrase.account_id());
        assert_eq!(from_private.account_id(), from_phrase.account_id());
        assert!(from_seed.phrase().is_none());
        assert!(from_private.seed().is_none());
        assert_eq!(*from_seed.private_key().expose_secret(), private_key);
    }

    #[test]
    fn signatures_verify_here_and_in_subxt_signer() {
        let pair = Keypair::from_phrase(DEV_PHRASE).unwrap();
        let signature = pair.sign(b"hello");
        assert!(verify(&pair.account_id(), b"hello", &signature));
        assert!(!verify(&pair.account_id(), b"hellO", &signature));
        let public = subxt_signer::sr25519::PublicKey(pair.account_id().0);
        let theirs = subxt_signer::sr25519::Signature(signature);
        assert!(subxt_signer::sr25519::verify(&theirs, b"hello", &public));
    }

    #[test]
    fn generated_phrases_are_twelve_words_and_reload() {
        let pair = Keypair::generate();
        let phrase = pair.phrase().unwrap().expose_secret().to_owned();
        assert_eq!(phrase.split_whitespace().count(), 12);
        let again = Keypair::from_phrase(&phrase).unwrap();
        assert_eq!(again.account_id(), pair.account_id());
        assert_ne!(Keypair::generate().account_id(), pair.account_id());
    }

    #[test]
    fn bad_input_is_rejected_without_echoing_it() {
        let err = Keypair::from_phrase(
            "bottom drive obey lake curtain smoke basket hold race lonely fit fit",
        )
        .unwrap_err();
        assert_eq!(err, KeyError::InvalidPhrase);
        assert!(!err.to_string().contains("bottom"));
        assert_eq!(
            Keypair::from_private_key(&[0xff; PRIVATE_KEY_LEN]).unwrap_err(),
            KeyError::InvalidPrivateKey
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let pair = Keypair::from_phrase(DEV_PHRASE).unwrap();
        let debug = format!("{pair:?}");
        assert!(debug.contains(DEV_ROOT_SS58), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("bottom"), "{debug}");
        let seed_hex = hex::encode(pair.seed().unwrap().expose_secret());
        assert!(!debug.contains(&seed_hex));
    }
}
