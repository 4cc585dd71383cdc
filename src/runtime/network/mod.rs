//! Project networks with outbound access (rootful berth): a bridge on the
//! host per project, a veth pair into the project's network namespace
//! (`runtime::netns`), a subnet of its own, a default route, masquerading
//! and a wall between projects. Docker's default bridge, one per project.
//!
//! ```text
//!  project namespace (STORE/projects/NAME.netns)          host
//!  ┌──────────────────────────────┐        ┌─────────────────────────────────────┐
//!  │ lo      127.0.0.1            │        │ berth-1a2b3c4d  10.123.N.1/24 ──────┼─▶ eth0 (masquerade)
//!  │ eth0    10.123.N.2/24 ◀──────┼─ veth ─┼▶ berthv-1a2b3c4d (bridge port)      │
//!  │ default via 10.123.N.1       │        │ nft table inet berth                │
//!  └──────────────────────────────┘        └─────────────────────────────────────┘
//! ```
//!
//! # Once per project
//!
//! [`attach`] runs when `up` makes (or finds) the project's namespace, not
//! per container: every env of the project shares the namespace and so the
//! one veth. Each of its steps is idempotent ("already there" is fine), so
//! an attach that was interrupted (berth killed mid-`up`) is finished by the
//! next one, with nothing made twice. [`detach`] runs when the namespace
//! goes (`netns::remove`: `down`, the project's last `rm`, `--rm`, a failed
//! first `up`, `fsck --repair`) and removes exactly what [`attach`] made:
//! the nftables elements (the project's two, its DNS forwarding and any
//! published port left; the table with the last project, and with it the
//! accept rules berth put in another firewall's chains, `firewall`), the
//! veth, the bridge (its address and route go with it) and the subnet's
//! record.
//!
//! # Names and subnets
//!
//! The bridge is `berth-` and the veth `berthv-` followed by 8 hex digits
//! of the blake3 hash of the namespace file's path, so the same project of
//! the same store always gets the same names (within the kernel's 15
//! bytes). Subnets are /24s of `10.123.0.0/16`, handed out host-wide under
//! a lock ([`subnet`]).
//!
//! # What is host-wide
//!
//! IPv4 forwarding (`net.ipv4.ip_forward`) is turned on at the first attach
//! and left on, as Docker and podman do; the table `inet berth` is shared by
//! every store of the host.
//!
//! IPv6 (a /64 per project, masqueraded, IPv6 forwarding turned on and
//! left on) comes with it where the host has IPv6 and turning on IPv6
//! forwarding is safe ([`ipv6`]); elsewhere projects are IPv4 only. Where
//! another firewall's forward chain drops by default (Docker's), berth
//! lets its bridges through there (`firewall`).
//!
//! # Rootless
//!
//! An ordinary user's berth cannot make links on the host: [`attach`] and
//! [`detach`] hand the namespace to [`usermode`] instead, which attaches
//! pasta or slirp4netns to it, when one is installed ([`outbound`] says
//! which applies, or why the network stays loopback only).

pub mod dnat;
pub mod dns;
mod firewall;
pub mod ipv6;
mod link;
mod nft;
pub mod subnet;
pub mod usermode;

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipv6::Subnet6;
use link::Rtnl;
pub use subnet::{Allocation, Record, Subnet};

/// The name of the project namespace's end of the veth pair.
pub const NS_IFNAME: &str = "eth0";

