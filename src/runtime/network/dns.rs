//! The container's `/etc/resolv.conf`: the one place berth reads the host's.
//!
//! A container on the host's network, or on one with no way out, gets the
//! host's file as it is. A container whose network reaches out through a
//! berth bridge cannot reach a resolver on the host's loopback (systemd-
//! resolved's stub `127.0.0.53`, dnsmasq on `127.0.0.1`): those lines are
//! dropped, and when none is left the upstream servers systemd-resolved
//! lists in `/run/systemd/resolve/resolv.conf` take their place, as Docker
//! does. When there are none either and the host's file names an IPv4
//! loopback resolver, the container's file names the project's gateway,
//! whose port 53 the kernel forwards to that resolver ([`super::dnat`]:
//! DNAT, with a guard that keeps the rest of the host's loopback out of
//! reach). berth never makes up a public resolver.

use std::net::{IpAddr, Ipv4Addr};

use super::Subnet;

/// The host's resolver file.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of its upstream servers.
pub const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The `/etc/resolv.conf` for a container; `bridge`: the subnet through
/// whose bridge its network leaves the host, if it does.
pub fn resolv_conf(bridge: Option<Subnet>) -> String {
    let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let Some(subnet) = bridge else { return host };
    let mut out = for_bridge(&host, upstream);
    if stub(&host, &out).is_some() {
        out.push_str(&format!("nameserver {}\n", subnet.gateway()));
    }
    out
}

/// The host's loopback resolver that project networks' DNS is forwarded
/// to, when the container's file would have no nameserver otherwise.
pub fn forwarded_stub() -> Option<Ipv4Addr> {
    let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    stub(&host, &for_bridge(&host, upstream))
}

fn upstream() -> Option<String> {
    std::fs::read_to_string(RESOLVED_UPSTREAM).ok()
}

/// The first IPv4 loopback nameserver of `host`, when `for_bridge` (what
/// the container would get) names none.
fn stub(host: &str, for_bridge: &str) -> Option<Ipv4Addr> {
    if has_server(for_bridge) {
        return None;
    }
    host.lines().filter(|l| loopback_server(l)).find_map(|l| match l.split_whitespace().nth(1)?.parse() {
        Ok(IpAddr::V4(a)) => Some(a),
        _ => None,
    })
}

/// The `/etc/resolv.conf` for a container whose network is a user-mode
/// helper's (rootless, `runtime::network::usermode`): the host's file with
/// the helper's DNS forwarder `server` as its one nameserver (the helper
/// asks the host's resolvers, loopback ones included, from the host).
pub fn for_forwarder(server: IpAddr) -> String {
    forwarded(&std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default(), server)
}

fn forwarded(host: &str, server: IpAddr) -> String {
    let kept = host.lines().filter(|l| l.split_whitespace().next() != Some("nameserver"));
    kept.map(|l| format!("{l}\n")).chain([format!("nameserver {server}\n")]).collect()
}

fn loopback_server(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("nameserver")
        && words.next().and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok()).is_some_and(|a| a.is_loopback())
}

fn has_server(text: &str) -> bool {
    text.lines().any(|l| l.split_whitespace().next() == Some("nameserver"))
}

/// `host` without its loopback nameservers; when that leaves none, the
/// nameservers of `upstream()` (systemd-resolved's list) added.
fn for_bridge(host: &str, upstream: impl FnOnce() -> Option<String>) -> String {
    let kept: Vec<&str> = host.lines().filter(|l| !loopback_server(l)).collect();
    let mut out: String = kept.iter().map(|l| format!("{l}\n")).collect();
    if has_server(host) && !has_server(&out) {
        let up = upstream().unwrap_or_default();
        for line in up.lines().filter(|l| l.split_whitespace().next() == Some("nameserver") && !loopback_server(l)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_resolvers_are_kept() {
        let host = "search example.org\nnameserver 10.255.255.53\noptions ndots:2\n";
        assert_eq!(for_bridge(host, || panic!("not read")), host);
    }

    #[test]
    fn a_forwarder_replaces_every_nameserver() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.9\noptions edns0\n";
        let server = IpAddr::from([10, 0, 2, 3]);
        assert_eq!(forwarded(host, server), "search lan\noptions edns0\nnameserver 10.0.2.3\n");
        assert_eq!(forwarded("", server), "nameserver 10.0.2.3\n");
    }

    #[test]
    fn loopback_stubs_give_way_to_the_upstream_servers() {
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        let upstream = "# systemd\nnameserver 192.0.2.53\nnameserver ::1\nsearch lan\n";
        assert_eq!(
            for_bridge(host, || Some(upstream.to_owned())),
            "options edns0 trust-ad\nsearch lan\nnameserver 192.0.2.53\n"
        );
        // Some loopback, some not: the others suffice.
        assert_eq!(for_bridge("nameserver ::1\nnameserver 192.0.2.9\n", || None), "nameserver 192.0.2.9\n");
        // Nothing upstream: no nameserver at all rather than one that cannot answer.
        assert_eq!(for_bridge("nameserver 127.0.0.1\n", || None), "");
    }

    #[test]
    fn a_lone_loopback_stub_is_forwarded_to() {
        let host = "nameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(stub(host, &for_bridge(host, || None)), Some(Ipv4Addr::new(127, 0, 0, 53)));
        // Upstream servers known: no forwarding.
        let up = || Some("nameserver 192.0.2.53\n".to_owned());
        assert_eq!(stub(host, &for_bridge(host, up)), None);
        // Only an IPv6 loopback: nothing to forward to (DNAT is IPv4).
        assert_eq!(stub("nameserver ::1\n", ""), None);
        // A resolver that is not loopback: used as it is.
        assert_eq!(stub("nameserver 10.0.0.1\n", "nameserver 10.0.0.1\n"), None);
    }
}
