//! Rootless outbound access: a user-mode network helper attached to a
//! project's network namespace, as podman does for rootless containers.
//! An ordinary user cannot make a bridge or a veth on the host, so a helper
//! process in the host's network namespace plays the whole outside world
//! for a tap device `eth0` in the project's namespace: it reads the
//! packets the envs send and makes ordinary sockets of the user's own for
//! them (TCP, UDP, ICMP echo), and forwards DNS queries sent to
//! [`DNS`] to the host's resolver.
//!
//! ```text
//!  project namespace (STORE/projects/NAME.netns)      host (the user's sockets)
//!  ┌────────────────────────────────┐   tap   ┌───────────────────────────────┐
//!  │ eth0 10.0.2.100/24             │ ◀─────▶ │ pasta or slirp4netns ─────────┼─▶ connect(), sendto()
//!  │ default via 10.0.2.2           │         │ 10.0.2.3:53 → host's resolver │
//!  │ nameserver 10.0.2.3            │         └───────────────────────────────┘
//!  └────────────────────────────────┘
//! ```
//!
//! # Which helper
//!
//! pasta (Debian's `passt`) when it is installed, else slirp4netns, chosen
//! at run time ([`choose`]); neither is installed by berth (only root could).
//! Both need `/dev/net/tun` open to the user (mode 0666, as Debian's udev
//! rules make it). Without a helper, or without the device, a rootless
//! project network stays loopback only and `berth plan` says why.
//! [`FORCE_ENV`] forces one tool (or `none`) for debugging. Both give the
//! same addresses (slirp4netns's defaults: [`ADDRESS`], gateway
//! [`GATEWAY`], DNS [`DNS`]), so `/etc/resolv.conf` does not depend on the
//! tool. Neither reaches the host's loopback (pasta `--no-map-gw`,
//! slirp4netns `--disable-host-loopback`, podman's defaults): a service on
//! the host is reached by one of the host's other addresses. pasta's own
//! port forwarding is off (`-t none …`): published ports stay on the shim's
//! proxy.
//!
//! # Lifetime
//!
//! The helper is started by [`attach`] when `up` (or `run --network
//! bridge`) makes or finds the namespace, and lives as long as it: a
//! record in `STORE/usermode/KEY.json` (KEY: a hash of the namespace
//! file's path) names the tool, its pid and start time and the namespace's
//! inode. [`detach`] (with the namespace: `down`, the project's last `rm`,
//! `fsck --repair`) ends exactly that process, after checking that the pid
//! still belongs to a helper started at the recorded time with this
//! namespace on its command line, and removes the record. A helper whose
//! record berth did not get to write (berth killed between the two) is
//! found by its command line, which names the namespace file, and ended
//! too. pasta also quits by itself about a second after the namespace
//! file is deleted (checked on bookworm's 2023-03-09 version);
//! slirp4netns does not, so berth never relies on it.

use std::io;
use std::net::Ipv4Addr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

mod start;

use super::NetworkError;
use crate::runtime::state::{process_alive, process_start_time};

/// The namespace's address.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
/// The namespace's default gateway: the helper.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The helper's DNS forwarder, the container's one nameserver.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The prefix length of [`ADDRESS`].
pub const PREFIX: u8 = 24;
/// The tap device's MTU (the largest both helpers take, as podman sets it).
pub const MTU: u32 = 65520;
/// The device both helpers open.
pub const TUN: &str = "/dev/net/tun";
/// A debugging knob: `pasta`, `slirp4netns` or `none` (loopback only).
pub const FORCE_ENV: &str = "BERTH_ROOTLESS_NET";

/// How long a helper may take to end after SIGTERM, before SIGKILL.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// A user-mode network helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Pasta,
    Slirp4netns,
}

impl Tool {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Pasta => "pasta",
            Tool::Slirp4netns => "slirp4netns",
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Pasta => "passt",
            Tool::Slirp4netns => "slirp4netns",
        }
    }
}

/// The helper to use here and its path, or why there is none (what to
/// install or change).
pub fn choose() -> Result<(Tool, PathBuf), String> {
    let forced = std::env::var(FORCE_ENV).ok();
    choose_with(forced.as_deref(), crate::tools::find_program, tun_usable)
}

/// [`choose`] with the knob's value, the program finder and the tun
/// check given.
fn choose_with(
    forced: Option<&str>,
    find: impl Fn(&str) -> Option<PathBuf>,
    tun: impl FnOnce() -> io::Result<()>,
) -> Result<(Tool, PathBuf), String> {
    let tools = match forced.filter(|v| !v.is_empty()) {
        None => vec![Tool::Pasta, Tool::Slirp4netns],
        Some("pasta") => vec![Tool::Pasta],
        Some("slirp4netns") => vec![Tool::Slirp4netns],
        Some("none") => return Err(format!("{FORCE_ENV}=none")),
        Some(other) => return Err(format!("{FORCE_ENV}={other:?} is not pasta, slirp4netns or none")),
    };
    let Some((tool, path)) = tools.iter().find_map(|t| find(t.program()).map(|p| (*t, p))) else {
        let wanted: Vec<String> =
            tools.iter().map(|t| format!("{} (Debian: apt-get install {})", t.program(), t.package())).collect();
        return Err(format!("outbound access needs {} installed", wanted.join(" or ")));
    };
    tun().map_err(|e| {
        format!(
            "{} needs {TUN} open to you ({e}); as root: chmod 0666 {TUN}, as Debian's udev rules make it",
            tool.program()
        )
    })?;
    Ok((tool, path))
}

