//! A wallet hotkey as the signer of artifacts.

use sliver_chain::wallet::Keypair;
use sliver_common::artifact::{Hotkey, SIGNATURE_LEN, Signer};

/// Signs artifact headers with a wallet's hotkey (sr25519, `substrate` context).
#[derive(Debug, Clone)]
pub struct HotkeySigner(pub Keypair);

impl Signer for HotkeySigner {
    fn hotkey(&self) -> Hotkey {
        Hotkey(self.0.account_id().0)
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message)
    }
}

/// The artifact hotkey of a chain account.
pub fn hotkey_of(account: &sliver_chain::wallet::AccountId32) -> Hotkey {
    Hotkey(account.0)
}
