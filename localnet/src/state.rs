//! The local chain's storage: one SCALE key → value map, keyed exactly as a FRAME runtime keys it
//! (`twox128(pallet) ++ twox128(item) ++ hashed map keys`), so that `state_getStorage` answers the
//! raw keys any Substrate client computes from the metadata.
//!
//! Storage is versioned by block number: every write is recorded with the block that made it, and
//! reads name the block they want, because clients read at the block they were told about (the
//! events of the block that included their transaction, say) while newer blocks are being built.
//! Versions older than [`HISTORY`] blocks are pruned, as a pruned node forgets old state.
//!
//! Block building writes through an [`Overlay`] with nested layers, so a failed dispatch rolls back
//! its own writes only (FRAME's transactional storage layers).

use std::collections::BTreeMap;
use std::ops::Bound;

use parity_scale_codec::{Decode, Encode};
use sp_crypto_hashing::{blake2_128, twox_64, twox_128};

/// Blocks of state history kept for reads at older blocks.
pub(crate) const HISTORY: u32 = 4096;

/// A storage map hasher, as the metadata names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hasher {
    /// `blake2_128(key) ++ key`.
    Blake2_128Concat,
    /// `twox64(key) ++ key`.
    Twox64Concat,
    /// `key`.
    Identity,
}

impl Hasher {
    fn hash_into(self, key: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Blake2_128Concat => out.extend_from_slice(&blake2_128(key)),
            Self::Twox64Concat => out.extend_from_slice(&twox_64(key)),
            Self::Identity => {}
        }
        out.extend_from_slice(key);
    }
}

/// `twox128(pallet) ++ twox128(item)`: the prefix of a storage entry.
pub(crate) fn prefix(pallet: &str, item: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&twox_128(pallet.as_bytes()));
    key.extend_from_slice(&twox_128(item.as_bytes()));
    key
}

/// Builds the full key of a storage entry: its prefix, then each map key (SCALE-encoded)
/// through its hasher.
#[derive(Debug, Clone)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    /// The key of entry `item` of `pallet` (a plain value, or a map before its keys are added).
    pub(crate) fn new(pallet: &str, item: &str) -> Self {
        Self(prefix(pallet, item))
    }

    /// Adds a map key with `hasher`.
    pub(crate) fn with(mut self, hasher: Hasher, key: &impl Encode) -> Self {
        hasher.hash_into(&key.encode(), &mut self.0);
        self
    }

    /// The raw key.
    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

/// The values a key had, each from the block that wrote it on (`None` = removed), oldest first.
type Versions = Vec<(u32, Option<Vec<u8>>)>;

/// Versioned storage: for every key, the values it had from each block on (`None` = removed).
#[derive(Debug, Default, Clone)]
pub(crate) struct Storage {
    entries: BTreeMap<Vec<u8>, Versions>,
}

impl Storage {
    /// Storage holding `values` as of block `at`.
    pub(crate) fn from_values(
        at: u32,
        values: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Self {
        let entries = values
            .into_iter()
            .map(|(k, v)| (k, vec![(at, Some(v))]))
            .collect();
        Self { entries }
    }

    /// The value of `key` as of block `at`.
    pub(crate) fn get(&self, key: &[u8], at: u32) -> Option<&[u8]> {
        let versions = self.entries.get(key)?;
        value_at(versions, at)
    }

    /// Records the changes a block made.
    pub(crate) fn apply(&mut self, at: u32, changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (k, v) in changes {
            let versions = self.entries.entry(k).or_default();
            match versions.last_mut() {
                Some((n, old)) if *n == at => *old = v,
                _ => versions.push((at, v)),
            }
        }
    }

    /// Keys under `prefix` that have a value at block `at`, after `start` (exclusive), at most
    /// `count` of them.
    pub(crate) fn keys_paged(
        &self,
        prefix: &[u8],
        start: Option<&[u8]>,
        count: usize,
        at: u32,
    ) -> Vec<Vec<u8>> {
        let lower = match start {
            Some(s) if s >= prefix => Bound::Excluded(s.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        self.entries
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, versions)| value_at(versions, at).is_some())
            .take(count)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every key with its value at block `at`, in key order.
    pub(crate) fn values_at(&self, at: u32) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .filter_map(move |(k, versions)| value_at(versions, at).map(|v| (k.as_slice(), v)))
    }

    /// A digest of the whole state at block `at`: blake2_256 over the ordered (key, value) pairs.
    /// Not a trie root, but it changes exactly when the state does.
    pub(crate) fn root(&self, at: u32) -> [u8; 32] {
        let mut buf = Vec::new();
        for (k, v) in self.values_at(at) {
            k.encode_to(&mut buf);
            v.encode_to(&mut buf);
        }
        sp_crypto_hashing::blake2_256(&buf)
    }

    /// Forgets versions no read at or after block `keep_from` can see.
    pub(crate) fn prune(&mut self, keep_from: u32) {
        self.entries.retain(|_, versions| {
            // Index of the newest version at or before `keep_from`: everything before it is dead.
            let live = versions.partition_point(|(n, _)| *n <= keep_from);
            if live > 1 {
                versions.drain(..live - 1);
            }
            !(versions.len() == 1 && versions[0].1.is_none())
        });
    }
}

fn value_at(versions: &[(u32, Option<Vec<u8>>)], at: u32) -> Option<&[u8]> {
    let i = versions.partition_point(|(n, _)| *n <= at);
    versions.get(i.checked_sub(1)?)?.1.as_deref()
}

/// Writes of the block being built, over the [`Storage`] as of its parent, in nested layers.
#[derive(Debug)]
pub(crate) struct Overlay<'a> {
    base: &'a Storage,
    parent: u32,
    layers: Vec<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<'a> Overlay<'a> {
    /// An overlay over `base` as of block `parent`.
    pub(crate) fn new(base: &'a Storage, parent: u32) -> Self {
        Self {
            base,
            parent,
            layers: vec![BTreeMap::new()],
        }
    }

    /// The raw value at `key`.
    pub(crate) fn get_raw(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in self.layers.iter().rev() {
            if let Some(v) = layer.get(key) {
                return v.clone();
            }
        }
        self.base.get(key, self.parent).map(<[u8]>::to_vec)
    }

    /// Writes (or with `None`, removes) the raw value at `key`.
    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if let Some(top) = self.layers.last_mut() {
            top.insert(key, value);
        }
    }