/// Whether this process may open the tun device for reading and writing
/// (opening it alone makes no device).
fn tun_usable() -> io::Result<()> {
    std::fs::OpenOptions::new().read(true).write(true).open(TUN).map(drop)
}

/// What [`attach`] records about a running helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Helper {
    /// The namespace file (absolute).
    netns: PathBuf,
    /// Its inode when the helper attached (a namespace made anew has another).
    ns_inode: u64,
    tool: Tool,
    pid: i32,
    /// The start time of `pid` (`/proc/PID/stat`), so a reused pid is not taken for it.
    start: u64,
}

/// `STORE/usermode/` for a namespace file `STORE/projects/NAME.netns` or
/// `STORE/netns/ID.netns`.
fn record_dir(netns: &Path) -> PathBuf {
    netns.parent().and_then(Path::parent).unwrap_or(Path::new("/")).join("usermode")
}

/// The files of the helper of `netns`: record, log, pasta's pid file.
struct Files {
    record: PathBuf,
    log: PathBuf,
    pid: PathBuf,
}

fn files(netns: &Path) -> Files {
    let key = &blake3::hash(netns.as_os_str().as_encoded_bytes()).to_hex()[..16];
    let dir = record_dir(netns);
    Files {
        record: dir.join(format!("{key}.json")),
        log: dir.join(format!("{key}.log")),
        pid: dir.join(format!("{key}.pid")),
    }
}

fn fail(netns: &Path, what: String) -> NetworkError {
    NetworkError::Usermode { netns: netns.to_path_buf(), what }
}

fn read_record(path: &Path) -> Option<Helper> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Connects the namespace `netns` (absolute) to the outside with the
/// helper [`choose`] picks, unless the recorded helper is still attached
/// to it. The caller holds the store's exclusive lock.
pub fn attach(netns: &Path) -> Result<Tool, NetworkError> {
    let (tool, program) = choose().map_err(|why| fail(netns, format!("start a network helper: {why}")))?;
    let ns_inode = std::fs::metadata(netns).map_err(|e| fail(netns, format!("look at the namespace: {e}")))?.ino();
    let f = files(netns);
    if let Some(h) = read_record(&f.record)
        && h.ns_inode == ns_inode
        && is_the_helper(&h)
    {
        return Ok(h.tool);
    }
    // A helper of an older namespace of the same name, or one whose record
    // was never written: ended, so that only one serves the namespace.
    end_all(netns, &f)?;
    let dir = record_dir(netns);
    std::fs::create_dir_all(&dir).map_err(|e| fail(netns, format!("make {}: {e}", dir.display())))?;
    let pid = match tool {
        Tool::Pasta => start::start_pasta(&program, netns, &f)?,
        Tool::Slirp4netns => start::start_slirp4netns(&program, netns, &f)?,
    };
    let start =
        process_start_time(pid).map_err(|e| fail(netns, format!("{} (pid {pid}) is gone: {e}", tool.program())))?;
    let h = Helper { netns: netns.to_path_buf(), ns_inode, tool, pid, start };
    let json = serde_json::to_vec_pretty(&h).expect("a helper record always serialises");
    crate::store::atomic_write(&dir, &f.record, &json)
        .map_err(|e| fail(netns, format!("record the helper in {}: {e}", f.record.display())))?;
    Ok(tool)
}

/// Whether the recorded helper still runs: its pid, started at the
/// recorded time, with the namespace on its command line.
fn is_the_helper(h: &Helper) -> bool {
    process_alive(h.pid, h.start) && names_netns(h.pid, &h.netns)
}

/// Whether the recorded helper is still there, if only exiting (pasta
/// quits by itself when its namespace file goes; an exiting process shows
/// an empty command line): the pid and start time suffice.
fn is_or_was_the_helper(h: &Helper) -> bool {
    is_the_helper(h)
        || (process_alive(h.pid, h.start)
            && std::fs::read(format!("/proc/{}/cmdline", h.pid)).is_ok_and(|c| c.is_empty()))
}

/// Whether process `pid` is pasta or slirp4netns with `netns` as an argument.
fn names_netns(pid: i32, netns: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let mut args = cmdline.split(|b| *b == 0);
    let program = args.next().map(|a| Path::new(std::ffi::OsStr::from_bytes(a)).file_name().map(|n| n.to_owned()));
    let is_helper = program.flatten().is_some_and(|n| n == "pasta" || n == "slirp4netns");
    is_helper && args.any(|a| a == netns.as_os_str().as_encoded_bytes())
}

