//! One btcli key file: its JSON fields, how a keypair or a public key is read from them, and
//! how the file is read and written on disk (mode 0600, written whole then renamed into place).
//!
//! The JSON is what bittensor-wallet writes: `secretPhrase` (the mnemonic), `secretSeed` (the
//! 32-byte mini-secret), `privateKey` (the 64-byte expanded secret key), `publicKey` and
//! `accountId` (both the 32-byte public key), `ss58Address` (prefix 42) and `cryptoType`
//! (1 = sr25519). Hex fields are `0x`-prefixed lowercase; unknown fields are ignored, and any
//! field may be absent or `null`. Public-key files (`coldkeypub.txt`, `<hotkey>pub.txt`) hold
//! only the public fields.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subxt_utils_accountid32::AccountId32;
use zeroize::Zeroizing;

use super::error::Error;
use super::keypair::{Keypair, PRIVATE_KEY_LEN, SEED_LEN};
use super::nacl;

/// `cryptoType` of sr25519 keys, the only kind Bittensor wallets hold.
const CRYPTO_TYPE_SR25519: u64 = 1;
/// Mode of every file written, as btcli writes key files.
const FILE_MODE: u32 = 0o600;
/// Mode of directories created.
const DIR_MODE: u32 = 0o700;
/// Bytes reserved for a key file's JSON: a 24-word phrase and every hex field fit in under 1 KiB.
const KEYFILE_JSON_CAPACITY: usize = 2048;

/// The JSON object inside a key file.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyfileJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_phrase: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_seed: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ss58_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crypto_type: Option<u64>,
}

impl KeyfileJson {
    fn public(account: &AccountId32) -> Self {
        let hex = hex0x(&account.0);
        KeyfileJson {
            account_id: Some(hex.clone()),
            public_key: Some(hex),
            ss58_address: Some(account.to_string()),
            crypto_type: Some(CRYPTO_TYPE_SR25519),
            ..KeyfileJson::default()
        }
    }

    fn secret(pair: &Keypair) -> Self {
        KeyfileJson {
            private_key: Some(secret_hex0x(pair.private_key().expose_secret())),
            secret_phrase: pair
                .phrase()
                .map(|p| Zeroizing::new(p.expose_secret().to_owned())),
            secret_seed: pair.seed().map(|s| secret_hex0x(s.expose_secret())),
            ..KeyfileJson::public(&pair.account_id())
        }
    }

