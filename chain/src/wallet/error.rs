//! Errors of the wallet module: every failure names the file it concerns and what is wrong
//! with it, and none of them carries secret material (no phrase, seed, key or password, and no
//! fragment of a file that might hold one).

use std::io;
use std::path::{Path, PathBuf};

use subxt_utils_accountid32::{AccountId32, FromSs58Error};

/// What went wrong building a [`Keypair`](super::Keypair) from secret material.
///
/// Deliberately carries no detail about the input: the input is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The phrase is not an English BIP39 mnemonic (12, 15, 18, 21 or 24 known words with a
    /// valid checksum).
    #[error("not a valid English BIP39 mnemonic (12 to 24 words with a valid checksum)")]
    InvalidPhrase,
    /// The 64 bytes are not an sr25519 secret key in schnorrkel's layout (a canonical scalar
    /// followed by a 32-byte nonce).
    #[error("not a valid 64-byte sr25519 secret key")]
    InvalidPrivateKey,
}

/// Everything that can go wrong finding, reading, decrypting, parsing or writing wallet files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wallet or hotkey name that cannot be used as a single file name.
    #[error("{kind} name {name:?} cannot be used as a file name: {reason}")]
    InvalidName {
        /// `"wallet"` or `"hotkey"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The wallet path starts with `~` but the home directory is unknown.
    #[error("cannot expand `~` in wallet path {}: no home directory; pass an absolute --wallet.path", path.display())]
    NoHomeDir {
        /// The wallet path as given.
        path: PathBuf,
    },
    /// The key file does not exist.
    #[error("key file {} does not exist", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// Creating a key file that is already there, without asking to overwrite it.
    #[error("key file {} already exists; refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// An I/O error other than a missing file.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done: `"read"`, `"write"`, `"create directory"`, ...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The (decrypted) file is not JSON of the expected shape.
    ///
    /// Only the position is kept: serde's message may quote the offending value, which could be
    /// a secret.
    #[error("{} is not a valid key file: {category} error at line {line}, column {column}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// `syntax`, `data` (a field has the wrong type), `eof` or `io`.
        category: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A hex field is not `0x`-prefixed hex of the expected length.
    #[error("{}: field `{field}` is not hex of {expected} bytes", path.display())]
    BadHex {
        /// The file.
        path: PathBuf,
        /// The JSON field, e.g. `secretSeed`.
        field: &'static str,
        /// The expected length in bytes.
        expected: usize,
    },
    /// `ss58Address` does not parse.
    #[error("{}: field `ss58Address` is not a valid SS58 address", path.display())]
    BadSs58 {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: FromSs58Error,
    },
    /// A secret field decodes but is not a valid key.
    #[error("{}: field `{field}` holds no valid key", path.display())]
    BadSecret {
        /// The file.
        path: PathBuf,
        /// `secretPhrase` or `privateKey`.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// `cryptoType` is not 1 (sr25519).
    #[error("{}: cryptoType {crypto_type} is not supported; only 1 (sr25519) is", path.display())]
    UnsupportedCryptoType {
        /// The file.
        path: PathBuf,
        /// The value found.
        crypto_type: u64,
    },
    /// A keypair was asked for, but the file has no `secretPhrase`, `secretSeed` or `privateKey`.
    #[error("{}: has no secretPhrase, secretSeed or privateKey (is it a public-key file?)", path.display())]
    NoSecret {
        /// The file.
        path: PathBuf,
    },
    /// A public key was asked for, but the file has no `publicKey`, `accountId` or `ss58Address`.
    #[error("{}: has no publicKey, accountId or ss58Address", path.display())]
    NoPublicKey {
        /// The file.
        path: PathBuf,
    },
    /// A public field disagrees with the key derived from the secret (or with another public
    /// field).
    #[error("{}: field `{field}` says {stated} but `{source_field}` gives {derived}", path.display())]
    PublicKeyMismatch {
        /// The file.
        path: PathBuf,
        /// The field that disagrees.
        field: &'static str,
        /// Its value, as an SS58 address.
        stated: AccountId32,
        /// The field the key was taken from.
        source_field: &'static str,
        /// The key derived from it, as an SS58 address.
        derived: AccountId32,
    },
    /// Two secret fields describe different keys (e.g. `secretSeed` is not the seed of
    /// `secretPhrase`).
    #[error("{}: field `{field}` does not match `{source_field}`", path.display())]
    SecretMismatch {
        /// The file.
        path: PathBuf,
        /// The field that disagrees.
        field: &'static str,
        /// The field the key was taken from.
        source_field: &'static str,
    },
    /// The file is encrypted and was opened without a password source.
    #[error("{} is encrypted; open it with a password", path.display())]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// Decryption failed: the password is wrong or the ciphertext was altered.
    #[error("cannot decrypt {}: wrong password, or the file is corrupt", path.display())]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// A `$NACL` file too short to hold a nonce and an authentication tag.
    #[error("{} is truncated: {len} bytes is too short for NaCl-encrypted data", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// An encryption scheme of old bittensor versions that Sliver does not read.
    #[error("{} is encrypted with {method}, which Sliver does not read; re-encrypt it with a current btcli", path.display())]
    UnsupportedEncryption {
        /// The file.
        path: PathBuf,
        /// `"Ansible Vault"` or `"legacy Fernet"`.
        method: &'static str,
    },
    /// The password was to come from an environment variable that is not set.
    #[error("no password for {}: environment variable {var} is not set", path.display())]
    PasswordEnvMissing {
        /// The file to be opened or written.
        path: PathBuf,
        /// The variable.
        var: String,
    },
    /// Reading a password from the terminal failed (e.g. there is none).
    #[error("cannot prompt for the password of {} (set SLIVER_COLDKEY_PASSWORD to run without a terminal)", path.display())]
    Prompt {
        /// The file to be opened or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The two passwords typed when creating an encrypted file differ.
    #[error("the passwords typed for {} do not match", path.display())]
    PasswordMismatch {
        /// The file to be written.
        path: PathBuf,
    },
    /// Refusing to encrypt with an empty password.
    #[error("refusing to encrypt {} with an empty password", path.display())]
    EmptyPassword {
        /// The file to be written.
        path: PathBuf,
    },
    /// Argon2i key derivation failed (out of memory, in practice).
    #[error("cannot derive the encryption key for {} (Argon2i, 512 MiB)", path.display())]
    Kdf {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: argon2::Error,
    },
    /// Encryption itself failed (only possible for absurdly large plaintexts).
    #[error("cannot encrypt {}", path.display())]
    Encrypt {
        /// The file to be written.
        path: PathBuf,
    },
}

impl Error {
    /// The file the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::InvalidName { .. } => None,
            Error::NoHomeDir { path }
            | Error::NotFound { path }
            | Error::AlreadyExists { path }
            | Error::Io { path, .. }
            | Error::Json { path, .. }
            | Error::BadHex { path, .. }
            | Error::BadSs58 { path, .. }
            | Error::BadSecret { path, .. }
            | Error::UnsupportedCryptoType { path, .. }
            | Error::NoSecret { path }
            | Error::NoPublicKey { path }
            | Error::PublicKeyMismatch { path, .. }
            | Error::SecretMismatch { path, .. }
            | Error::Encrypted { path }
            | Error::WrongPassword { path }
            | Error::Truncated { path, .. }
            | Error::UnsupportedEncryption { path, .. }
            | Error::PasswordEnvMissing { path, .. }
            | Error::Prompt { path, .. }
            | Error::PasswordMismatch { path }
            | Error::EmptyPassword { path }
            | Error::Kdf { path, .. }
            | Error::Encrypt { path } => Some(path),
        }
    }

    /// Whether the key file does not exist (so a caller may offer to create it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether decryption failed, so that asking for the password again may help.
    pub fn is_wrong_password(&self) -> bool {
        matches!(self, Error::WrongPassword { .. })
    }

    /// Builds [`Error::Json`] from a serde error, keeping only its position and category.
    pub(crate) fn json(path: &Path, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let category = match err.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
        };
        Error::Json {
            path: path.to_owned(),
            category,
            line: err.line(),
            column: err.column(),
        }
    }

    /// Builds [`Error::Io`], or [`Error::NotFound`] for a missing file.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound && op == "read" {
            Error::NotFound {
                path: path.to_owned(),
            }
        } else {
            Error::Io {
                op,
                path: path.to_owned(),
                source,
            }
        }
    }
}
