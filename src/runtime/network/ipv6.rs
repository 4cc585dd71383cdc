//! IPv6 for project networks: each project's /64 and whether this host can
//! have them at all.
//!
//! # Addresses
//!
//! The /64s come from berth's unique local prefix [`ULA`]
//! (`fd0b:e127:5a1c::/48`, RFC 4193: private, never routed, with 40 random
//! bits so that it meets no other site's). A project's /64 is the /48 plus
//! the number of its IPv4 /24 (`10.123.N.0/24` → `fd0b:e127:5a1c:N::/64`),
//! so the host-wide IPv4 allocation keeps the /64s apart as well; the record
//! of the subnet says whether the project has one ([`super::Allocation`]'s
//! `ipv6`). The bridge takes `::1`, the namespace `::2`, both without
//! duplicate address detection (nothing else is on the link, and a
//! tentative address could not be used for a second or two).
//!
//! # When the host gets IPv6 for its projects
//!
//! [`host_support`] says yes when the kernel has IPv6, the host has an IPv6
//! default route (so there is an outside to reach) and turning on
//! forwarding (`net.ipv6.conf.all.forwarding`, which masquerading needs) is
//! safe. It is not always: a Linux interface with `accept_ra = 1` ignores
//! router advertisements once forwarding is on, so a host whose IPv6 routes
//! come from router advertisements would lose them when they expire. berth
//! then leaves IPv6 off (its projects get IPv4 only, and `berth plan` says
//! why) rather than change the host's settings: setting `accept_ra = 2` on
//! such an interface, as Docker's documentation advises, is the
//! administrator's decision. A route learned from an advertisement carries
//! the kernel's `RTF_ADDRCONF` flag in `/proc/net/ipv6_route`; when
//! forwarding is already on there is nothing to lose.

use std::fmt;
use std::fs;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::subnet::Subnet;

/// berth's unique local /48: the first three groups of every project /64.
pub const ULA: [u16; 3] = [0xfd0b, 0xe127, 0x5a1c];

/// The kernel's flag on IPv6 routes made from router advertisements.
const RTF_ADDRCONF: u32 = 0x0004_0000;
/// An unreachable/prohibit route (such as the default route on `lo` the
/// kernel keeps when there is no real one).
const RTF_REJECT: u32 = 0x0200;

const FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// One project's /64 of [`ULA`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet6(u16);

impl Subnet6 {
    pub const PREFIX: u8 = 64;

    /// The /64 that goes with the IPv4 subnet `v4`.
    pub fn of(v4: Subnet) -> Subnet6 {
        Subnet6(u16::from(v4.network().octets()[2]))
    }

    fn addr(self, last: u16) -> Ipv6Addr {
        Ipv6Addr::new(ULA[0], ULA[1], ULA[2], self.0, 0, 0, 0, last)
    }

    /// The network address, as in `fd0b:e127:5a1c:4::`.
    pub fn network(self) -> Ipv6Addr {
        self.addr(0)
    }

    /// The bridge's address: the namespace's gateway.
    pub fn gateway(self) -> Ipv6Addr {
        self.addr(1)
    }

    /// The project namespace's address.
    pub fn member(self) -> Ipv6Addr {
        self.addr(2)
    }

    /// Whether this /64 and `net/prefix` share an address.
    pub fn overlaps(self, net: Ipv6Addr, prefix: u8) -> bool {
        let shorter = u32::from(prefix.min(Self::PREFIX));
        let mask = if shorter == 0 { 0 } else { u128::MAX << (128 - shorter) };
        u128::from(self.network()) & mask == u128::from(net) & mask
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), Self::PREFIX)
    }
}

impl FromStr for Subnet6 {
    type Err = String;

