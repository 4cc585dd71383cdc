//! Docker's defaults for a container, as tables: mounts, capabilities,
//! device nodes and device cgroup rules, masked and read-only paths.

use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// `PATH` when the image and the request set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (bounding, effective and permitted;
/// inheritable and ambient stay empty).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// [`DEFAULT_CAPABILITIES`] as the mask `/proc/PID/status` shows in `CapEff`
/// for root in a Docker container.
pub fn default_capabilities_mask() -> u64 {
    0x0000_0000_a804_25fb
}

pub(super) fn capabilities() -> LinuxCapabilities {
    let set: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(Capabilities::new()));
    caps.set_ambient(Some(Capabilities::new()));
    caps
}

/// Destination, type, source, options — in mount order (parents first).
pub(super) const MOUNTS: &[(&str, &str, &str, &[&str])] = &[
    ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
    // noexec as podman: nothing in /dev is a program.
    ("/dev", "tmpfs", "tmpfs", &["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]),
    ("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
    ("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
    ("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
];

pub(super) const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    // The host's block devices by number, as podman masks them.
    "/sys/dev/block",
];

pub(super) const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Path, major, minor of the standard character devices.
const DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub(super) fn devices() -> Vec<LinuxDevice> {
    DEVICES
        .iter()
        .map(|&(path, major, minor)| {
            let mut d = LinuxDevice::default();
            d.set_path(PathBuf::from(path));
            d.set_typ(LinuxDeviceType::C);
            d.set_major(major);
            d.set_minor(minor);
            d.set_file_mode(Some(0o666));
            d.set_uid(Some(0));
            d.set_gid(Some(0));
            d
        })
        .collect()
}

fn rule(allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// Docker's device cgroup rules: deny everything, allow `mknod` of any
/// device, and read/write/mknod of the standard nodes, ptys and `/dev/tty`,
/// `/dev/console`, `/dev/ptmx`, `/dev/net/tun`.
pub(super) fn device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    let mut rules =
        vec![rule(false, A, None, None, "rwm"), rule(true, C, None, None, "m"), rule(true, B, None, None, "m")];
    for &(_, major, minor) in DEVICES {
        rules.push(rule(true, C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, C, Some(136), None, "rwm")); // /dev/pts/*
    rules.push(rule(true, C, Some(5), Some(2), "rwm")); // /dev/ptmx
    rules.push(rule(true, C, Some(5), Some(1), "rwm")); // /dev/console
    rules.push(rule(true, C, Some(10), Some(200), "rwm")); // /dev/net/tun
    rules
}
