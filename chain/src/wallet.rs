//! Bittensor wallets in the files `btcli` and bittensor-wallet write, so that a miner or
//! validator runs with the keys its operator already has.
//!
//! A wallet is a directory `<wallet.path>/<name>/` (`wallet.path` defaults to
//! `~/.bittensor/wallets`) holding:
//!
//! | file | contents |
//! |---|---|
//! | `coldkey` | the coldkey's JSON, encrypted: `$NACL` + nonce + XSalsa20-Poly1305 box, key from Argon2i (see `nacl.rs`) |
//! | `coldkeypub.txt` | the coldkey's public fields, in the clear |
//! | `hotkeys/<hotkey>` | the hotkey's JSON, in the clear |
//! | `hotkeys/<hotkey>pub.txt` | the hotkey's public fields |
//!
//! The JSON holds `secretPhrase`, `secretSeed`, `privateKey`, `publicKey`, `accountId`,
//! `ss58Address` and `cryptoType` (field by field in `wallet/keyfile.rs`); a keypair is
//! loaded from the phrase if present, else the seed, else the private key, and checked against
//! the other fields. Files are written with mode 0600; reading a looser one logs a warning.
//!
//! Miners and validators need only the hotkey ([`Wallet::hotkey`]), which is not encrypted, and
//! the coldkey's public key ([`Wallet::coldkeypub`]). Opening the coldkey
//! ([`Wallet::coldkey`]) takes a [`PasswordSource`]; [`PasswordSource::Auto`] reads
//! [`PASSWORD_ENV`] (`SLIVER_COLDKEY_PASSWORD`), then bittensor's `BT_COLD_PW_<NAME>`, then
//! prompts. Deriving the key costs about a second and 512 MiB, as in btcli.
//!
//! Secrets stay out of logs and errors: [`Keypair`]'s `Debug` is redacted, and no [`Error`]
//! quotes a secret or the file content around it.
//!
//! ```no_run
//! use sliver_chain::wallet::{PasswordSource, Wallet};
//!
//! let wallet = Wallet::new("miner", "default", Wallet::DEFAULT_PATH)?;
//! let hotkey = wallet.hotkey()?;
//! let coldkey = wallet.coldkeypub()?;
//! println!("hotkey {} of coldkey {coldkey}", hotkey.ss58_address());
//! # Ok::<(), sliver_chain::wallet::Error>(())
//! ```

mod error;
mod keyfile;
mod keypair;
mod nacl;
mod password;

use std::path::{Path, PathBuf};

pub use error::{Error, KeyError};
pub use keypair::{Keypair, PRIVATE_KEY_LEN, SEED_LEN, SIGNATURE_LEN, verify};
pub use password::{BITTENSOR_PASSWORD_ENV_PREFIX, PASSWORD_ENV, PasswordSource};
pub use subxt_utils_accountid32::AccountId32;

/// A wallet on disk, named as on btcli's command line: `--wallet.name`, `--wallet.hotkey` and
/// `--wallet.path`. Creating the handle touches no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    name: String,
    hotkey: String,
    path: PathBuf,
}

/// The keys [`Wallet::create`] made; `None` where a key already existed and was kept.
///
/// Show each new key's phrase to the operator once ([`Keypair::phrase`]): it is the only way to
/// recover the key.
#[derive(Debug)]
#[non_exhaustive]
pub struct Created {
    /// The new coldkey.
    pub coldkey: Option<Keypair>,
    /// The new hotkey.
    pub hotkey: Option<Keypair>,
}

impl Wallet {
    /// btcli's default `--wallet.path`.
    pub const DEFAULT_PATH: &str = "~/.bittensor/wallets";
    /// btcli's default `--wallet.name`.
    pub const DEFAULT_NAME: &str = "default";
    /// btcli's default `--wallet.hotkey`.
    pub const DEFAULT_HOTKEY: &str = "default";

    /// The wallet `name` with hotkey `hotkey` under `path` (a leading `~` is the home directory).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] if a name is empty, `.`/`..` or contains `/`;
    /// [`Error::NoHomeDir`] if `path` starts with `~` and there is no home directory.
    pub fn new(
        name: impl Into<String>,
        hotkey: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let name = name.into();
        let hotkey = hotkey.into();
        check_name("wallet", &name)?;
        check_name("hotkey", &hotkey)?;
        Ok(Wallet {
            name,
            hotkey,
            path: expand_home(path.as_ref())?,
        })
    }

