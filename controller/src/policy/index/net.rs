//! Client networks as policies write them: CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses,
//! with exceptions.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network, kept in canonical form (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// A network that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {0:?}: expected an address or a CIDR such as 10.0.0.0/8")]
pub struct InvalidNet(pub String);

impl Net {
    pub const ALL_V4: Net = Net {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix: 0,
    };
    pub const ALL_V6: Net = Net {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        prefix: 0,
    };

    /// The network of `addr` with `prefix` bits, or `None` if the prefix is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Net> {
        let addr = match addr {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
            _ => return None,
        };
        Some(Net { addr, prefix })
    }

    pub fn addr(self) -> IpAddr {
        self.addr
    }

    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Reads a comma-separated list, as `--cluster-networks` takes it; blanks are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<Net>, InvalidNet> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromStr for Net {
    type Err = InvalidNet;

    fn from_str(text: &str) -> Result<Net, InvalidNet> {
        let invalid = || InvalidNet(text.to_string());
        let text = text.trim();
        match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
                let prefix: u8 = prefix
                    .parse()
                    .ok()
                    .filter(|_| prefix.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(invalid)?;
                Net::new(addr, prefix).ok_or_else(invalid)
            }
            None => {
                let addr: IpAddr = text.parse().map_err(|_| invalid())?;
                let prefix = if addr.is_ipv4() { 32 } else { 128 };
                Net::new(addr, prefix).ok_or_else(invalid)
            }
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A network of clients, minus some of its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkMatch {
    pub net: Net,
    pub except: Vec<Net>,
}

impl NetworkMatch {
    /// Every IPv4 and IPv6 client.
    pub fn everywhere() -> Vec<NetworkMatch> {
        vec![Net::ALL_V4.into(), Net::ALL_V6.into()]
    }
}

impl From<Net> for NetworkMatch {
    fn from(net: Net) -> NetworkMatch {
        NetworkMatch {
            net,
            except: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_are_canonical() {
        let net: Net = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!(
            "192.168.0.7".parse::<Net>().unwrap().to_string(),
            "192.168.0.7/32"
        );
        assert_eq!("fd00::1/8".parse::<Net>().unwrap().to_string(), "fd00::/8");
        assert_eq!("::/0".parse::<Net>().unwrap(), Net::ALL_V6);
        assert_eq!("0.0.0.0/0".parse::<Net>().unwrap(), Net::ALL_V4);
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "fd00::/129",
            "x",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
        assert_eq!(Net::parse_list(" 10.0.0.0/8, ,fd00::/8").unwrap().len(), 2);
    }
}
