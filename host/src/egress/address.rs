//! Which IP addresses outgoing HTTP may reach: public ones, unless the allow-list names the
//! destination explicitly.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP address is, for egress: public, or a reason not to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddressClass {
    /// Routable on the public internet.
    Public,
    /// `0.0.0.0/8`, `::`: no host; connecting reaches this machine.
    Unspecified,
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7` (unique local), `fec0::/10` (site local).
    Private,
    /// `100.64/10`: carrier-grade NAT, shared by a provider's customers.
    SharedNat,
    /// `169.254/16`, `fe80::/10`: this link only; where cloud metadata services live.
    LinkLocal,
    /// `224/4`, `ff00::/8`, and the broadcast address: not one host.
    Multicast,
    /// Documentation, benchmarking, protocol and reserved ranges: never a real destination.
    Reserved,
}

impl AddressClass {
    /// The class of `ip`. IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
    /// compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the
    /// IPv4 address they reach.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(ip) => Self::of_v4(ip),
            IpAddr::V6(ip) => Self::of_v6(ip),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        match (a, b, c) {
            (0, _, _) => Self::Unspecified,
            (127, _, _) => Self::Loopback,
            (10, _, _) | (192, 168, _) => Self::Private,
            (172, 16..=31, _) => Self::Private,
            (100, 64..=127, _) => Self::SharedNat,
            (169, 254, _) => Self::LinkLocal,
            (224..=239, _, _) | (255, 255, 255) => Self::Multicast,
            (192, 0, 0 | 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => Self::Reserved,
            (240..=255, _, _) => Self::Reserved,
            _ => Self::Public,
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let segments = ip.segments();
        let embedded_v4 = |high: u16, low: u16| {
            let [a, b] = high.to_be_bytes();
            let [c, d] = low.to_be_bytes();
            Self::of_v4(Ipv4Addr::new(a, b, c, d))
        };
        match segments {
            [0, 0, 0, 0, 0, 0, 0, 0] => Self::Unspecified,
            [0, 0, 0, 0, 0, 0, 0, 1] => Self::Loopback,
            // IPv4-mapped and IPv4-compatible.
            [0, 0, 0, 0, 0, 0xffff | 0, high, low] => embedded_v4(high, low),
            // NAT64, well-known prefix.
            [0x64, 0xff9b, 0, 0, 0, 0, high, low] => embedded_v4(high, low),
            // 6to4: the IPv4 address follows the prefix.
            [0x2002, high, low, ..] => embedded_v4(high, low),
            [first, ..] if first & 0xfe00 == 0xfc00 => Self::Private,
            [first, ..] if first & 0xffc0 == 0xfec0 => Self::Private,
            [first, ..] if first & 0xffc0 == 0xfe80 => Self::LinkLocal,
            [first, ..] if first & 0xff00 == 0xff00 => Self::Multicast,
            // Documentation, and the discard-only prefix.
            [0x2001, 0xdb8, ..] | [0x100, 0, 0, 0, ..] => Self::Reserved,
            _ => Self::Public,
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "a public address",
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedNat => "a carrier-grade NAT address",
            Self::LinkLocal => "a link-local address (where cloud metadata lives)",
            Self::Multicast => "a multicast or broadcast address",
            Self::Reserved => "a reserved address",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> AddressClass {
        AddressClass::of(ip.parse().unwrap())
    }

    fn assert_classes(cases: &[(&str, AddressClass)]) {
        for (ip, expected) in cases {
            assert_eq!(class(ip), *expected, "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
    }

    #[test]
    fn internal_addresses_are_classified() {
        use AddressClass::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("::1", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fd00::1", Private),
            ("fc12:3456::1", Private),
            ("fec0::1", Private),
            ("100.64.0.1", SharedNat),
            ("100.127.255.254", SharedNat),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Multicast),
            ("ff02::1", Multicast),
            ("192.0.2.1", Reserved),
            ("198.51.100.7", Reserved),
            ("203.0.113.9", Reserved),
            ("198.18.0.1", Reserved),
            ("240.0.0.1", Reserved),
            ("2001:db8::1", Reserved),
            ("100::1", Reserved),
        ];
        assert_classes(&cases);
    }

    #[test]
    fn ipv6_forms_of_internal_ipv4_addresses_are_internal_too() {
        use AddressClass::*;
        let cases = [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::192.168.0.1", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("::ffff:0.0.0.0", Unspecified),
        ];
        assert_classes(&cases);
    }
}
