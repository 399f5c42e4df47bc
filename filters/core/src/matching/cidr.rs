//! Address ranges (CIDRs) and the allow/deny check every filter applies to a client.

/// An address range: a network and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    len: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an IP address or CIDR range");
        let (ip, len) = match s.trim().split_once('/') {
            Some((ip, len)) => (ip, Some(len.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let net: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad());
        }
        Ok(Cidr { net, len })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

impl Cidr {
    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether it is one address (`/32`, `/128`).
    pub fn is_single(&self) -> bool {
        self.len == if self.net.is_ipv4() { 32 } else { 128 }
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |ip: std::net::IpAddr| -> (u128, u32) {
            match ip {
                std::net::IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                std::net::IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let (a, wa) = bits(self.net);
        let (b, wb) = bits(ip);
        if wa != wb {
            return false;
        }
        let len = u32::from(self.len);
        if len == 0 {
            return true;
        }
        let shift = wa - len;
        (a >> shift) == (b >> shift)
    }
}

/// Whether a route with these ranges serves a client: not in `deny`, and in `allow` unless
/// `allow` is empty. An unknown client is served only when nothing is allowed by range.
pub fn admitted(ranges: &(Vec<Cidr>, Vec<Cidr>), client: Option<std::net::IpAddr>) -> bool {
    let (allow, deny) = ranges;
    match client {
        None => allow.is_empty() && deny.is_empty(),
        Some(ip) => {
            !deny.iter().any(|c| c.contains(ip))
                && (allow.is_empty() || allow.iter().any(|c| c.contains(ip)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let c = |s: &str| s.parse::<Cidr>().unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(c("10.0.0.0/24").contains(ip("10.0.0.255")));
        assert!(!c("10.0.0.0/24").contains(ip("10.0.1.0")));
        assert!(c("10.0.0.7").contains(ip("10.0.0.7")));
        assert!(!c("10.0.0.7").contains(ip("10.0.0.8")));
        assert!(c("0.0.0.0/0").contains(ip("192.168.1.1")));
        assert!(!c("0.0.0.0/0").contains(ip("::1")), "families do not mix");
        assert!(c("2001:db8::/32").contains(ip("2001:db8:1::5")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "10.0.0.1/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let ranges = (vec![c("10.0.0.0/8")], vec![c("10.0.0.5")]);
        assert!(admitted(&ranges, Some(ip("10.1.2.3"))));
        assert!(!admitted(&ranges, Some(ip("10.0.0.5"))));
        assert!(!admitted(&ranges, Some(ip("11.0.0.1"))));
        assert!(!admitted(&ranges, None));
        assert!(admitted(&(vec![], vec![c("1.2.3.4")]), Some(ip("1.2.3.5"))));
    }
}