    /// The wallet name (`--wallet.name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hotkey name (`--wallet.hotkey`).
    pub fn hotkey_name(&self) -> &str {
        &self.hotkey
    }

    /// The directory holding all wallets (`--wallet.path`, with `~` expanded).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<path>/<name>/coldkey`.
    pub fn coldkey_path(&self) -> PathBuf {
        self.path.join(&self.name).join("coldkey")
    }

    /// `<path>/<name>/coldkeypub.txt`.
    pub fn coldkeypub_path(&self) -> PathBuf {
        self.path.join(&self.name).join("coldkeypub.txt")
    }

    /// `<path>/<name>/hotkeys/<hotkey>`.
    pub fn hotkey_path(&self) -> PathBuf {
        self.path
            .join(&self.name)
            .join("hotkeys")
            .join(&self.hotkey)
    }

    /// `<path>/<name>/hotkeys/<hotkey>pub.txt`.
    pub fn hotkeypub_path(&self) -> PathBuf {
        let mut file = self.hotkey.clone();
        file.push_str("pub.txt");
        self.path.join(&self.name).join("hotkeys").join(file)
    }

    /// The hotkey, which btcli stores unencrypted.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Json`], [`Error::BadHex`], mismatches between fields, and
    /// [`Error::Encrypted`] if the hotkey was created with a password (then use
    /// [`Wallet::hotkey_with_password`]).
    pub fn hotkey(&self) -> Result<Keypair, Error> {
        self.settle_hotkey()?;
        keyfile::read_keypair(&self.hotkey_path(), None)
    }

    /// The hotkey, decrypting it with `password` if it is encrypted (`btcli --use-password`).
    ///
    /// # Errors
    ///
    /// As [`Wallet::hotkey`], plus [`Error::WrongPassword`] and password-source errors.
    pub fn hotkey_with_password(&self, password: &PasswordSource) -> Result<Keypair, Error> {
        self.settle_hotkey()?;
        self.read_with_password(&self.hotkey_path(), password)
    }

    /// The hotkey's public key, from `<hotkey>pub.txt`, or from the hotkey file itself for
    /// wallets made before btcli wrote that file.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if neither file exists; parse errors as for [`Wallet::hotkey`].
    pub fn hotkeypub(&self) -> Result<AccountId32, Error> {
        self.settle_hotkey()?;
        match keyfile::read_public(&self.hotkeypub_path()) {
            Err(e) if e.is_not_found() => keyfile::read_public(&self.hotkey_path()),
            other => other,
        }
    }

    /// The coldkey's public key, from `coldkeypub.txt`: no password needed.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Json`], [`Error::BadHex`], [`Error::BadSs58`],
    /// [`Error::NoPublicKey`].
    pub fn coldkeypub(&self) -> Result<AccountId32, Error> {
        self.settle_coldkey()?;
        keyfile::read_public(&self.coldkeypub_path())
    }

    /// The coldkey, decrypted with the password from `password`. Costs about a second and
    /// 512 MiB (btcli's Argon2i parameters).
    ///
    /// # Errors
    ///
    /// [`Error::WrongPassword`] if the password is wrong, password-source errors
    /// ([`Error::PasswordEnvMissing`], [`Error::Prompt`]), and the errors of [`Wallet::hotkey`].
    pub fn coldkey(&self, password: &PasswordSource) -> Result<Keypair, Error> {
        self.settle_coldkey()?;
        self.read_with_password(&self.coldkey_path(), password)
    }

    /// Finishes or abandons a write of the coldkey that a crash interrupted, so the coldkey
    /// and `coldkeypub.txt` agree (see [`keyfile::write_pair`]).
    fn settle_coldkey(&self) -> Result<bool, Error> {
        keyfile::settle_pending(&self.coldkey_path(), &self.coldkeypub_path())
    }

    /// As [`Wallet::settle_coldkey`], for the hotkey and its `pub.txt`.
    fn settle_hotkey(&self) -> Result<bool, Error> {
        keyfile::settle_pending(&self.hotkey_path(), &self.hotkeypub_path())
    }