/// Why a project network could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("project network: cannot {action} {}: {source} (the record of subnets every store of this host shares)", path.display())]
    Record { action: &'static str, path: PathBuf, source: io::Error },
    #[error(
        "project network: every subnet of 10.123.0.0/16 is in use (records in {}) or overlaps a route of the host; \
         `berth down` projects you do not need",
        dir.display()
    )]
    Exhausted { dir: PathBuf },
    #[error(
        "project network: the bridge name {bridge} of {} is taken by {}; remove that project (`berth down`) first",
        wanted.display(), owner.display()
    )]
    NameClash { bridge: String, owner: PathBuf, wanted: PathBuf },
    #[error("project network: cannot {what}: {source}")]
    Link { what: String, source: io::Error },
    #[error(
        "project network: berth needs the `nft` program for outbound access and could not have it ({why}); \
         install it (Debian: `apt-get install nftables`), or give the envs network = \"isolated\" (loopback only)"
    )]
    NftMissing { why: String },
    #[error("project network: nftables: cannot {what}: {detail}")]
    Nft { what: String, detail: String },
    #[error("project network: cannot turn on IPv4 forwarding (/proc/sys/net/ipv4/ip_forward): {source}")]
    Forwarding { source: io::Error },
    #[error(
        "project network {} (rootless): cannot {what}; give the envs network = \"isolated\" (loopback only) to go without, \
         or see docs/network.md (Rootless) to debug it",
        netns.display()
    )]
    Usermode { netns: PathBuf, what: String },
    #[error(
        "project network: cannot turn on IPv6 forwarding (/proc/sys/net/ipv6/conf/all/forwarding): {source}; \
         berth turns it on only where no interface relies on router advertisements"
    )]
    Forwarding6 { source: io::Error },
}

/// What a project network is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectNetwork {
    pub subnet: Subnet,
    /// The project's /64, when it has IPv6 ([`ipv6`]).
    pub ipv6: Option<Subnet6>,
    pub bridge: String,
    pub veth: String,
}

/// How a project network reaches the outside here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Root: a bridge, a veth pair and masquerading.
    Bridge,
    /// Rootless: a user-mode helper ([`usermode`]).
    Usermode(usermode::Tool),
    /// Rootless with no usable helper: loopback only, and why.
    LoopbackOnly(String),
}

/// How a project network reaches the outside here (see [`Outbound`]).
pub fn outbound() -> Outbound {
    if !super::userns::rootless() {
        return Outbound::Bridge;
    }
    match usermode::choose() {
        Ok((tool, _)) => Outbound::Usermode(tool),
        Err(why) => Outbound::LoopbackOnly(why),
    }
}

/// Whether envs can get outbound access here.
pub fn outbound_available() -> bool {
    !matches!(outbound(), Outbound::LoopbackOnly(_))
}

/// The `/etc/resolv.conf` for a container joining the network namespace
/// `netns` (a project's, or a lone container's of `run --network bridge`);
/// `None`: a container without outbound access (`isolated`, `host`,
/// `none`, or run's loopback).
pub fn resolv_conf(netns: Option<&Path>) -> String {
    match (outbound(), netns) {
        (Outbound::Bridge, Some(netns)) => dns::resolv_conf(dnat::bridge_of(netns)),
        (Outbound::Usermode(_), Some(_)) => dns::for_forwarder(usermode::DNS.into()),
        _ => dns::resolv_conf(None),
    }
}

/// What [`attach`] connected a namespace with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    Bridge(ProjectNetwork),
    Usermode(usermode::Tool),
}

/// The bridge's and the veth's names for the namespace file `owner`.
pub fn names(owner: &Path) -> (String, String) {
    let hash = blake3::hash(owner.as_os_str().as_encoded_bytes()).to_hex();
    let short = &hash.as_str()[..8];
    (format!("berth-{short}"), format!("berthv-{short}"))
}

fn link_err(what: String) -> impl FnOnce(io::Error) -> NetworkError {
    move |source| NetworkError::Link { what, source }
}

/// `Ok` also when the thing was there already.
fn made(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if link::exists(&e) => Ok(()),
        other => other,
    }
}

/// `Ok` also when the thing was not there.
fn gone(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if link::missing(&e) => Ok(()),
        other => other,
    }
}

/// Connects the project network namespace `netns` of `project` to the
/// outside (see the module page); finishes what an interrupted attach left.
/// The caller holds the store's exclusive lock. Rootless, a user-mode
/// helper is attached instead ([`usermode::attach`]).
pub fn attach(netns: &Path, project: &str) -> Result<Attached, NetworkError> {
    if super::userns::rootless() {
        let owner = std::path::absolute(netns).map_err(link_err(format!("find {}", netns.display())))?;
        return usermode::attach(&owner).map(Attached::Usermode);
    }
    attach_with(&Record::host(), netns, project).map(Attached::Bridge)
}

