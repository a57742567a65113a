//! Where the password of an encrypted key file comes from: given by the caller, an environment
//! variable, or a terminal prompt.
//!
//! [`PasswordSource::Auto`], the default, tries `SLIVER_COLDKEY_PASSWORD`, then bittensor's
//! `BT_COLD_PW_<WALLET NAME>` (the name upper-cased with `-` as `_`, which older bittensor
//! versions read), then prompts on the terminal. Newer bittensor-wallet keeps passwords in an
//! obfuscated `BT_PW_<PATH>` variable of its own process only; that one is not read.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::error::Error;

/// Sliver's own variable for the coldkey password, read by [`PasswordSource::Auto`].
pub const PASSWORD_ENV: &str = "SLIVER_COLDKEY_PASSWORD";
/// Prefix of bittensor's per-wallet password variable, read by [`PasswordSource::Auto`].
pub const BITTENSOR_PASSWORD_ENV_PREFIX: &str = "BT_COLD_PW_";

/// Where to get the password of an encrypted key file.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum PasswordSource {
    /// [`PASSWORD_ENV`], then `BT_COLD_PW_<NAME>`, then a terminal prompt.
    #[default]
    Auto,
    /// The named environment variable; an error if it is unset.
    Env(String),
    /// A terminal prompt (asked twice when encrypting).
    Prompt,
    /// This password, e.g. from a secrets manager or a test.
    Given(SecretString),
}

impl PasswordSource {
    /// A password given directly.
    pub fn given(password: impl Into<String>) -> Self {
        PasswordSource::Given(SecretString::from(password.into()))
    }

    /// The password to open `path` of wallet `wallet_name`.
    pub(crate) fn unlock(
        &self,
        wallet_name: &str,
        path: &Path,
    ) -> Result<Zeroizing<String>, Error> {
        self.resolve(wallet_name, path, false)
    }

    /// The password to encrypt `path` with; never empty, and typed twice if prompted.
    pub(crate) fn encrypt(
        &self,
        wallet_name: &str,
        path: &Path,
    ) -> Result<Zeroizing<String>, Error> {
        let password = self.resolve(wallet_name, path, true)?;
        if password.is_empty() {
            return Err(Error::EmptyPassword {
                path: path.to_owned(),
            });
        }
        Ok(password)
    }

    fn resolve(
        &self,
        wallet_name: &str,
        path: &Path,
        confirm: bool,
    ) -> Result<Zeroizing<String>, Error> {
        match self {
            PasswordSource::Given(password) => {
                Ok(Zeroizing::new(password.expose_secret().to_owned()))
            }
            PasswordSource::Env(var) => env(var).ok_or_else(|| Error::PasswordEnvMissing {
                path: path.to_owned(),
                var: var.clone(),
            }),
            PasswordSource::Prompt => prompt(path, confirm),
            PasswordSource::Auto => {
                match env(PASSWORD_ENV).or_else(|| env(&bittensor_env_var(wallet_name))) {
                    Some(password) => Ok(password),
                    None => prompt(path, confirm),
                }
            }
        }
    }
}

/// bittensor's `BT_COLD_PW_<NAME>` variable for a wallet.
pub(crate) fn bittensor_env_var(wallet_name: &str) -> String {
    format!(
        "{BITTENSOR_PASSWORD_ENV_PREFIX}{}",
        wallet_name.to_uppercase().replace('-', "_")
    )
}

fn env(var: &str) -> Option<Zeroizing<String>> {
    std::env::var(var).ok().map(Zeroizing::new)
}

fn prompt(path: &Path, confirm: bool) -> Result<Zeroizing<String>, Error> {
    let ask = |text: String| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|source| Error::Prompt {
                path: path.to_owned(),
                source,
            })
    };
    let password = ask(format!("Password for {}: ", path.display()))?;
    if confirm {
        let again = ask("Retype the password: ".to_owned())?;
        if *again != *password {
            return Err(Error::PasswordMismatch {
                path: path.to_owned(),
            });
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bittensor_variable_name() {
        assert_eq!(bittensor_env_var("my-wallet"), "BT_COLD_PW_MY_WALLET");
    }

    #[test]
    fn given_and_env_sources() {
        let path = Path::new("/w/coldkey");
        let given = PasswordSource::given("hunter22");
        assert_eq!(given.unlock("w", path).unwrap().as_str(), "hunter22");
        assert!(!format!("{given:?}").contains("hunter22"));
        let missing = PasswordSource::Env("SLIVER_TEST_SURELY_UNSET_VARIABLE".into());
        let err = missing.unlock("w", path).unwrap_err();
        assert!(matches!(err, Error::PasswordEnvMissing { .. }), "{err}");
        assert!(matches!(
            PasswordSource::given("").encrypt("w", path).unwrap_err(),
            Error::EmptyPassword { .. }
        ));
    }
}
