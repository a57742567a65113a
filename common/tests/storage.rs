//! The artifact store against both backends: a directory, and a real S3 server (s3s over
//! s3s-fs's directory backend on 127.0.0.1, with a write key and a read-only key).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sliver_common::storage::{
    Link, LinkSpec, Put, Reach, StorageError, Store, StoreConfig, StoreStats,
};
use sliver_common::testing::S3Server;

/// Every storage step is bounded: a hung server fails the test instead of stalling it.
async fn bounded<T>(step: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), step)
        .await
        .expect("a storage step took more than 30 s")
}

/// The behaviour both backends must share, on a freshly opened, empty store.
async fn exercise(store: &Store) {
    let key = "runs/r/e1/s0/HOTKEY/act/42";
    let body = Bytes::from_static(b"first body");

    assert!(!bounded(store.exists(key)).await.unwrap());
    assert_eq!(bounded(store.get(key, 1 << 20)).await.unwrap(), None);

    // Write once: a second put of the same bytes is told apart from a put of others, and
    // neither changes anything.
    assert_eq!(
        bounded(store.put_once(key, body.clone())).await.unwrap(),
        Put::Created
    );
    assert_eq!(
        bounded(store.put_once(key, body.clone())).await.unwrap(),
        Put::Same
    );
    assert!(bounded(store.exists(key)).await.unwrap());
    assert_eq!(
        bounded(store.get(key, 1 << 20)).await.unwrap(),
        Some(body.clone())
    );
    assert_eq!(
        bounded(store.put_once(key, Bytes::from_static(b"second")))
            .await
            .unwrap(),
        Put::Exists
    );
    assert_eq!(
        bounded(store.get(key, 1 << 20)).await.unwrap(),
        Some(body.clone())
    );

    // An exact-size limit passes; one byte less is refused, naming key, size and limit.
    let len = body.len() as u64;
    assert_eq!(
        bounded(store.get(key, len)).await.unwrap(),
        Some(body.clone())
    );
    match bounded(store.get(key, len - 1)).await {
        Err(e @ StorageError::TooLarge { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(key) && msg.contains(&len.to_string()), "{msg}");
            assert!(msg.contains(&(len - 1).to_string()), "{msg}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // An empty object is an object.
    assert_eq!(
        bounded(store.put_once("runs/r/e1/empty", Bytes::new()))
            .await
            .unwrap(),
        Put::Created
    );
    assert_eq!(
        bounded(store.get("runs/r/e1/empty", 0)).await.unwrap(),
        Some(Bytes::new())
    );

    // Listing: exactly the keys under the "directory", sorted, relative as given.
    for k in [
        "runs/r/e1/s1/b",
        "runs/r/e1/s1/a",
        "runs/r/e1/s1/c/d",
        "runs/r/e1/s10/x",
        "runs/r/e2/s1/a",
    ] {
        assert_eq!(
            bounded(store.put_once(k, Bytes::from(k.to_string())))
                .await
                .unwrap(),
            Put::Created
        );
    }
    let want = ["runs/r/e1/s1/a", "runs/r/e1/s1/b", "runs/r/e1/s1/c/d"];
    assert_eq!(bounded(store.list("runs/r/e1/s1")).await.unwrap(), want);
    assert_eq!(bounded(store.list("runs/r/e1/s1/")).await.unwrap(), want);
    assert_eq!(
        bounded(store.list("runs/r/e1/s10")).await.unwrap(),
        ["runs/r/e1/s10/x"]
    );
    assert!(
        bounded(store.list("runs/nothing"))
            .await
            .unwrap()
            .is_empty()
    );
    let all = bounded(store.list("")).await.unwrap();
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all.is_sorted());
    assert!(all.contains(&key.to_string()));

    // Invalid keys are refused before any request, with the key in the message.
    for bad in [
        "", "/abs", "a/../b", "..", "a//b", "a/", "a b", "a#1", "a?b",
    ] {
        match bounded(store.put_once(bad, Bytes::new())).await {
            Err(e @ StorageError::InvalidKey { .. }) => {
                assert!(e.to_string().contains(&format!("`{bad}`")), "{e}")
            }
            other => panic!("{bad:?}: expected InvalidKey, got {other:?}"),
        }
        assert!(matches!(
            bounded(store.get(bad, 1)).await,
            Err(StorageError::InvalidKey { .. })
        ));
    }
    assert!(matches!(
        bounded(store.list("../x")).await,
        Err(StorageError::InvalidKey { .. })
    ));

    // Counters: 7 creates (neither the Same nor the Exists is counted); 5 gets that found
    // something, one of them the Same put's read-back (the Exists put's read-back stopped at the
    // size of its own bytes).
    let bytes_put = body.len()
        + [
            "runs/r/e1/s1/b",
            "runs/r/e1/s1/a",
            "runs/r/e1/s1/c/d",
            "runs/r/e1/s10/x",
            "runs/r/e2/s1/a",
        ]
        .iter()
        .map(|k| k.len())
        .sum::<usize>();
    assert_eq!(
        store.stats(),
        StoreStats {
            puts: 7,
            bytes_put: bytes_put as u64,
            gets: 5,
            bytes_got: 4 * len,
            retries: 0,
        }
    );
    // Clones share the counters.
    assert_eq!(store.clone().stats(), store.stats());
}

#[tokio::test]
async fn filesystem_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet/there");
    let store = Store::open(&StoreConfig::filesystem(&root)).unwrap();
    assert!(root.is_dir(), "open creates the directory");
    exercise(&store).await;
    // Objects are plain files under the directory; no staging file is left behind.
    assert_eq!(
        std::fs::read(root.join("runs/r/e1/s0/HOTKEY/act/42")).unwrap(),
        b"first body"
    );
    let names: Vec<_> = std::fs::read_dir(root.join("runs/r/e1/s0/HOTKEY/act"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["42"]);

    // A plain path names the same store as its file:// url.
    let plain = StoreConfig {
        url: root.to_str().unwrap().to_string(),
        ..StoreConfig::filesystem(&root)
    };
    let again = Store::open(&plain).unwrap();
    assert_eq!(
        bounded(again.list("runs/r/e2")).await.unwrap(),
        ["runs/r/e2/s1/a"]
    );
}

#[tokio::test]
async fn s3_store() {
    let server = S3Server::spawn("sliver-test");
    let store = Store::open(&server.config("pre/fix")).unwrap();
    exercise(&store).await;

    // The prefix is invisible to the store's users but real in the bucket: a store over the
    // whole bucket sees the same objects under it, and the two stores do not mix.
    let whole = Store::open(&server.config("")).unwrap();
    assert_eq!(
        bounded(whole.list("pre/fix/runs/r/e2")).await.unwrap(),
        ["pre/fix/runs/r/e2/s1/a"]
    );
    assert_eq!(
        bounded(whole.put_once("other", Bytes::from_static(b"o")))
            .await
            .unwrap(),
        Put::Created
    );
    assert_eq!(bounded(store.list("")).await.unwrap().len(), 7);

    // A location published for it opens the same store, for reading only: it carries the
    // read-only key, never the write key.
    let location = server.config("pre/fix").to_location().unwrap();
    assert!(location.contains(&server.read_secret), "{location}");
    assert!(!location.contains(&server.secret_key), "{location}");
    let reader = Store::open_peer(
        &StoreConfig::from_location(&location).unwrap(),
        Reach::Local,
    )
    .unwrap();
    assert_eq!(
        bounded(reader.get("runs/r/e1/s0/HOTKEY/act/42", 100))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"first body"[..])
    );
    assert_eq!(bounded(reader.list("runs/r/e2")).await.unwrap().len(), 1);
    // A stranger holding the location cannot pre-create this store's keys.
    match bounded(reader.put_once("runs/r/e9/squat", Bytes::from_static(b"x"))).await {
        Err(StorageError::Backend { .. }) => {}
        other => panic!("the read-only key wrote: {other:?}"),
    }
    assert!(!bounded(store.exists("runs/r/e9/squat")).await.unwrap());

    // A wrong secret is an error, not an absent object, and is not retried.
    let mut wrong = server.config("pre/fix");
    wrong.secret_access_key = Some("wrong".into());
    let wrong = Store::open(&wrong).unwrap();
    match bounded(wrong.get("runs/r/e1/s0/HOTKEY/act/42", 100)).await {
        Err(e @ StorageError::Backend { .. }) => {
            assert!(!format!("{e} {e:?}").contains(&server.secret_key), "{e}")
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(wrong.stats().retries, 0);
}

#[tokio::test]
async fn s3_transient_failures_are_retried_a_bounded_number_of_times() {
    // A port nothing listens on: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StoreConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("AK".into()),
        secret_access_key: Some("SK".into()),
        ..StoreConfig::from_location("s3://bkt").unwrap()
    };
    let store = Store::open(&config).unwrap();
    let started = Instant::now();
    match bounded(store.put_once("a/b", Bytes::from_static(b"x"))).await {
        Err(e @ StorageError::Backend { .. }) => assert!(e.to_string().contains("a/b"), "{e}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(store.stats().retries, 3);
    assert_eq!(store.stats().puts, 0);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_links_round_trip_is_added_to_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        link: Link::new(LinkSpec {
            rtt: Duration::from_millis(50),
            ..LinkSpec::default()
        }),
        ..StoreConfig::filesystem(dir.path())
    };
    let store = Store::open(&config).unwrap();
    let started = Instant::now();
    bounded(store.put_once("k", Bytes::from_static(b"v")))
        .await
        .unwrap();
    bounded(store.get("k", 1)).await.unwrap();
    bounded(store.exists("k")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn locations_round_trip() {
    let s3 = StoreConfig {
        endpoint: Some("http://127.0.0.1:9000".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("WK".into()),
        secret_access_key: Some("WS".into()),
        read_access_key_id: Some("RK".into()),
        read_secret_access_key: Some("RS".into()),
        ..StoreConfig::at("s3://bkt/pre")
    };
    let location = s3.to_location().unwrap();
    assert_eq!(
        location,
        "s3://bkt/pre?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1&key=RK&secret=RS"
    );
    // A reader of the location uses the read pair; the write pair never left.
    let read = StoreConfig::from_location(&location).unwrap();
    assert_eq!(read.access_key_id.as_deref(), Some("RK"));
    assert_eq!(read.secret_access_key.as_deref(), Some("RS"));
    assert_eq!(read.read_access_key_id, None);
    // Without a read pair (a public-read bucket) no key is published at all.
    let public_read = StoreConfig {
        read_access_key_id: None,
        read_secret_access_key: None,
        ..s3.clone()
    };
    assert!(!public_read.to_location().unwrap().contains("key="));

    let public = StoreConfig::from_location("s3://bkt").unwrap();
    assert_eq!(public.to_location().unwrap(), "s3://bkt");
    assert_eq!(public.endpoint, None);

    let fs = StoreConfig::filesystem("/srv/sliver store");
    let location = fs.to_location().unwrap();
    assert_eq!(location, "file:///srv/sliver%20store");
    assert_eq!(StoreConfig::from_location(&location).unwrap(), fs);
}

#[test]
fn bad_locations_and_configs_are_refused_clearly() {
    let err = |s: &str| StoreConfig::from_location(s).unwrap_err().to_string();
    assert!(err("s3://bkt?bucket=x").contains("unknown option `bucket`"));
    assert!(err("s3://bkt?region=a&region=b").contains("given twice"));
    assert!(err("s3://bkt?key=AK").contains("together"));
    assert!(err("gs://bkt").contains("unknown scheme `gs`"));
    assert!(err("file:///tmp/x?region=us-east-1").contains("only to an s3:// url"));
    assert!(err("s3://bkt?endpoint=http%3A%2F%2F10.0.0.1%3A9000").contains("plain http"));
    assert!(err("s3://Bad_Bucket").contains("bucket name"));
    assert!(err("").contains("empty"));
    // The secret is not echoed in an error about the location.
    assert!(!err("s3://bkt?secret=TOPSECRET&nope=1").contains("TOPSECRET"));

    let long = StoreConfig {
        read_secret_access_key: Some("S".repeat(300)),
        read_access_key_id: Some("AK".into()),
        ..StoreConfig::from_location("s3://bkt").unwrap()
    };
    let e = long.to_location().unwrap_err().to_string();
    assert!(e.contains("300") && !e.contains("SSSS"), "{e}");

    let relative = StoreConfig {
        url: "relative/dir".into(),
        ..StoreConfig::filesystem("/x")
    };
    assert!(relative.to_location().is_err());
    assert!(matches!(
        Store::open(
            &StoreConfig::from_location("s3://bkt")
                .map(|c| StoreConfig {
                    url: "ftp://host/x".into(),
                    ..c
                })
                .unwrap()
        ),
        Err(StorageError::UnknownScheme { .. })
    ));
}

#[test]
fn the_secret_is_never_printed() {
    let config = StoreConfig {
        endpoint: Some("http://127.0.0.1:9000".into()),
        access_key_id: Some("AK".into()),
        secret_access_key: Some("TOPSECRET".into()),
        read_access_key_id: Some("RK".into()),
        read_secret_access_key: Some("READSECRET".into()),
        ..StoreConfig::at("s3://bkt/pre")
    };
    let debug = format!("{config:?}");
    let display = config.to_string();
    assert!(
        !debug.contains("TOPSECRET")
            && !debug.contains("READSECRET")
            && debug.contains("[redacted]"),
        "{debug}"
    );
    assert_eq!(display, "s3://bkt/pre (endpoint http://127.0.0.1:9000)");
    let store = Store::open(&config).unwrap();
    assert!(!format!("{store:?}").contains("TOPSECRET"));
}

#[test]
fn the_write_key_is_never_published_as_the_read_key() {
    let config = StoreConfig {
        access_key_id: Some("WK".into()),
        secret_access_key: Some("WS".into()),
        read_access_key_id: Some("WK".into()),
        read_secret_access_key: Some("WS".into()),
        ..StoreConfig::at("s3://bkt")
    };
    let e = config.to_location().unwrap_err().to_string();
    assert!(e.contains("write key") && !e.contains("WS"), "{e}");
}

#[tokio::test]
async fn a_published_location_must_read_and_must_not_write() {
    let server = S3Server::spawn("sliver-test");
    let config = server.config("p");
    let store = Store::open(&config).unwrap();
    // The read-only pair: reads, cannot write.
    let location = config.to_location().unwrap();
    bounded(store.verify_published(&location, Reach::Local, "probes/me/1"))
        .await
        .unwrap();
    // A location that carries the write pair (what `to_location` refuses to produce, written by
    // hand) is caught by the probe, and the probe does not stay behind.
    let writable = format!(
        "s3://{}/p?endpoint={}&key={}&secret={}",
        server.bucket,
        url_encode(&server.endpoint),
        server.access_key,
        server.secret_key
    );
    let e = bounded(store.verify_published(&writable, Reach::Local, "probes/me/2"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("can write"), "{e}");
    assert!(!e.contains(&server.secret_key), "{e}");
    assert!(!bounded(store.exists("probes/me/2")).await.unwrap());
    // A location no peer could read: no key, and the bucket is not public.
    let unreadable = format!(
        "s3://{}/p?endpoint={}",
        server.bucket,
        url_encode(&server.endpoint)
    );
    let e = bounded(store.verify_published(&unreadable, Reach::Local, "probes/me/3"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("could not read"), "{e}");
    // The same location to strangers: a loopback endpoint is refused before any request.
    let e = bounded(store.verify_published(&location, Reach::Public, "probes/me/4"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("https") || e.contains("public address"), "{e}");

    // A public-read bucket publishes no key: anyone reads, no one writes.
    let public = S3Server::spawn_public_read("sliver-test");
    let config = StoreConfig {
        access_key_id: Some(public.access_key.clone()),
        secret_access_key: Some(public.secret_key.clone()),
        ..public.bare("p")
    };
    let store = Store::open(&config).unwrap();
    let location = config.to_location().unwrap();
    assert!(!location.contains("key="), "{location}");
    bounded(store.verify_published(&location, Reach::Local, "probes/me/5"))
        .await
        .unwrap();
}

fn url_encode(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

/// A store that answers every request with a redirect to the real one: a reader that followed
/// it would read the object; a peer's reader must not.
#[tokio::test]
async fn a_peers_store_that_redirects_is_not_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = S3Server::spawn_public_read("sliver-test");
    let owner = Store::open(&server.config("")).unwrap();
    bounded(owner.put_once("k", Bytes::from_static(b"v")))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = format!("{}/{}/k", server.endpoint, server.bucket);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let location = format!(
        "s3://{}?endpoint={}",
        server.bucket,
        url_encode(&format!("http://{addr}"))
    );
    let reader = Store::open_peer(
        &StoreConfig::from_location(&location).unwrap(),
        Reach::Local,
    )
    .unwrap();
    assert!(bounded(reader.get("k", 10)).await.is_err());
}