fn attach_with(record: &Record, netns: &Path, project: &str) -> Result<ProjectNetwork, NetworkError> {
    let owner = std::path::absolute(netns).map_err(link_err(format!("find {}", netns.display())))?;
    let (bridge, veth) = names(&owner);
    let _held = record.lock()?;
    let host6 = ipv6::host_support();
    let (subnet, v6) = match record.find(&owner)? {
        Some((subnet, a)) => (subnet, a.ipv6),
        None => {
            let wanted = Allocation {
                owner: owner.clone(),
                project: project.to_owned(),
                bridge: bridge.clone(),
                veth: veth.clone(),
                pid: std::process::id() as i32,
                ipv6: None,
            };
            let routes6 = host6.is_ok().then(ipv6::host_routes);
            let ((subnet, made), abandoned) = record.allocate(&wanted, &subnet::host_routes(), routes6.as_deref())?;
            for (old, what) in abandoned {
                teardown(old, &what)?;
            }
            (subnet, made.ipv6)
        }
    };
    // Recorded with IPv6 on a host that can no longer forward it safely
    // (an interface came to rely on router advertisements): IPv4 only now.
    let v6 = v6.filter(|_| host6.is_ok());
    nft::add(&bridge, subnet, v6, dns::forwarded_stub())?;
    firewall::admit()?;
    links(&owner, &bridge, &veth, subnet, v6)?;
    dnat::route_localnet(&bridge)?;
    dnat::inside(&owner)?;
    enable_forwarding()?;
    if v6.is_some() {
        ipv6::enable_forwarding().map_err(|source| NetworkError::Forwarding6 { source })?;
    }
    Ok(ProjectNetwork { subnet, ipv6: v6, bridge, veth })
}

/// The bridge, the veth pair, addresses and the namespace's default routes
/// (IPv6 too when the project has a /64, `v6`).
fn links(owner: &Path, bridge: &str, veth: &str, subnet: Subnet, v6: Option<Subnet6>) -> Result<(), NetworkError> {
    let mut host = Rtnl::open().map_err(link_err("open a netlink socket".into()))?;
    made(host.add_bridge(bridge)).map_err(link_err(format!("make the bridge {bridge}")))?;
    let br = host.index(bridge).map_err(link_err(format!("find the bridge {bridge}")))?;
    made(host.add_address(br, subnet.gateway().into(), Subnet::PREFIX))
        .map_err(link_err(format!("give {bridge} the address {}", subnet.gateway())))?;
    if let Some(v6) = v6 {
        made(host.add_address(br, v6.gateway().into(), Subnet6::PREFIX))
            .map_err(link_err(format!("give {bridge} the address {}", v6.gateway())))?;
    }
    host.set_up(br).map_err(link_err(format!("bring {bridge} up")))?;

    let in_ns = |what: String, f: &(dyn Fn(&mut Rtnl) -> io::Result<()> + Sync)| {
        crate::sys::netns::in_net_ns(owner, || f(&mut Rtnl::open()?)).map_err(link_err(what))
    };
    let has_end = crate::sys::netns::in_net_ns(owner, || match Rtnl::open()?.index(NS_IFNAME) {
        Ok(_) => Ok(true),
        Err(e) if link::missing(&e) => Ok(false),
        Err(e) => Err(e),
    })
    .map_err(link_err(format!("look for {NS_IFNAME} in {}", owner.display())))?;
    if !has_end {
        // A host end without its peer is a leftover: make the pair anew.
        gone(host.delete(veth)).map_err(link_err(format!("remove the leftover {veth}")))?;
        let ns = std::fs::File::open(owner).map_err(link_err(format!("open {}", owner.display())))?;
        host.add_veth(veth, br, NS_IFNAME, ns.as_raw_fd())
            .map_err(link_err(format!("make the veth pair {veth} – {NS_IFNAME} into {}", owner.display())))?;
    }
    let v = host.index(veth).map_err(link_err(format!("find {veth}")))?;
    host.set_up(v).map_err(link_err(format!("bring {veth} up")))?;
    in_ns(format!("set up {NS_IFNAME} in {}", owner.display()), &|ns| {
        let i = ns.index(NS_IFNAME)?;
        made(ns.add_address(i, subnet.member().into(), Subnet::PREFIX))?;
        if let Some(v6) = v6 {
            made(ns.add_address(i, v6.member().into(), Subnet6::PREFIX))?;
        }
        ns.set_up(i)?;
        made(ns.add_default_route(i, subnet.gateway().into()))?;
        match v6 {
            Some(v6) => made(ns.add_default_route(i, v6.gateway().into())),
            None => Ok(()),
        }
    })
}

