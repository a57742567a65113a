//! A hostile storage server: an HTTP/1.1 server on 127.0.0.1 that answers every request with one
//! chosen [`Behaviour`], whatever was asked. Point a store at it (`s3://` with this server as
//! the endpoint, [`HostileServer::config`]) to see that what a stranger's store answers costs
//! only that stranger.
//!
//! Written on plain `tokio::net::TcpListener` with hand-written responses (no server framework),
//! so that it can misbehave at the byte level: send headers and then trickle the body forever,
//! or answer each connection differently. Every response closes its connection
//! (`Connection: close`), so each request a client makes arrives on a connection of its own
//! and [`Behaviour::PerReader`] sees each as a new reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::storage::StoreConfig;

/// The bytes [`Behaviour::PerReader`] answers: given the connection's number (0 for the first)
/// and the request's target (path and query), the body of a `200 OK`.
pub type Answer = dyn Fn(u64, &str) -> Vec<u8> + Send + Sync;

/// How the server answers every request.
#[derive(Clone)]
pub enum Behaviour {
    /// `403 Forbidden` with an S3 XML error body (`AccessDenied`).
    Deny,
    /// `200 OK` headers at once, then the body a byte at a time, forever (a `Content-Length` it
    /// never reaches).
    Slow,
    /// Accepts the connection, reads the request, and never answers: a store that hangs.
    Silent,
    /// `200 OK` with the bytes `answer` gives for this connection: a different answer for
    /// each reader.
    PerReader(Arc<Answer>),
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behaviour::Deny => "Deny",
            Behaviour::Slow => "Slow",
            Behaviour::Silent => "Silent",
            Behaviour::PerReader(_) => "PerReader",
        })
    }
}

/// The S3 error body of [`Behaviour::Deny`].
const ACCESS_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>AccessDenied</Code><Message>Access Denied</Message>\
<RequestId>hostile</RequestId><HostId>hostile</HostId></Error>";

/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 64 * 1024;

/// How often [`Behaviour::Slow`] sends its next byte.
const TRICKLE: Duration = Duration::from_millis(200);

/// A hostile server on 127.0.0.1; stopped on drop.
pub struct HostileServer {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Connections accepted so far.
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    /// Starts a server answering every request with `behaviour`, on the current tokio runtime.
    ///
    /// # Panics
    /// When the listening socket cannot be bound (a fixture failure).
    pub async fn spawn(behaviour: Behaviour) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listener's address");
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, n, &behaviour).await;
                });
            }
        });
        HostileServer {
            endpoint: format!("http://{addr}"),
            connections,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// An `s3://` config for `bucket` at this server, unsigned (as a public-read bucket is read).
    pub fn config(&self, bucket: &str) -> StoreConfig {
        StoreConfig {
            endpoint: Some(self.endpoint.clone()),
            ..StoreConfig::at(format!("s3://{bucket}"))
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request's head and answers it as `behaviour` says.
async fn serve(mut socket: TcpStream, n: u64, behaviour: &Behaviour) -> std::io::Result<()> {
    let target = read_target(&mut socket).await?;
    match behaviour {
        Behaviour::Deny => {
            respond(
                &mut socket,
                "403 Forbidden",
                "application/xml",
                ACCESS_DENIED.as_bytes(),
            )
            .await
        }
        Behaviour::Slow => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\
                        Content-Length: 1048576\r\nConnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(b"<").await?;
            loop {
                tokio::time::sleep(TRICKLE).await;
                socket.write_all(b" ").await?;
                socket.flush().await?;
            }
        }
        Behaviour::Silent => std::future::pending().await,
        Behaviour::PerReader(answer) => {
            let body = answer(n, &target);
            respond(&mut socket, "200 OK", "application/octet-stream", &body).await
        }
    }
}

/// Reads the request head (up to the blank line) and returns its target; a body, if any, is
/// not read (the answer does not depend on it, and the connection closes after it).
async fn read_target(socket: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    Ok(line.split_whitespace().nth(1).unwrap_or("/").to_owned())
}

async fn respond(
    socket: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body).await?;
    socket.flush().await?;
    socket.shutdown().await
}

/// An S3 `ListObjectsV2` answer naming `keys` (each 1 byte, one page): what a
/// [`Behaviour::PerReader`] can give a listing.
pub fn list_answer(keys: &[String]) -> Vec<u8> {
    let contents: String = keys
        .iter()
        .map(|k| {
            format!(
                "<Contents><Key>{k}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
                 <ETag>\"0\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>hostile</Name><Prefix></Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>\
         <IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        keys.len()
    )
    .into_bytes()
}
