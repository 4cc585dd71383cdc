//! The security edits of a container's spec, after Docker's defaults
//! ([`super::spec::default_spec`]) are in place: capabilities
//! (`--cap-add`, `--cap-drop`), `--privileged`, the seccomp filter and
//! `no_new_privs`, and what this host needs (no `CAP_MKNOD` without a
//! device cgroup, no `gid=5` on `/dev/pts` without a group to map it to).
//!
//! `--privileged` means what it means in Docker: every capability, no
//! seccomp filter, the host's devices (and a device cgroup that allows
//! them), nothing masked and nothing read-only under `/proc` and `/sys`.
//! It is the one option that gives the container the host: `plan` and
//! `inspect` say so.

use std::path::Path;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Spec};

use super::seccomp::Profile;
use super::security::SecurityOptions;

/// The group that owns terminals (`gid=` of the devpts mount).
const TTY_GID: u32 = 5;

/// Applies `security` (and `seccomp`, the profile it chose) to `spec`.
pub(super) fn apply(spec: &mut Spec, security: &SecurityOptions, seccomp: Option<&Profile>) {
    if security.privileged {
        privileged(spec);
    }
    if security.privileged || !security.cap_add.is_empty() || !security.cap_drop.is_empty() {
        let default: Vec<String> = super::spec::DEFAULT_CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
        let mut add = security.cap_add.clone();
        if security.privileged {
            add.push("ALL".parse().expect("ALL is a capability"));
        }
        set_capabilities(spec, &super::security::capability_set(&default, &add, &security.cap_drop));
    }
    if !security.privileged && !devices_enforced() {
        drop_capability(spec, Capability::Mknod);
    }
    if !super::userns::missing_ids(0, TTY_GID).is_empty() {
        // Without a subordinate range the group tty has no id: terminals
        // then belong to container root's group, as in podman.
        drop_mount_option(spec, "/dev/pts", &format!("gid={TTY_GID}"));
    }
    seccomp_and_privs(spec, seccomp, security.no_new_privileges);
}

/// Whether this host's cgroups can keep a container from opening device
/// nodes it makes (the v1 `devices` controller; v2 would need a BPF program,
/// which berth does not load).
fn devices_enforced() -> bool {
    matches!(super::cgroup::detect(), Ok(super::cgroup::Hierarchy::V1 { controllers }) if controllers.contains_key("devices"))
}

/// Docker's `--privileged` apart from capabilities: the host's devices,
/// every device allowed, no masked or read-only paths, `/sys` (and the
/// cgroup tree) writable.
fn privileged(spec: &mut Spec) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut devices = linux.devices().clone().unwrap_or_default();
    for d in super::mounts::host_devices(Path::new("/dev")) {
        if !devices.iter().any(|x| x.path() == d.path()) {
            devices.push(d);
        }
    }
    linux.set_devices(Some(devices));
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut all = oci_spec::runtime::LinuxDeviceCgroup::default();
    all.set_allow(true);
    all.set_access(Some("rwm".to_owned()));
    resources.set_devices(Some(vec![all]));
    linux.set_resources(Some(resources));
    linux.set_masked_paths(Some(Vec::new()));
    linux.set_readonly_paths(Some(Vec::new()));
    spec.set_linux(Some(linux));
    for dest in ["/sys", "/sys/fs/cgroup"] {
        drop_mount_option(spec, dest, "ro");
    }
}

/// Puts `names` (`CAP_…`) in the bounding, effective and permitted sets.
fn set_capabilities(spec: &mut Spec, names: &[String]) {
    let set: Capabilities =
        names.iter().filter_map(|n| Capability::from_str(n.trim_start_matches("CAP_")).ok()).collect();
    edit_capabilities(spec, |caps| {
        caps.set_bounding(Some(set.clone()));
        caps.set_effective(Some(set.clone()));
        caps.set_permitted(Some(set.clone()));
    });
}

/// Removes `cap` from every set.
fn drop_capability(spec: &mut Spec, cap: Capability) {
    edit_capabilities(spec, |caps| {
        let without = |set: &Option<Capabilities>| {
            set.clone().map(|mut s| {
                s.remove(&cap);
                s
            })
        };
        caps.set_bounding(without(caps.bounding()));
        caps.set_effective(without(caps.effective()));
        caps.set_permitted(without(caps.permitted()));
        caps.set_inheritable(without(caps.inheritable()));
        caps.set_ambient(without(caps.ambient()));
    });
}

