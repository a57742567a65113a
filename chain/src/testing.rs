//! Support for the tests of `sliver-chain` and `sliver-localnet` (feature `testing`): the
//! committed metadata files (finney's and the local chain's), a time bound on every wait of a
//! test against a chain, and sr25519 test keys as subxt signers. The decoded metadata (finney's,
//! and the local chain's as served) is in `sliver-localnet`'s `testing` module, which has the
//! metadata types.

use std::future::Future;
use std::time::Duration;

use subxt::config::Config;
use subxt::utils::{AccountId32, MultiSignature};

/// Finney's metadata (`metadata/finney.scale` at the workspace root), the reference the local
/// chain's layout and the client's encodings are checked against.
pub const FINNEY_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../metadata/finney.scale");

/// The local chain's metadata as checked in (`metadata/local.scale`), from which the client's
/// typed interface is generated.
pub const LOCAL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../metadata/local.scale");

/// The raw bytes of the metadata file at `path` (one of [`FINNEY_PATH`], [`LOCAL_PATH`]).
///
/// # Panics
/// With a message naming the file when it cannot be read (both are committed: see
/// `metadata/README.md`).
pub fn metadata_bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the metadata at {path}: {e}. The tests compare against it; it is \
             committed under metadata/ (see metadata/README.md)."
        )
    })
}

/// The raw bytes of finney's metadata ([`FINNEY_PATH`]).
///
/// # Panics
/// As [`metadata_bytes`].
pub fn finney_bytes() -> Vec<u8> {
    metadata_bytes(FINNEY_PATH)
}

/// How long any one step of a test against a chain (connecting, a read, a transaction reaching
/// a finalized block) may take: every such step finishes well within it, so a hang fails the
/// test instead of blocking it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Awaits `fut` for at most [`STEP_TIMEOUT`].
///
/// # Panics
/// When `fut` takes longer, with a message naming `what`.
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STEP_TIMEOUT:?}"))
}

/// A subxt-signer sr25519 key as a subxt signer, for any configuration with subtensor's account
/// and signature types (`SubtensorConfig`, `PolkadotConfig`): a funded dev account
/// (`subxt_signer::sr25519::dev::alice()`, ...; the local chain funds these at genesis) or any
/// other key.
pub struct DevSigner(pub subxt_signer::sr25519::Keypair);

impl<T> subxt::tx::Signer<T> for DevSigner
where
    T: Config<AccountId = AccountId32, Signature = MultiSignature>,
{
    fn account_id(&self) -> AccountId32 {
        AccountId32(self.0.public_key().0)
    }

    fn sign(&self, payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.0.sign(payload).0)
    }
}
