//! Published ports through the kernel: DNAT in berth's table `inet berth`
//! for containers with a bridge address, and the envs' DNS forwarded to a
//! resolver on the host's loopback (systemd-resolved's `127.0.0.53`,
//! dnsmasq on `127.0.0.1`).
//!
//! ```text
//! map ports4      { type ipv4_addr . inet_proto . inet_service : ipv4_addr; }     # 127.0.0.1 . tcp . 8080 : 10.123.N.2
//! map ports4_port { type ipv4_addr . inet_proto . inet_service : inet_service; }  # 127.0.0.1 . tcp . 8080 : 80
//! map wild4       { type inet_proto . inet_service : ipv4_addr; }                 # 0.0.0.0:8080: tcp . 8080 : 10.123.N.2
//! map wild4_port  { type inet_proto . inet_service : inet_service; }              #               tcp . 8080 : 80
//! map dns4        { type ipv4_addr . inet_proto . inet_service : ipv4_addr; }     # 10.123.N.1 . udp . 53 : 127.0.0.53
//! chain ports_prerouting { type nat hook prerouting priority dstnat;
//!     iifname @bridges dnat ip to ip daddr . meta l4proto . th dport map @dns4
//!     iifname != @bridges fib daddr type local dnat ip to K map @ports4 : K map @ports4_port   # K: ip daddr . meta l4proto . th dport
//!     iifname != @bridges fib daddr type local dnat ip to W map @wild4 : W map @wild4_port }   # W: meta l4proto . th dport
//! chain ports_output { type nat hook output priority dstnat;          # connections made on the host itself
//!     fib daddr type local dnat ip to K map @ports4 : K map @ports4_port
//!     fib daddr type local dnat ip to W map @wild4 : W map @wild4_port }
//! chain ports_postrouting { type nat hook postrouting priority srcnat;
//!     oifname @bridges ip saddr 127.0.0.0/8 masquerade }              # 127.0.0.1:8080 → the bridge
//! chain dns_input { type nat hook input priority srcnat;
//!     iifname @bridges ip daddr 127.0.0.0/8 snat ip to 127.0.0.1 }   # resolved answers loopback only
//! chain loopback_guard { type filter hook prerouting priority raw;
//!     iifname @bridges ip daddr 127.0.0.0/8 drop }
//! ```
//!
//! The rules are fixed; a published port is one element in each map of a
//! pair, `ports4` (a given host address) or `wild4` (`0.0.0.0`), a
//! project's DNS two elements of `dns4` (udp and tcp). So adding and
//! removing one is exact, and each change is one atomic batch, as in
//! [`super::nft`]. (One map to `ipv4_addr . inet_service` would do, but
//! nft 1.0.6, Debian bookworm's, crashes on such a `dnat` in JSON.)
//!
//! # Which path a connection takes
//!
//! DNAT applies to IPv4 mappings of containers with a bridge address, for
//! connections that do **not** arrive from a berth bridge: the host's own
//! (output hook, `127.0.0.1` included) and other machines' (prerouting).
//! The shim's proxy keeps listening on the host socket: it reserves the
//! port (a clash is found as before), it serves what DNAT does not (IPv6
//! addresses, envs reaching a published port through their gateway,
//! hairpin included, and containers without a bridge: rootless, `isolated`)
//! and while it holds the socket the element is live ([`stale`]).
//!
//! # Loopback
//!
//! A connection to `127.0.0.1:P` DNATed to the bridge leaves with a
//! loopback source, which the kernel refuses on other devices unless the
//! bridge has `route_localnet=1`; `ports_postrouting` then masquerades it
//! to the gateway's address. The same knob would let an env reach the
//! host's loopback-only services by sending to `127.0.0.1` through the
//! gateway (CVE-2020-8558): `loopback_guard` drops whatever arrives on a
//! berth bridge for `127.0.0.0/8` before any NAT, so only berth's own DNAT
//! (`dns4`, original destination: the gateway) reaches a loopback address.
//!
//! # DNS
//!
//! When the host's resolvers are all on its loopback and no upstream list
//! names another ([`super::dns`]), the env's `resolv.conf` names the
//! project's gateway, and `dns4` sends gateway:53 (udp and tcp) to the
//! host's stub. systemd-resolved's main stub ignores queries whose sender
//! or destination is not a loopback address (`resolved-dns-stub.c`:
//! "Got packet on unexpected (i.e. non-localhost) IP range, ignoring"), so
//! `dns_input` also rewrites the source to `127.0.0.1` for what arrives on
//! a bridge for a loopback address (only `dns4`'s, after the guard); the
//! answer goes back through conntrack. dnsmasq answers loopback senders in
//! every configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;

