//! The commit hash of commit-reveal against a vector computed outside this code base.

use sliver_chain::client::{NetUid, Uid, commit_hash};
use sliver_chain::wallet::AccountId32;

/// Computed with Python's standard library, independently of the Rust SCALE codec and BLAKE2
/// crates:
///
/// ```python
/// import hashlib, struct
/// b = bytes(range(1, 33)) + struct.pack('<H', 3)              # hotkey, netuid_index
/// for v in ([0, 1, 5], [65535, 32768, 1], [1, 2, 3, 4, 5, 6, 7, 8]):
///     b += bytes([len(v) << 2]) + b''.join(struct.pack('<H', x) for x in v)  # Vec<u16>
/// b += struct.pack('<Q', 1000)                                 # version_key
/// hashlib.blake2b(b, digest_size=32).hexdigest()
/// ```
///
/// which is subtensor's `BlakeTwo256::hash_of(&(who, netuid_index, uids, values, salt,
/// version_key))` for the main mechanism (`netuid_index == netuid`).
const EXPECTED: &str = "be2515ae6f1a71106b0fce426fd191b94d113c7ac7349ae2373c249bf6a385bb";

#[test]
fn commit_hash_matches_an_independent_computation() {
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::try_from(i + 1).unwrap();
    }
    let hash = commit_hash(
        &AccountId32(key),
        NetUid(3),
        &[Uid(0), Uid(1), Uid(5)],
        &[65535, 32768, 1],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        1000,
    );
    assert_eq!(hex::encode(hash), EXPECTED);
}

#[test]
fn every_input_changes_the_hash() {
    let key = AccountId32([7; 32]);
    let base = commit_hash(&key, NetUid(1), &[Uid(0)], &[1], &[9], 0);
    assert_ne!(
        base,
        commit_hash(&AccountId32([8; 32]), NetUid(1), &[Uid(0)], &[1], &[9], 0)
    );
    assert_ne!(base, commit_hash(&key, NetUid(2), &[Uid(0)], &[1], &[9], 0));
    assert_ne!(base, commit_hash(&key, NetUid(1), &[Uid(1)], &[1], &[9], 0));
    assert_ne!(base, commit_hash(&key, NetUid(1), &[Uid(0)], &[2], &[9], 0));
    assert_ne!(base, commit_hash(&key, NetUid(1), &[Uid(0)], &[1], &[8], 0));
    assert_ne!(base, commit_hash(&key, NetUid(1), &[Uid(0)], &[1], &[9], 1));
}
