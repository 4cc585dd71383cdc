//! The QA hand-off's way down: a store that ran `berth up --from FILE.tar`
//! has no manifest, so `berth down --from FILE.tar` and `berth down -p
//! PROJECT` take the project away; and whichever verb removes a project's
//! last container, its network namespace (a bind mount in the store) goes
//! with it, so nothing of the store stays mounted and the store can be
//! deleted. `berth fsck` finds a namespace no container uses; `--repair`
//! removes it.

mod support;

use std::path::{Path, PathBuf};

use support::Berth;

const MANIFEST: &str = r#"
project = "qa"

[env.a]
image = "rootfs:busybox.tar"
cmd = ["sleep", "300"]

[env.b]
image = "rootfs:busybox.tar"
cmd = ["sleep", "300"]
"#;

/// A frozen archive of the two envs of project `qa`, made on a store of
/// its own (gone when this returns), in the returned directory.
fn handoff() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    let archive = dir.path().join("qa.tar");
    let dev = Berth::new();
    dev.run_in(dir.path(), &["up", "-d"]).ok();
    dev.run_in(dir.path(), &["freeze", "a", "b", "-o", archive.to_str().unwrap()]).ok();
    dev.run_in(dir.path(), &["down"]).ok();
    (dir, archive)
}

/// A fresh store that ran `up --from archive` in a directory with no
/// manifest; returns the store and that directory.
fn qa_store(archive: &Path) -> (Berth, tempfile::TempDir) {
    let qa = Berth::new();
    let elsewhere = tempfile::tempdir().unwrap();
    qa.run_in(elsewhere.path(), &["up", "--from", archive.to_str().unwrap()]).ok();
    (qa, elsewhere)
}

/// The mount points under `dir` that this machine has now.
fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let points = table.lines().filter_map(|l| l.split(' ').nth(4));
    points.filter(|p| Path::new(p).starts_with(dir)).map(str::to_owned).collect()
}

fn netns(berth: &Berth, project: &str) -> PathBuf {
    berth.store_root().join("projects").join(format!("{project}.netns"))
}

#[test]
fn the_netns_goes_with_the_projects_last_container_and_the_store_can_be_deleted() {
    let (_dir, archive) = handoff();
    let (qa, _elsewhere) = qa_store(&archive);
    let ns = netns(&qa, "qa");
    let mounted = mounts_under(qa.store());
    assert_eq!(mounted, vec![ns.display().to_string()], "up --from mounts the project's namespace, and only it");

    // One env of two removed: the other still uses the namespace.
    qa.run(&["rm", "-f", "qa-a"]).ok();
    assert_eq!(mounts_under(qa.store()), mounted, "qa-b still runs in the namespace");
    qa.run(&["exec", "qa-b", "true"]).ok();

    qa.run(&["rm", "-f", "qa-b"]).ok();
    assert_eq!(mounts_under(qa.store()), Vec::<String>::new(), "nothing of the store stays mounted");
    assert!(!ns.exists(), "{} is removed with the project's last container", ns.display());
    std::fs::remove_dir_all(qa.store_root()).expect("the store can be deleted");
}

#[test]
fn down_from_the_archive_needs_no_manifest() {
    let (_dir, archive) = handoff();
    let (qa, elsewhere) = qa_store(&archive);
    // A namespace its containers use is no orphan.
    qa.run(&["fsck"]).ok();

    let down = qa.run_in(elsewhere.path(), &["down", "--from", archive.to_str().unwrap()]).ok().to_owned();
    assert_eq!(down, "qa-a\nqa-b\n");
    assert_eq!(qa.run(&["ps", "-aq"]).ok(), "");
    assert_eq!(mounts_under(qa.store()), Vec::<String>::new());
    assert!(!netns(&qa, "qa").exists());
}

#[test]
fn down_p_needs_no_manifest_and_names_the_projects_there_are() {
    let (_dir, archive) = handoff();
    let nothing = Berth::new();
    let err = nothing.run(&["down", "-p", "qa"]).fails_with(1).to_owned();
    assert!(err.contains("\"qa\"") && err.contains("no projects"), "{err}");

    let (qa, elsewhere) = qa_store(&archive);
    let err = qa.run_in(elsewhere.path(), &["down", "-p", "qb"]).fails_with(1).to_owned();
    assert!(err.contains("\"qb\"") && err.contains("its projects: qa"), "{err}");
    assert_eq!(qa.run(&["ps", "-aq"]).ok().lines().count(), 2, "an unknown project removes nothing");

    let down = qa.run_in(elsewhere.path(), &["down", "--project", "qa", "-v"]).ok().to_owned();
    assert_eq!(down, "qa-a\nqa-b\n");
    assert_eq!(mounts_under(qa.store()), Vec::<String>::new());
    assert!(!netns(&qa, "qa").exists());
}

/// Detaches a bind mount the test made, also when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn fsck_finds_an_orphan_netns_and_repair_removes_it() {
    let berth = Berth::with_busybox();
    let ghost = netns(&berth, "ghost");
    std::fs::create_dir_all(ghost.parent().unwrap()).unwrap();
    std::fs::File::create(&ghost).unwrap();
    // What `ip netns add` does: a namespace kept by a bind mount.
    nix::mount::mount(
        Some("/proc/thread-self/ns/net"),
        &ghost,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let _guard = Unmount(ghost.clone());
    assert_eq!(mounts_under(berth.store()), vec![ghost.display().to_string()]);

    let found = berth.run(&["fsck"]);
    assert_eq!(found.code, 1, "{}", found.stdout);
    assert!(
        found.stdout.contains(&format!("{}: orphan network namespace: ", ghost.display()))
            && found.stdout.contains("no container of project \"ghost\""),
        "{}",
        found.stdout
    );

    let repaired = berth.run(&["fsck", "--repair"]).ok().to_owned();
    assert!(repaired.contains(&format!("Removed: {}", ghost.display())), "{repaired}");
    assert!(repaired.contains("store is consistent"), "{repaired}");
    assert_eq!(mounts_under(berth.store()), Vec::<String>::new());
    assert!(!ghost.exists());
}
