//! Unit tests of the spec builder: Docker's defaults and how each request
//! field lands in the spec.

use std::path::PathBuf;

use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType};

use super::*;

fn req() -> SpecRequest {
    SpecRequest { args: vec!["sh".into(), "-c".into(), "true".into()], ..Default::default() }
}

fn ns_types(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    let linux = spec.linux().as_ref().unwrap();
    linux.namespaces().as_ref().unwrap().iter().map(|n| (n.typ(), n.path().clone())).collect()
}

#[test]
fn docker_process_defaults() {
    let spec = default_spec(&req());
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["sh", "-c", "true"]);
    assert_eq!(p.cwd(), &PathBuf::from("/"));
    assert_eq!(p.no_new_privileges(), Some(false), "off unless asked for, as in Docker");
    assert_eq!(p.terminal(), Some(false));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
    assert!(env.contains(&"HOME=/".to_string()));
    let caps = p.capabilities().as_ref().unwrap();
    let want: std::collections::HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    assert_eq!(caps.bounding().as_ref().unwrap(), &want);
    assert_eq!(caps.effective().as_ref().unwrap(), &want);
    assert_eq!(caps.permitted().as_ref().unwrap(), &want);
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert!(p.rlimits().as_ref().unwrap().is_empty());
    let mask: u64 = want.iter().map(|c| 1u64 << crate::sys::caps::number(&c.to_string()).unwrap()).sum();
    assert_eq!(mask, default_capabilities_mask());
}

#[test]
fn env_keeps_callers_values_and_adds_missing_ones() {
    let mut r = req();
    r.env = vec!["PATH=/opt/bin".into(), "A=1".into()];
    r.hostname = Some("web".into());
    r.terminal = true;
    r.user = ResolvedUser { uid: 1000, gid: 1000, additional_gids: vec![10], home: Some("/home/app".into()) };
    let spec = default_spec(&r);
    let p = spec.process().as_ref().unwrap();
    let env = p.env().as_ref().unwrap();
    assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    for e in ["PATH=/opt/bin", "A=1", "HOSTNAME=web", "TERM=xterm", "HOME=/home/app"] {
        assert!(env.contains(&e.to_string()), "{e} missing from {env:?}");
    }
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[10]);
    assert_eq!(spec.hostname().as_deref(), Some("web"));
}

#[test]
fn home_is_the_users_unless_the_env_sets_it() {
    let env_of = |spec: &Spec| spec.process().as_ref().unwrap().env().clone().unwrap();
    let homes = |spec: &Spec| env_of(spec).into_iter().filter(|e| e.starts_with("HOME=")).collect::<Vec<_>>();
    let root = ResolvedUser { home: Some("/root".into()), ..Default::default() };
    let spec = default_spec(&SpecRequest { user: root.clone(), ..req() });
    assert_eq!(homes(&spec), ["HOME=/root"]);
    assert!(home_from_passwd(&spec), "exec -u may replace a HOME that came from passwd");
    // No passwd entry: `/`.
    let spec = default_spec(&req());
    assert_eq!(homes(&spec), ["HOME=/"]);
    assert!(home_from_passwd(&spec));
    // The image's or the user's HOME wins, and stays for every exec.
    let spec = default_spec(&SpecRequest { user: root, env: vec!["HOME=/srv".into()], ..req() });
    assert_eq!(homes(&spec), ["HOME=/srv"]);
    assert!(!home_from_passwd(&spec));
    assert_eq!(spec.annotations(), &None);
}

#[test]
fn namespaces_follow_network_mode() {
    use LinuxNamespaceType as T;
    let all = |spec: &Spec| ns_types(spec).into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    let spec = default_spec(&req());
    assert_eq!(all(&spec), [T::Mount, T::Pid, T::Uts, T::Ipc, T::Network, T::Cgroup]);
    assert!(ns_types(&spec).iter().all(|(_, p)| p.is_none()));

    let none = default_spec(&SpecRequest { network: NetworkMode::None, ..req() });
    assert_eq!(ns_types(&none), ns_types(&spec));

    let host = default_spec(&SpecRequest { network: NetworkMode::Host, ..req() });
    assert!(!all(&host).contains(&T::Network));

    let join = default_spec(&SpecRequest { network: NetworkMode::Join("/run/netns/p".into()), ..req() });
    assert!(ns_types(&join).contains(&(T::Network, Some(PathBuf::from("/run/netns/p")))));
}

#[test]
fn mounts_are_dockers_then_etc_files_then_volumes() {
    let mut r = req();
    r.etc.hosts = Some("/run/c/hosts".into());
    r.etc.resolv_conf = Some("/run/c/resolv.conf".into());
    r.mounts.push(BindMount { source: "/srv/data".into(), destination: "/data".into(), readonly: true });
    let spec = default_spec(&r);
    let mounts = spec.mounts().as_ref().unwrap();
    let dests: Vec<_> = mounts.iter().map(|m| m.destination().to_str().unwrap()).collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/data"
        ]
    );
    let sys = &mounts[5];
    assert_eq!(sys.typ().as_deref(), Some("sysfs"));
    assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
    let data = mounts.last().unwrap();
    assert_eq!(data.typ().as_deref(), Some("bind"));
    assert_eq!(data.options().as_ref().unwrap(), &["rbind", "rprivate", "ro"]);
    let pts = &mounts[2];
    for o in ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] {
        assert!(pts.options().as_ref().unwrap().contains(&o.to_string()));
    }
}

#[test]
fn masked_readonly_devices_and_resources() {
    let mut r = req();
    r.resources =
        Resources { memory_bytes: Some(64 << 20), cpu_quota: Some(50_000), cpu_period: Some(100_000), pids: Some(64) };
    r.rlimits.push(RlimitRequest { kind: PosixRlimitType::RlimitNofile, soft: 1024, hard: 4096 });
    let spec = default_spec(&r);
    let linux = spec.linux().as_ref().unwrap();
    let masked = linux.masked_paths().as_ref().unwrap();
    assert!(masked.contains(&"/proc/kcore".to_string()));
    assert!(masked.contains(&"/sys/firmware".to_string()));
    assert!(masked.contains(&"/sys/dev/block".to_string()), "masked as podman does");
    assert_eq!(masked.len(), 12);
    assert!(linux.readonly_paths().as_ref().unwrap().contains(&"/proc/sys".to_string()));
    let devs: Vec<_> =
        linux.devices().as_ref().unwrap().iter().map(|d| (d.path().clone(), d.major(), d.minor())).collect();
    assert_eq!(devs.len(), 6);
    assert!(devs.contains(&(PathBuf::from("/dev/null"), 1, 3)));
    assert!(devs.contains(&(PathBuf::from("/dev/tty"), 5, 0)));
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(res.cpu().as_ref().unwrap().period(), Some(100_000));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
    let first = &res.devices().as_ref().unwrap()[0];
    assert!(!first.allow());
    let rl = &spec.process().as_ref().unwrap().rlimits().as_ref().unwrap()[0];
    assert_eq!((rl.typ(), rl.soft(), rl.hard()), (PosixRlimitType::RlimitNofile, 1024, 4096));
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
}

#[test]
fn spec_round_trips_through_config_json() {
    let spec = default_spec(&req());
    let json = serde_json::to_string(&spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}