    /// `fd0b:e127:5a1c:4::` or `fd0b:e127:5a1c:4::/64`.
    fn from_str(s: &str) -> Result<Subnet6, String> {
        let addr = s.strip_suffix("/64").unwrap_or(s);
        let ip: Ipv6Addr = addr.parse().map_err(|_| format!("{s:?} is no IPv6 network address"))?;
        let seg = ip.segments();
        if seg[..3] != ULA || seg[4..] != [0; 4] || seg[3] > 0xff {
            return Err(format!("{s:?} is no project /64 of berth's prefix {}/48", Subnet6(0).network()));
        }
        Ok(Subnet6(seg[3]))
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet6, String> {
        s.parse()
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        s.to_string()
    }
}

/// One line of `/proc/net/ipv6_route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    pub dest: Ipv6Addr,
    pub prefix: u8,
    pub flags: u32,
    pub dev: String,
}

/// Parses `/proc/net/ipv6_route`: per route the destination and its prefix
/// length, the source and its prefix length, the next hop, metric, refcnt,
/// use, flags (all hex) and the device.
pub fn parse_routes(text: &str) -> Vec<Route6> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dest = u128::from_str_radix(cols.first()?, 16).ok()?;
            Some(Route6 {
                dest: Ipv6Addr::from(dest),
                prefix: u8::from_str_radix(cols.get(1)?, 16).ok()?,
                flags: u32::from_str_radix(cols.get(8)?, 16).ok()?,
                dev: (*cols.get(9)?).to_owned(),
            })
        })
        .collect()
}

/// The host's IPv6 routes; none when the kernel has no IPv6.
pub fn host_routes() -> Vec<Route6> {
    fs::read_to_string("/proc/net/ipv6_route").map(|t| parse_routes(&t)).unwrap_or_default()
}

/// What [`host_support`] reads, apart so that the decision can be tested.
#[derive(Debug, Clone, Default)]
pub struct HostView {
    /// `/proc/net/if_inet6` exists and IPv6 is not disabled.
    pub enabled: bool,
    /// `net.ipv6.conf.all.forwarding` is 1 already.
    pub forwarding: bool,
    pub routes: Vec<Route6>,
    /// `accept_ra` per interface.
    pub accept_ra: Vec<(String, u8)>,
}

impl HostView {
    fn read() -> HostView {
        let knob = |path: &str| fs::read_to_string(path).ok().map(|t| t.trim().to_owned());
        let enabled = std::path::Path::new("/proc/net/if_inet6").exists()
            && knob("/proc/sys/net/ipv6/conf/all/disable_ipv6").as_deref() != Some("1");
        let routes = host_routes();
        let mut accept_ra = Vec::new();
        for dev in routes.iter().map(|r| &r.dev) {
            if accept_ra.iter().any(|(d, _)| d == dev) {
                continue;
            }
            if let Some(v) = knob(&format!("/proc/sys/net/ipv6/conf/{dev}/accept_ra")).and_then(|v| v.parse().ok()) {
                accept_ra.push((dev.clone(), v));
            }
        }
        HostView { enabled, forwarding: knob(FORWARDING).as_deref() == Some("1"), routes, accept_ra }
    }

    /// `Ok` when projects can have IPv6 here, else why not.
    pub fn decide(&self) -> Result<(), String> {
        if !self.enabled {
            return Err("the host has IPv6 turned off".into());
        }
        let default = self.routes.iter().any(|r| r.prefix == 0 && r.flags & RTF_REJECT == 0 && r.dev != "lo");
        if !default {
            return Err("the host has no IPv6 default route".into());
        }
        if self.forwarding {
            return Ok(());
        }
        let learns = self
            .routes
            .iter()
            .find(|r| r.flags & RTF_ADDRCONF != 0 && self.accept_ra.iter().any(|(d, v)| *d == r.dev && *v == 1));
        match learns {
            Some(r) => Err(format!(
                "{dev} takes IPv6 routes from router advertisements (accept_ra = 1), which IPv6 forwarding would make it \
                 ignore; `sysctl net.ipv6.conf.{dev}.accept_ra=2` lets both work",
                dev = r.dev
            )),
            None => Ok(()),
        }
    }
}

/// Whether project networks get IPv6 on this host (see the module page):
/// `Ok`, or why they are IPv4 only.
pub fn host_support() -> Result<(), String> {
    HostView::read().decide()
}

