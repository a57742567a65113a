//! Blocks: Substrate's header (`parent_hash`, compact `number`, `state_root`, `extrinsics_root`,
//! `digest`), hashed as blake2_256 of its SCALE encoding, and its JSON form as
//! `chain_getHeader` and `chain_getBlock` give it.

use parity_scale_codec::{Compact, Decode, Encode};
use serde_json::{Value, json};
use sp_crypto_hashing::blake2_256;

/// A 32-byte hash (block, extrinsic, state root).
pub(crate) type Hash = [u8; 32];

/// `sp_runtime::generic::Header<u32, BlakeTwo256>`, with an always-empty digest: the local chain
/// has no consensus engine to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Hash of the parent block (zero for genesis).
    pub parent_hash: Hash,
    /// Height.
    pub number: u32,
    /// Digest of the state after this block.
    pub state_root: Hash,
    /// Digest of this block's extrinsics.
    pub extrinsics_root: Hash,
}

impl Encode for Header {
    fn encode_to<W: parity_scale_codec::Output + ?Sized>(&self, dest: &mut W) {
        self.parent_hash.encode_to(dest);
        Compact(self.number).encode_to(dest);
        self.state_root.encode_to(dest);
        self.extrinsics_root.encode_to(dest);
        // Digest { logs: Vec<DigestItem> }: no logs.
        Compact(0u32).encode_to(dest);
    }
}

impl Decode for Header {
    fn decode<I: parity_scale_codec::Input>(
        input: &mut I,
    ) -> Result<Self, parity_scale_codec::Error> {
        let parent_hash = Hash::decode(input)?;
        let number = Compact::<u32>::decode(input)?.0;
        let state_root = Hash::decode(input)?;
        let extrinsics_root = Hash::decode(input)?;
        let logs = Compact::<u32>::decode(input)?.0;
        if logs != 0 {
            return Err("the local chain's headers carry no digest logs".into());
        }
        Ok(Self {
            parent_hash,
            number,
            state_root,
            extrinsics_root,
        })
    }
}

impl Header {
    /// The block hash: blake2_256 of the SCALE-encoded header.
    pub(crate) fn hash(&self) -> Hash {
        blake2_256(&self.encode())
    }

    /// The header as Substrate's RPC serialises it (camelCase, hex number).
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "parentHash": hex0x(&self.parent_hash),
            "number": format!("0x{:x}", self.number),
            "stateRoot": hex0x(&self.state_root),
            "extrinsicsRoot": hex0x(&self.extrinsics_root),
            "digest": { "logs": [] },
        })
    }
}

/// A block: its header and the extrinsics it applied, each as submitted (SCALE, length-prefixed).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Block {
    /// The header.
    pub header: Header,
    /// The extrinsics.
    pub extrinsics: Vec<Vec<u8>>,
}

impl Block {
    /// The block as `chain_getBlock` returns it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "block": {
                "header": self.header.to_json(),
                "extrinsics": self.extrinsics.iter().map(|x| hex0x(x)).collect::<Vec<_>>(),
            },
            "justifications": null,
        })
    }
}

/// The extrinsics root: blake2_256 of the SCALE-encoded list (a digest, not Substrate's trie root).
pub(crate) fn extrinsics_root(extrinsics: &[Vec<u8>]) -> Hash {
    blake2_256(&extrinsics.encode())
}

/// `0x`-prefixed lowercase hex, Substrate's encoding of bytes in JSON.
pub(crate) fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_hashes_its_encoding() {
        let h = Header {
            parent_hash: [1; 32],
            number: 300,
            state_root: [2; 32],
            extrinsics_root: [3; 32],
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), 32 + 2 + 32 + 32 + 1);
        assert_eq!(Header::decode(&mut &bytes[..]).ok(), Some(h.clone()));
        assert_eq!(h.hash(), blake2_256(&bytes));
        assert_eq!(h.to_json()["number"], "0x12c");
    }
}
