//! Substrate's well-known development accounts (`//Alice`, `//Bob`, ...), which the local chain
//! funds at genesis: the dev phrase's mini-secret, hard-derived with the junction name's SCALE
//! encoding as chain code, exactly as `sp-core` and `subxt-signer`'s `dev::alice()` derive them.

use parity_scale_codec::Encode;
use schnorrkel::derive::ChainCode;
use schnorrkel::{ExpansionMode, MiniSecretKey};

/// Substrate's development phrase.
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// Names of the well-known dev accounts, in the order they are funded; more are `//Dev7`, ...
pub const DEV_NAMES: [&str; 6] = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];

/// The name of the `i`-th dev account (0-based).
pub fn dev_name(i: usize) -> String {
    DEV_NAMES
        .get(i)
        .map_or_else(|| format!("Dev{}", i + 1), |n| (*n).to_owned())
}

/// The sr25519 public key (= `AccountId32`) of `DEV_PHRASE//<name>`.
///
/// # Panics
///
/// Never in practice: the dev phrase is a valid BIP39 phrase, which is checked by the tests.
#[allow(
    clippy::expect_used,
    reason = "the dev phrase is a constant, valid BIP39 phrase (tested)"
)]
pub fn dev_account(name: &str) -> [u8; 32] {
    let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, DEV_PHRASE)
        .expect("the dev phrase is valid BIP39");
    let (entropy, len) = mnemonic.to_entropy_array();
    let mini = substrate_bip39::mini_secret_from_entropy(&entropy[..len], "")
        .expect("BIP39 entropy is 16 to 32 bytes long");
    let derived = hard_derive(&mini, name);
    derived.expand_to_public(ExpansionMode::Ed25519).to_bytes()
}

/// One hard junction: the chain code is the junction's SCALE encoding, zero-padded to 32 bytes
/// (hashed with blake2_256 when longer).
fn hard_derive(mini: &MiniSecretKey, junction: &str) -> MiniSecretKey {
    let encoded = junction.encode();
    let mut cc = [0u8; 32];
    if encoded.len() > 32 {
        cc = sp_crypto_hashing::blake2_256(&encoded);
    } else {
        cc[..encoded.len()].copy_from_slice(&encoded);
    }
    mini.hard_derive_mini_secret_key(Some(ChainCode(cc)), b"", ExpansionMode::Ed25519)
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alice_and_bob_are_the_well_known_accounts() {
        let alice = subxt_utils_accountid32::AccountId32(dev_account("Alice"));
        assert_eq!(
            alice.to_string(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        let bob = subxt_utils_accountid32::AccountId32(dev_account("Bob"));
        assert_eq!(
            bob.to_string(),
            "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
        );
        assert_eq!(dev_name(6), "Dev7");
    }
}
