//! Bittensor's chain configuration for subxt, and signing with a btcli [`Keypair`].
//!
//! Subtensor is a standard Substrate runtime in the types subxt needs: `AccountId32`,
//! `MultiAddress<AccountId32, ()>`, `MultiSignature`, BlakeTwo256 and `u32` block numbers (which
//! the header encodes compactly, so subxt's `u64` header reads them). Its thirteen transaction
//! extensions are handled by subxt's [`DefaultTransactionExtensions`]: the known ones
//! (`CheckSpecVersion`, `CheckTxVersion`, `CheckGenesis`, `CheckMortality`, `CheckNonce`,
//! `ChargeTransactionPayment`, `CheckMetadataHash`) are matched by identifier, and the rest
//! (`CheckNonZeroSender`, `CheckWeight` and the four subtensor ones) carry no data in either the
//! extrinsic or the signed payload, which frame-decode recognises from their empty types in the
//! metadata and skips. No custom extension code is needed; should a future runtime give one of
//! them data, building a transaction fails with subxt's "extension not found" error naming it,
//! rather than producing a transaction the chain would reject.

use subxt::config::substrate::{BlakeTwo256, H256, SubstrateConfig, SubstrateHeader};
use subxt::config::{Config, DefaultTransactionExtensions, HashFor};
use subxt::metadata::ArcMetadata;
use subxt::utils::{AccountId32, MultiAddress, MultiSignature};

use crate::wallet::Keypair;

/// subxt configuration for subtensor (finney, testnet, `btlocalnet`).
///
/// It wraps a [`SubstrateConfig`] only for its caches (metadata per spec version, optional
/// genesis hash and spec versions for offline use); the chain types are subtensor's.
#[derive(Debug, Clone, Default)]
pub struct SubtensorConfig {
    inner: SubstrateConfig,
}

impl SubtensorConfig {
    /// A configuration that learns everything from the chain it connects to.
    pub fn new() -> Self {
        Self::default()
    }
}

impl From<SubstrateConfig> for SubtensorConfig {
    /// Reuses a [`SubstrateConfig`] built with `SubstrateConfig::builder()`, e.g. with metadata,
    /// genesis hash and spec versions set for building transactions offline.
    fn from(inner: SubstrateConfig) -> Self {
        SubtensorConfig { inner }
    }
}

impl Config for SubtensorConfig {
    type AccountId = AccountId32;
    type Address = MultiAddress<AccountId32, ()>;
    type Signature = MultiSignature;
    type Header = SubstrateHeader<H256>;
    type TransactionExtensions = DefaultTransactionExtensions<Self>;
    type AssetId = u32;
    type Hasher = BlakeTwo256;

    fn genesis_hash(&self) -> Option<HashFor<Self>> {
        self.inner.genesis_hash()
    }

    fn spec_and_transaction_version_for_block_number(
        &self,
        block_number: u64,
    ) -> Option<(u32, u32)> {
        self.inner
            .spec_and_transaction_version_for_block_number(block_number)
    }

    fn metadata_for_spec_version(&self, spec_version: u32) -> Option<ArcMetadata> {
        self.inner.metadata_for_spec_version(spec_version)
    }

    fn set_metadata_for_spec_version(&self, spec_version: u32, metadata: ArcMetadata) {
        self.inner
            .set_metadata_for_spec_version(spec_version, metadata);
    }
}

/// Signs extrinsics with a btcli hotkey or coldkey: sr25519 under the `substrate` context,
/// carried as `MultiSignature::Sr25519`.
impl subxt::tx::Signer<SubtensorConfig> for Keypair {
    fn account_id(&self) -> AccountId32 {
        Keypair::account_id(self)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(Keypair::sign(self, signer_payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subxt::tx::Signer;

    #[test]
    fn keypair_signatures_verify_as_sr25519() {
        let pair = Keypair::from_seed(&[7; 32]);
        let MultiSignature::Sr25519(sig) = Signer::<SubtensorConfig>::sign(&pair, b"payload")
        else {
            panic!("expected an sr25519 signature");
        };
        let account = Signer::<SubtensorConfig>::account_id(&pair);
        assert!(crate::wallet::verify(&account, b"payload", &sig));
    }
}