    fn parse(path: &Path, data: &[u8]) -> Result<Self, Error> {
        let json: KeyfileJson = serde_json::from_slice(data).map_err(|e| Error::json(path, &e))?;
        match json.crypto_type {
            None | Some(CRYPTO_TYPE_SR25519) => Ok(json),
            Some(crypto_type) => Err(Error::UnsupportedCryptoType {
                path: path.to_owned(),
                crypto_type,
            }),
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "a struct of strings always serialises to JSON"
    )]
    /// The JSON, in a buffer wiped on drop. It is allocated once, large enough for any key
    /// file, so serialising never reallocates and leaves no copy of the secrets in freed memory.
    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(KEYFILE_JSON_CAPACITY));
        serde_json::to_writer(&mut *out, self).expect("a struct of strings serialises");
        debug_assert!(
            out.len() <= KEYFILE_JSON_CAPACITY,
            "the key file outgrew its buffer"
        );
        out
    }

    /// The stated public key: `publicKey`, `accountId` and `ss58Address`, whichever are present,
    /// which must agree. `None` if none is present.
    fn stated_account(&self, path: &Path) -> Result<Option<(AccountId32, &'static str)>, Error> {
        let mut found: Option<(AccountId32, &'static str)> = None;
        let hex_fields = [
            ("publicKey", self.public_key.as_deref()),
            ("accountId", self.account_id.as_deref()),
        ];
        for (field, value) in hex_fields {
            let Some(value) = value else { continue };
            let account = AccountId32(*parse_hex::<32>(path, field, value)?);
            check_same(path, found, field, account)?;
            found = found.or(Some((account, field)));
        }
        if let Some(ss58) = &self.ss58_address {
            let account = ss58
                .parse::<AccountId32>()
                .map_err(|source| Error::BadSs58 {
                    path: path.to_owned(),
                    source,
                })?;
            check_same(path, found, "ss58Address", account)?;
            found = found.or(Some((account, "ss58Address")));
        }
        Ok(found)
    }

    /// The keypair, from `secretPhrase`, else `secretSeed`, else `privateKey` (btcli's order),
    /// checked against every other field present.
    fn keypair(&self, path: &Path) -> Result<Keypair, Error> {
        let (pair, source_field) = if let Some(phrase) = &self.secret_phrase {
            let pair = Keypair::from_phrase(phrase).map_err(|source| Error::BadSecret {
                path: path.to_owned(),
                field: "secretPhrase",
                source,
            })?;
            (pair, "secretPhrase")
        } else if let Some(seed) = &self.secret_seed {
            let seed = parse_hex::<SEED_LEN>(path, "secretSeed", seed)?;
            (Keypair::from_seed(&seed), "secretSeed")
        } else if let Some(private_key) = &self.private_key {
            let bytes = parse_hex::<PRIVATE_KEY_LEN>(path, "privateKey", private_key)?;
            let pair = Keypair::from_private_key(&bytes).map_err(|source| Error::BadSecret {
                path: path.to_owned(),
                field: "privateKey",
                source,
            })?;
            (pair, "privateKey")
        } else {
            return Err(Error::NoSecret {
                path: path.to_owned(),
            });
        };

        if source_field == "secretPhrase"
            && let Some(seed) = &self.secret_seed
        {
            let stated = parse_hex::<SEED_LEN>(path, "secretSeed", seed)?;
            let derived = pair.seed().map(|s| *s.expose_secret());
            if derived.as_ref() != Some(&*stated) {
                return Err(Error::SecretMismatch {
                    path: path.to_owned(),
                    field: "secretSeed",
                    source_field,
                });
            }
        }
        if source_field != "privateKey"
            && let Some(private_key) = &self.private_key
        {
            let stated = parse_hex::<PRIVATE_KEY_LEN>(path, "privateKey", private_key)?;
            if *pair.private_key().expose_secret() != *stated {
                return Err(Error::SecretMismatch {
                    path: path.to_owned(),
                    field: "privateKey",
                    source_field,
                });
            }
        }
        if let Some((stated, field)) = self.stated_account(path)? {
            let derived = pair.account_id();
            if stated != derived {
                return Err(Error::PublicKeyMismatch {
                    path: path.to_owned(),
                    field,
                    stated,
                    source_field,
                    derived,
                });
            }
        }
        Ok(pair)
    }
}

