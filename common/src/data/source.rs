//! Where the bytes come from: a `data.sources` entry is a local file, a local directory (walked
//! recursively, in sorted path order) or an object_store URL (an object, or a prefix listed in
//! sorted order). Inside directories and prefixes, hidden files are skipped and, under
//! `format = "auto"`, so are files whose extension names no known format.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::debug;
use url::Url;

use super::document::RawFile;
use super::{Error, Format};

/// One file a source names, not yet read.
#[derive(Clone)]
pub(crate) struct FileRef {
    /// The path or URL, for errors and logs.
    pub(crate) location: String,
    /// A concrete format (never `Auto`).
    pub(crate) format: Format,
    at: At,
}

#[derive(Clone)]
enum At {
    Local(PathBuf),
    Store(Arc<dyn ObjectStore>, object_store::path::Path),
}

impl FileRef {
    /// Reads the whole file.
    pub(crate) async fn read(&self) -> Result<RawFile, Error> {
        let bytes = match &self.at {
            At::Local(path) => {
                let (path, location) = (path.clone(), self.location.clone());
                tokio::task::spawn_blocking(move || {
                    std::fs::read(&path).map_err(|e| io_error(&location, e))
                })
                .await??
                .into()
            }
            At::Store(store, path) => get(store.as_ref(), path, &self.location).await?,
        };
        Ok(RawFile {
            location: self.location.clone(),
            format: self.format,
            bytes,
        })
    }
}

/// Reads every file that `source` names. Never returns an empty list.
pub(crate) async fn read(source: &str, format: Format) -> Result<Vec<RawFile>, Error> {
    let mut files = Vec::new();
    for file in list(source, format).await? {
        files.push(file.read().await?);
    }
    Ok(files)
}

/// The files that `source` names, in order, without reading them: a writer reads them one at a
/// time. Never returns an empty list.
pub(crate) async fn list(source: &str, format: Format) -> Result<Vec<FileRef>, Error> {
    if source.contains("://") {
        let url = Url::parse(source).map_err(|e| Error::InvalidUrl {
            url: source.to_owned(),
            source: e,
        })?;
        // Training text is read from files and `file://`/`memory://` URLs. Cloud schemes are
        // refused here: `parse_url` would build a client from ambient credentials and probe the
        // cloud metadata endpoint, a network call nobody asked for. Reading text over S3 would go
        // through `storage::StoreConfig` with explicit endpoint and keys.
        if !matches!(url.scheme(), "file" | "memory") {
            return Err(Error::UnsupportedScheme {
                location: source.to_owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        let (store, prefix) = object_store::parse_url(&url).map_err(|e| match e {
            // A scheme whose backend is not compiled in.
            object_store::Error::Generic {
                store: "parse_url", ..
            } => Error::UnsupportedScheme {
                location: source.to_owned(),
                scheme: url.scheme().to_owned(),
            },
            other => store_error(source, other),
        })?;
        let base = match url.host_str() {
            Some(host) => format!("{}://{host}/", url.scheme()),
            None => format!("{}:///", url.scheme()),
        };
        list_store(Arc::from(store), &prefix, source, &base, format).await
    } else {
        let path = expand_home(source);
        tokio::task::spawn_blocking(move || list_local(&path, format)).await?
    }
}

/// A local path, with a leading `~/` meaning the user's home directory (as in a shell),
/// so run specs can name the shared cache the same way on every machine.
fn expand_home(source: &str) -> PathBuf {
    match (source.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(source),
    }
}

/// The object at `prefix`, or every object under it. `label` names the source in errors;
/// `base` + an object's path names the object.
async fn list_store(
    store: Arc<dyn ObjectStore>,
    prefix: &object_store::path::Path,
    label: &str,
    base: &str,
    format: Format,
) -> Result<Vec<FileRef>, Error> {
    let head_err = match store.head(prefix).await {
        Ok(meta) => {
            let location = format!("{base}{}", meta.location);
            let format =
                format
                    .resolve(meta.location.as_ref())
                    .ok_or_else(|| Error::UnknownFormat {
                        location: location.clone(),
                    })?;
            return Ok(vec![FileRef {
                location,
                format,
                at: At::Store(store, meta.location),
            }]);
        }
        Err(e) => e,
    };
    // Not an object: a prefix ("directory").
    let mut objects: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| store_error(label, e))?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    if objects.is_empty() {
        return Err(match head_err {
            object_store::Error::NotFound { .. } => Error::NotFound {
                location: label.to_owned(),
            },
            other => store_error(label, other),
        });
    }
    let mut files = Vec::new();
    for meta in objects {
        let location = format!("{base}{}", meta.location);
        let Some(format) = pick(&location, meta.location.filename().unwrap_or(""), format) else {
            continue;
        };
        files.push(FileRef {
            location,
            format,
            at: At::Store(store.clone(), meta.location),
        });
    }
    if files.is_empty() {
        return Err(Error::NoText {
            location: label.to_owned(),
        });
    }
    Ok(files)
}

async fn get(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
    location: &str,
) -> Result<Bytes, Error> {
    let result = store
        .get(path)
        .await
        .map_err(|e| store_error(location, e))?;
    result.bytes().await.map_err(|e| store_error(location, e))
}

fn store_error(location: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            location: location.to_owned(),
        },
        source => Error::Store {
            location: location.to_owned(),
            source,
        },
    }
}

/// The format of a file found inside a directory or prefix; `None` skips it.
fn pick(location: &str, file_name: &str, format: Format) -> Option<Format> {
    if file_name.starts_with('.') {
        debug!(location, "skipping hidden file");
        return None;
    }
    let found = format.resolve(file_name);
    if found.is_none() {
        debug!(location, "skipping file of unknown format");
    }
    found
}

