//! IP addresses: keep, truncate or drop, per source policy. Raw IPs are never logged.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What to store of the client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpPolicy {
    /// IPv4 to /24, IPv6 to /48 (the default: enough for coarse geo, not a person).
    #[default]
    Truncate,
    /// The full address.
    Keep,
    /// Nothing.
    Drop,
}

/// IPv4 to its /24 network, IPv6 to its /48.
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

/// The address to store under `policy`, if any.
pub fn apply(ip: Option<IpAddr>, policy: IpPolicy) -> Option<IpAddr> {
    match policy {
        IpPolicy::Keep => ip,
        IpPolicy::Truncate => ip.map(truncate),
        IpPolicy::Drop => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_v4_to_24_and_v6_to_48() {
        assert_eq!(
            truncate("203.0.113.77".parse().unwrap()),
            "203.0.113.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            truncate("2001:db8:abcd:12:34:56:78:9a".parse().unwrap()),
            "2001:db8:abcd::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn policies() {
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(apply(Some(ip), IpPolicy::Keep), Some(ip));
        assert_eq!(
            apply(Some(ip), IpPolicy::Truncate),
            Some("198.51.100.0".parse().unwrap())
        );
        assert_eq!(apply(Some(ip), IpPolicy::Drop), None);
        assert_eq!(apply(None, IpPolicy::Keep), None);
    }
}
