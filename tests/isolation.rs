//! What a container sees, asserted from inside it with the real binary:
//! namespaces, PID 1, /proc, /dev, /sys, capabilities, user, fds, limits and
//! the protections against overwriting berth from inside.

mod support;

use support::Berth;

fn inside(berth: &Berth, args: &[&str], script: &str) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "sh", "-c", script]);
    berth.run(&all).ok().to_owned()
}

#[test]
fn every_namespace_is_new() {
    let berth = Berth::with_busybox();
    let kinds = ["mnt", "pid", "uts", "ipc", "net", "cgroup"];
    let script: String = kinds.iter().map(|k| format!("readlink /proc/self/ns/{k}; ")).collect();
    let out = inside(&berth, &[], &script);
    let theirs: Vec<&str> = out.lines().collect();
    for (kind, line) in kinds.iter().zip(&theirs) {
        let ours = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(ours.to_string_lossy(), *line, "{kind} namespace is shared with the host");
    }
    assert_eq!(theirs.len(), kinds.len(), "{out}");
}

#[test]
fn the_command_runs_under_a_reaping_init_as_pid_1() {
    let berth = Berth::with_busybox();
    // An orphan (its parent, the subshell, exits at once) is PID 1's to
    // reap: its /proc entry goes only when it is reaped, so wait for that
    // (at most a minute) rather than for a fixed time.
    let out = inside(
        &berth,
        &[],
        "echo $PPID; ps -o pid,args | grep '^ *1 '
         (true & echo $! > /tmp/orphan); p=$(cat /tmp/orphan)
         i=0; while [ -e /proc/$p ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
         if [ -e /proc/$p ]; then echo \"orphan $p not reaped: $(cat /proc/$p/stat)\"; else echo reaped; fi",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    assert!(lines[1].contains("__init"), "{out}");
    assert_eq!(lines[2], "reaped", "orphans are reaped: {out}");
}

#[test]
fn hostname_and_etc_files_are_provided() {
    let berth = Berth::with_busybox();
    let out = inside(
        &berth,
        &["--hostname", "box1"],
        "hostname; cat /etc/hostname; grep box1 /etc/hosts; test -s /etc/resolv.conf && echo resolv",
    );
    assert_eq!(out, "box1\nbox1\n127.0.0.1\tlocalhost box1\nresolv\n");
}

#[test]
fn dev_holds_only_the_standard_nodes() {
    let berth = Berth::with_busybox();
    let out = inside(
        &berth,
        &[],
        "ls /dev | tr '\\n' ' '; mount | grep -E ' /dev/(pts|shm|mqueue) ' | cut -d' ' -f3,5 | tr '\\n' ' '",
    );
    assert_eq!(
        out,
        "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero /dev/pts devpts /dev/shm tmpfs /dev/mqueue mqueue "
    );
}

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    let berth = Berth::with_busybox();
    let script = "for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do \
        [ -e $p ] && printf '%s:%s ' $p $(wc -c < $p); done; echo; \
        ls /sys/firmware | wc -l; ls /sys/dev/block | wc -l; \
        echo x > /proc/sys/kernel/domainname 2>/dev/null && echo proc-sys-writable; \
        echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; \
        touch /sys/x 2>/dev/null && echo sys-writable; echo done";
    let out = inside(&berth, &[], script);
    let lines: Vec<&str> = out.lines().collect();
    for masked in lines[0].split_whitespace() {
        assert!(masked.ends_with(":0"), "masked path readable: {masked}");
    }
    assert_eq!(&lines[1..], ["0", "0", "done"], "{out}");
}

#[test]
fn dev_is_noexec_and_nosuid_as_in_podman() {
    let berth = Berth::with_busybox();
    let out = inside(
        &berth,
        &[],
        "grep ' /dev tmpfs ' /proc/mounts; cp /bin/busybox /dev/bb && /dev/bb true || echo refused",
    );
    let (mount, rest) = out.split_once('\n').unwrap();
    assert!(mount.contains("nosuid") && mount.contains("noexec"), "{mount}");
    assert_eq!(rest, "refused\n", "{out}");
}

#[test]
fn capabilities_are_dockers_default_set_and_no_new_privs_only_when_asked() {
    let berth = Berth::with_busybox();
    let out = inside(&berth, &[], "grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs)' /proc/self/status");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000") && out.contains("CapAmb:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "off by default, as in Docker: {out}");
    let out = inside(&berth, &["--security-opt", "no-new-privileges"], "grep NoNewPrivs /proc/self/status");
    assert_eq!(out, "NoNewPrivs:\t1\n");
}