use serde_json::{Value, json};

use super::NetworkError;
use super::nft::{FAMILY, TABLE};
use super::subnet::{Record, Subnet};
use crate::runtime::ports::{PortMapping, Protocol};

/// A pair of maps from one key: to the target address, and to its port.
struct Pair {
    addr: &'static str,
    port: &'static str,
}

const PORTS: Pair = Pair { addr: "ports4", port: "ports4_port" };
const WILD: Pair = Pair { addr: "wild4", port: "wild4_port" };
const DNS: &str = "dns4";

/// One published port as DNAT: what arrives at `addr:port/protocol`
/// (`addr` `None`: any local address, a `0.0.0.0` mapping) goes to
/// `target:target_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub addr: Option<Ipv4Addr>,
    pub protocol: Protocol,
    pub port: u16,
    pub target: Ipv4Addr,
    pub target_port: u16,
}

impl Forward {
    /// The host side, as a mapping shows it: `127.0.0.1:8080/tcp`.
    pub fn host(&self) -> String {
        format!("{}:{}/{}", self.addr.unwrap_or(Ipv4Addr::UNSPECIFIED), self.port, self.protocol)
    }
}

/// A project's DNS forwarding: `gateway:53` to `stub:53`, udp and tcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsForward {
    pub gateway: Ipv4Addr,
    pub protocol: Protocol,
    pub stub: Ipv4Addr,
}

/// The DNAT elements of the table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listed {
    pub ports: Vec<Forward>,
    pub dns: Vec<DnsForward>,
}

impl Listed {
    /// Whether any element targets `subnet` (its forwards, or DNS of its gateway).
    fn of(&self, subnet: Subnet) -> (Vec<Forward>, Vec<DnsForward>) {
        let ports = self.ports.iter().filter(|f| subnet.overlaps(f.target, 32)).copied().collect();
        let dns = self.dns.iter().filter(|d| d.gateway == subnet.gateway()).copied().collect();
        (ports, dns)
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.dns.is_empty()
    }
}

