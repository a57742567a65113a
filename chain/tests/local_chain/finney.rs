//! Loading finney's metadata (`metadata/finney.scale`) and the local chain's.

use frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed, v16::RuntimeMetadataV16};
use parity_scale_codec::Decode;

/// Where the reference metadata lives, relative to this crate.
pub const FINNEY_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../metadata/finney.scale");

/// The raw bytes of finney's metadata.
///
/// # Panics
/// With a message naming the file when it is missing (it is committed: see `metadata/README.md`).
pub fn finney_bytes() -> Vec<u8> {
    std::fs::read(FINNEY_PATH).unwrap_or_else(|e| {
        panic!(
            "cannot read finney's metadata at {FINNEY_PATH}: {e}. The layout tests compare the local \
             chain against it; it is committed under metadata/ (see metadata/README.md)."
        )
    })
}

fn v16(bytes: &[u8], what: &str) -> RuntimeMetadataV16 {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("{what} metadata does not decode: {e}"));
    match prefixed.1 {
        RuntimeMetadata::V16(m) => m,
        other => panic!("{what} metadata is V{}, expected V16", other.version()),
    }
}

/// Finney's metadata, decoded.
pub fn finney() -> RuntimeMetadataV16 {
    v16(&finney_bytes(), "finney")
}

/// The local chain's metadata as served (encoded, then decoded again).
pub fn local() -> RuntimeMetadataV16 {
    v16(&sliver_chain::local::metadata::metadata_bytes(), "local")
}