/// The pids of every helper naming `netns` on its command line.
fn helpers_of(netns: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32 && names_netns(*pid, netns))
        .collect()
}

/// Ends every helper of `netns` (the recorded one and any other naming
/// it) and removes the record, log and pid file; whether there was any.
fn end_all(netns: &Path, f: &Files) -> Result<bool, NetworkError> {
    let recorded = read_record(&f.record);
    let mut pids = helpers_of(netns);
    if let Some(h) = &recorded {
        pids.retain(|p| *p != h.pid);
        if is_or_was_the_helper(h) {
            pids.push(h.pid);
        }
    }
    let there = recorded.is_some() || !pids.is_empty();
    for pid in pids {
        end(pid).map_err(|e| fail(netns, format!("end its helper (pid {pid}): {e}")))?;
    }
    for path in [&f.record, &f.log, &f.pid] {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(fail(netns, format!("remove {}: {e}", path.display())));
            }
            _ => {}
        }
    }
    Ok(there)
}

/// SIGTERM, then SIGKILL if it is still there after [`GONE_WITHIN`]; waits
/// until it is gone (a zombie counts as gone: its parent reaps it).
fn end(pid: i32) -> io::Result<()> {
    let Ok(start) = process_start_time(pid) else { return Ok(()) };
    crate::sys::proc::kill(Pid::from_raw(pid), Signal::SIGTERM)?;
    let deadline = Instant::now() + GONE_WITHIN;
    let mut killed = false;
    while process_alive(pid, start) {
        if Instant::now() >= deadline + GONE_WITHIN {
            return Err(io::Error::other("still running after SIGKILL"));
        }
        if !killed && Instant::now() >= deadline {
            crate::sys::proc::kill(Pid::from_raw(pid), Signal::SIGKILL)?;
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Ends the helper of the namespace `netns` (absolute; whether or not the
/// namespace is still there) and removes its record; whether there was one.
pub fn detach(netns: &Path) -> Result<bool, NetworkError> {
    end_all(netns, &files(netns))
}

/// The namespaces named by helper records in `STORE/usermode/` whose
/// namespace file is gone: what a crash between removing a namespace and
/// its helper leaves. `fsck --repair` detaches them.
pub fn orphans(store_root: &Path) -> Vec<(PathBuf, &'static str, i32)> {
    let dir = store_root.join("usermode");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, &'static str, i32)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read_record(&e.path()))
        .filter(|h| !crate::sys::ns::is_persistent_ns(&h.netns).unwrap_or(false))
        .map(|h| (h.netns, h.tool.program(), h.pid))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sit_in_the_stores_usermode_directory_one_per_namespace() {
        let a = files(Path::new("/s/projects/shop.netns"));
        let b = files(Path::new("/s/netns/0123456789abcdef.netns"));
        assert_eq!(a.record.parent(), Some(Path::new("/s/usermode")));
        assert_eq!(b.record.parent(), Some(Path::new("/s/usermode")));
        assert_ne!(a.record, b.record);
        assert_eq!(a.log.with_extension("json"), a.record);
    }

    #[test]
    fn pasta_first_then_slirp4netns_unless_forced() {
        let both = |p: &str| Some(PathBuf::from(format!("/usr/bin/{p}")));
        let slirp_only = |p: &str| (p == "slirp4netns").then(|| PathBuf::from("/usr/bin/slirp4netns"));
        let open = || Ok(());
        assert_eq!(choose_with(None, both, open).unwrap().0, Tool::Pasta);
        assert_eq!(choose_with(Some(""), slirp_only, open).unwrap().0, Tool::Slirp4netns);
        assert_eq!(choose_with(Some("slirp4netns"), both, open).unwrap().0, Tool::Slirp4netns);
        let none = choose_with(Some("pasta"), slirp_only, open).unwrap_err();
        assert!(none.contains("needs pasta (Debian: apt-get install passt) installed"), "{none}");
        assert_eq!(choose_with(Some("none"), both, open).unwrap_err(), "BERTH_ROOTLESS_NET=none");
        assert!(choose_with(Some("slirp"), both, open).unwrap_err().contains("is not pasta, slirp4netns or none"));
        let neither = choose_with(None, |_: &str| None, open).unwrap_err();
        assert!(neither.contains("pasta (Debian: apt-get install passt) or slirp4netns"), "{neither}");
    }

    #[test]
    fn a_closed_tun_device_says_how_to_open_it() {
        let both = |p: &str| Some(PathBuf::from(format!("/usr/bin/{p}")));
        let closed = || Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let why = choose_with(None, both, closed).unwrap_err();
        assert!(why.starts_with("pasta needs /dev/net/tun open to you") && why.contains("chmod 0666"), "{why}");
    }

    #[test]
    fn this_process_is_no_helper() {
        let me = std::process::id() as i32;
        assert!(!names_netns(me, Path::new("/s/projects/shop.netns")));
        assert!(helpers_of(Path::new("/nowhere/projects/none.netns")).is_empty());
    }
}
