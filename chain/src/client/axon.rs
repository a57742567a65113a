//! Axons: the network address a neuron serves on, as `serve_axon` publishes it and the
//! `Axons` storage holds it (IP as a `u128` with an `ip_type` of 4 or 6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ids::BlockNumber;

/// Bittensor's default axon protocol number (`4`, as bittensor's `serve_axon` sends).
pub const DEFAULT_PROTOCOL: u8 = 4;

/// What a neuron publishes with `serve_axon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axon {
    /// Where the neuron can be reached.
    pub addr: SocketAddr,
    /// The software version it announces.
    pub version: u32,
    /// The protocol number (bittensor uses [`DEFAULT_PROTOCOL`]).
    pub protocol: u8,
}

impl Axon {
    /// An axon at `addr` with `version` and the default protocol.
    pub fn new(addr: SocketAddr, version: u32) -> Axon {
        Axon {
            addr,
            version,
            protocol: DEFAULT_PROTOCOL,
        }
    }
}

/// An axon as stored on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxonInfo {
    /// The address, if the stored IP type and value make one (`None` for a never-served or
    /// malformed entry).
    pub addr: Option<SocketAddr>,
    /// The announced version.
    pub version: u32,
    /// The protocol number.
    pub protocol: u8,
    /// The block it was served at.
    pub block: BlockNumber,
}

/// The chain's `(ip, ip_type)` for an address.
pub(crate) fn ip_to_chain(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 4),
        IpAddr::V6(v6) => (u128::from(v6), 6),
    }
}

/// The address of a stored `(ip, ip_type, port)`; `None` if the type is unknown or an IPv4
/// value does not fit 32 bits.
pub(crate) fn ip_from_chain(ip: u128, ip_type: u8, port: u16) -> Option<SocketAddr> {
    let ip = match ip_type {
        4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(ip).ok()?)),
        6 => IpAddr::V6(Ipv6Addr::from(ip)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_round_trip_through_the_chain_encoding() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(ip_to_chain(v4), (0xCB00_7107, 4));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let (ip, ty) = ip_to_chain(v6);
        assert_eq!(ty, 6);
        assert_eq!(ip_from_chain(ip, ty, 8091), Some(SocketAddr::new(v6, 8091)));
        assert_eq!(
            ip_from_chain(0xCB00_7107, 4, 1),
            Some(SocketAddr::new(v4, 1))
        );
        assert_eq!(ip_from_chain(u128::MAX, 4, 1), None);
        assert_eq!(ip_from_chain(1, 0, 1), None);
    }
}