/// The DNAT of `mappings` (as bound) to `target`: the IPv4 ones; IPv6
/// addresses stay with the proxy.
pub fn forwards(mappings: &[PortMapping], target: Ipv4Addr) -> Vec<Forward> {
    mappings
        .iter()
        .filter_map(|m| match m.host.ip() {
            IpAddr::V4(a) => Some(Forward {
                addr: (!a.is_unspecified()).then_some(a),
                protocol: m.protocol,
                port: m.host.port(),
                target,
                target_port: m.container_port,
            }),
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn in_table(extra: Value) -> Value {
    let mut v = json!({"family": FAMILY, "table": TABLE});
    v.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
    v
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn is(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn loopback_net() -> Value {
    json!({"prefix": {"addr": "127.0.0.0", "len": 8}})
}

fn lookup(key: &[Value], map: &str) -> Value {
    json!({"map": {"key": {"concat": key}, "data": format!("@{map}")}})
}

fn dnat_via(key: Vec<Value>, pair: &Pair) -> Value {
    json!({"dnat": {"family": "ip", "addr": lookup(&key, pair.addr), "port": lookup(&key, pair.port)}})
}

fn rule(chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": in_table(json!({"chain": chain, "comment": comment, "expr": expr}))}})
}

/// The commands that declare the maps, chains and rules (elements kept);
/// [`super::nft`] puts them in each of its batches.
pub(super) fn declare() -> Vec<Value> {
    let by_addr = || vec![payload("ip", "daddr"), meta("l4proto"), payload("th", "dport")];
    let by_port = || vec![meta("l4proto"), payload("th", "dport")];
    let ipv4 = || is(meta("nfproto"), "==", json!("ipv4"));
    let local = || is(json!({"fib": {"result": "type", "flags": ["daddr"]}}), "==", json!("local"));
    let from_bridge = |op: &str| is(meta("iifname"), op, json!("@bridges"));
    let map = |name: &str, key: &[&str], data: &str| json!({"add": {"map": in_table(json!({"name": name, "type": key, "map": data}))}});
    let (by_addr_type, by_port_type) = (["ipv4_addr", "inet_proto", "inet_service"], ["inet_proto", "inet_service"]);
    let chain = |name: &str, kind: &str, hook: &str, prio: i32| json!({"add": {"chain": in_table(json!({"name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}))}});
    let flush = |name: &str| json!({"flush": {"chain": in_table(json!({"name": name}))}});
    let mut cmds = vec![
        map(PORTS.addr, &by_addr_type, "ipv4_addr"),
        map(PORTS.port, &by_addr_type, "inet_service"),
        map(WILD.addr, &by_port_type, "ipv4_addr"),
        map(WILD.port, &by_port_type, "inet_service"),
        map(DNS, &by_addr_type, "ipv4_addr"),
        chain("loopback_guard", "filter", "prerouting", -300),
        chain("ports_prerouting", "nat", "prerouting", -100),
        chain("ports_output", "nat", "output", -100),
        chain("ports_postrouting", "nat", "postrouting", 100),
        chain("dns_input", "nat", "input", 100),
    ];
    for name in ["loopback_guard", "ports_prerouting", "ports_output", "ports_postrouting", "dns_input"] {
        cmds.push(flush(name));
    }
    let guard = "berth: envs do not reach the host's loopback";
    cmds.push(rule(
        "loopback_guard",
        guard,
        vec![from_bridge("=="), is(payload("ip", "daddr"), "==", loopback_net()), json!({"drop": null})],
    ));
    let dns = "berth: envs' DNS to the host's loopback resolver";
    let to_stub = json!({"dnat": {"family": "ip", "addr": lookup(&by_addr(), DNS)}});
    cmds.push(rule("ports_prerouting", dns, vec![ipv4(), from_bridge("=="), to_stub]));
    let published = "berth: published ports";
    for (chain, outside) in [("ports_prerouting", true), ("ports_output", false)] {
        for (key, map) in [(by_addr(), &PORTS), (by_port(), &WILD)] {
            let mut expr = vec![ipv4()];
            if outside {
                expr.push(from_bridge("!="));
            }
            expr.extend([local(), dnat_via(key, map)]);
            cmds.push(rule(chain, published, expr));
        }
    }
    cmds.push(rule(
        "ports_postrouting",
        "berth: published on loopback, answered through the gateway",
        vec![
            is(meta("oifname"), "==", json!("@bridges")),
            is(payload("ip", "saddr"), "==", loopback_net()),
            json!({"masquerade": null}),
        ],
    ));
    cmds.push(rule(
        "dns_input",
        "berth: the loopback resolver answers loopback senders only",
        vec![
            from_bridge("=="),
            is(payload("ip", "daddr"), "==", loopback_net()),
            json!({"snat": {"family": "ip", "addr": "127.0.0.1"}}),
        ],
    ));
    cmds
}

/// The maps of `f` and its key in them.
fn port_key(f: &Forward) -> (&'static Pair, Value) {
    match f.addr {
        Some(a) => (&PORTS, json!({"concat": [a.to_string(), proto(f.protocol), f.port]})),
        None => (&WILD, json!({"concat": [proto(f.protocol), f.port]})),
    }
}

fn dns_key(d: &DnsForward) -> Value {
    json!({"concat": [d.gateway.to_string(), proto(d.protocol), 53]})
}

fn element(verb: &str, map: &str, elem: Value) -> Value {
    json!({verb: {"element": in_table(json!({"name": map, "elem": [elem]}))}})
}

/// The commands that add or delete `f` in both maps of its pair.
fn port_elements(verb: &str, f: &Forward) -> [Value; 2] {
    let (pair, key) = port_key(f);
    if verb == "delete" {
        return [element(verb, pair.addr, key.clone()), element(verb, pair.port, key)];
    }
    [
        element(verb, pair.addr, json!([key.clone(), f.target.to_string()])),
        element(verb, pair.port, json!([key, f.target_port])),
    ]
}

fn same_key(a: &Forward, b: &Forward) -> bool {
    (a.addr, a.protocol, a.port) == (b.addr, b.protocol, b.port)
}

/// The commands that add `forwards`, removing first what holds their keys
/// in `listed` (left by a shim that was killed: the caller holds the port
/// now, so whatever had it is gone).
fn add_ports(listed: &Listed, forwards: &[Forward]) -> Vec<Value> {
    let mut cmds = Vec::new();
    for f in forwards {
        if let Some(old) = listed.ports.iter().find(|o| same_key(o, f)) {
            if old == f {
                continue;
            }
            cmds.extend(port_elements("delete", old));
        }
        cmds.extend(port_elements("add", f));
    }
    cmds
}

/// The commands that remove those of `forwards` that `listed` holds.
pub(super) fn remove_ports(listed: &Listed, forwards: &[Forward]) -> Vec<Value> {
    forwards.iter().filter(|f| listed.ports.contains(f)).flat_map(|f| port_elements("delete", f)).collect()
}

/// The commands that make the DNS forwarding of `subnet` go to `stub`
/// (none: no forwarding), whatever `listed` holds for it now.
pub(super) fn dns_batch(listed: &Listed, subnet: Subnet, stub: Option<Ipv4Addr>) -> Vec<Value> {
    let mut cmds = Vec::new();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let wanted = stub.map(|stub| DnsForward { gateway: subnet.gateway(), protocol, stub });
        let old = listed.dns.iter().find(|o| o.gateway == subnet.gateway() && o.protocol == protocol);
        if old == wanted.as_ref() {
            continue;
        }
        if let Some(old) = old {
            cmds.push(element("delete", DNS, dns_key(old)));
        }
        if let Some(d) = wanted {
            cmds.push(element("add", DNS, json!([dns_key(&d), d.stub.to_string()])));
        }
    }
    cmds
}

/// The commands that remove every element of `subnet`: its published
/// ports and its DNS.
pub(super) fn remove_subnet(listed: &Listed, subnet: Subnet) -> Vec<Value> {
    let (ports, dns) = listed.of(subnet);
    let mut cmds = remove_ports(listed, &ports);
    cmds.extend(dns.iter().map(|d| element("delete", DNS, dns_key(d))));
    cmds
}

/// Whether `listed` holds elements of another subnet than `subnet`.
pub(super) fn others(listed: &Listed, subnet: Subnet) -> bool {
    let (ports, dns) = listed.of(subnet);
    ports.len() < listed.ports.len() || dns.len() < listed.dns.len()
}

fn ip(v: &Value) -> Option<Ipv4Addr> {
    v.as_str()?.parse().ok()
}

fn port(v: &Value) -> Option<u16> {
    u16::try_from(v.as_u64()?).ok()
}

fn protocol(v: &Value) -> Option<Protocol> {
    match v.as_str()? {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// The DNAT maps of `nft -j list table inet berth`. A published port is
/// listed when both maps of its pair hold its key.
pub(super) fn parse(json: &Value) -> Listed {
    let mut out = Listed::default();
    let maps: Vec<&Value> = json["nftables"].as_array().into_iter().flatten().map(|i| &i["map"]).collect();
    let elems = |name: &str| -> Vec<(Vec<Value>, Value)> {
        let map = maps.iter().find(|m| m["name"] == name);
        let elems = map.and_then(|m| m["elem"].as_array()).into_iter().flatten();
        elems.filter_map(|e| Some((e[0]["concat"].as_array()?.clone(), e.get(1)?.clone()))).collect()
    };
    for pair in [&PORTS, &WILD] {
        let ports = elems(pair.port);
        for (key, to) in elems(pair.addr) {
            let Some((_, to_port)) = ports.iter().find(|(k, _)| *k == key) else { continue };
            if let Some(f) = parse_forward(&key, to, to_port) {
                out.ports.push(f);
            }
        }
    }
    for (key, to) in elems(DNS) {
        if let ([g, p, _], Some(stub)) = (key.as_slice(), ip(&to))
            && let (Some(gateway), Some(protocol)) = (ip(g), protocol(p))
        {
            out.dns.push(DnsForward { gateway, protocol, stub });
        }
    }
    out
}

fn parse_forward(key: &[Value], to: Value, to_port: &Value) -> Option<Forward> {
    let (target, target_port) = (ip(&to)?, port(to_port)?);
    let (addr, p, n) = match key {
        [a, p, n] => (Some(ip(a)?), p, n),
        [p, n] => (None, p, n),
        _ => return None,
    };
    Some(Forward { addr, protocol: protocol(p)?, port: port(n)?, target, target_port })
}

/// The project subnet of the network namespace `netns`, when berth
/// attached one to it (rootful, `network = "project"` or `run --network
/// bridge`).
pub fn bridge_of(netns: &Path) -> Option<Subnet> {
    if super::super::userns::rootless() {
        return None;
    }
    let record = Record::host();
    if !record.exists() {
        return None;
    }
    let owner = std::path::absolute(netns).ok()?;
    record.find(&owner).ok().flatten().map(|(s, _)| s)
}

/// Published ports of one container that go through DNAT; withdrawn by
/// [`Published::withdraw`].
#[derive(Debug)]
pub struct Published {
    forwards: Vec<Forward>,
}

/// Adds the DNAT of `mappings` (as the proxy bound them) when the
/// container's network namespace `netns` has a bridge; `None` when it has
/// none (the proxy serves it all). The caller holds the host sockets.
pub fn publish(netns: &Path, mappings: &[PortMapping]) -> Result<Option<Published>, NetworkError> {
    let Some(subnet) = bridge_of(netns) else { return Ok(None) };
    let forwards = forwards(mappings, subnet.member());
    if forwards.is_empty() {
        return Ok(None);
    }
    let _held = Record::host().lock()?;
    let listed = super::nft::list()?;
    let mut cmds = super::nft::declare_all();
    cmds.extend(add_ports(&listed.dnat, &forwards));
    let what = format!("publish {} through DNAT to {}", describe(&forwards), subnet.member());
    super::nft::apply(&json!({"nftables": cmds}), what)?;
    Ok(Some(Published { forwards }))
}

impl Published {
    /// The DNAT elements.
    pub fn forwards(&self) -> &[Forward] {
        &self.forwards
    }

    /// Removes the elements [`publish`] added (those still there).
    pub fn withdraw(self) -> Result<(), NetworkError> {
        let _held = Record::host().lock()?;
        withdraw(&self.forwards)
    }
}

fn withdraw(forwards: &[Forward]) -> Result<(), NetworkError> {
    let listed = super::nft::list()?;
    let cmds = remove_ports(&listed.dnat, forwards);
    if cmds.is_empty() {
        return Ok(());
    }
    super::nft::apply(&json!({"nftables": cmds}), format!("withdraw {} from DNAT", describe(forwards)))
}

fn describe(forwards: &[Forward]) -> String {
    forwards.iter().map(Forward::host).collect::<Vec<_>>().join(", ")
}

/// Whether a host socket of `f` is free: no proxy holds it, so its shim
/// is gone.
fn unheld(f: &Forward) -> bool {
    let at = SocketAddr::new(IpAddr::V4(f.addr.unwrap_or(Ipv4Addr::UNSPECIFIED)), f.port);
    match f.protocol {
        Protocol::Tcp => TcpListener::bind(at).is_ok(),
        Protocol::Udp => UdpSocket::bind(at).is_ok(),
    }
}

/// The DNAT elements left behind (a shim killed with its container): their
/// host socket is free, so no proxy (no running container) holds it, or
/// their target is in no recorded subnet. `fsck` reports them.
pub fn stale() -> Result<Vec<Forward>, NetworkError> {
    let record = Record::host();
    if super::super::userns::rootless() || !record.exists() {
        return Ok(Vec::new());
    }
    let listed = match super::nft::list() {
        Ok(l) => l,
        Err(NetworkError::NftMissing { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let subnets: Vec<Subnet> = record.entries()?.into_iter().map(|(s, _)| s).collect();
    Ok(listed
        .dnat
        .ports
        .into_iter()
        .filter(|f| !subnets.iter().any(|s| s.overlaps(f.target, 32)) || unheld(f))
        .collect())
}

/// Removes the stale elements ([`stale`], looked at again under the
/// record's lock); returns them. `fsck --repair`.
pub fn remove_stale() -> Result<Vec<Forward>, NetworkError> {
    if super::super::userns::rootless() || !Record::host().exists() {
        return Ok(Vec::new());
    }
    let _held = Record::host().lock()?;
    let gone = stale()?;
    withdraw(&gone)?;
    Ok(gone)
}

/// The batch for the project namespace's own table (see the module page).
fn inside_batch() -> Value {
    let ns_table = |extra: Value| {
        let mut v = json!({"family": "ip", "table": TABLE});
        v.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
        v
    };
    let chain = |name: &str, kind: &str, prio: i32| json!({"add": {"chain": ns_table(json!({"name": name, "type": kind, "hook": "prerouting", "prio": prio, "policy": "accept"}))}});
    let on_eth0 = is(meta("iifname"), "==", json!(super::NS_IFNAME));
    let rule = |chain: &str, comment: &str, expr: Vec<Value>| json!({"add": {"rule": ns_table(json!({"chain": chain, "comment": comment, "expr": expr}))}});
    json!({"nftables": [
        {"add": {"table": {"family": "ip", "name": TABLE}}},
        chain("guard", "filter", -300),
        chain("published", "nat", -100),
        {"flush": {"chain": ns_table(json!({"name": "guard"}))}},
        {"flush": {"chain": ns_table(json!({"name": "published"}))}},
        rule("guard", "berth: only berth's DNAT reaches loopback", vec![
            on_eth0.clone(), is(payload("ip", "daddr"), "==", loopback_net()), json!({"drop": null}),
        ]),
        rule("published", "berth: published ports reach servers on 127.0.0.1 too", vec![
            on_eth0, is(meta("l4proto"), "==", json!({"set": ["tcp", "udp"]})), json!({"dnat": {"addr": "127.0.0.1"}}),
        ]),
    ]})
}

/// Inside the project namespace `owner`: connections arriving on its
/// `eth0` go to `127.0.0.1` (same port), as the proxy connects, so a
/// server that listens on loopback only is published as before; and
/// `route_localnet` on `eth0`, which that needs, with its guard.
pub(super) fn inside(owner: &Path) -> Result<(), NetworkError> {
    let knob = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", super::NS_IFNAME);
    let fail = |source| NetworkError::Link { what: format!("set up DNAT in {}", owner.display()), source };
    crate::sys::netns::in_net_ns(owner, || {
        let applied = super::nft::apply(&inside_batch(), format!("set up DNAT in {}", owner.display()));
        if applied.is_ok() {
            std::fs::write(&knob, "1")?;
        }
        Ok(applied)
    })
    .map_err(fail)?
}

/// Sets `route_localnet` on `bridge`: connections to a port published on
/// `127.0.0.1` may leave through it (see the module page).
pub(super) fn route_localnet(bridge: &str) -> Result<(), NetworkError> {
    let knob = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&knob, "1").map_err(|source| NetworkError::Link { what: format!("write 1 to {knob}"), source })
}

#[cfg(test)]
mod tests;
