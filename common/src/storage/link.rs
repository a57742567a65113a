//! An emulated network link between a participant and its storage, for benchmarks and tests:
//! the same protocol code runs on one machine as it would over home connections to S3.
//!
//! A [`Link`] has a round-trip time, an upload and a download bandwidth, and a request failure
//! rate. [`Linked`] wraps any [`ObjectStore`] with it: every request waits one round trip (and
//! fails, at the failure rate, as a transient network error would); a put's payload waits its
//! turn on the uplink and a get's body, as it is read, on the downlink (a body refused from its
//! size, as `Store::get` refuses a stranger's oversized object, costs nothing). The bandwidth is
//! shared by every request of the participant, through every store it opens (its own and its
//! peers', which is why a [`Link`] is cloned into each: the clones share one queue per
//! direction): transfers take the link in the order they ask, each for `bytes / bandwidth` (first come, first served: the
//! total time of concurrent transfers is what sharing the link fairly gives, the last one ends
//! when all would, the first ones sooner). A transfer that would take longer than `timeout` fails
//! after `timeout`, as the real request would, and gives the link back.
//!
//! What it does not model: the store's own bandwidth (S3's is far beyond a home link's), the
//! sender's uplink for a get (the bytes are in the store already), packet loss within a
//! transfer, TCP slow start. Listings are charged a round trip and their answer's size, about
//! [`LISTED_BYTES`] per key.
//!
//! object_store's own `ThrottledStore` waits per call and per byte, each request on its own, so
//! a hundred concurrent transfers would each see the whole bandwidth; sharing the link is the
//! point here, hence this wrapper.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use rand::Rng;
use tokio::time::Instant;

/// What a listing's answer is charged per key it returns: a key (about a hundred bytes in this
/// project's layout) in the XML S3 wraps it in, with its size, date and tag.
pub const LISTED_BYTES: u64 = 300;

/// A link's figures; [`Link::new`] makes one that clones share.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkSpec {
    /// The round-trip time every request waits once.
    pub rtt: Duration,
    /// Upload bandwidth in bits per second; `None` for no limit.
    pub up_bps: Option<u64>,
    /// Download bandwidth in bits per second; `None` for no limit.
    pub down_bps: Option<u64>,
    /// The share of requests that fail (before reaching the store) as a network error would:
    /// in `[0, 1)`.
    pub failure_rate: f64,
}

impl LinkSpec {
    /// Whether the link changes nothing (no delay, no limit, no failure).
    pub fn is_transparent(&self) -> bool {
        self.rtt.is_zero()
            && self.up_bps.is_none()
            && self.down_bps.is_none()
            && self.failure_rate <= 0.0
    }
}

/// An emulated link: its figures, the two queues and the tally every clone shares.
#[derive(Clone)]
pub struct Link {
    spec: LinkSpec,
    up: Arc<Mutex<Instant>>,
    down: Arc<Mutex<Instant>>,
    tally: Arc<Mutex<LinkTally>>,
}

/// What crossed a participant's link: requests by kind (`put`, `get`, `list`, `delete`, ...,
/// counted as they are sent, failed ones too) and payload bytes each way, through all of its
/// stores. A store always sits behind its participant's link (a transparent one when no figure
/// is set), so this is every storage request a participant makes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkTally {
    /// Requests sent, by kind.
    pub requests: std::collections::BTreeMap<String, u64>,
    /// Bytes sent up (puts, parts).
    pub bytes_up: u64,
    /// Bytes come down (bodies read, listings at [`LISTED_BYTES`] a key).
    pub bytes_down: u64,
}