fn list_local(path: &Path, format: Format) -> Result<Vec<FileRef>, Error> {
    let location = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io_error(&location, e))?;
    if !meta.is_dir() {
        let format = format
            .resolve(&location)
            .ok_or_else(|| Error::UnknownFormat {
                location: location.clone(),
            })?;
        return Ok(vec![FileRef {
            location,
            format,
            at: At::Local(path.to_path_buf()),
        }]);
    }
    let mut paths = Vec::new();
    walk(path, &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for p in paths {
        let file_location = p.display().to_string();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(format) = pick(&file_location, name, format) else {
            continue;
        };
        files.push(FileRef {
            location: file_location,
            format,
            at: At::Local(p),
        });
    }
    if files.is_empty() {
        return Err(Error::NoText { location });
    }
    Ok(files)
}

/// Every file under `dir`, skipping hidden directories. Symlinks are followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(&dir.display().to_string(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(&dir.display().to_string(), e))?;
        let path = entry.path();
        let meta =
            std::fs::metadata(&path).map_err(|e| io_error(&path.display().to_string(), e))?;
        if meta.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                walk(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn io_error(location: &str, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound {
            location: location.to_owned(),
        }
    } else {
        Error::Io {
            location: location.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use object_store::path::Path as StorePath;

    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn names(files: &[RawFile], root: &str) -> Vec<String> {
        files
            .iter()
            .map(|f| f.location.strip_prefix(root).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn home_is_expanded_only_at_the_start() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_home("~/a/b"), PathBuf::from(home).join("a/b"));
        assert_eq!(expand_home("a/~/b"), PathBuf::from("a/~/b"));
        assert_eq!(expand_home("/x"), PathBuf::from("/x"));
    }

    #[tokio::test]
    async fn directories_recurse_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.txt", "b");
        write(dir.path(), "a/z.md", "az");
        write(dir.path(), "a/y.jsonl", "{\"text\": \"ay\"}");
        write(dir.path(), "README", "skipped: unknown extension");
        write(dir.path(), ".hidden.txt", "skipped: hidden");
        write(dir.path(), ".git/c.txt", "skipped: hidden dir");
        let root = dir.path().display().to_string();
        let files = read(&root, Format::Auto).await.unwrap();
        assert_eq!(
            names(&files, &root),
            vec!["/a/y.jsonl", "/a/z.md", "/b.txt"]
        );
        assert_eq!(files[0].format, Format::Jsonl);
        assert_eq!(files[1].format, Format::Text);
        // An explicit format takes every visible file.
        let files = read(&root, Format::Text).await.unwrap();
        assert_eq!(
            names(&files, &root),
            vec!["/README", "/a/y.jsonl", "/a/z.md", "/b.txt"]
        );
    }

    #[tokio::test]
    async fn local_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").display().to_string();
        let err = read(&missing, Format::Auto).await.unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), format!("data source {missing} not found"));

        write(dir.path(), "data.csv", "a,b");
        let csv = dir.path().join("data.csv").display().to_string();
        let err = read(&csv, Format::Auto).await.unwrap_err();
        assert!(
            err.to_string().contains(&csv) && err.to_string().contains("data.format"),
            "{err}"
        );
        let err = read(&dir.path().display().to_string(), Format::Auto)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoText { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn file_urls_read_objects_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "corpus/one.txt", "one");
        write(dir.path(), "corpus/sub/two.txt", "two");
        let url = Url::from_directory_path(dir.path().join("corpus"))
            .unwrap()
            .to_string();
        let files = read(url.trim_end_matches('/'), Format::Auto).await.unwrap();
        let bodies: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_ref()).collect();
        assert_eq!(bodies, vec![b"one".as_slice(), b"two"]);
        assert!(
            files[0].location.starts_with("file:///")
                && files[0].location.ends_with("corpus/one.txt")
        );

        let one = Url::from_file_path(dir.path().join("corpus/one.txt"))
            .unwrap()
            .to_string();
        let files = read(&one, Format::Auto).await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].location, one);

        let err = read(&format!("{url}missing"), Format::Auto)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let err = read("memory:///nothing/here", Format::Auto)
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let err = read("s3://bucket/corpus", Format::Auto).await.unwrap_err();
        assert!(matches!(err, Error::UnsupportedScheme { .. }), "{err:?}");
        assert!(err.to_string().contains("s3://bucket/corpus"), "{err}");
        let err = read("not a url://x", Format::Auto).await.unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn in_memory_store_prefix() {
        let store = InMemory::new();
        for (key, body) in [
            ("runs/data/b.jsonl", "{\"text\": \"b\"}"),
            ("runs/data/a.txt", "a"),
            ("runs/other.txt", "x"),
        ] {
            store
                .put(
                    &StorePath::from(key),
                    PutPayload::from(body.as_bytes().to_vec()),
                )
                .await
                .unwrap();
        }
        let files = list_store(
            Arc::new(store),
            &StorePath::from("runs/data"),
            "memory:///runs/data",
            "memory:///",
            Format::Auto,
        )
        .await
        .unwrap();
        let files = [
            files[0].read().await.unwrap(),
            files[1].read().await.unwrap(),
        ];
        let locations: Vec<&str> = files.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(
            locations,
            vec!["memory:///runs/data/a.txt", "memory:///runs/data/b.jsonl"]
        );
        assert_eq!(files[1].format, Format::Jsonl);
    }
}