    /// Reads a key file, asking `password` for the password only if the file is encrypted.
    fn read_with_password(&self, path: &Path, password: &PasswordSource) -> Result<Keypair, Error> {
        keyfile::read_keypair(path, Some(&|| password.unlock(&self.name, path)))
    }

    /// Creates whichever of the coldkey and the hotkey does not exist yet, with fresh 12-word
    /// phrases, as `btcli wallet create` does. The coldkey is encrypted with a password from
    /// `password`.
    ///
    /// # Errors
    ///
    /// I/O and password errors; an existing key is kept, not an error.
    pub fn create(&self, password: &PasswordSource) -> Result<Created, Error> {
        self.settle_coldkey()?;
        self.settle_hotkey()?;
        let coldkey = if self.coldkey_path().exists() {
            None
        } else {
            Some(self.create_coldkey(password, false)?)
        };
        let hotkey = if self.hotkey_path().exists() {
            None
        } else {
            Some(self.create_hotkey(false)?)
        };
        Ok(Created { coldkey, hotkey })
    }

    /// Creates a new coldkey (`coldkey` and `coldkeypub.txt`) from a fresh 12-word phrase.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] unless `overwrite`; I/O and password errors.
    pub fn create_coldkey(
        &self,
        password: &PasswordSource,
        overwrite: bool,
    ) -> Result<Keypair, Error> {
        let pair = Keypair::generate();
        self.write_coldkey(&pair, password, overwrite)?;
        Ok(pair)
    }

    /// Creates a new hotkey (`hotkeys/<hotkey>` and its `pub.txt`) from a fresh 12-word phrase.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] unless `overwrite`; I/O errors.
    pub fn create_hotkey(&self, overwrite: bool) -> Result<Keypair, Error> {
        let pair = Keypair::generate();
        self.write_hotkey(&pair, overwrite)?;
        Ok(pair)
    }

    /// Writes `pair` as this wallet's coldkey, encrypted, and its `coldkeypub.txt` (as
    /// `btcli wallet regen_coldkey` does). A crash at any moment leaves the two agreeing.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] if either file exists and not `overwrite`; I/O and password
    /// errors.
    pub fn write_coldkey(
        &self,
        pair: &Keypair,
        password: &PasswordSource,
        overwrite: bool,
    ) -> Result<(), Error> {
        let path = self.coldkey_path();
        let pub_path = self.coldkeypub_path();
        self.settle_coldkey()?;
        // Refused before the password prompt and the costly key derivation.
        refuse_existing(&[&path, &pub_path], overwrite)?;
        let password = password.encrypt(&self.name, &path)?;
        let sealed = keyfile::keypair_bytes_encrypted(&path, pair, password.as_bytes())?;
        let public = keyfile::public_bytes(&pair.account_id());
        keyfile::write_pair(&path, &sealed, &pub_path, &public, overwrite)
    }

    /// Writes `pair` as this wallet's hotkey, unencrypted as btcli does, and its `pub.txt`. A
    /// crash at any moment leaves the two agreeing.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`] if either file exists and not `overwrite`; I/O errors.
    pub fn write_hotkey(&self, pair: &Keypair, overwrite: bool) -> Result<(), Error> {
        let path = self.hotkey_path();
        let pub_path = self.hotkeypub_path();
        let secret = keyfile::keypair_bytes(pair);
        let public = keyfile::public_bytes(&pair.account_id());
        keyfile::write_pair(&path, &secret, &pub_path, &public, overwrite)
    }
}

