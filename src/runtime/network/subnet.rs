//! Project subnets and the host-wide record of which project holds which.
//!
//! Every project network gets one /24 from [`POOL`] (`10.123.0.0/16`): the
//! bridge takes `.1`, the project's namespace `.2`; on a host with IPv6 for
//! projects also the /64 that goes with it (`super::ipv6`), recorded with
//! it. The record lives where
//! every store of the host sees it, [`HOST_NETS_DIR`] (root's, mode 0700),
//! one file per subnet, named by its network address, holding the
//! [`Allocation`]: the project's namespace file (the owner), its bridge and
//! veth names and the pid of the berth process that allocated it. The
//! directory's `lock` (`flock`) is held across a whole attach or detach, so
//! two `up`s at once, of one store or two, never take one subnet, and the
//! nftables sets are changed by one berth at a time.
//!
//! A subnet is free when no record names it and no route of the host
//! (`/proc/net/route`, the default route aside) overlaps it: a LAN or VPN
//! on 10.123.x is never shadowed. A record whose namespace file is gone and
//! whose allocating process has ended is abandoned (a store deleted with
//! `rm -rf`, a crash): the next allocation takes it back, and its caller
//! removes what the record names.

use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::NetworkError;
use super::ipv6::{self, Route6, Subnet6};
use crate::sys::lock::{self, FileLock, LockMode};

/// Where root's berth records the subnets it handed out, for every store.
pub const HOST_NETS_DIR: &str = "/var/lib/berth-net";

/// The first two octets of every project subnet: `10.123.0.0/16`.
pub const POOL: [u8; 2] = [10, 123];

/// One project's /24 in [`POOL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet(u8);

impl Subnet {
    /// The prefix length of every project subnet.
    pub const PREFIX: u8 = 24;

    /// Every subnet of the pool, lowest first.
    pub fn all() -> impl Iterator<Item = Subnet> {
        (0..=u8::MAX).map(Subnet)
    }

    /// The network address, as in `10.123.4.0`.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.0, 0)
    }

    /// The bridge's address: the namespace's gateway.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.0, 1)
    }

    /// The project namespace's address.
    pub fn member(self) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.0, 2)
    }

    /// Whether this subnet and `net/prefix` share an address.
    pub fn overlaps(self, net: Ipv4Addr, prefix: u8) -> bool {
        let shorter = prefix.min(Self::PREFIX);
        let mask = if shorter == 0 { 0 } else { u32::MAX << (32 - u32::from(shorter)) };
        u32::from(self.network()) & mask == u32::from(net) & mask
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), Self::PREFIX)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;

    /// `10.123.4.0` or `10.123.4.0/24`.
    fn from_str(s: &str) -> Result<Subnet, String> {
        let addr = s.strip_suffix("/24").unwrap_or(s);
        let ip: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?} is no IPv4 network address"))?;
        let [a, b, c, d] = ip.octets();
        if [a, b] != POOL || d != 0 {
            return Err(format!("{s:?} is no /24 of berth's pool {}.{}.0.0/16", POOL[0], POOL[1]));
        }
        Ok(Subnet(c))
    }
}

/// What one record file says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allocation {
    /// The project's network namespace file (`STORE/projects/NAME.netns`).
    pub owner: PathBuf,
    pub project: String,
    /// The bridge on the host.
    pub bridge: String,
    /// The host's end of the veth pair into the namespace.
    pub veth: String,
    /// The berth process that allocated it.
    pub pid: i32,
    /// The project's IPv6 /64, when the host had IPv6 for projects at
    /// allocation ([`super::ipv6`]); absent in records of IPv4-only projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Subnet6>,
}