fn check_same(
    path: &Path,
    found: Option<(AccountId32, &'static str)>,
    field: &'static str,
    account: AccountId32,
) -> Result<(), Error> {
    match found {
        Some((first, first_field)) if first != account => Err(Error::PublicKeyMismatch {
            path: path.to_owned(),
            field,
            stated: account,
            source_field: first_field,
            derived: first,
        }),
        _ => Ok(()),
    }
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// `0x`-prefixed hex of a secret, written straight into a buffer that is wiped when dropped:
/// no intermediate string (as `hex::encode` and `format!` would make) is left behind in freed
/// memory. The capacity is reserved up front so the string never reallocates.
fn secret_hex0x(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(String::with_capacity(2 + 2 * bytes.len()));
    out.push_str("0x");
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes `0x`-prefixed (or bare, as bittensor also accepts) hex of exactly `N` bytes.
fn parse_hex<const N: usize>(
    path: &Path,
    field: &'static str,
    value: &str,
) -> Result<Zeroizing<[u8; N]>, Error> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(digits, out.as_mut()).map_err(|_| Error::BadHex {
        path: path.to_owned(),
        field,
        expected: N,
    })?;
    Ok(out)
}

/// How a key file's bytes are protected.
enum Contents<'a> {
    Plain(&'a [u8]),
    Nacl(&'a [u8]),
}

fn classify<'a>(path: &Path, data: &'a [u8]) -> Result<Contents<'a>, Error> {
    if nacl::is_sealed(data) {
        Ok(Contents::Nacl(data))
    } else if data.starts_with(b"$ANSIBLE_VAULT") {
        Err(Error::UnsupportedEncryption {
            path: path.to_owned(),
            method: "Ansible Vault",
        })
    } else if data.starts_with(b"gAAAAA") {
        Err(Error::UnsupportedEncryption {
            path: path.to_owned(),
            method: "legacy Fernet",
        })
    } else {
        Ok(Contents::Plain(data))
    }
}

/// Reads a key file holding a secret; `password` is asked for only if the file is encrypted.
///
/// Warns when the file is readable by group or others.
pub(crate) fn read_keypair(
    path: &Path,
    password: Option<&dyn Fn() -> Result<Zeroizing<String>, Error>>,
) -> Result<Keypair, Error> {
    let data = read(path, true)?;
    match classify(path, &data)? {
        Contents::Plain(json) => KeyfileJson::parse(path, json)?.keypair(path),
        Contents::Nacl(sealed) => {
            let Some(password) = password else {
                return Err(Error::Encrypted {
                    path: path.to_owned(),
                });
            };
            let password = password()?;
            let json = nacl::open(sealed, password.as_bytes()).map_err(|e| match e {
                nacl::OpenError::Truncated => Error::Truncated {
                    path: path.to_owned(),
                    len: sealed.len(),
                },
                nacl::OpenError::Kdf(source) => Error::Kdf {
                    path: path.to_owned(),
                    source,
                },
                nacl::OpenError::Decrypt => Error::WrongPassword {
                    path: path.to_owned(),
                },
            })?;
            KeyfileJson::parse(path, &json)?.keypair(path)
        }
    }
}

/// Reads the public key of a public-key file (or of an unencrypted secret key file).
pub(crate) fn read_public(path: &Path) -> Result<AccountId32, Error> {
    let data = read(path, false)?;
    match classify(path, &data)? {
        Contents::Plain(json) => match KeyfileJson::parse(path, json)?.stated_account(path)? {
            Some((account, _)) => Ok(account),
            None => Err(Error::NoPublicKey {
                path: path.to_owned(),
            }),
        },
        Contents::Nacl(_) => Err(Error::Encrypted {
            path: path.to_owned(),
        }),
    }
}

/// A key file's bytes: `pair` with its secrets, in the clear (as btcli writes hotkeys).
pub(crate) fn keypair_bytes(pair: &Keypair) -> Zeroizing<Vec<u8>> {
    KeyfileJson::secret(pair).to_bytes()
}

/// A key file's bytes: `pair` with its secrets, encrypted under `password` (as btcli writes
/// coldkeys). Costs btcli's Argon2i derivation (about a second, 512 MiB).
pub(crate) fn keypair_bytes_encrypted(
    path: &Path,
    pair: &Keypair,
    password: &[u8],
) -> Result<Vec<u8>, Error> {
    let json = KeyfileJson::secret(pair).to_bytes();
    nacl::seal(&json, password).map_err(|e| match e {
        nacl::SealError::Kdf(source) => Error::Kdf {
            path: path.to_owned(),
            source,
        },
        nacl::SealError::Encrypt => Error::Encrypt {
            path: path.to_owned(),
        },
    })
}

/// A public-key file's bytes: the public fields of `account`.
pub(crate) fn public_bytes(account: &AccountId32) -> Zeroizing<Vec<u8>> {
    KeyfileJson::public(account).to_bytes()
}

/// Writes a key file and its public-key file so that, whenever the process dies, the two
/// agree: both the old ones (or none), or both the new ones.
///
/// Two renames cannot be made one, so the public file goes through an intent record first:
///
/// 1. `<public>.pending` is written (synced): the BLAKE3 of the key file to come, a newline,
///    then the public file's bytes;
/// 2. the key file is written and installed (see [`write`]);
/// 3. the public file is installed and the intent removed.
///
/// [`settle_pending`] finishes or abandons an interrupted write: it installs the public file
/// only if the key file on disk is the one the intent names. Every reader of either file
/// calls it first. Without `overwrite` an existing key is never replaced (see [`write`]).
pub(crate) fn write_pair(
    secret_path: &Path,
    secret: &[u8],
    public_path: &Path,
    public: &[u8],
    overwrite: bool,
) -> Result<(), Error> {
    settle_pending(secret_path, public_path)?;
    for path in [secret_path, public_path] {
        if !overwrite && path.exists() {
            return Err(Error::AlreadyExists {
                path: path.to_owned(),
            });
        }
    }
    let pending = pending_path(public_path);
    let mut intent = Zeroizing::new(blake3::hash(secret).to_hex().as_bytes().to_vec());
    intent.push(b'\n');
    intent.extend_from_slice(public);
    write(&pending, &intent, true)?;
    crash_point(1)?;
    if let Err(e) = write(secret_path, secret, overwrite) {
        let _ = fs::remove_file(&pending);
        return Err(e);
    }
    crash_point(2)?;
    write(public_path, public, true)?;
    crash_point(3)?;
    remove_synced(&pending)
}

/// Finishes or abandons a [`write_pair`] that a crash interrupted: when `<public>.pending`
/// exists, the public file it holds is installed if the key file on disk hashes to the value
/// it records (the key was installed, the public file not yet), and dropped otherwise (the
/// crash came before the key). Returns whether there was anything to settle.
pub(crate) fn settle_pending(secret_path: &Path, public_path: &Path) -> Result<bool, Error> {
    let pending = pending_path(public_path);
    let intent = match fs::read(&pending) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("read", &pending, e)),
    };
    let (hash, public) = match intent.iter().position(|&b| b == b'\n') {
        Some(at) => (&intent[..at], &intent[at + 1..]),
        // A torn intent cannot be: it is written whole and renamed into place. Whatever this
        // is, it names no key, so nothing is installed from it.
        None => (&intent[..0], &intent[..0]),
    };
    let installed = match fs::read(secret_path) {
        Ok(secret) => {
            let secret = Zeroizing::new(secret);
            !hash.is_empty() && blake3::hash(&secret).to_hex().as_bytes() == hash
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("read", secret_path, e)),
    };
    if installed {
        tracing::warn!(
            key = %secret_path.display(),
            "a crash interrupted writing this key: installing its public-key file"
        );
        write(public_path, public, true)?;
    } else {
        tracing::warn!(
            key = %secret_path.display(),
            "a crash interrupted writing this key before it was installed: the old files stand"
        );
    }
    remove_synced(&pending)?;
    Ok(true)
}

