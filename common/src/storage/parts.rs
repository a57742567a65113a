//! Large objects stored in parts.
//!
//! A stage's weights run to gigabytes (1.7 GB a stage of the 3B spec). Put as one object on a
//! home uplink, such a body needs minutes in one request, so it fails every request timeout
//! and, failing, sends it all again; read as one object, it outlasts every per-read deadline a
//! reader of a stranger's store keeps. So an object of `len` bytes is kept as parts of at most
//! [`PART_LEN`] bytes, each its own write-once object under `{key}/part/{index}`
//! ([`key`]), put and read one at a time: each part crosses the link within a request's
//! timeout, a failure resends one part, and a put resumed after a failure or a restart finds the
//! parts already there. The reader knows `len` (a weight version's is its stage's parameters
//! times four), so no manifest is needed: the parts are [`ranges`] of it, and the whole is
//! checked by its hash once assembled.
//!
//! Parts are plain objects of the store: [`Store::put_once`](super::Store::put_once) and
//! [`Store::get`](super::Store::get) put and read them (S3's multipart upload would give one
//! object, but it cannot resend one part after a failure through `object_store`'s upload, and
//! the filesystem backend has no multipart at all).

use std::ops::Range;

/// The largest part: 8 MiB, about 3.4 s on a 20 Mbit/s uplink, well within a request's timeout
/// and a sample's read deadline.
pub const PART_LEN: u64 = 8 << 20;

/// The key of part `index` of the object kept in parts under `base`.
pub fn key(base: &str, index: usize) -> String {
    format!("{base}/part/{index:06}")
}

/// The byte ranges of the parts of an object of `len` bytes in parts of `part_len` bytes, in
/// order (one empty part for an empty object).
///
/// # Panics
/// When `part_len` is 0.
pub fn ranges(len: u64, part_len: u64) -> impl Iterator<Item = Range<u64>> {
    assert!(part_len > 0, "a part holds at least one byte");
    let count = len.div_ceil(part_len).max(1);
    (0..count).map(move |i| i * part_len..((i + 1) * part_len).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_once_in_order() {
        let bounds = |len, part| {
            ranges(len, part)
                .map(|r| (r.start, r.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(bounds(0, 4), [(0, 0)]);
        assert_eq!(bounds(3, 4), [(0, 3)]);
        assert_eq!(bounds(4, 4), [(0, 4)]);
        assert_eq!(bounds(9, 4), [(0, 4), (4, 8), (8, 9)]);
        assert_eq!(key("a/b", 7), "a/b/part/000007");
    }
}