fn refuse_existing(paths: &[&Path], overwrite: bool) -> Result<(), Error> {
    match paths.iter().find(|p| p.exists()) {
        Some(path) if !overwrite => Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it names a directory")
    } else if name.contains('/') || name.contains('\0') {
        Some("it contains `/` or a NUL byte")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Expands a leading `~` (alone or followed by `/`) to the home directory.
fn expand_home(path: &Path) -> Result<PathBuf, Error> {
    let Ok(rest) = path.strip_prefix("~") else {
        return Ok(path.to_owned());
    };
    match std::env::home_dir() {
        Some(home) => Ok(home.join(rest)),
        None => Err(Error::NoHomeDir {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use secrecy::ExposeSecret;

    use super::*;

    /// Wallets written by bittensor-wallet 4.1.1; see `tests/data/wallets/README.md`.
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wallets");

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Expected {
        coldkey: ExpectedKey,
        hotkey: ExpectedKey,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ExpectedKey {
        password: Option<String>,
        secret_phrase: String,
        ss58_address: String,
        public_key: String,
        signature_message: Option<String>,
        signature: Option<String>,
    }

    fn expected() -> Expected {
        let text = fs::read_to_string(format!("{FIXTURES}/expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn fixture(hotkey: &str) -> Wallet {
        Wallet::new("alpha", hotkey, FIXTURES).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn btcli_hotkey_loads_by_phrase_seed_or_private_key() {
        let want = expected().hotkey;
        for hotkey in ["default", "seedonly", "privonly"] {
            let pair = fixture(hotkey).hotkey().unwrap();
            assert_eq!(pair.ss58_address(), want.ss58_address, "{hotkey}");
            assert_eq!(
                format!("0x{}", hex::encode(pair.account_id().0)),
                want.public_key
            );
        }
        let by_phrase = fixture("default").hotkey().unwrap();
        assert_eq!(
            by_phrase.phrase().unwrap().expose_secret(),
            want.secret_phrase
        );
        assert!(fixture("seedonly").hotkey().unwrap().phrase().is_none());
    }

    #[test]
    fn btcli_signature_verifies_and_ours_is_btcli_shaped() {
        let want = expected().hotkey;
        let pair = fixture("default").hotkey().unwrap();
        let message = want.signature_message.unwrap();
        let mut signature = [0u8; SIGNATURE_LEN];
        hex::decode_to_slice(&want.signature.unwrap()[2..], &mut signature).unwrap();
        assert!(verify(&pair.account_id(), message.as_bytes(), &signature));
        assert!(verify(&pair.account_id(), b"x", &pair.sign(b"x")));
    }

    #[test]
    fn btcli_public_key_files() {
        let want = expected();
        let wallet = fixture("default");
        assert_eq!(
            wallet.coldkeypub().unwrap().to_string(),
            want.coldkey.ss58_address
        );
        assert_eq!(
            wallet.hotkeypub().unwrap().to_string(),
            want.hotkey.ss58_address
        );
        // No seedonlypub.txt: falls back to the hotkey file's public fields.
        assert_eq!(
            fixture("seedonly").hotkeypub().unwrap().to_string(),
            want.hotkey.ss58_address
        );
    }

    // The two Argon2 runs on the fixture are separate tests so that they run in parallel.
    #[test]
    fn btcli_coldkey_decrypts() {
        let want = expected().coldkey;
        let wallet = fixture("default");
        let password = PasswordSource::given(want.password.unwrap());
        let pair = wallet.coldkey(&password).unwrap();
        assert_eq!(pair.ss58_address(), want.ss58_address);
        assert_eq!(pair.phrase().unwrap().expose_secret(), want.secret_phrase);
        assert_eq!(
            format!("0x{}", hex::encode(pair.account_id().0)),
            want.public_key
        );
    }

    #[test]
    fn btcli_coldkey_with_wrong_password_is_a_clear_error() {
        let wallet = fixture("default");
        let err = wallet
            .coldkey(&PasswordSource::given("not-the-password"))
            .unwrap_err();
        assert!(err.is_wrong_password(), "{err}");
        assert_eq!(err.path(), Some(wallet.coldkey_path().as_path()));
        let message = err.to_string();
        assert!(
            message.contains("wrong password") && message.contains("alpha/coldkey"),
            "{message}"
        );
    }

    #[test]
    fn encrypted_key_without_password_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new("w", "enc", dir.path()).unwrap();
        fs::create_dir_all(wallet.hotkey_path().parent().unwrap()).unwrap();
        fs::copy(fixture("default").coldkey_path(), wallet.hotkey_path()).unwrap();
        assert!(matches!(
            wallet.hotkey().unwrap_err(),
            Error::Encrypted { .. }
        ));
    }

    #[test]
    fn create_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new("round-trip", "hk1", dir.path()).unwrap();
        let password = PasswordSource::given("a long test password");
        let created = wallet.create(&password).unwrap();
        let (coldkey, hotkey) = (created.coldkey.unwrap(), created.hotkey.unwrap());

        for path in [
            wallet.coldkey_path(),
            wallet.coldkeypub_path(),
            wallet.hotkey_path(),
            wallet.hotkeypub_path(),
        ] {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        assert!(
            fs::read(wallet.coldkey_path())
                .unwrap()
                .starts_with(b"$NACL")
        );

        let hot = wallet.hotkey().unwrap();
        assert_eq!(hot.ss58_address(), hotkey.ss58_address());
        assert_eq!(
            hot.phrase().unwrap().expose_secret(),
            hotkey.phrase().unwrap().expose_secret()
        );
        assert_eq!(wallet.hotkeypub().unwrap(), hotkey.account_id());
        assert_eq!(wallet.coldkeypub().unwrap(), coldkey.account_id());
        assert_eq!(
            wallet.coldkey(&password).unwrap().account_id(),
            coldkey.account_id()
        );

        // A second create keeps both keys; explicit creation refuses to overwrite.
        let again = wallet.create(&password).unwrap();
        assert!(again.coldkey.is_none() && again.hotkey.is_none());
        let err = wallet.create_hotkey(false).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
        assert_eq!(wallet.hotkey().unwrap().account_id(), hotkey.account_id());
    }

    #[test]
    fn write_hotkey_from_a_known_phrase() {
        let dir = tempfile::tempdir().unwrap();
        let want = expected().hotkey;
        let wallet = Wallet::new("w", "known", dir.path()).unwrap();
        let pair = Keypair::from_phrase(&want.secret_phrase).unwrap();
        wallet.write_hotkey(&pair, false).unwrap();
        let ours: serde_json::Value =
            serde_json::from_slice(&fs::read(wallet.hotkey_path()).unwrap()).unwrap();
        let btcli: serde_json::Value =
            serde_json::from_slice(&fs::read(fixture("default").hotkey_path()).unwrap()).unwrap();
        assert_eq!(
            ours, btcli,
            "same fields and values as bittensor-wallet writes"
        );
    }

    #[test]
    fn corrupt_or_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new("w", "broken", dir.path()).unwrap();
        let err = wallet.hotkey().unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("w/hotkeys/broken"), "{err}");

        fs::create_dir_all(wallet.hotkey_path().parent().unwrap()).unwrap();
        fs::write(wallet.hotkey_path(), b"{\"secretPhrase\": \"bottom drive").unwrap();
        let err = wallet.hotkey().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Json {
                    category: "eof",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("w/hotkeys/broken"), "{err}");
        assert!(!err.to_string().contains("bottom"), "{err}");
    }

    /// Writes a wallet for bittensor-wallet to read back (see `tests/data/wallets/README.md`):
    /// `SLIVER_WALLET_EXPORT_DIR=/tmp/x cargo test -p sliver-chain --lib export_for_btcli -- --ignored`.
    #[test]
    #[ignore = "manual cross-check against bittensor-wallet"]
    fn export_for_btcli() {
        let dir = std::env::var("SLIVER_WALLET_EXPORT_DIR").expect("set SLIVER_WALLET_EXPORT_DIR");
        let wallet = Wallet::new("sliver", "default", dir).unwrap();
        let password = PasswordSource::given("sliver-export-pw");
        let created = wallet.create(&password).unwrap();
        let expected = serde_json::json!({
            "password": "sliver-export-pw",
            "coldkey": created.coldkey.map(|k| k.ss58_address()),
            "hotkey": created.hotkey.map(|k| k.ss58_address()),
        });
        fs::write(wallet.path().join("expected.json"), expected.to_string()).unwrap();
    }

    #[test]
    fn names_and_paths() {
        assert!(matches!(
            Wallet::new("a/b", "h", "/w"),
            Err(Error::InvalidName { kind: "wallet", .. })
        ));
        assert!(matches!(
            Wallet::new("a", "..", "/w"),
            Err(Error::InvalidName { kind: "hotkey", .. })
        ));
        assert!(matches!(
            Wallet::new("", "h", "/w"),
            Err(Error::InvalidName { .. })
        ));
        let wallet = Wallet::new("a", "h", "/w").unwrap();
        assert_eq!(wallet.hotkeypub_path(), Path::new("/w/a/hotkeys/hpub.txt"));
        assert_eq!(wallet.coldkeypub_path(), Path::new("/w/a/coldkeypub.txt"));
        if let Some(home) = std::env::home_dir() {
            let default = Wallet::new("a", "h", Wallet::DEFAULT_PATH).unwrap();
            assert_eq!(default.path(), home.join(".bittensor/wallets"));
        }
    }
}