/// `<public>.pending`, beside the public-key file.
fn pending_path(public_path: &Path) -> PathBuf {
    let mut name = public_path.file_name().unwrap_or_default().to_os_string();
    name.push(".pending");
    public_path.with_file_name(name)
}

/// Removes `path` and syncs its directory, so the removal outlives a crash.
fn remove_synced(path: &Path) -> Result<(), Error> {
    fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", &dir, e))
}

#[cfg(test)]
thread_local! {
    /// Tests stop [`write_pair`] after this step, as a crash would.
    static CRASH_AFTER: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// In tests, a simulated crash after step `step` of [`write_pair`]; nothing otherwise.
fn crash_point(step: u8) -> Result<(), Error> {
    #[cfg(test)]
    if CRASH_AFTER.with(std::cell::Cell::get) == step {
        return Err(Error::io(
            "simulated crash in",
            Path::new("write_pair"),
            std::io::Error::other("test"),
        ));
    }
    let _ = step;
    Ok(())
}

fn read(path: &Path, secret: bool) -> Result<Zeroizing<Vec<u8>>, Error> {
    let data = Zeroizing::new(fs::read(path).map_err(|e| Error::io("read", path, e))?);
    if secret {
        warn_if_open(path);
    }
    Ok(data)
}

/// btcli writes key files 0600 and does not refuse looser ones; neither do we, but we say so.
fn warn_if_open(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "key file is readable by other users; btcli writes it with mode 600",
            );
        }
    }
}

