//! The store lets no other local user in (issue 13): as an unprivileged
//! user, nothing under a root store — images, layers, containers' configs
//! with their environment, their writable layers — can be read or listed,
//! and a store made before that rule is tightened when berth opens it.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::Berth;
use support::image::require_tool;
use support::rootless::USER;

/// Every path under `root` (not following symlinks), `root` included.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// The paths among `paths` that the test user can list (directories) or
/// read (anything else), each with what it could do.
fn open_to_the_test_user(paths: &[PathBuf]) -> String {
    support::rootless::user();
    require_tool("setpriv", "util-linux");
    let script = r#"
        while IFS= read -r p; do
            if ls -A -- "$p" >/dev/null 2>&1 && [ -d "$p" ]; then echo "listed $p"
            elif [ ! -d "$p" ] && head -c 1 -- "$p" >/dev/null 2>&1; then echo "read $p"
            fi
        done"#;
    let mut child = Command::new("setpriv")
        .args(["--reuid", USER, "--regid", USER, "--clear-groups", "--", "sh", "-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sh as the test user");
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    child.stdin.take().unwrap().write_all(list.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the test user's shell failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// A store with an image, a running container holding a secret in its
/// environment and a file in its writable layer, and a stopped one.
fn populated(berth: &Berth) -> String {
    // Only the store's own modes stand between the user and it.
    std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = "echo secret > /root/note; echo ready; exec sleep 300";
    let id = berth.detach(&["--name", "secretive", "-e", "TOKEN=hunter2", "busybox", "sh", "-c", script]);
    berth.wait_for_log(&id, "ready");
    berth.run(&["run", "--name", "stopped", "busybox", "true"]).ok();
    id
}

#[test]
fn no_other_user_can_read_or_list_anything_in_a_root_store() {
    let berth = Berth::with_busybox();
    let id = populated(&berth);
    let root = berth.store_root();
    assert_eq!(mode(&root), 0o711, "the root: others pass through, never list");
    assert_eq!(mode(&root.join("containers")), 0o711);
    for dir in ["oci", "layers", "cache", "projects", "volumes", "tmp"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&root.join("lock")), 0o600);
    assert_eq!(mode(&root.join("containers").join(&id)), 0o700);

    let paths = walk(&root);
    assert!(paths.iter().any(|p| p.ends_with("upper/root/note")), "the writable layer is in the walk");
    assert_eq!(open_to_the_test_user(&paths), "", "open to {USER}");
}

#[test]
fn a_store_made_open_is_made_private_when_berth_opens_it() {
    let berth = Berth::with_busybox();
    let id = populated(&berth);
    let root = berth.store_root();
    // As stores were before: everything readable by everyone.
    let chmod = Command::new("chmod").args(["-R", "go+rX"]).arg(&root).status().unwrap();
    assert!(chmod.success());
    assert!(!open_to_the_test_user(&walk(&root)).is_empty(), "the store was open before");

    // A read-only verb is enough.
    berth.run(&["images"]).ok();
    assert_eq!(mode(&root), 0o711);
    assert_eq!(mode(&root.join("oci")), 0o700);
    assert_eq!(mode(&root.join("containers").join(&id)), 0o710);
    assert_eq!(open_to_the_test_user(&walk(&root)), "", "still open to {USER}");
    // And it still works.
    assert_eq!(berth.run(&["exec", "secretive", "cat", "/root/note"]).ok(), "secret\n");
    berth.run(&["run", "--rm", "busybox", "true"]).ok();
}
