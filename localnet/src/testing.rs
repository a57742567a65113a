//! Support for the tests of `sliver-localnet` (feature `testing`): finney's metadata and the
//! local chain's, decoded, to compare the two. The metadata files, step timeouts and dev signers
//! are `sliver_chain::testing`'s.

use frame_metadata::v16::RuntimeMetadataV16;
use frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
use parity_scale_codec::Decode;

/// Finney's metadata (`sliver_chain::testing::FINNEY_PATH`), decoded.
///
/// # Panics
/// When the file cannot be read, does not decode, or is not V16.
pub fn finney() -> RuntimeMetadataV16 {
    v16(&sliver_chain::testing::finney_bytes(), "finney")
}

/// The local chain's metadata as served (encoded, then decoded again).
///
/// # Panics
/// When it does not decode or is not V16 (a bug in the local chain's metadata).
pub fn local() -> RuntimeMetadataV16 {
    v16(&crate::metadata::metadata_bytes(), "local")
}

fn v16(bytes: &[u8], what: &str) -> RuntimeMetadataV16 {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("{what} metadata does not decode: {e}"));
    match prefixed.1 {
        RuntimeMetadata::V16(m) => m,
        other => panic!("{what} metadata is V{}, expected V16", other.version()),
    }
}