impl Allocation {
    /// Still in use: its namespace file exists, or the process that
    /// allocated it (and may be making that file) still runs.
    fn live(&self) -> bool {
        self.owner.exists() || Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A subnet and what its record says.
pub type Recorded = (Subnet, Allocation);

/// The host-wide record, kept in one directory.
#[derive(Debug, Clone)]
pub struct Record {
    dir: PathBuf,
}

impl Record {
    /// The record every store of this host shares ([`HOST_NETS_DIR`]).
    pub fn host() -> Record {
        Record::at(Path::new(HOST_NETS_DIR))
    }

    /// A record kept in `dir` (tests).
    pub fn at(dir: &Path) -> Record {
        Record { dir: dir.to_path_buf() }
    }

    fn io<'a>(&'a self, action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetworkError + 'a {
        move |source| NetworkError::Record { action, path: path.to_path_buf(), source }
    }

    /// Takes the record's lock, making the directory (mode 0700) and the
    /// lock file first when they are missing. An existing lock file is
    /// opened read-only (`flock` needs no more), so that a look at a record
    /// on a read-only filesystem (a host's root shared with a test machine)
    /// finds nothing to do instead of failing.
    pub fn lock(&self) -> Result<FileLock, NetworkError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = self.dir.join("lock");
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(self.io("make", &self.dir))?;
                File::options().create(true).truncate(false).write(true).open(&path).map_err(self.io("open", &path))?
            }
            Err(e) => return Err(self.io("open", &path)(e)),
        };
        lock::lock(file, LockMode::Exclusive).map_err(self.io("lock", &path))
    }

    /// Every recorded subnet and what its file says (`None`: unreadable,
    /// which counts as used). The caller holds [`Record::lock`].
    pub fn entries(&self) -> Result<Vec<(Subnet, Option<Allocation>)>, NetworkError> {
        let mut out = Vec::new();
        let items = match fs::read_dir(&self.dir) {
            Ok(items) => items,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.io("list", &self.dir)(e)),
        };
        for item in items {
            let item = item.map_err(self.io("list", &self.dir))?;
            let Some(subnet) = item.file_name().to_str().and_then(|n| n.parse::<Subnet>().ok()) else { continue };
            let text = fs::read_to_string(item.path()).ok();
            out.push((subnet, text.and_then(|t| serde_json::from_str(&t).ok())));
        }
        out.sort_by_key(|(s, _)| *s);
        Ok(out)
    }

    /// The subnet recorded for `owner`, if any. The caller holds the lock.
    pub fn find(&self, owner: &Path) -> Result<Option<(Subnet, Allocation)>, NetworkError> {
        Ok(self.entries()?.into_iter().find_map(|(s, a)| a.filter(|a| a.owner == owner).map(|a| (s, a))))
    }

    /// Records the lowest subnet that no live record holds and no route of
    /// `routes` overlaps, for `wanted`, with its IPv6 /64 when `routes6` is
    /// given (the host has IPv6 for projects) and none of them overlaps it.
    /// Returns the record, and the abandoned records it removed (whose
    /// links and rules the caller removes). The caller holds the lock.
    pub fn allocate(
        &self,
        wanted: &Allocation,
        routes: &[(Ipv4Addr, u8)],
        routes6: Option<&[Route6]>,
    ) -> Result<(Recorded, Vec<Recorded>), NetworkError> {
        let mut used = Vec::new();
        let mut abandoned = Vec::new();
        for (subnet, entry) in self.entries()? {
            match entry {
                Some(a) if !a.live() => {
                    let path = self.path(subnet);
                    fs::remove_file(&path).map_err(self.io("remove the abandoned record", &path))?;
                    abandoned.push((subnet, a));
                }
                Some(a) if a.bridge == wanted.bridge => {
                    return Err(NetworkError::NameClash {
                        bridge: a.bridge,
                        owner: a.owner,
                        wanted: wanted.owner.clone(),
                    });
                }
                _ => used.push(subnet),
            }
        }
        let subnet = Subnet::all()
            .find(|s| !used.contains(s) && !routes.iter().any(|(net, len)| s.overlaps(*net, *len)))
            .ok_or_else(|| NetworkError::Exhausted { dir: self.dir.clone() })?;
        let path = self.path(subnet);
        let tmp = self.dir.join(format!(".{}.tmp", subnet.network()));
        let mut made = wanted.clone();
        made.ipv6 = routes6.and_then(|r| ipv6::choose(subnet, r));
        let json = serde_json::to_vec_pretty(&made).expect("an allocation always serialises");
        fs::write(&tmp, json).and_then(|()| fs::rename(&tmp, &path)).map_err(self.io("record the subnet in", &path))?;
        Ok(((subnet, made), abandoned))
    }

    /// Removes the record of `subnet`. The caller holds the lock.
    pub fn release(&self, subnet: Subnet) -> Result<(), NetworkError> {
        let path = self.path(subnet);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    fn path(&self, subnet: Subnet) -> PathBuf {
        self.dir.join(subnet.network().to_string())
    }

    /// Whether the record's directory exists (nothing was ever recorded
    /// when it does not).
    pub fn exists(&self) -> bool {
        self.dir.exists()
    }
}