fn edit_capabilities(spec: &mut Spec, edit: impl FnOnce(&mut LinuxCapabilities)) {
    let Some(mut process) = spec.process().clone() else { return };
    let mut caps = process.capabilities().clone().unwrap_or_default();
    edit(&mut caps);
    process.set_capabilities(Some(caps));
    spec.set_process(Some(process));
}

/// Removes `option` from the options of the mount at `destination`.
pub(super) fn drop_mount_option(spec: &mut Spec, destination: &str, option: &str) {
    let Some(mut mounts) = spec.mounts().clone() else { return };
    for m in mounts.iter_mut().filter(|m| m.destination() == Path::new(destination)) {
        let options = m.options().clone().map(|o| o.into_iter().filter(|x| x != option).collect());
        m.set_options(options);
    }
    spec.set_mounts(Some(mounts));
}

/// Puts `no_new_privs` and the seccomp profile, decided for the spec's
/// effective capabilities (so after every change to them), in `spec`.
fn seccomp_and_privs(spec: &mut Spec, profile: Option<&Profile>, no_new_privileges: bool) {
    if no_new_privileges && let Some(mut process) = spec.process().clone() {
        process.set_no_new_privileges(Some(true));
        spec.set_process(Some(process));
    }
    super::seccomp::set_in_spec(spec, profile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spec::{SpecRequest, default_spec};

    fn spec() -> Spec {
        default_spec(&SpecRequest { args: vec!["true".into()], ..SpecRequest::default() })
    }

    fn effective(spec: &Spec) -> Capabilities {
        spec.process().as_ref().unwrap().capabilities().as_ref().unwrap().effective().clone().unwrap()
    }

    fn options(spec: &Spec, dest: &str) -> Vec<String> {
        let mounts = spec.mounts().clone().unwrap();
        let m = mounts.iter().find(|m| m.destination() == Path::new(dest)).unwrap();
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn mknod_is_dropped_from_every_set() {
        let mut spec = spec();
        let has_mknod = |spec: &Spec| {
            let caps = spec.process().as_ref().unwrap().capabilities().clone().unwrap();
            [caps.bounding(), caps.effective(), caps.permitted()]
                .iter()
                .any(|set| set.as_ref().is_some_and(|s| s.contains(&Capability::Mknod)))
        };
        assert!(has_mknod(&spec), "Docker's default set has CAP_MKNOD");
        drop_capability(&mut spec, Capability::Mknod);
        assert!(!has_mknod(&spec));
    }

    #[test]
    fn a_mount_option_is_dropped_from_that_mount_only() {
        let mut spec = spec();
        drop_mount_option(&mut spec, "/dev/pts", "gid=5");
        assert!(!options(&spec, "/dev/pts").contains(&"gid=5".to_owned()));
        assert!(options(&spec, "/dev/pts").contains(&"newinstance".to_owned()));
    }

    #[test]
    fn privileged_gives_every_capability_the_devices_and_no_filter() {
        let mut spec = spec();
        let security = SecurityOptions { privileged: true, ..SecurityOptions::default() };
        apply(&mut spec, &security, security.profile().unwrap().as_ref());
        assert_eq!(effective(&spec).len(), crate::sys::caps::supported_names().len());
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
        assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
        assert!(!options(&spec, "/sys").contains(&"ro".to_owned()));
        let rules = linux.resources().as_ref().unwrap().devices().clone().unwrap();
        assert!(rules.len() == 1 && rules[0].allow() && rules[0].typ().is_none(), "{rules:?}");
        assert!(linux.devices().as_ref().unwrap().iter().any(|d| d.path() == Path::new("/dev/null")));
    }

    #[test]
    fn cap_drop_all_then_add_leaves_only_what_was_added() {
        let mut spec = spec();
        let security = SecurityOptions {
            cap_add: vec!["NET_ADMIN".parse().unwrap()],
            cap_drop: vec!["ALL".parse().unwrap()],
            ..SecurityOptions::default()
        };
        apply(&mut spec, &security, None);
        assert_eq!(effective(&spec).into_iter().collect::<Vec<_>>(), [Capability::NetAdmin]);
    }
}