    /// The decoded value at `key`, or `None` when absent or undecodable.
    pub(crate) fn get<T: Decode>(&self, key: &[u8]) -> Option<T> {
        let raw = self.get_raw(key)?;
        T::decode(&mut &raw[..]).ok()
    }

    /// Writes `value` at `key`.
    pub(crate) fn put<T: Encode>(&mut self, key: Vec<u8>, value: &T) {
        self.put_raw(key, Some(value.encode()));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.put_raw(key, None);
    }

    /// Opens a layer whose writes can be rolled back alone.
    pub(crate) fn begin(&mut self) {
        self.layers.push(BTreeMap::new());
    }

    /// Folds the top layer into the one below.
    pub(crate) fn commit(&mut self) {
        if self.layers.len() > 1
            && let Some(top) = self.layers.pop()
            && let Some(below) = self.layers.last_mut()
        {
            below.extend(top);
        }
    }

    /// Drops the top layer's writes.
    pub(crate) fn rollback(&mut self) {
        if self.layers.len() > 1 {
            self.layers.pop();
        }
    }

    /// All changes, flattened, for [`Storage::apply`].
    pub(crate) fn into_changes(mut self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        while self.layers.len() > 1 {
            self.commit();
        }
        self.layers.pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_number_key_is_substrates() {
        // twox128("System") ++ twox128("Number"), as every Substrate client computes it.
        assert_eq!(
            hex::encode(prefix("System", "Number")),
            "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
        );
    }

    #[test]
    fn versions_are_read_at_their_block() {
        let mut s = Storage::default();
        s.apply(1, BTreeMap::from([(b"k".to_vec(), Some(vec![1]))]));
        s.apply(3, BTreeMap::from([(b"k".to_vec(), Some(vec![3]))]));
        s.apply(5, BTreeMap::from([(b"k".to_vec(), None)]));
        assert_eq!(s.get(b"k", 0), None);
        assert_eq!(s.get(b"k", 2), Some(&[1u8][..]));
        assert_eq!(s.get(b"k", 4), Some(&[3u8][..]));
        assert_eq!(s.get(b"k", 6), None);
        s.prune(4);
        assert_eq!(s.get(b"k", 4), Some(&[3u8][..]));
        s.prune(6);
        assert!(s.entries.is_empty());
    }

    #[test]
    fn overlay_layers_roll_back_alone() {
        let s = Storage::from_values(0, [(b"a".to_vec(), vec![0])]);
        let mut o = Overlay::new(&s, 0);
        o.put(b"a".to_vec(), &1u8);
        o.begin();
        o.put(b"a".to_vec(), &2u8);
        o.put(b"b".to_vec(), &2u8);
        o.rollback();
        assert_eq!(o.get::<u8>(b"a"), Some(1));
        assert!(o.get_raw(b"b").is_none());
        let changes = o.into_changes();
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn keys_paged_starts_after_start_key() {
        let s = Storage::from_values(
            0,
            [
                (b"pa".to_vec(), vec![]),
                (b"pb".to_vec(), vec![]),
                (b"pc".to_vec(), vec![]),
                (b"q".to_vec(), vec![]),
            ],
        );
        assert_eq!(s.keys_paged(b"p", None, 10, 0).len(), 3);
        assert_eq!(
            s.keys_paged(b"p", Some(b"pa"), 10, 0),
            vec![b"pb".to_vec(), b"pc".to_vec()]
        );
        assert_eq!(s.keys_paged(b"p", None, 1, 0), vec![b"pa".to_vec()]);
    }
}
