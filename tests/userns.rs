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