#[test]
fn user_and_group_come_from_user() {
    let berth = Berth::with_busybox();
    // The primary group is a supplementary group too, as in Docker.
    assert_eq!(inside(&berth, &["-u", "1000"], "id"), "uid=1000(user) gid=1000(user) groups=1000(user)\n");
    assert_eq!(inside(&berth, &[], "id"), "uid=0(root) gid=0(root) groups=0(root)\n");
    assert_eq!(inside(&berth, &["-u", "nobody"], "id -u"), "65534\n");
    let err = berth.run(&["run", "--rm", "-u", "ghost", "busybox", "true"]).fails_with(1).to_owned();
    assert!(err.contains("ghost") && err.contains("/etc/passwd"), "{err}");
}

#[test]
fn supplementary_groups_are_those_of_the_images_etc_group() {
    let berth = Berth::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    // The RUN sees the groups of the image it runs in, as each process does.
    let dockerfile = "FROM busybox:latest\n\
        RUN printf 'wheel:x:10:root,user\\naudio:x:29:user\\n' >> /etc/group\n\
        RUN id > /id-root\n\
        USER user\n\
        RUN id > /tmp/id-user\n";
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    berth.run(&["build", "-q", "-t", "groups:1", ctx.path().to_str().unwrap()]).ok();
    let id = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["groups:1", "id"]);
        berth.run(&all).ok().to_owned()
    };
    let root = "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n";
    // (The kernel keeps the groups sorted.)
    let user = "uid=1000(user) gid=1000(user) groups=10(wheel),29(audio),1000(user)\n";
    assert_eq!(id(&["-u", "root"]), root);
    assert_eq!(id(&["-u", "0"]), root);
    assert_eq!(id(&[]), user, "the image's USER");
    assert_eq!(id(&["-u", "1000"]), user);
    // With a group given, that group alone (Docker reads no memberships).
    assert_eq!(id(&["-u", "1000:1000"]), "uid=1000(user) gid=1000(user) groups=1000(user)\n");
    assert_eq!(id(&["-u", "user:wheel"]), "uid=1000(user) gid=10(wheel) groups=10(wheel)\n");
    assert_eq!(id(&["-u", "4242"]), "uid=4242 gid=0(root) groups=0(root)\n");
    // The build's RUN steps, and exec into a running container.
    let run = berth.run(&["run", "--rm", "-u", "0", "groups:1", "cat", "/id-root", "/tmp/id-user"]).ok().to_owned();
    assert_eq!(run, format!("{root}{user}"));
    let c = berth.detach(&["-u", "root", "groups:1", "sleep", "600"]);
    assert_eq!(berth.run(&["exec", &c, "id"]).ok(), root);
    assert_eq!(berth.run(&["exec", "-u", "user", &c, "id"]).ok(), user);
}

