//! Addresses as the guard counts them: networks in CIDR notation, and the key a source is
//! counted under (an IPv4 address, or the /64 an IPv6 address belongs to, since one host
//! commonly holds a whole /64).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A network: an address and a prefix length, as in `10.0.0.0/8` or `2001:db8::/32`. A bare
/// address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or a network like 10.0.0.0/8 or 2001:db8::/32")]
pub struct NetParseError(pub String);

impl IpNet {
    /// The network of `addr` with `prefix` bits; `None` for a prefix longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then(|| IpNet { addr: mask(canonical(addr), prefix), prefix })
    }

    /// True when `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl FromStr for IpNet {
    type Err = NetParseError;

    fn from_str(text: &str) -> Result<IpNet, NetParseError> {
        let error = || NetParseError(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| error())?;
        let mapped = addr.is_ipv6() && canonical(addr).is_ipv4();
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| error())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
        let prefix = match mapped {
            true => prefix.checked_sub(96).filter(|_| prefix <= 128).ok_or_else(error)?,
            false => prefix,
        };
        IpNet::new(addr, prefix).ok_or_else(error)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a source is limited and banned under: the IPv4 address, or the IPv6 /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => mask(IpAddr::V6(v6), 64),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4((bits & keep).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert_eq!("10.1.2.3/8".parse::<IpNet>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("::ffff:10.0.0.0/104".parse::<IpNet>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("::ffff:10.0.0.7".parse::<IpNet>().unwrap().to_string(), "10.0.0.7/32");
        assert!("::ffff:10.0.0.0/8".parse::<IpNet>().is_err(), "a mapped network shorter than /96");
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "host.example", "10.0.0.0/x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_are_counted_per_ipv6_64() {
        let a = source_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = source_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = source_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(source_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