/// The /64 for the project with IPv4 subnet `v4`, unless one of `routes`
/// overlaps it (a network of the host's on berth's prefix).
pub fn choose(v4: Subnet, routes: &[Route6]) -> Option<Subnet6> {
    let s = Subnet6::of(v4);
    (!routes.iter().any(|r| r.prefix > 0 && r.dev != "lo" && s.overlaps(r.dest, r.prefix))).then_some(s)
}

/// Turns on IPv6 forwarding (and leaves it on, as for IPv4).
pub fn enable_forwarding() -> std::io::Result<()> {
    if fs::read_to_string(FORWARDING)?.trim() != "1" {
        fs::write(FORWARDING, "1")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn subnets_follow_the_v4_ones_and_parse_back() {
        let s = Subnet6::of("10.123.7.0".parse().unwrap());
        assert_eq!(s.to_string(), "fd0b:e127:5a1c:7::/64");
        assert_eq!(s.gateway().to_string(), "fd0b:e127:5a1c:7::1");
        assert_eq!(s.member().to_string(), "fd0b:e127:5a1c:7::2");
        assert_eq!("fd0b:e127:5a1c:7::/64".parse::<Subnet6>().unwrap(), s);
        assert!("fd0b:e127:5a1c:7::1".parse::<Subnet6>().is_err() && "fd00::/64".parse::<Subnet6>().is_err());
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"fd0b:e127:5a1c:7::/64\"");
        assert!(s.overlaps("fd0b::".parse().unwrap(), 16) && !s.overlaps("fd00::".parse().unwrap(), 64));
    }

    #[test]
    fn routes_parse_and_the_default_route_counts() {
        let routes = parse_routes(HERE);
        assert_eq!(routes.len(), 3);
        assert_eq!((routes[1].prefix, routes[1].flags, routes[1].dev.as_str()), (0, 3, "eth0"));
        let view = |routes, forwarding, ra: u8| HostView {
            enabled: true,
            forwarding,
            routes,
            accept_ra: vec![("eth0".into(), ra)],
        };
        assert_eq!(view(parse_routes(HERE), false, 1).decide(), Ok(()), "static routes: nothing to lose");
        // Only the kernel's unreachable default on lo: no outside.
        let lo_only = parse_routes(HERE).into_iter().filter(|r| r.dev == "lo").collect();
        assert!(view(lo_only, false, 0).decide().unwrap_err().contains("no IPv6 default route"));
        assert!(HostView::default().decide().unwrap_err().contains("turned off"));
    }

    #[test]
    fn a_host_that_learns_routes_from_advertisements_keeps_ipv6_off() {
        // The default route as the kernel makes it from an advertisement:
        // RTF_UP | RTF_GATEWAY | RTF_DEFAULT | RTF_ADDRCONF | RTF_EXPIRES.
        let ra = HERE.replace("00000400 00000002 00000000 00000003", "00000400 00000002 00000000 00450003");
        let view = |ra_value: u8, forwarding| HostView {
            enabled: true,
            forwarding,
            routes: parse_routes(&ra),
            accept_ra: vec![("eth0".into(), ra_value)],
        };
        let why = view(1, false).decide().unwrap_err();
        assert!(why.contains("eth0") && why.contains("accept_ra=2"), "{why}");
        assert_eq!(view(2, false).decide(), Ok(()), "accept_ra = 2 keeps taking them");
        assert_eq!(view(1, true).decide(), Ok(()), "forwarding is on already");
    }

    #[test]
    fn a_host_route_over_the_prefix_leaves_that_project_without_ipv6() {
        let v4 = "10.123.3.0".parse().unwrap();
        let mut routes = parse_routes(HERE);
        assert_eq!(choose(v4, &routes), Some(Subnet6::of(v4)));
        routes.push(Route6 { dest: "fd0b:e127::".parse().unwrap(), prefix: 32, flags: 1, dev: "vpn0".into() });
        assert_eq!(choose(v4, &routes), None);
    }
}
