//! The artifact store against both backends: a directory, and a real S3 server (`s3s-fs` on
//! 127.0.0.1, installed by `scripts/setup.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed setup step should stop the test with its message"
)]

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sliver_common::storage::{Put, StorageError, Store, StoreConfig, StoreStats};
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

    // Write once: the second put reports the key exists and changes nothing.
    assert_eq!(
        bounded(store.put_once(key, body.clone())).await.unwrap(),
        Put::Created
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

    // Counters: 7 creates (the Exists is not counted), 5 gets that found something.
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
            gets: 4,
            bytes_got: 3 * len,
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

    // A location published for it opens the same store.
    let location = server.config("pre/fix").to_location().unwrap();
    let reader = Store::open(&StoreConfig::from_location(&location).unwrap()).unwrap();
    assert_eq!(
        bounded(reader.get("runs/r/e1/s0/HOTKEY/act/42", 100))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"first body"[..])
    );

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
async fn latency_is_added_to_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        latency: Duration::from_millis(50),
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
        url: "s3://bkt/pre".into(),
        endpoint: Some("http://127.0.0.1:9000".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("AK".into()),
        secret_access_key: Some("SK".into()),
        latency: Duration::ZERO,
    };
    let location = s3.to_location().unwrap();
    assert_eq!(
        location,
        "s3://bkt/pre?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1&key=AK&secret=SK"
    );
    assert_eq!(StoreConfig::from_location(&location).unwrap(), s3);

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
        secret_access_key: Some("S".repeat(300)),
        access_key_id: Some("AK".into()),
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
        url: "s3://bkt/pre".into(),
        endpoint: Some("http://127.0.0.1:9000".into()),
        region: None,
        access_key_id: Some("AK".into()),
        secret_access_key: Some("TOPSECRET".into()),
        latency: Duration::ZERO,
    };
    let debug = format!("{config:?}");
    let display = config.to_string();
    assert!(
        !debug.contains("TOPSECRET") && debug.contains("[redacted]"),
        "{debug}"
    );
    assert_eq!(display, "s3://bkt/pre (endpoint http://127.0.0.1:9000)");
    let store = Store::open(&config).unwrap();
    assert!(!format!("{store:?}").contains("TOPSECRET"));
}