#[test]
fn only_stdio_reaches_the_command_and_berth_cannot_be_overwritten() {
    let berth = Berth::with_busybox();
    // No pipe in this script: a shell holds a pipe's fds while it forks.
    let fds = inside(&berth, &[], "ls /proc/$$/fd; true");
    assert_eq!(fds.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"], "{fds}");
    let out = inside(
        &berth,
        &[],
        "echo x > /proc/1/exe 2>/dev/null && echo WROTE; readlink /proc/1/exe 2>/dev/null || echo hidden",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(!out.contains("WROTE"), "{out}");
    // init is not dumpable: its exe cannot even be named from inside; when it
    // can (a future kernel), it must be the sealed memfd, not the host's file.
    assert!(lines[0] == "hidden" || lines[0].contains("memfd:"), "{out}");
}

#[test]
fn rlimits_stay_under_the_callers_hard_limit() {
    let berth = Berth::with_busybox();
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap().1;
    let out = inside(&berth, &[], "ulimit -Hn");
    assert!(out.trim().parse::<u64>().unwrap() <= hard, "{out} > {hard}");
}

#[test]
fn workdir_env_and_exit_codes() {
    let berth = Berth::with_busybox();
    assert_eq!(inside(&berth, &["-w", "/tmp", "-e", "GREETING=hi"], "pwd; echo $GREETING"), "/tmp\nhi\n");
    berth.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).fails_with(3);
    let err = berth.run(&["run", "--rm", "busybox", "no-such-command"]).fails_with(127).to_owned();
    assert!(err.contains("exec \"no-such-command\""), "{err}");
    berth.run(&["run", "--rm", "busybox", "sh", "-c", "kill -9 $$"]).fails_with(137);
    assert_eq!(berth.run(&["ps", "-aq"]).ok(), "", "--rm removed them all, even the failed one");
}

#[test]
fn network_none_has_only_loopback_and_host_shares_the_hosts() {
    let berth = Berth::with_busybox();
    assert_eq!(inside(&berth, &[], "ls /sys/class/net | tr '\\n' ' '"), "lo ");
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(inside(&berth, &["--network", "host"], "readlink /proc/self/ns/net").trim(), host_ns.to_string_lossy());
}

/// Builds, through the store's own code, an image of `count` layers on top
/// of busybox: layer N adds the file /layers/N.
fn many_layers(berth: &Berth, count: usize) -> String {
    use berth::oci::image::{
        ImageConfigInput, canonical_json, descriptor, history_entry, image_config, image_manifest,
    };
    use oci_spec::image::MediaType;
    let store = berth::store::Store::open(&berth.store_root()).unwrap();
    let _lock = store.lock_exclusive().unwrap();
    let base = store.resolve_image("busybox").unwrap();
    let mut layers: Vec<oci_spec::image::Descriptor> = base.manifest.layers().clone();
    let mut diff_ids: Vec<berth::oci::Digest> = base.layers.iter().map(|l| l.diff_id.clone()).collect();
    let work = tempfile::tempdir().unwrap();
    for n in 0..count {
        let dir = work.path().join(n.to_string());
        std::fs::create_dir_all(dir.join("layers")).unwrap();
        std::fs::write(dir.join("layers").join(n.to_string()), n.to_string()).unwrap();
        let mut blob = store.blob_writer().unwrap();
        let (_, digests) =
            berth::oci::write_tree(&dir, &mut blob, berth::oci::Compression::Gzip, berth::oci::MtimePolicy::Clamp(0))
                .unwrap();
        blob.commit(Some(&digests.digest)).unwrap();
        layers.push(descriptor(MediaType::ImageLayerGzip, digests.size, &digests.digest));
        diff_ids.push(digests.diff_id);
    }
    let history = vec![history_entry("1970-01-01T00:00:00Z", "test layers", false); diff_ids.len()];
    let config = image_config(&ImageConfigInput::default(), &diff_ids, "1970-01-01T00:00:00Z", history);
    let config_bytes = canonical_json(&config).unwrap();
    let config_digest = store.put_blob(&config_bytes).unwrap();
    let manifest =
        image_manifest(descriptor(MediaType::ImageConfig, config_bytes.len() as u64, &config_digest), layers);
    let manifest_bytes = canonical_json(&manifest).unwrap();
    let manifest_digest = store.put_blob(&manifest_bytes).unwrap();
    store
        .set_tag("layered:latest", descriptor(MediaType::ImageManifest, manifest_bytes.len() as u64, &manifest_digest))
        .unwrap();
    "layered".to_owned()
}

#[test]
fn an_image_of_more_than_127_layers_runs() {
    let berth = Berth::with_busybox();
    let image = many_layers(&berth, 200);
    let out = berth
        .run(&["run", "--rm", &image, "sh", "-c", "ls /layers | wc -l; cat /layers/0 /layers/199"])
        .ok()
        .to_owned();
    assert_eq!(out, "200\n0199", "{out}");
}

#[test]
fn cap_add_and_cap_drop_follow_dockers_rules_and_open_the_filter() {
    let berth = Berth::with_busybox();
    let out = inside(&berth, &["--cap-drop", "ALL", "--cap-add", "net_bind_service"], "grep CapEff /proc/self/status");
    assert_eq!(out, "CapEff:\t0000000000000400\n", "only CAP_NET_BIND_SERVICE (bit 10)");
    let out = inside(&berth, &["--cap-drop", "CAP_CHOWN"], "grep CapEff /proc/self/status");
    assert_eq!(out, "CapEff:\t00000000a80425fa\n", "Docker's set without CAP_CHOWN (bit 0)");
    // CAP_SYS_ADMIN brings mount back: the seccomp profile is decided
    // from the container's capabilities, as Docker's is.
    let denied = berth.run(&["run", "--rm", "busybox", "sh", "-c", "mkdir /m && mount -t tmpfs none /m"]);
    assert!(denied.code != 0 && denied.stderr.contains("permission denied"), "EPERM: {}", denied.stderr);
    let out = inside(&berth, &["--cap-add", "SYS_ADMIN"], "mkdir /m && mount -t tmpfs none /m && echo mounted");
    assert_eq!(out, "mounted\n");
    let bad = berth.run(&["run", "--rm", "--cap-add", "CAP_NOPE", "busybox", "true"]);
    assert!(bad.stderr.contains("unknown capability \"CAP_NOPE\""), "{}", bad.stderr);
    let id = berth.detach(&["--name", "capped", "--cap-drop", "kill", "busybox", "sleep", "300"]);
    let inspect = berth.run(&["inspect", &id]).json();
    assert_eq!(inspect[0]["HostConfig"]["CapDrop"], serde_json::json!(["CAP_KILL"]), "{inspect}");
    berth.run(&["rm", "-f", "capped"]).ok();
}
