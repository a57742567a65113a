//! Which chain to talk to: bittensor's `--subtensor.network` and `--subtensor.chain_endpoint`.
//!
//! As in bittensor, `--subtensor.network` is a known name (`finney`, `test`, `archive`, `local`)
//! or itself a WebSocket URL, and `--subtensor.chain_endpoint`, when given, is the URL used
//! whatever the network says. A URL given without a name is recognised as finney, test or local
//! when it is one of their well-known endpoints.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// Bittensor's mainnet entry point.
pub const FINNEY_ENDPOINT: &str = "wss://entrypoint-finney.opentensor.ai:443";
/// Bittensor's public testnet.
pub const TEST_ENDPOINT: &str = "wss://test.finney.opentensor.ai:443";
/// Opentensor's mainnet archive node (full history).
pub const ARCHIVE_ENDPOINT: &str = "wss://archive.chain.opentensor.ai:443";
/// A local node or `btlocalnet` on its default port.
pub const LOCAL_ENDPOINT: &str = "ws://127.0.0.1:9944";

/// The network a client is connected to, as bittensor names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Network {
    /// Mainnet.
    Finney,
    /// The public testnet.
    Test,
    /// Mainnet through an archive node.
    Archive,
    /// A chain on this machine (`btlocalnet` or a local subtensor node).
    Local,
    /// Any other endpoint.
    Custom,
}

impl Network {
    /// The name bittensor uses (`"finney"`, `"test"`, `"archive"`, `"local"`, `"custom"`).
    pub fn name(self) -> &'static str {
        match self {
            Network::Finney => "finney",
            Network::Test => "test",
            Network::Archive => "archive",
            Network::Local => "local",
            Network::Custom => "custom",
        }
    }

    /// The default endpoint of a named network; `None` for [`Network::Custom`].
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Network::Finney => Some(FINNEY_ENDPOINT),
            Network::Test => Some(TEST_ENDPOINT),
            Network::Archive => Some(ARCHIVE_ENDPOINT),
            Network::Local => Some(LOCAL_ENDPOINT),
            Network::Custom => None,
        }
    }

    fn from_name(name: &str) -> Option<Network> {
        match name {
            "finney" => Some(Network::Finney),
            "test" => Some(Network::Test),
            "archive" => Some(Network::Archive),
            "local" => Some(Network::Local),
            _ => None,
        }
    }

    /// Which network a URL belongs to, as far as its host says.
    fn of_url(url: &str) -> Network {
        let host = host_of(url).unwrap_or_default();
        if host.contains("entrypoint-finney.opentensor.ai") || host.contains("finney.subtensor.io")
        {
            Network::Finney
        } else if host.contains("test.finney.opentensor.ai") {
            Network::Test
        } else if host.contains("archive.chain.opentensor.ai") {
            Network::Archive
        } else if is_loopback(&host) {
            Network::Local
        } else {
            Network::Custom
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network and the WebSocket URL to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    network: Network,
    url: String,
}

impl Endpoint {
    /// Resolves `--subtensor.network` and `--subtensor.chain_endpoint` as bittensor does: the
    /// endpoint, when given, is the URL; the network is a name or a URL; neither means finney.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`] for an unknown network name or a URL that is not `ws://` or
    /// `wss://` with a host.
    pub fn resolve(network: Option<&str>, chain_endpoint: Option<&str>) -> Result<Endpoint, Error> {
        let network = network.map(str::trim).filter(|s| !s.is_empty());
        let chain_endpoint = chain_endpoint.map(str::trim).filter(|s| !s.is_empty());
        let named = match network {
            Some(name) if !name.contains("://") => Some(Network::from_name(name).ok_or_else(
                || Error::InvalidEndpoint {
                    endpoint: name.to_owned(),
                    reason: "not a network name (finney, test, archive, local) or a ws:// or wss:// URL",
                },
            )?),
            _ => None,
        };
        let url = match (chain_endpoint, network) {
            (Some(url), _) => url.to_owned(),
            (None, Some(url)) if url.contains("://") => url.to_owned(),
            _ => named
                .unwrap_or(Network::Finney)
                .default_endpoint()
                .unwrap_or(FINNEY_ENDPOINT)
                .to_owned(),
        };
        check_url(&url)?;
        let network = named.unwrap_or_else(|| Network::of_url(&url));
        Ok(Endpoint { network, url })
    }

    /// The endpoint of a URL, its network recognised from the host.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`] if `url` is not `ws://` or `wss://` with a host.
    pub fn url(url: &str) -> Result<Endpoint, Error> {
        Endpoint::resolve(None, Some(url))
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The WebSocket URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Whether the connection would be unencrypted to another machine (`ws://` off loopback).
    pub fn is_insecure_remote(&self) -> bool {
        self.url.starts_with("ws://") && !is_loopback(&host_of(&self.url).unwrap_or_default())
    }
}

impl From<Network> for Endpoint {
    /// The default endpoint of a named network ([`Network::Custom`] falls back to finney's).
    fn from(network: Network) -> Self {
        let url = network
            .default_endpoint()
            .unwrap_or(FINNEY_ENDPOINT)
            .to_owned();
        Endpoint { network, url }
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// A network name or a URL, as `--subtensor.network` takes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::resolve(Some(s), None)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.network, self.url)
    }
}

fn check_url(url: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidEndpoint {
        endpoint: url.to_owned(),
        reason,
    };
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(invalid("the URL must start with ws:// or wss://"));
    }
    match host_of(url) {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(invalid("the URL has no host")),
    }
}

/// The host of `scheme://host[:port][/path]`, without brackets for IPv6.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    Some(host.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.starts_with("127.") || host == "::1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_bittensor_endpoints() {
        let e = Endpoint::resolve(Some("finney"), None).unwrap();
        assert_eq!(
            (e.network(), e.as_str()),
            (Network::Finney, FINNEY_ENDPOINT)
        );
        let e = Endpoint::resolve(Some("test"), None).unwrap();
        assert_eq!((e.network(), e.as_str()), (Network::Test, TEST_ENDPOINT));
        let e = Endpoint::resolve(Some("local"), None).unwrap();
        assert_eq!((e.network(), e.as_str()), (Network::Local, LOCAL_ENDPOINT));
        let e = Endpoint::resolve(None, None).unwrap();
        assert_eq!(e.network(), Network::Finney);
    }

    #[test]
    fn chain_endpoint_wins_and_urls_are_recognised() {
        let e = Endpoint::resolve(Some("local"), Some("ws://127.0.0.1:40001")).unwrap();
        assert_eq!(
            (e.network(), e.as_str()),
            (Network::Local, "ws://127.0.0.1:40001")
        );
        let e = Endpoint::resolve(Some(TEST_ENDPOINT), None).unwrap();
        assert_eq!(e.network(), Network::Test);
        let e = Endpoint::url("wss://node.example.org:443/rpc").unwrap();
        assert_eq!(e.network(), Network::Custom);
        assert!(!e.is_insecure_remote());
        assert!(
            Endpoint::url("ws://10.0.0.2:9944")
                .unwrap()
                .is_insecure_remote()
        );
        assert!(
            !Endpoint::url("ws://[::1]:9944")
                .unwrap()
                .is_insecure_remote()
        );
    }

    #[test]
    fn bad_input_names_the_problem() {
        let err = Endpoint::resolve(Some("mainnet"), None).unwrap_err();
        assert!(err.to_string().contains("mainnet"), "{err}");
        let err = Endpoint::url("http://127.0.0.1:9944").unwrap_err();
        assert!(err.to_string().contains("ws://"), "{err}");
        assert!(Endpoint::url("ws://").is_err());
    }
}