fn enable_forwarding() -> Result<(), NetworkError> {
    const KNOB: &str = "/proc/sys/net/ipv4/ip_forward";
    let now = std::fs::read_to_string(KNOB).map_err(|source| NetworkError::Forwarding { source })?;
    if now.trim() != "1" {
        std::fs::write(KNOB, "1").map_err(|source| NetworkError::Forwarding { source })?;
    }
    Ok(())
}

/// Removes what `a` names: its nftables elements, veth and bridge.
fn teardown(subnet: Subnet, a: &Allocation) -> Result<(), NetworkError> {
    nft::remove(&a.bridge, subnet, firewall::withdraw)?;
    let mut host = Rtnl::open().map_err(link_err("open a netlink socket".into()))?;
    gone(host.delete(&a.veth)).map_err(link_err(format!("remove {}", a.veth)))?;
    gone(host.delete(&a.bridge)).map_err(link_err(format!("remove {}", a.bridge)))?;
    Ok(())
}

/// Removes the network of the project namespace `netns` (whether or not
/// the namespace is still there); returns whether there was one.
pub fn detach(netns: &Path) -> Result<bool, NetworkError> {
    if super::userns::rootless() {
        // Whether or not a helper is installed now: one may have been then.
        let owner = std::path::absolute(netns).map_err(link_err(format!("find {}", netns.display())))?;
        return usermode::detach(&owner);
    }
    detach_with(&Record::host(), netns)
}

fn detach_with(record: &Record, netns: &Path) -> Result<bool, NetworkError> {
    if super::userns::rootless() || !record.exists() {
        return Ok(false);
    }
    let owner = std::path::absolute(netns).map_err(link_err(format!("find {}", netns.display())))?;
    // A first look without the lock: records land by rename, and only an
    // attach of this namespace, which the store's exclusive lock (held
    // here) keeps out, could add one for it. Most namespaces have none.
    if record.find(&owner)?.is_none() {
        return Ok(false);
    }
    let _held = record.lock()?;
    let Some((subnet, a)) = record.find(&owner)? else { return Ok(false) };
    teardown(subnet, &a)?;
    record.release(subnet)?;
    Ok(true)
}

/// The recorded networks whose namespace file lies in one of `dirs` (a
/// store's `projects/` and `netns/`) but is gone: what a crash between
/// removing the namespace and its network leaves. `fsck --repair` detaches
/// them.
pub fn orphans(dirs: &[PathBuf]) -> Result<Vec<(Subnet, Allocation)>, NetworkError> {
    let record = Record::host();
    // Rootless berth has no bridges (its helpers are `usermode::orphans`).
    if super::userns::rootless() || !record.exists() {
        return Ok(Vec::new());
    }
    let mut within = Vec::new();
    for d in dirs {
        within.push(std::path::absolute(d).map_err(link_err(format!("find {}", d.display())))?);
    }
    // Read without the lock: records land by rename, and `fsck --repair`
    // looks again under it (`detach`).
    Ok(record
        .entries()?
        .into_iter()
        .filter_map(|(s, a)| a.map(|a| (s, a)))
        .filter(|(_, a)| a.owner.parent().is_some_and(|p| within.iter().any(|d| d == p)) && !a.owner.exists())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernels_limit_and_differ_per_namespace() {
        let (bridge, veth) = names(Path::new("/var/lib/berth/projects/shop.netns"));
        assert!(bridge.starts_with("berth-") && veth.starts_with("berthv-"));
        assert!(bridge.len() <= 15 && veth.len() <= 15, "{bridge} {veth}");
        assert_eq!(bridge[6..], veth[7..]);
        assert_ne!(names(Path::new("/other/projects/shop.netns")).0, bridge);
    }
}
