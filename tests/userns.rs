//! `--userns=auto` as root (issue 12): a container of its own unprivileged
//! id range, whose root is nobody on the host.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use support::Berth;

/// The host pid of a running container's init, from its state file.
fn init_pid(berth: &Berth, name: &str) -> i32 {
    let id = berth.run(&["inspect", "--format", "{{.Id}}", name]);
    let id = if id.code == 0 { id.stdout.trim().to_owned() } else { String::new() };
    let dirs = std::fs::read_dir(berth.store_root().join("containers")).unwrap();
    for dir in dirs.flatten() {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("container.json")).unwrap()).unwrap();
        if record["name"] == name || (!id.is_empty() && record["id"] == id.as_str()) {
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
            return state["pid"].as_i64().unwrap() as i32;
        }
    }
    panic!("no container {name}");
}

#[test]
fn userns_auto_gives_the_container_an_unprivileged_range() {
    let berth = Berth::with_busybox();
    // The container's root is another user on the host: a store it cannot
    // walk to is refused, naming the directory and the fix.
    std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let refused = berth.run(&["run", "--rm", "--userns", "auto", "busybox", "true"]);
    assert!(refused.fails_with(1).contains("chmod o+x"), "{}", refused.stderr);
    std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o711)).unwrap();

    let vol = berth.store().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = format!("{}:/vol", vol.display());
    let out = berth.run(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "id -u; echo hi > /vol/made",
    ]);
    assert_eq!(out.ok().trim(), "0", "root inside");
    let owner = std::fs::metadata(vol.join("made")).unwrap();
    assert!(owner.uid() > 65535 && owner.gid() > 65535, "made by host uid {}:{}", owner.uid(), owner.gid());

    berth.detach(&["--userns", "auto", "--name", "auto", "busybox", "sh", "-c", "touch /ready; exec sleep 300"]);
    support::wait_until("the container to start", || berth.run(&["exec", "auto", "test", "-e", "/ready"]).code == 0);
    assert_eq!(berth.run(&["exec", "auto", "id", "-u"]).ok().trim(), "0");
    let pid = init_pid(&berth, "auto");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "one range: {map}");
    assert_eq!(fields[0], 0);
    assert!(
        fields[1] > 65535 && fields[2] == 65536,
        "container root is host uid {} (outside 0..65535): {map}",
        fields[1]
    );
    // Files the image owns by root are the container's, not the host's root's.
    let out = berth.run(&["exec", "auto", "sh", "-c", "touch /bin/new && rm /bin/vi && stat -c %u /bin/busybox"]);
    assert_eq!(out.ok().trim(), "0");

    // A commit writes the owners as the container means them, not the
    // host ids they have in its upper dir.
    berth.run(&["commit", "auto", "auto:1"]).ok();
    let out =
        berth.run(&["run", "--rm", "auto:1", "sh", "-c", "stat -c %u:%g /bin/new; test -e /bin/vi || echo no-vi"]);
    assert_eq!(out.ok(), "0:0\nno-vi\n");
}

/// The host ids container root maps to in process `pid` (`None`: the
/// host's own namespace, the identity map).
fn root_host_id(pid: i32) -> Option<u64> {
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "one range: {map}");
    (fields[2] != 4294967295).then(|| {
        assert_eq!((fields[0], fields[2]), (0, 65536), "{map}");
        fields[1]
    })
}

/// The uid map line a container's process shows for itself.
fn own_map(berth: &Berth, extra: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend(["busybox", "cat", "/proc/self/uid_map"]);
    berth.run(&args).ok().split_whitespace().collect::<Vec<_>>().join(" ")
}

const AUTO_ENV: &str = r#"
project = "ns"

[env.app]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "touch /ready; exec sleep 300"]
userns = "MODE"
"#;