/// Writes `data` to `path` with mode 0600: into a temporary file beside it, synced, then
/// moved into place, and the directory synced, so that a crash never leaves a half-written key
/// file. Without `overwrite` the move is a hard link, which fails if `path` exists: of two
/// processes creating the same key at once, one wins and the other gets
/// [`Error::AlreadyExists`]; an existing key is never replaced.
fn write(path: &Path, data: &[u8], overwrite: bool) -> Result<(), Error> {
    if !overwrite && path.exists() {
        return Err(Error::AlreadyExists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(&dir)
        .map_err(|e| Error::io("create directory", &dir, e))?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    let placed = if overwrite {
        fs::rename(&tmp, path)
    } else {
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        linked
    };
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            Error::io("write", path, e)
        });
    }
    sync_dir(path)
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

    fn load(json: &str) -> Result<Keypair, Error> {
        KeyfileJson::parse(Path::new("k"), json.as_bytes())?.keypair(Path::new("k"))
    }

    /// A crash after any step of `write_pair`, creating or replacing a key: once settled,
    /// the public-key file names the key in the key file, and a crash before the key was
    /// installed leaves the old pair.
    #[test]
    fn a_crash_never_leaves_a_key_and_its_public_file_disagreeing() {
        let old = Keypair::from_phrase(PHRASE).unwrap();
        let new = Keypair::generate();
        for replacing in [false, true] {
            for step in 1..=3u8 {
                let dir = tempfile::tempdir().unwrap();
                let key = dir.path().join("coldkey");
                let public = dir.path().join("coldkeypub.txt");
                if replacing {
                    write_pair(
                        &key,
                        &keypair_bytes(&old),
                        &public,
                        &public_bytes(&old.account_id()),
                        false,
                    )
                    .unwrap();
                }
                CRASH_AFTER.with(|c| c.set(step));
                let crashed = write_pair(
                    &key,
                    &keypair_bytes(&new),
                    &public,
                    &public_bytes(&new.account_id()),
                    replacing,
                );
                CRASH_AFTER.with(|c| c.set(0));
                assert!(
                    crashed.is_err(),
                    "step {step}: the simulated crash happened"
                );
                // Before settling, the files may disagree: that is the window being closed.
                assert!(
                    settle_pending(&key, &public).unwrap(),
                    "step {step}: an intent to settle"
                );
                assert!(!pending_path(&public).exists());
                let expected = if step == 1 {
                    replacing.then(|| old.account_id())
                } else {
                    Some(new.account_id())
                };
                match expected {
                    Some(account) => {
                        assert_eq!(read_keypair(&key, None).unwrap().account_id(), account);
                        assert_eq!(read_public(&public).unwrap(), account, "step {step}");
                    }
                    None => {
                        assert!(
                            !key.exists() && !public.exists(),
                            "step {step}: nothing installed"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_pending_public_file_for_another_key_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("hotkey");
        let public = dir.path().join("hotkeypub.txt");
        let pair = Keypair::from_phrase(PHRASE).unwrap();
        write_pair(
            &key,
            &keypair_bytes(&pair),
            &public,
            &public_bytes(&pair.account_id()),
            false,
        )
        .unwrap();
        let stranger = Keypair::generate();
        let mut intent = blake3::hash(b"another key file")
            .to_hex()
            .as_bytes()
            .to_vec();
        intent.push(b'\n');
        intent.extend_from_slice(&public_bytes(&stranger.account_id()));
        fs::write(pending_path(&public), &intent).unwrap();
        assert!(settle_pending(&key, &public).unwrap());
        assert_eq!(read_public(&public).unwrap(), pair.account_id());
        // Garbage without a hash line names no key either.
        fs::write(pending_path(&public), b"garbage").unwrap();
        assert!(settle_pending(&key, &public).unwrap());
        assert_eq!(read_public(&public).unwrap(), pair.account_id());
        assert!(!settle_pending(&key, &public).unwrap());
    }

    #[test]
    fn serialised_fields_are_btclis() {
        let pair = Keypair::from_phrase(PHRASE).unwrap();
        let bytes = KeyfileJson::secret(&pair).to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "accountId",
                "cryptoType",
                "privateKey",
                "publicKey",
                "secretPhrase",
                "secretSeed",
                "ss58Address"
            ]
        );
        assert_eq!(object["cryptoType"], 1);
        assert_eq!(object["secretPhrase"], PHRASE);
        for field in ["accountId", "publicKey", "privateKey", "secretSeed"] {
            let s = object[field].as_str().unwrap();
            assert!(s.starts_with("0x"), "{field}");
            assert_eq!(s[2..], s[2..].to_lowercase(), "{field}");
        }
        assert_eq!(object["privateKey"].as_str().unwrap().len(), 2 + 128);
        assert_eq!(object["secretSeed"].as_str().unwrap().len(), 2 + 64);
    }

    #[test]
    fn mismatching_public_key_is_an_error() {
        let other = Keypair::from_seed(&[1; 32]).account_id();
        let json = format!(r#"{{"secretPhrase":"{PHRASE}","ss58Address":"{other}"}}"#);
        let err = load(&json).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PublicKeyMismatch {
                    field: "ss58Address",
                    source_field: "secretPhrase",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn mismatching_seed_is_an_error_that_hides_both() {
        let seed = "0x".to_owned() + &"11".repeat(32);
        let json = format!(r#"{{"secretPhrase":"{PHRASE}","secretSeed":"{seed}"}}"#);
        let err = load(&json).unwrap_err();
        assert!(
            matches!(
                err,
                Error::SecretMismatch {
                    field: "secretSeed",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("1111"));
        assert!(!err.to_string().contains("bottom"));
    }

    #[test]
    fn bad_hex_names_the_field_but_not_the_value() {
        let json = r#"{"secretSeed":"0xzz11"}"#;
        let err = load(json).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadHex {
                    field: "secretSeed",
                    expected: 32,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("zz11"));
        let short = r#"{"privateKey":"0x1234"}"#;
        assert!(matches!(
            load(short).unwrap_err(),
            Error::BadHex {
                field: "privateKey",
                expected: 64,
                ..
            }
        ));
    }

    #[test]
    fn wrongly_typed_secret_does_not_leak_into_the_error() {
        let err = load(r#"{"secretSeed": 123456789}"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Json {
                    category: "data",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("123456789"), "{err}");
    }

    #[test]
    fn public_only_and_unsupported_files() {
        assert!(matches!(
            load(r#"{"ss58Address":null}"#).unwrap_err(),
            Error::NoSecret { .. }
        ));
        let ed = format!(r#"{{"secretPhrase":"{PHRASE}","cryptoType":0}}"#);
        assert!(matches!(
            load(&ed).unwrap_err(),
            Error::UnsupportedCryptoType { crypto_type: 0, .. }
        ));
        let path = Path::new("k");
        assert!(matches!(
            classify(path, b"$ANSIBLE_VAULT;1.1"),
            Err(Error::UnsupportedEncryption {
                method: "Ansible Vault",
                ..
            })
        ));
        assert!(matches!(
            classify(path, b"gAAAAABk"),
            Err(Error::UnsupportedEncryption {
                method: "legacy Fernet",
                ..
            })
        ));
    }

    #[test]
    fn bare_hex_and_null_fields_are_accepted_as_bittensor_does() {
        let pair = Keypair::from_phrase(PHRASE).unwrap();
        let seed = hex::encode(pair.seed().unwrap().expose_secret());
        let json = format!(r#"{{"secretPhrase":null,"secretSeed":"{seed}","extra":[1]}}"#);
        assert_eq!(load(&json).unwrap().account_id(), pair.account_id());
    }

    /// Many threads creating the same key file at once: exactly one succeeds, the others are
    /// told it exists, and the file holds the winner's bytes whole.
    #[test]
    fn racing_creators_never_replace_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hotkeys").join("default");
        let results: Vec<(usize, Result<(), Error>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = path.clone();
                    s.spawn(move || (i, write(&path, format!("key {i}").as_bytes(), false)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (_, r) in &results {
            if let Err(e) = r {
                assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
            }
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("key {}", winners[0])
        );
        // No temporary file is left behind.
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn secret_hex_is_the_same_hex_without_intermediates() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        let secret = secret_hex0x(&bytes);
        assert_eq!(secret.as_str(), hex0x(&bytes));
        assert_eq!(secret.capacity(), 2 + 2 * bytes.len(), "no reallocation");
    }

    #[test]
    fn key_file_json_is_written_into_one_buffer() {
        // A 24-word phrase (BIP39's all-zero 256-bit entropy): the longest btcli writes.
        let pair = Keypair::from_phrase(&format!("{} art", ["abandon"; 23].join(" "))).unwrap();
        let bytes = KeyfileJson::secret(&pair).to_bytes();
        assert!(
            bytes.len() < KEYFILE_JSON_CAPACITY / 2,
            "{} bytes",
            bytes.len()
        );
        assert_eq!(bytes.capacity(), KEYFILE_JSON_CAPACITY, "no reallocation");
    }

    mod properties {
        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::super::*;

        /// Whatever a file holds: classified, parsed and turned into a key or a refusal.
        fn open_anything(data: &[u8]) {
            let path = Path::new("k");
            if let Ok(Contents::Plain(json)) = classify(path, data)
                && let Ok(parsed) = KeyfileJson::parse(path, json)
            {
                let _ = parsed.stated_account(path);
                let _ = parsed.keypair(path);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Arbitrary bytes never panic.
            #[test]
            fn arbitrary_files_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
                open_anything(&data);
            }

            /// A key written and read back is the same key; a corrupted one never panics.
            #[test]
            fn keys_round_trip_and_corruption_never_panics(
                seed in any::<[u8; 32]>(),
                flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..6),
            ) {
                let pair = Keypair::from_seed(&seed);
                let bytes = KeyfileJson::secret(&pair).to_bytes();
                let back = KeyfileJson::parse(Path::new("k"), &bytes)
                    .and_then(|j| j.keypair(Path::new("k")))
                    .unwrap();
                prop_assert_eq!(back.account_id(), pair.account_id());
                let mut bad = bytes.to_vec();
                for (at, v) in flips {
                    let i = at.index(bad.len());
                    bad[i] = v;
                }
                open_anything(&bad);
            }
        }
    }
}
