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
//! published port left; the table with the last project), the veth,
//! the bridge (its address and route go with it) and the subnet's record.
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
//! every store of the host. Rootless berth gets no outbound access in this
//! stage: its project network stays loopback only.

pub mod dnat;
pub mod dns;
mod link;
mod nft;
pub mod subnet;

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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
}

/// What a project network is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectNetwork {
    pub subnet: Subnet,
    pub bridge: String,
    pub veth: String,
}

/// Whether envs can get outbound access here: only berth as root in this
/// stage (rootless outbound would need pasta or slirp4netns).
pub fn outbound_available() -> bool {
    !super::userns::rootless()
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
/// The caller holds the store's exclusive lock.
pub fn attach(netns: &Path, project: &str) -> Result<ProjectNetwork, NetworkError> {
    attach_with(&Record::host(), netns, project)
}

fn attach_with(record: &Record, netns: &Path, project: &str) -> Result<ProjectNetwork, NetworkError> {
    let owner = std::path::absolute(netns).map_err(link_err(format!("find {}", netns.display())))?;
    let (bridge, veth) = names(&owner);
    let _held = record.lock()?;
    let subnet = match record.find(&owner)? {
        Some((subnet, _)) => subnet,
        None => {
            let wanted = Allocation {
                owner: owner.clone(),
                project: project.to_owned(),
                bridge: bridge.clone(),
                veth: veth.clone(),
                pid: std::process::id() as i32,
            };
            let (subnet, abandoned) = record.allocate(&wanted, &subnet::host_routes())?;
            for (old, what) in abandoned {
                teardown(old, &what)?;
            }
            subnet
        }
    };
    nft::add(&bridge, subnet, dns::forwarded_stub())?;
    links(&owner, &bridge, &veth, subnet)?;
    dnat::route_localnet(&bridge)?;
    dnat::inside(&owner)?;
    enable_forwarding()?;
    Ok(ProjectNetwork { subnet, bridge, veth })
}

/// The bridge, the veth pair, addresses and the namespace's default route.
fn links(owner: &Path, bridge: &str, veth: &str, subnet: Subnet) -> Result<(), NetworkError> {
    let mut host = Rtnl::open().map_err(link_err("open a netlink socket".into()))?;
    made(host.add_bridge(bridge)).map_err(link_err(format!("make the bridge {bridge}")))?;
    let br = host.index(bridge).map_err(link_err(format!("find the bridge {bridge}")))?;
    made(host.add_address(br, subnet.gateway(), Subnet::PREFIX))
        .map_err(link_err(format!("give {bridge} the address {}", subnet.gateway())))?;
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
        made(ns.add_address(i, subnet.member(), Subnet::PREFIX))?;
        ns.set_up(i)?;
        made(ns.add_default_route(i, subnet.gateway()))
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
    nft::remove(&a.bridge, subnet)?;
    let mut host = Rtnl::open().map_err(link_err("open a netlink socket".into()))?;
    gone(host.delete(&a.veth)).map_err(link_err(format!("remove {}", a.veth)))?;
    gone(host.delete(&a.bridge)).map_err(link_err(format!("remove {}", a.bridge)))?;
    Ok(())
}

/// Removes the network of the project namespace `netns` (whether or not
/// the namespace is still there); returns whether there was one.
pub fn detach(netns: &Path) -> Result<bool, NetworkError> {
    detach_with(&Record::host(), netns)
}

fn detach_with(record: &Record, netns: &Path) -> Result<bool, NetworkError> {
    if !outbound_available() || !record.exists() {
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
    if !outbound_available() || !record.exists() {
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
