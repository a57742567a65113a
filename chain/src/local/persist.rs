//! The state file: the chain's latest state and its recent blocks, SCALE-encoded behind a magic
//! and a format version, written atomically (temporary file, fsync, rename, fsync of the folder)
//! so that a crash leaves either the old file or the new one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use parity_scale_codec::{Decode, Encode};

use super::block::Block;
use super::runtime::Chain;

/// First bytes of a state file.
pub const MAGIC: [u8; 8] = *b"SLVRLNET";
/// Format version; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
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
    Saved {
        magic: MAGIC,
        version: FORMAT_VERSION,
        netuids: chain.netuids().to_vec(),
        blocks,
        values,
    }
    .encode()
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
    let saved = Saved::decode(&mut &bytes[..]).map_err(|e| format(e.to_string()))?;
    if saved.version != FORMAT_VERSION {
        return Err(format(format!("format version {}", saved.version)));
    }
    Chain::restore(saved.values, saved.blocks, saved.netuids)
        .map(Some)
        .ok_or_else(|| format("no genesis block".to_owned()))
}
