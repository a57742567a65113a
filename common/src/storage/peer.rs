//! Reading a stranger's store: what a location published on chain may point at.
//!
//! A location is untrusted input. Outside a local subnet ([`Reach::Public`]) a peer's store must
//! be an `s3://` url whose endpoint is reached over https at a public address:
//!
//! - no filesystem location (a path on the reader's own machine);
//! - no loopback, private, link-local, shared (CGNAT), multicast, documentation or reserved
//!   address, whether written as an IP or resolved from a name: names are resolved by
//!   [`PublicOnly`] when the connection is made, so a name cannot resolve to a public address
//!   when checked and a private one when used;
//! - no redirects: an answer that redirects is a failed request, never a second one to
//!   wherever it points.
//!
//! [`Reach::Local`] is the local subnet on one machine (`btsubnet`, the tests): filesystem
//! locations and loopback or private endpoints are what it runs on. It is an explicit flag
//! (`--storage.allow_local`), never inferred.

use object_store::ClientOptions;
use object_store::client::{HttpClient, HttpConnector};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::{StorageError, StoreConfig, Target, Timeouts};

/// Which peers' locations a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// Strangers on the internet: `s3://` at public https endpoints only.
    #[default]
    Public,
    /// A local subnet: filesystem locations and loopback or private endpoints too.
    Local,
}

/// Checks what can be checked of `config` before a request: its kind, and an endpoint written
/// as an IP address.
///
/// # Errors
/// [`StorageError::InvalidLocation`] naming the url and what `reach` refuses.
pub(super) fn check(config: &StoreConfig, reach: Reach) -> Result<(), StorageError> {
    let target = config.validate()?;
    if reach == Reach::Local {
        return Ok(());
    }
    let refuse = |reason: String| {
        Err(StorageError::InvalidLocation {
            location: config.to_string(),
            reason,
        })
    };
    if let Target::Fs(_) = target {
        return refuse(
            "a filesystem location names a directory on the reader's own machine; only a local \
             subnet (--storage.allow_local) reads one"
                .into(),
        );
    }
    let Some(endpoint) = &config.endpoint else {
        // AWS itself.
        return Ok(());
    };
    let parsed = url::Url::parse(endpoint).map_err(|e| StorageError::InvalidEndpoint {
        endpoint: endpoint.clone(),
        reason: e.to_string(),
    })?;
    if parsed.scheme() != "https" {
        return refuse(format!(
            "a peer's endpoint must be https, not {}",
            parsed.scheme()
        ));
    }
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        _ => None,
    };
    if let Some(ip) = ip
        && !is_public(ip)
    {
        return refuse(format!(
            "its endpoint is at {ip}, which is not a public address"
        ));
    }
    Ok(())
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared,
/// multicast, documentation, benchmarking, reserved or unspecified (IPv4-mapped IPv6 addresses
/// are judged as the IPv4 address they carry).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10: shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24: protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15: benchmarking.
        || (a == 198 && (18..20).contains(&b))
        // 240.0.0.0/4: reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7: unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10: link-local.
        || (first & 0xffc0) == 0xfe80
        // 2001:db8::/32: documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // 64:ff9b:1::/48: local-use NAT64.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1))
}

/// Resolves names with the system resolver and keeps only public addresses (all of them in
/// [`Reach::Local`]); a name with none left fails to resolve.
#[derive(Debug, Clone, Copy)]
struct PublicOnly(Reach);

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| reach == Reach::Local || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client a peer's store is read with: no redirects, public addresses only (outside
/// [`Reach::Local`]), https only unless local, no transparent decompression (object sizes are
/// checked against `Content-Length`), connecting and answering within the store's
/// [`Timeouts`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Connector(Reach, Timeouts);

impl Connector {
    pub(super) fn new(reach: Reach) -> Self {
        Self(reach, Timeouts::default())
    }

    /// This connector with `timeouts` (a peer's store's, [`StoreConfig::timeouts`]).
    pub(super) fn with(self, timeouts: Timeouts) -> Self {
        Self(self.0, timeouts)
    }
}

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicOnly(self.0)))
            .https_only(self.0 == Reach::Public)
            .timeout(self.1.request)
            .connect_timeout(self.1.connect)
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn strangers_locations_are_public_s3_only() {
        let ok = |loc: &str| check(&StoreConfig::from_location(loc).unwrap(), Reach::Public);
        assert!(ok("s3://bkt/pre").is_ok());
        assert!(ok("s3://bkt?endpoint=https%3A%2F%2Fs3.example.com").is_ok());
        for refused in [
            "/tmp/store",
            "file:///tmp/store",
            "s3://bkt?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
            "s3://bkt?endpoint=https%3A%2F%2F127.0.0.1%3A9000",
            "s3://bkt?endpoint=https%3A%2F%2F169.254.169.254",
            "s3://bkt?endpoint=https%3A%2F%2F%5B%3A%3A1%5D",
            "s3://bkt?endpoint=https%3A%2F%2Flocalhost",
        ] {
            let e = ok(refused).unwrap_err();
            assert!(
                matches!(e, StorageError::InvalidLocation { .. }),
                "{refused}: {e}"
            );
        }
        // A local subnet reads all of them.
        for local in [
            "/tmp/store",
            "s3://bkt?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
        ] {
            let config = StoreConfig::from_location(local).unwrap();
            assert!(check(&config, Reach::Local).is_ok(), "{local}");
        }
    }
}