/// The IPv4 routes of the host's main table (`/proc/net/route`), as
/// (network, prefix length), the default route left out.
pub fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    fs::read_to_string("/proc/net/route").map(|t| parse_routes(&t)).unwrap_or_default()
}

/// Parses `/proc/net/route`: a header line, then per route the interface,
/// destination, gateway, flags, refcnt, use, metric and mask, addresses as
/// little-endian hex.
fn parse_routes(text: &str) -> Vec<(Ipv4Addr, u8)> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.swap_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (dest, mask) = (hex(cols.get(1)?)?, hex(cols.get(7)?)?);
            let prefix = u32::from(mask).leading_ones() as u8;
            (prefix > 0).then_some((dest, prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(tmp: &Path, name: &str) -> Allocation {
        let owner = tmp.join(format!("{name}.netns"));
        fs::write(&owner, b"").unwrap();
        Allocation {
            owner,
            project: name.into(),
            bridge: format!("berth-{name}"),
            veth: format!("berthv-{name}"),
            pid: 0,
            ipv6: None,
        }
    }

    #[test]
    fn subnets_parse_print_and_overlap() {
        let s: Subnet = "10.123.7.0".parse().unwrap();
        assert_eq!(s.to_string(), "10.123.7.0/24");
        assert_eq!("10.123.7.0/24".parse::<Subnet>().unwrap(), s);
        assert_eq!((s.gateway(), s.member()), (Ipv4Addr::new(10, 123, 7, 1), Ipv4Addr::new(10, 123, 7, 2)));
        assert!("10.124.7.0".parse::<Subnet>().is_err() && "10.123.7.1".parse::<Subnet>().is_err());
        assert!(s.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(s.overlaps(Ipv4Addr::new(10, 123, 7, 128), 25));
        assert!(!s.overlaps(Ipv4Addr::new(10, 123, 8, 0), 24));
        assert!(!s.overlaps(Ipv4Addr::new(192, 0, 2, 0), 24));
    }

    #[test]
    fn routes_parse_from_proc() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    vpn0\t00007B0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(parse_routes(text), [(Ipv4Addr::new(192, 0, 2, 0), 24), (Ipv4Addr::new(10, 123, 0, 0), 16)]);
    }

    #[test]
    fn allocation_avoids_records_and_routes_and_takes_back_abandoned_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let record = Record::at(&tmp.path().join("r"));
        let _held = record.lock().unwrap();
        let a = wanted(tmp.path(), "a");
        let ((first, made), none) = record.allocate(&a, &[], None).unwrap();
        assert_eq!((first, none.len()), ("10.123.0.0".parse().unwrap(), 0));
        assert_eq!(made, a, "no IPv6 on this host: none recorded");
        // A route over 10.123.1.0/24 is skipped; a host with IPv6 gives the
        // project the /64 of its /24.
        let routes = [(Ipv4Addr::new(10, 123, 1, 0), 24)];
        let ((second, b), _) = record.allocate(&wanted(tmp.path(), "b"), &routes, Some(&[])).unwrap();
        assert_eq!(second, "10.123.2.0".parse().unwrap());
        assert_eq!(b.ipv6, Some(Subnet6::of(second)));
        assert_eq!(record.find(&b.owner).unwrap().unwrap(), (second, b));
        assert_eq!(record.find(&a.owner).unwrap().unwrap(), (first, a.clone()));
        // The same bridge name for another owner is refused.
        let mut clash = wanted(tmp.path(), "c");
        clash.bridge = a.bridge.clone();
        assert!(matches!(record.allocate(&clash, &[], None), Err(NetworkError::NameClash { .. })));
        // a's namespace file is gone and pid 0 never runs: abandoned.
        fs::remove_file(&a.owner).unwrap();
        let ((again, _), abandoned) = record.allocate(&wanted(tmp.path(), "d"), &[], None).unwrap();
        assert_eq!((again, abandoned), (first, vec![(first, a)]));
        record.release(second).unwrap();
        assert_eq!(record.entries().unwrap().len(), 1);
    }
}