/// `userns = "auto"` in berth.toml: `plan` shows it, `up` gives the env's
/// container its own unprivileged range, and changing it recreates the
/// container. A store default (`[run] userns = "auto"` in
/// STORE/config.toml) applies to `run` without `--userns`, and
/// `--userns=host` overrides it.
#[test]
fn userns_auto_in_the_manifest_and_as_the_store_default() {
    let berth = Berth::with_busybox();
    std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = berth.store().join("project");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.join("busybox.tar")).unwrap();
    std::fs::write(dir.join("berth.toml"), AUTO_ENV.replace("MODE", "auto")).unwrap();

    let plan = berth.run_in(&dir, &["plan"]);
    assert!(plan.ok().lines().any(|l| l.contains("app") && l.contains("userns auto")), "{}", plan.stdout);
    berth.run_in(&dir, &["up", "-d"]).ok();
    support::wait_until("the env to start", || berth.run_in(&dir, &["exec", "app", "test", "-e", "/ready"]).code == 0);
    let root = root_host_id(init_pid(&berth, "ns-app")).expect("a user namespace of its own");
    assert!(root > 65535, "container root is host uid {root}");
    assert_eq!(berth.run_in(&dir, &["exec", "app", "id", "-u"]).ok().trim(), "0");
    // The project's network namespace is the host's user namespace's; a
    // port below 1024 can still be bound in it (httpd forks into the
    // background once it listens).
    berth.run_in(&dir, &["exec", "app", "httpd", "-p", "80", "-h", "/etc"]).ok();
    let again = berth.run_in(&dir, &["plan"]);
    assert!(again.ok().contains("app: running, up to date"), "{}", again.stdout);

    // Back to the host's namespace: the plan says why it recreates.
    std::fs::write(dir.join("berth.toml"), AUTO_ENV.replace("MODE", "host")).unwrap();
    let plan = berth.run_in(&dir, &["plan"]);
    assert!(plan.ok().contains("app: recreate (userns: \"auto\" -> (default))"), "{}", plan.stdout);
    berth.run_in(&dir, &["up", "-d"]).ok();
    support::wait_until("the env to start", || berth.run_in(&dir, &["exec", "app", "test", "-e", "/ready"]).code == 0);
    assert_eq!(root_host_id(init_pid(&berth, "ns-app")), None, "the host's namespace");

    // An env without `userns` follows the store's default: with it set to
    // auto, the next plan recreates the env.
    std::fs::write(dir.join("berth.toml"), AUTO_ENV.replace("userns = \"MODE\"\n", "")).unwrap();
    let plan = berth.run_in(&dir, &["plan"]);
    assert!(plan.ok().contains("app: running, up to date"), "host is the default: {}", plan.stdout);
    std::fs::write(berth.store_root().join("config.toml"), "[run]\nuserns = \"auto\"\n").unwrap();
    let plan = berth.run_in(&dir, &["plan"]);
    assert!(plan.ok().contains("app: recreate (userns: null -> \"auto\")"), "{}", plan.stdout);
    berth.run_in(&dir, &["down"]).ok();

    // `run` without the flag gets the default; --userns=host overrides it.
    let auto = own_map(&berth, &[]);
    assert!(auto.starts_with("0 ") && auto.ends_with(" 65536") && auto != "0 0 65536", "{auto}");
    assert_eq!(own_map(&berth, &["--userns=host"]), "0 0 4294967295");

    // A bad default names the file and what it may hold.
    std::fs::write(berth.store_root().join("config.toml"), "[run]\nuserns = \"keep-id\"\n").unwrap();
    let bad = berth.run(&["run", "--rm", "busybox", "true"]);
    let err = bad.fails_with(1);
    assert!(err.contains("config.toml") && err.contains("\"keep-id\""), "{err}");
}

/// Two stores never hand out one range: the record is host-wide
/// (/var/lib/berth-userns), and removing a container frees its range.
#[test]
fn two_stores_get_disjoint_ranges() {
    let (one, two) = (Berth::with_busybox(), Berth::with_busybox());
    let mut roots = Vec::new();
    for berth in [&one, &two] {
        std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o711)).unwrap();
        berth.detach(&["--userns", "auto", "--name", "held", "busybox", "sh", "-c", "touch /ready; exec sleep 300"]);
        support::wait_until("the container to start", || {
            berth.run(&["exec", "held", "test", "-e", "/ready"]).code == 0
        });
        roots.push(root_host_id(init_pid(berth, "held")).expect("a user namespace of its own"));
    }
    let (a, b) = (roots[0], roots[1]);
    assert!(a.abs_diff(b) >= 65536, "two stores' containers share ids: {a} and {b}");

    // Each range is recorded with the container that holds it.
    let record = |base: u64| std::fs::read_to_string(format!("/var/lib/berth-userns/{base}")).unwrap_or_default();
    assert!(record(a).starts_with(one.store_root().join("containers").to_str().unwrap()), "{}", record(a));
    assert!(record(b).starts_with(two.store_root().join("containers").to_str().unwrap()), "{}", record(b));
    one.run(&["rm", "-f", "held"]).ok();
    let owner = one.store_root().join("containers");
    assert!(!record(a).starts_with(owner.to_str().unwrap()), "removing the container frees its range");
}
