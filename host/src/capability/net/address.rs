//! Which IP addresses are not on the public internet: loopback, private networks, link-local
//! (where cloud metadata services answer), carrier-grade NAT, multicast and reserved ranges,
//! and IPv6 forms that embed one of those IPv4 addresses. A listed host name that resolves to
//! one of them is refused unless the rule allows private addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of non-public range `ip` is in (e.g. `"loopback (127.0.0.0/8)"`), or `None`
/// for a public unicast address.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "this-network (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16, cloud metadata)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded = |high: usize| {
        Ipv4Addr::from((u32::from(segments[high]) << 16) | u32::from(segments[high + 1]))
    };
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    Some(match segments {
        // NAT64 and 6to4 gateways turn these into the IPv4 address they carry.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return v4_range(embedded(6)),
        [0x2002, _, _, ..] => return v4_range(embedded(1)),
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96, deprecated)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [s, ..] if s & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [s, ..] if s & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::non_public;

    fn range(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_named() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback (127.0.0.0/8)"),
            ("127.255.0.9", "loopback (127.0.0.0/8)"),
            ("10.1.2.3", "private (10.0.0.0/8)"),
            ("172.16.0.1", "private (172.16.0.0/12)"),
            ("172.31.255.255", "private (172.16.0.0/12)"),
            ("192.168.1.1", "private (192.168.0.0/16)"),
            (
                "169.254.169.254",
                "link-local (169.254.0.0/16, cloud metadata)",
            ),
            ("100.64.0.1", "shared carrier-grade NAT (100.64.0.0/10)"),
            (
                "100.127.255.255",
                "shared carrier-grade NAT (100.64.0.0/10)",
            ),
            ("0.0.0.0", "this-network (0.0.0.0/8)"),
            ("0.1.2.3", "this-network (0.0.0.0/8)"),
            ("192.0.0.8", "IETF protocol assignment (192.0.0.0/24)"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("224.0.0.1", "multicast (224.0.0.0/4)"),
            ("255.255.255.255", "reserved (240.0.0.0/4)"),
            ("::1", "loopback (::1)"),
            ("::", "unspecified (::)"),
            ("fc00::1", "unique local (fc00::/7)"),
            ("fd12:3456::1", "unique local (fc00::/7)"),
            ("fe80::1", "link-local (fe80::/10)"),
            ("febf::1", "link-local (fe80::/10)"),
            ("fec0::1", "site-local (fec0::/10, deprecated)"),
            ("ff02::1", "multicast (ff00::/8)"),
            ("100::1", "discard-only (100::/64)"),
            ("::ffff:127.0.0.1", "loopback (127.0.0.0/8)"),
            (
                "::ffff:169.254.169.254",
                "link-local (169.254.0.0/16, cloud metadata)",
            ),
            ("::ffff:10.0.0.1", "private (10.0.0.0/8)"),
            ("::127.0.0.1", "IPv4-compatible (::/96, deprecated)"),
            ("64:ff9b::10.0.0.1", "private (10.0.0.0/8)"),
            ("64:ff9b::7f00:1", "loopback (127.0.0.0/8)"),
            (
                "2002:a9fe:a9fe::1",
                "link-local (169.254.0.0/16, cloud metadata)",
            ),
        ] {
            assert_eq!(range(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.0.1",
            "192.0.2.1",
            "192.169.0.1",
            "223.255.255.255",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
            "fe00::1",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }
}
