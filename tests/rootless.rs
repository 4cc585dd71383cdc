//! berth as an ordinary user (issue 12): every test runs berth as the
//! unprivileged user of `support::rootless`, with its own store in a
//! directory that user owns.

mod support;

use support::rootless::{Rootless, owner};

/// Import and a foreground run work without root: container root is uid 0
/// inside, and the store's files belong to the user (container root) and
/// to its subordinate range (other ids), as the image means them.
#[test]
fn import_and_run_as_an_ordinary_user() {
    let r = Rootless::with_busybox();
    let out = r.run(&["run", "--rm", "busybox:latest", "id"]);
    assert!(out.ok().contains("uid=0(root) gid=0(root)"), "{}", out.stdout);

    // The unpacked layer: /bin/busybox is container root's, /home/user is
    // container 1000:1000's.
    let layers: Vec<_> = std::fs::read_dir(r.store_root().join("layers")).unwrap().flatten().collect();
    assert_eq!(layers.len(), 1, "one layer");
    let layer = layers[0].path();
    assert_eq!(owner(&layer.join("bin/busybox")), (r.user.uid, r.user.gid));
    assert_eq!(owner(&layer.join("home/user")), (r.user.host_uid(1000), r.user.host_gid(1000)));

    // Inside, the same file shows the image's own ids.
    let out = r.run(&["run", "--rm", "busybox:latest", "stat", "-c", "%u:%g", "/home/user"]);
    assert_eq!(out.ok().trim(), "1000:1000");
}
