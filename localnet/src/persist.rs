//! The state file: the chain's latest state and its recent blocks, SCALE-encoded behind a magic
//! and a format version and followed by the BLAKE2-256 of everything before it, written
//! atomically (temporary file, fsync, rename, fsync of the folder) so that a crash leaves either
//! the old file or the new one. Loading checks the checksum, decodes with nothing left over, and
//! checks the state against the head block's state root: a flipped byte is an error, never a
//! different chain.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use parity_scale_codec::{Decode, DecodeAll, Encode};

use super::block::Block;
use super::runtime::Chain;

/// First bytes of a state file.
pub const MAGIC: [u8; 8] = *b"SLVRLNET";
/// Format version; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the trailing checksum.
const CHECKSUM_LEN: usize = 32;
/// Recent blocks saved besides genesis.
const SAVED_BLOCKS: u32 = 512;

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state file of this format.
    #[error("state file {path} is not a btlocalnet state file (format {FORMAT_VERSION}): {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Encode, Decode)]
struct Saved {
    magic: [u8; 8],
    version: u32,
    netuids: Vec<u16>,
    blocks: Vec<Block>,
    values: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The encoded state file of `chain`.
pub(crate) fn snapshot(chain: &Chain) -> Vec<u8> {
    let head = chain.head();
    let from = head.saturating_sub(SAVED_BLOCKS);
    let blocks = chain
        .blocks()
        .filter(|b| b.header.number == 0 || b.header.number >= from)
        .cloned()
        .collect();
    let values = chain
        .state()
        .values_at(head)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let mut bytes = Saved {
        magic: MAGIC,
        version: FORMAT_VERSION,
        netuids: chain.netuids().to_vec(),
        blocks,
        values,
    }
    .encode();
    let checksum = sp_crypto_hashing::blake2_256(&bytes);
    bytes.extend_from_slice(&checksum);
    bytes
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(dir)
    {
        // Makes the rename durable; not every platform can fsync a folder.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Loads the chain saved at `path`, or `None` when there is no file.
pub(crate) fn load(path: &Path) -> Result<Option<Chain>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format = |reason: String| PersistError::Format {
        path: path.to_owned(),
        reason,
    };
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(format("wrong magic".to_owned()));
    }
    match bytes
        .get(8..12)
        .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    {
        Some(FORMAT_VERSION) => {}
        Some(v) => return Err(format(format!("format version {v}"))),
        None => return Err(format("truncated".to_owned())),
    }
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN) else {
        return Err(format("truncated".to_owned()));
    };
    let (body, checksum) = bytes.split_at(body_len);
    if sp_crypto_hashing::blake2_256(body) != checksum {
        return Err(format("checksum mismatch: the file is corrupt".to_owned()));
    }
    // `decode_all`: bytes left over are corruption too.
    let saved = Saved::decode_all(&mut &body[..]).map_err(|e| format(e.to_string()))?;
    Chain::restore(saved.values, saved.blocks, saved.netuids)
        .map(Some)
        .map_err(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{GenesisConfig, SubnetParamsConfig};

    fn chain() -> Chain {
        Chain::genesis(&GenesisConfig {
            netuids: vec![1],
            owner: None,
            funded: vec![],
            subnet: SubnetParamsConfig {
                tempo: 10,
                weights_rate_limit: 1,
                commit_reveal: false,
                reveal_period: 1,
                burn: 1,
                weights_version_key: 0,
            },
            dev_accounts: 2,
            dev_balance: 1_000,
        })
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_never_another_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.state");
        let good = snapshot(&chain());
        write(&path, &good).unwrap();
        let loaded = load(&path).unwrap().expect("the file exists");
        assert_eq!(loaded.genesis_hash(), chain().genesis_hash());

        let step = (good.len() / 97).max(1);
        for at in (8..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            write(&path, &bad).unwrap();
            assert!(
                matches!(load(&path), Err(PersistError::Format { .. })),
                "flipping byte {at} of {} was not caught",
                good.len()
            );
        }
        let mut long = good.clone();
        long.push(0);
        write(&path, &long).unwrap();
        assert!(matches!(load(&path), Err(PersistError::Format { .. })));
        write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(load(&path), Err(PersistError::Format { .. })));
    }
}