impl LinkTally {
    /// What was added since `before` (an earlier tally of the same link).
    pub fn since(&self, before: &LinkTally) -> LinkTally {
        LinkTally {
            requests: self
                .requests
                .iter()
                .map(|(k, n)| (k.clone(), n - before.requests.get(k).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            bytes_up: self.bytes_up - before.bytes_up,
            bytes_down: self.bytes_down - before.bytes_down,
        }
    }

    /// Every request, of any kind.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

impl PartialEq for Link {
    /// Links are equal when their figures are (whoever shares their queues).
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

/// Equality of the figures, whose failure rate is never NaN where a link is made from flags.
impl Eq for Link {}

/// A direction of transfer.
#[derive(Debug, Clone, Copy)]
enum Way {
    Up,
    Down,
}

impl Link {
    /// A link with `spec`'s figures and queues of its own.
    pub fn new(spec: LinkSpec) -> Self {
        let now = Instant::now();
        Self {
            spec,
            up: Arc::new(Mutex::new(now)),
            down: Arc::new(Mutex::new(now)),
            tally: Arc::default(),
        }
    }

    /// What has crossed it so far.
    pub fn tally(&self) -> LinkTally {
        self.tally.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Its figures.
    pub fn spec(&self) -> LinkSpec {
        self.spec
    }

    /// One round trip, then, at the failure rate, a transient failure.
    async fn request(&self, what: &'static str) -> object_store::Result<()> {
        {
            // Counted on every request: no allocation but for a kind's first.
            let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            match tally.requests.get_mut(what) {
                Some(n) => *n += 1,
                None => {
                    tally.requests.insert(what.to_string(), 1);
                }
            }
        }
        if !self.spec.rtt.is_zero() {
            tokio::time::sleep(self.spec.rtt).await;
        }
        if self.spec.failure_rate > 0.0 && rand::rng().random_bool(self.spec.failure_rate.min(1.0))
        {
            return Err(failure(
                what,
                "the emulated link dropped the request".into(),
            ));
        }
        Ok(())
    }

    /// Waits until `bytes` have crossed the link `way`, in turn after the transfers that asked
    /// before; fails after `timeout` when the transfer would take longer (giving the link back).
    async fn transfer(
        &self,
        way: Way,
        bytes: u64,
        timeout: Duration,
        what: &'static str,
    ) -> object_store::Result<()> {
        {
            let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            match way {
                Way::Up => tally.bytes_up += bytes,
                Way::Down => tally.bytes_down += bytes,
            }
        }
        let bps = match way {
            Way::Up => self.spec.up_bps,
            Way::Down => self.spec.down_bps,
        };
        let Some(bps) = bps.filter(|&b| b > 0) else {
            return Ok(());
        };
        let queue = match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        };
        let takes = Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64);
        let now = Instant::now();
        let (start, end) = {
            let mut free = queue.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*free).max(now);
            *free = start + takes;
            (start, start + takes)
        };
        if end.duration_since(now) > timeout {
            tokio::time::sleep(timeout).await;
            // The link is given back: later transfers need not wait for this one.
            let mut free = queue.lock().unwrap_or_else(|p| p.into_inner());
            if *free == end {
                *free = start;
            } else {
                *free = (*free).checked_sub(takes).unwrap_or(now).max(start);
            }
            return Err(failure(
                what,
                format!(
                    "the emulated link would take {:.1} s to carry {bytes} bytes, past the request timeout of {:.1} s",
                    end.duration_since(now).as_secs_f64(),
                    timeout.as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep_until(end).await;
        Ok(())
    }
}

fn failure(store: &'static str, source: String) -> object_store::Error {
    object_store::Error::Generic {
        store,
        source: source.into(),
    }
}

/// A store reached through a [`Link`]; each request that would take longer than `timeout` on
/// the link fails as a timeout.
#[derive(Debug)]
pub struct Linked {
    inner: Arc<dyn ObjectStore>,
    link: Link,
    timeout: Duration,
}

impl Linked {
    /// `inner` behind `link`, with the request timeout `timeout`.
    pub fn new(inner: Arc<dyn ObjectStore>, link: Link, timeout: Duration) -> Self {
        Self {
            inner,
            link,
            timeout,
        }
    }
}

impl fmt::Display for Linked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.link.spec.is_transparent() {
            return self.inner.fmt(f);
        }
        write!(
            f,
            "{} behind an emulated link ({:?})",
            self.inner, self.link.spec
        )
    }
}

#[async_trait]
impl ObjectStore for Linked {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.link.request("put").await?;
        let bytes = payload.content_length() as u64;
        self.link
            .transfer(Way::Up, bytes, self.timeout, "put")
            .await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.link.request("put_multipart").await?;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(LinkedUpload {
            upload,
            link: self.link.clone(),
            timeout: self.timeout,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.link.request("get").await?;
        let result = self.inner.get_opts(location, options).await?;
        // The body crosses the downlink as it is read, chunk by chunk: a body the reader refuses
        // from its size, or stops reading (a stranger's oversized object), costs only what was
        // read, as on a real link. Each chunk may wait at most what is left of the request's
        // timeout.
        let (meta, range, attributes, extensions) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
            result.extensions.clone(),
        );
        let (link, deadline) = (self.link.clone(), Instant::now() + self.timeout);
        let body = result
            .into_stream()
            .then(move |chunk| {
                let link = link.clone();
                async move {
                    let chunk = chunk?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    link.transfer(Way::Down, chunk.len() as u64, left, "get")
                        .await?;
                    Ok(chunk)
                }
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(body),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.link.request("get_ranges").await?;
        let out = self.inner.get_ranges(location, ranges).await?;
        let bytes = out.iter().map(|b| b.len() as u64).sum();
        self.link
            .transfer(Way::Down, bytes, self.timeout, "get_ranges")
            .await?;
        Ok(out)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // One round trip for the batch: S3 deletes a thousand keys per request.
        let (link, inner) = (self.link.clone(), Arc::clone(&self.inner));
        futures::stream::once(async move {
            match link.request("delete").await {
                Ok(()) => inner.delete_stream(locations),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let stream = self.inner.list(prefix);
        self.charge_listing(stream)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let stream = self.inner.list_with_offset(prefix, offset);
        self.charge_listing(stream)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.link.request("list").await?;
        let result = self.inner.list_with_delimiter(prefix).await?;
        let keys = (result.objects.len() + result.common_prefixes.len()) as u64;
        self.link
            .transfer(Way::Down, keys * LISTED_BYTES, self.timeout, "list")
            .await?;
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.link.request("copy").await?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.link.request("rename").await?;
        self.inner.rename_opts(from, to, options).await
    }
}

impl Linked {
    /// A listing: a round trip first, then each key charged [`LISTED_BYTES`] on the downlink
    /// as it arrives.
    fn charge_listing(
        &self,
        stream: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (link, timeout) = (self.link.clone(), self.timeout);
        let first = link.clone();
        futures::stream::once(async move {
            match first.request("list").await {
                Ok(()) => stream
                    .then(move |item| {
                        let link = link.clone();
                        async move {
                            let meta = item?;
                            link.transfer(Way::Down, LISTED_BYTES, timeout, "list")
                                .await?;
                            Ok(meta)
                        }
                    })
                    .boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// A multipart upload whose parts cross the uplink.
#[derive(Debug)]
struct LinkedUpload {
    upload: Box<dyn MultipartUpload>,
    link: Link,
    timeout: Duration,
}

#[async_trait]
impl MultipartUpload for LinkedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let bytes = data.content_length() as u64;
        let part = self.upload.put_part(data);
        let (link, timeout) = (self.link.clone(), self.timeout);
        async move {
            link.request("put_part").await?;
            link.transfer(Way::Up, bytes, timeout, "put_part").await?;
            part.await
        }
        .boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.link.request("complete").await?;
        self.upload.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.link.request("abort").await?;
        self.upload.abort().await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    fn linked(spec: LinkSpec, timeout: Duration) -> Arc<dyn ObjectStore> {
        Arc::new(Linked::new(
            Arc::new(InMemory::new()),
            Link::new(spec),
            timeout,
        ))
    }

    const MB: usize = 1_000_000;

    /// Ten concurrent 1 MB puts over an 8 Mbit/s uplink take ten seconds in all, as the bytes
    /// need, not one (each seeing the whole link); the first ends after one.
    #[tokio::test(start_paused = true)]
    async fn concurrent_transfers_share_the_link() {
        let store = linked(
            LinkSpec {
                up_bps: Some(8 * MB as u64),
                ..LinkSpec::default()
            },
            Duration::from_secs(300),
        );
        let t0 = Instant::now();
        let ends = futures::future::join_all((0..10).map(|i| {
            let store = Arc::clone(&store);
            async move {
                store
                    .put(&Path::from(format!("k{i}")), vec![0u8; MB].into())
                    .await
                    .unwrap();
                t0.elapsed()
            }
        }))
        .await;
        let first = ends.iter().min().unwrap().as_secs_f64();
        let last = ends.iter().max().unwrap().as_secs_f64();
        assert!((first - 1.0).abs() < 0.01, "first ended after {first} s");
        assert!((last - 10.0).abs() < 0.01, "last ended after {last} s");
    }

    /// A get waits a round trip and its body's time on the downlink; the uplink (1 bit/s
    /// here) is not used.
    #[tokio::test(start_paused = true)]
    async fn a_get_waits_a_round_trip_and_its_bytes() {
        let memory = Arc::new(InMemory::new());
        let key = Path::from("k");
        memory.put(&key, vec![0u8; 10 * MB].into()).await.unwrap();
        let spec = LinkSpec {
            rtt: Duration::from_millis(80),
            up_bps: Some(1),
            down_bps: Some(80 * MB as u64),
            failure_rate: 0.0,
        };
        let store = Linked::new(memory, Link::new(spec), Duration::from_secs(300));
        let t0 = Instant::now();
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), 10 * MB);
        // 80 ms, then 80 Mbit at 80 Mbit/s.
        let took = t0.elapsed().as_secs_f64();
        assert!((took - 1.08).abs() < 0.01, "took {took} s");
    }

    /// A body the reader drops unread (as `Store::get` drops an object larger than it accepts)
    /// costs the downlink nothing: a stranger serving a huge object does not hold up the
    /// reader's other reads.
    #[tokio::test(start_paused = true)]
    async fn a_body_left_unread_costs_the_link_nothing() {
        let memory = Arc::new(InMemory::new());
        memory
            .put(&Path::from("huge"), vec![0u8; 100 * MB].into())
            .await
            .unwrap();
        memory
            .put(&Path::from("small"), vec![0u8; MB].into())
            .await
            .unwrap();
        let spec = LinkSpec {
            down_bps: Some(8 * MB as u64),
            ..LinkSpec::default()
        };
        let store = Linked::new(memory, Link::new(spec), Duration::from_secs(300));
        let asked = Instant::now();
        let huge = store.get(&Path::from("huge")).await.unwrap();
        assert_eq!(huge.meta.size, 100 * MB as u64);
        // Its size is known before any of its 100 s of body crosses the link.
        assert!(asked.elapsed() < Duration::from_millis(10));
        drop(huge);
        let t0 = Instant::now();
        let small = store.get(&Path::from("small")).await.unwrap();
        assert_eq!(small.bytes().await.unwrap().len(), MB);
        let took = t0.elapsed().as_secs_f64();
        assert!(
            (took - 1.0).abs() < 0.01,
            "took {took} s, not the 1 s its own bytes need"
        );
    }

    /// A transfer longer than the request timeout fails after the timeout, and gives the link
    /// back: the transfer after it is not delayed by it.
    #[tokio::test(start_paused = true)]
    async fn a_transfer_past_the_timeout_fails_and_frees_the_link() {
        let store = linked(
            LinkSpec {
                up_bps: Some(8 * MB as u64),
                ..LinkSpec::default()
            },
            Duration::from_secs(5),
        );
        let t0 = Instant::now();
        let err = store
            .put(&Path::from("big"), vec![0u8; 10 * MB].into())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("request timeout"), "{err}");
        assert!((t0.elapsed().as_secs_f64() - 5.0).abs() < 0.01);
        let t1 = Instant::now();
        store
            .put(&Path::from("small"), vec![0u8; MB].into())
            .await
            .unwrap();
        assert!((t1.elapsed().as_secs_f64() - 1.0).abs() < 0.01);
    }

    /// At a failure rate of one half, about half the requests fail with a transient error
    /// (`Generic`, which the store retries) and the others reach the store.
    #[tokio::test]
    async fn requests_fail_at_the_failure_rate() {
        let store = linked(
            LinkSpec {
                failure_rate: 0.5,
                ..LinkSpec::default()
            },
            Duration::from_secs(1),
        );
        let mut failed = 0;
        for i in 0..400 {
            match store
                .put(&Path::from(format!("k{i}")), vec![1u8].into())
                .await
            {
                Ok(_) => {}
                Err(object_store::Error::Generic { .. }) => failed += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!((140..=260).contains(&failed), "{failed} of 400 failed");
    }
}
