//! `build::layer::layer_from_upper` against real overlayfs (needs root):
//! each test builds a lower tree, mounts an overlay over it, changes things
//! through the merged view, unmounts, and checks the layer made of the
//! upper dir — its entries, what it gives when applied, its unpacked form
//! in the store, and its digests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use berth::build::layer::{LayerError, LayerOutput, layer_from_upper};
use berth::oci::{UnpackOptions, Whiteouts, unpack_compressed};
use berth::store::Store;

// ---------------------------------------------------------------- helpers

/// An overlay mount, unmounted when dropped (also when a test fails).
struct Mount {
    target: PathBuf,
    mounted: bool,
}

impl Mount {
    /// `mount -t overlay` of `lowers` (top first) at `target`, with an upper
    /// and work dir if given (read-only otherwise) and `extra` options.
    fn overlay(lowers: &[&Path], rw: Option<(&Path, &Path)>, target: &Path, extra: &str) -> Mount {
        let lower: Vec<_> = lowers.iter().map(|p| p.display().to_string()).collect();
        let mut opts = format!("lowerdir={}", lower.join(":"));
        if let Some((upper, work)) = rw {
            opts += &format!(",upperdir={},workdir={}", upper.display(), work.display());
        }
        if !extra.is_empty() {
            opts += &format!(",{extra}");
        }
        fs::create_dir_all(target).unwrap();
        let out = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(target).output().unwrap();
        assert!(out.status.success(), "mount -o {opts}: {}", String::from_utf8_lossy(&out.stderr));
        Mount { target: target.to_owned(), mounted: true }
    }

    fn unmount(&mut self) {
        let out = Command::new("umount").arg(&self.target).output().unwrap();
        assert!(out.status.success(), "umount {}: {}", self.target.display(), String::from_utf8_lossy(&out.stderr));
        self.mounted = false;
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.target).status();
        }
    }
}

/// A temp dir with `lower/`, `upper/`, `work/`, `merged/` and a store.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let store = Store::open(&dir.path().join("store")).unwrap();
        Fixture { dir, store }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The overlay of `lowers` (top first) with this fixture's upper dir.
    fn mount_over(&self, lowers: &[&Path], extra: &str) -> Mount {
        Mount::overlay(lowers, Some((&self.path("upper"), &self.path("work"))), &self.path("merged"), extra)
    }

    fn mount(&self, extra: &str) -> Mount {
        self.mount_over(&[&self.path("lower")], extra)
    }

    fn layer(&self, lowers: &[PathBuf]) -> Result<LayerOutput, LayerError> {
        layer_from_upper(&self.store, &self.path("upper"), lowers, 0)
    }

    /// The layer's tar entries in order: name and type letter
    /// (`f`ile, `d`ir, `l`ink (hard), `s`ymlink, `c`har, `o`ther).
    fn entries(&self, out: &LayerOutput) -> Vec<(String, char)> {
        let blob = self.store.read_blob(&out.record.digest).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
        let mut got = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let kind = match entry.header().entry_type() {
                tar::EntryType::Regular => 'f',
                tar::EntryType::Directory => 'd',
                tar::EntryType::Link => 'l',
                tar::EntryType::Symlink => 's',
                tar::EntryType::Char => 'c',
                _ => 'o',
            };
            got.push((String::from_utf8_lossy(&entry.path_bytes()).into_owned(), kind));
        }
        got
    }

    /// `lower` copied (`cp -a`) to `name`, with the layer applied on top.
    fn apply_on_lower_copy(&self, out: &LayerOutput, name: &str) -> PathBuf {
        let copy = self.path(name);
        let status = Command::new("cp").arg("-a").arg(self.path("lower")).arg(&copy).status().unwrap();
        assert!(status.success());
        let blob = self.store.read_blob(&out.record.digest).unwrap();
        let opts = UnpackOptions { whiteouts: Whiteouts::Apply, preserve_owners: true };
        unpack_compressed(&blob[..], &copy, &opts).unwrap();
        copy
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    fs::symlink_metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

/// What a tree holds, as far as a layer carries it (no mtimes).
#[derive(Debug, PartialEq, Eq)]
enum What {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other { kind: u32, rdev: u64 },
}

#[derive(Debug, PartialEq, Eq)]
struct Node {
    what: What,
    mode: u32,
    uid: u32,
    gid: u32,
}

#[derive(Debug, PartialEq, Eq)]
struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
    /// Groups of names of one multiply-linked file.
    links: BTreeSet<BTreeSet<PathBuf>>,
}

impl Tree {
    fn read(root: &Path) -> Tree {
        let mut nodes = BTreeMap::new();
        let mut inodes: BTreeMap<(u64, u64), BTreeSet<PathBuf>> = BTreeMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for entry in fs::read_dir(root.join(&rel)).unwrap() {
                let entry = entry.unwrap();
                let child = rel.join(entry.file_name());
                let path = root.join(&child);
                let meta = fs::symlink_metadata(&path).unwrap();
                let ft = meta.file_type();
                let what = if ft.is_dir() {
                    stack.push(child.clone());
                    What::Dir
                } else if ft.is_file() {
                    What::File(fs::read(&path).unwrap())
                } else if ft.is_symlink() {
                    What::Symlink(fs::read_link(&path).unwrap())
                } else {
                    What::Other { kind: meta.mode() & 0o170000, rdev: meta.rdev() }
                };
                if !ft.is_dir() && meta.nlink() > 1 {
                    inodes.entry((meta.dev(), meta.ino())).or_default().insert(child.clone());
                }
                nodes.insert(child, Node { what, mode: meta.mode(), uid: meta.uid(), gid: meta.gid() });
            }
        }
        Tree { nodes, links: inodes.into_values().filter(|names| names.len() > 1).collect() }
    }
}

#[track_caller]
fn assert_same_tree(got: &Tree, want: &Tree, what: &str) {
    let mut problems = Vec::new();
    for (path, node) in &want.nodes {
        match got.nodes.get(path) {
            None => problems.push(format!("missing {}", path.display())),
            Some(other) if other != node => problems.push(format!("{}: got {other:?}, want {node:?}", path.display())),
            Some(_) => {}
        }
    }
    for path in got.nodes.keys().filter(|p| !want.nodes.contains_key(*p)) {
        problems.push(format!("extra {}", path.display()));
    }
    if got.links != want.links {
        problems.push(format!("hard links: got {:?}, want {:?}", got.links, want.links));
    }
    assert!(problems.is_empty(), "{what} differs from the merged view:\n{}", problems.join("\n"));
}

fn names(entries: &[(String, char)]) -> Vec<&str> {
    entries.iter().map(|(n, _)| n.as_str()).collect()
}

// ------------------------------------------------------------------ tests

/// The base tree every test starts from.
fn base_tree(lower: &Path) {
    write(&lower.join("bin/tool"), "#!/bin/sh\necho tool\n", 0o755);
    write(&lower.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0o644);
    write(&lower.join("etc/hostname"), "box\n", 0o644);
    write(&lower.join("etc/motd"), "hello\n", 0o644);
    write(&lower.join("etc/shadow"), "root:*:::\n", 0o640);
    write(&lower.join("lib/linked"), "shared\n", 0o644);
    write(&lower.join("opt/keep/unchanged.txt"), "keep\n", 0o644);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    write(&lower.join("srv/data.bin"), &data, 0o644);
    write(&lower.join("srv/same.txt"), "same\n", 0o644);
    write(&lower.join("srv/old-name"), "moved\n", 0o644);
    mkdir(&lower.join("tmp"), 0o1777);
    for f in ["a.txt", "b.txt", "sub/c.txt"] {
        write(&lower.join("usr/share/doc").join(f), f, 0o644);
    }
    write(&lower.join("var/log/app.log"), "log\n", 0o644);
    mkdir(&lower.join("home/user"), 0o750);
    chown(lower.join("home/user"), Some(1000), Some(1000)).unwrap();
    // Old mtimes, so that a touch is visible and rewrites can restore them.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for f in ["bin/tool", "etc/passwd", "etc/hostname", "srv/data.bin", "srv/same.txt", "var/log/app.log"] {
        set_mtime(&lower.join(f), old);
    }
}

/// Every kind of change through the merged view, then the layer: exactly
/// the expected entries, applying it gives the merged view, it is
/// reproducible, and its unpacked form is an overlay lower dir that gives
/// the merged view again.
#[test]
fn layer_is_the_diff_of_the_upper_dir() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("");
    let m = fx.path("merged");
    write(&m.join("srv/app/main.py"), "print('hi')\n", 0o644); // new dir and file
    symlink("main.py", m.join("srv/app/current")).unwrap(); // new symlink
    write(&m.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n", 0o644);
    fs::set_permissions(m.join("bin/tool"), fs::Permissions::from_mode(0o700)).unwrap(); // chmod only
    set_mtime(&m.join("var/log/app.log"), SystemTime::now()); // touch only: a change, as in Docker
    fs::remove_file(m.join("etc/motd")).unwrap(); // delete
    fs::remove_dir_all(m.join("usr/share/doc")).unwrap(); // delete a dir and recreate it: opaque
    write(&m.join("usr/share/doc/new.txt"), "new\n", 0o644);
    fs::rename(m.join("srv/old-name"), m.join("srv/new-name")).unwrap();
    fs::hard_link(m.join("lib/linked"), m.join("lib/linked2")).unwrap();
    symlink("/usr/share/zoneinfo/UTC", m.join("etc/localtime")).unwrap();
    // Rewritten with identical bytes and the mtime restored (what dpkg does): unchanged.
    let (bytes, t) = (fs::read(m.join("srv/data.bin")).unwrap(), mtime(&m.join("srv/data.bin")));
    fs::write(m.join("srv/data.bin"), &bytes).unwrap();
    set_mtime(&m.join("srv/data.bin"), t);
    // Rewritten with identical bytes, new mtime: a touch, so a change.
    fs::write(m.join("srv/same.txt"), "same\n").unwrap();
    // Copied up but unchanged: opened for writing, chmod to the same mode.
    drop(File::options().append(true).open(m.join("opt/keep/unchanged.txt")).unwrap());
    fs::set_permissions(m.join("etc/hostname"), fs::Permissions::from_mode(0o644)).unwrap();
    write(&m.join("tmp/new-file"), "t\n", 0o600); // its parent /tmp keeps 1777
    mkdir(&m.join("srv/empty"), 0o755);
    chown(m.join("etc/shadow"), Some(0), Some(42)).unwrap(); // chown only
    write(&m.join("home/user/.profile"), "PS1='$ '\n", 0o644); // parent owned 1000:1000, 0750
    let merged = Tree::read(&m);
    mount.unmount();
    assert!(
        fs::symlink_metadata(fx.path("upper/opt/keep/unchanged.txt")).is_ok(),
        "the test means overlayfs to copy up the unchanged file"
    );

    let lowers = [fx.path("lower")];
    let out = fx.layer(&lowers).unwrap();
    assert!(!out.empty);
    let entries = fx.entries(&out);
    let want = [
        "bin/",
        "bin/tool",
        "etc/",
        "etc/.wh.motd",
        "etc/localtime",
        "etc/passwd",
        "etc/shadow",
        "home/",
        "home/user/",
        "home/user/.profile",
        "lib/",
        "lib/linked",
        "lib/linked2",
        "srv/",
        "srv/.wh.old-name",
        "srv/app/",
        "srv/app/current",
        "srv/app/main.py",
        "srv/empty/",
        "srv/new-name",
        "srv/same.txt",
        "tmp/",
        "tmp/new-file",
        "usr/",
        "usr/share/",
        "usr/share/doc/",
        "usr/share/doc/.wh..wh..opq",
        "usr/share/doc/new.txt",
        "var/",
        "var/log/",
        "var/log/app.log",
    ];
    assert_eq!(names(&entries), want);
    let kind = |name: &str| entries.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!((kind("lib/linked"), kind("lib/linked2")), ('f', 'l'), "hard links stay hard links");
    assert_eq!(kind("etc/localtime"), 's');

    // Applied on the lower tree, it gives what the merged view showed.
    let applied = fx.apply_on_lower_copy(&out, "applied");
    assert_same_tree(&Tree::read(&applied), &merged, "lower + layer (applied)");

    // Reproducible.
    let again = fx.layer(&lowers).unwrap();
    assert_eq!(again, out);

    // The unpacked layer in the store is in overlay form, without overlay's own xattrs.
    assert_eq!(out.unpacked, fx.store.layer_dir(&out.record.diff_id));
    for deleted in ["etc/motd", "srv/old-name"] {
        assert!(is_overlay_whiteout(&out.unpacked.join(deleted)), "{deleted} is not an overlay whiteout");
    }
    assert!(fs::symlink_metadata(out.unpacked.join("usr/share/doc/.wh..wh..opq")).is_err());
    for (path, xattrs) in overlay_xattrs(&out.unpacked) {
        assert_eq!((path.as_path(), xattrs), (Path::new("usr/share/doc"), vec!["trusted.overlay.opaque=y".to_owned()]));
    }
    assert_eq!(fs::metadata(out.unpacked.join("tmp")).unwrap().mode() & 0o7777, 0o1777);

    // As an overlay lower dir over the base, it gives the merged view again.
    let view = Mount::overlay(&[&out.unpacked, &fx.path("lower")], None, &fx.path("view"), "");
    assert!(fs::symlink_metadata(fx.path("view/etc/motd")).is_err(), "the deleted file is gone");
    assert_same_tree(&Tree::read(&view.target), &merged, "the overlay of the unpacked layer");
}

/// Whether `path` is an overlayfs whiteout (a 0:0 character device).
fn is_overlay_whiteout(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// Every `trusted.overlay.*` / `user.overlay.*` xattr under `root`, as
/// `key=value` per path.
fn overlay_xattrs(root: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let mut here = Vec::new();
        for key in berth::sys::xattr::list_nofollow(&path).unwrap() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("trusted.overlay.") || key.starts_with("user.overlay.") {
                let value = berth::sys::fs::get_xattr_nofollow(&path, &key).unwrap().unwrap_or_default();
                here.push(format!("{key}={}", String::from_utf8_lossy(&value)));
            }
        }
        if !here.is_empty() {
            found.push((rel.clone(), here));
        }
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(rel.join(entry.unwrap().file_name()));
            }
        }
    }
    found
}

/// Copy-ups that change nothing give an empty layer.
#[test]
fn copy_ups_without_changes_give_an_empty_layer() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("");
    let m = fx.path("merged");
    drop(File::options().append(true).open(m.join("etc/passwd")).unwrap());
    fs::set_permissions(m.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    chown(m.join("home/user"), Some(1000), Some(1000)).unwrap();
    let (bytes, t) = (fs::read(m.join("srv/same.txt")).unwrap(), mtime(&m.join("srv/same.txt")));
    fs::write(m.join("srv/same.txt"), bytes).unwrap();
    set_mtime(&m.join("srv/same.txt"), t);
    write(&m.join("var/log/scratch"), "x", 0o644); // made and removed again
    fs::remove_file(m.join("var/log/scratch")).unwrap();
    mount.unmount();
    assert!(fs::symlink_metadata(fx.path("upper/etc/passwd")).is_ok(), "overlayfs copied it up");

    let out = fx.layer(&[fx.path("lower")]).unwrap();
    assert!(out.empty);
    assert_eq!(fx.entries(&out), []);
    assert_eq!(fs::read_dir(&out.unpacked).unwrap().count(), 0);
    assert_eq!(fx.layer(&[fx.path("lower")]).unwrap(), out);
}

/// A second step on top of the first step's unpacked layer: a path the
/// first layer deleted, or hid under an opaque directory, is new again even
/// when it is byte for byte the base's file.
#[test]
fn lookups_respect_whiteouts_and_opaque_dirs_of_lower_layers() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("");
    let m = fx.path("merged");
    fs::remove_file(m.join("etc/motd")).unwrap();
    fs::remove_dir_all(m.join("usr/share/doc")).unwrap();
    mkdir(&m.join("usr/share/doc"), 0o755);
    mount.unmount();
    let first = fx.layer(&[fx.path("lower")]).unwrap();

    // Step two: a fresh upper over [first, lower].
    fs::remove_dir_all(fx.path("upper")).unwrap();
    fs::remove_dir_all(fx.path("work")).unwrap();
    fs::create_dir(fx.path("upper")).unwrap();
    fs::create_dir(fx.path("work")).unwrap();
    let mut mount = fx.mount_over(&[&first.unpacked, &fx.path("lower")], "");
    for (rel, base) in [("etc/motd", "etc/motd"), ("usr/share/doc/a.txt", "usr/share/doc/a.txt")] {
        let src = fx.path("lower").join(base);
        write(&m.join(rel), fs::read(&src).unwrap(), 0o644);
        set_mtime(&m.join(rel), mtime(&src));
    }
    let merged = Tree::read(&m);
    mount.unmount();
    let second = fx.layer(&[first.unpacked.clone(), fx.path("lower")]).unwrap();
    assert_eq!(
        names(&fx.entries(&second)),
        ["etc/", "etc/motd", "usr/", "usr/share/", "usr/share/doc/", "usr/share/doc/a.txt"]
    );
    let view = Mount::overlay(&[&second.unpacked, &first.unpacked, &fx.path("lower")], None, &fx.path("view"), "");
    assert_same_tree(&Tree::read(&view.target), &merged, "the overlay of both layers");
}

/// An upper dir written with metacopy (a chmod copies up metadata only) is
/// refused, naming the file.
#[test]
fn metacopy_upper_dirs_are_refused() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("redirect_dir=on,metacopy=on");
    fs::set_permissions(fx.path("merged/srv/data.bin"), fs::Permissions::from_mode(0o600)).unwrap();
    mount.unmount();
    let err = fx.layer(&[fx.path("lower")]).unwrap_err();
    assert!(matches!(err, LayerError::Metacopy { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("srv/data.bin") && msg.contains("metacopy=off"), "{msg}");
}

/// An upper dir with a redirected (renamed) directory is refused.
#[test]
fn redirected_directories_are_refused() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("redirect_dir=on");
    fs::rename(fx.path("merged/opt/keep"), fx.path("merged/opt/kept")).unwrap();
    mount.unmount();
    let err = fx.layer(&[fx.path("lower")]).unwrap_err();
    assert!(matches!(err, LayerError::Redirect { .. }), "{err:?}");
    assert!(err.to_string().contains("opt/kept"), "{err}");
}

/// A file named like a whiteout cannot be put in a layer.
#[test]
fn whiteout_names_are_refused() {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("");
    write(&fx.path("merged/srv/.wh.sneaky"), "x", 0o644);
    mount.unmount();
    let err = fx.layer(&[fx.path("lower")]).unwrap_err();
    assert!(matches!(err, LayerError::ReservedName { .. }), "{err:?}");
}

/// Issue 6's workload, timed (not a pass/fail test; run with
/// `cargo test --release --test layers -- --ignored --nocapture`): 500
/// files of 100 KiB (50 MiB) and three deletions, with random and with
/// text contents, five times each; prints the fastest and the median wall
/// time and the median CPU time (user + system, all threads).
#[test]
#[ignore]
fn time_50_mib_in_500_files() {
    for text in [false, true] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(time_one_commit(text));
        }
        runs.sort();
        let kind = if text { "text" } else { "random" };
        let mut cpu: Vec<_> = runs.iter().map(|r| r.1).collect();
        cpu.sort();
        println!(
            "layer_from_upper, 50 MiB in 500 {kind} files + 3 deletions: fastest {:.0?}, median {:.0?}, median CPU {:.0?}",
            runs[0].0, runs[2].0, cpu[2]
        );
    }
}

/// One timed commit: wall time and CPU time.
fn time_one_commit(text: bool) -> (Duration, Duration) {
    let fx = Fixture::new();
    base_tree(&fx.path("lower"));
    let mut mount = fx.mount("");
    let m = fx.path("merged");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..500 {
        let bytes: Vec<u8> = if text {
            format!("line {i} of some configuration text\n").bytes().cycle().take(104_857).collect()
        } else {
            (0..104_857)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        write(&m.join(format!("data/f{i:03}")), bytes, 0o644);
    }
    for gone in ["etc/motd", "srv/old-name", "usr/share/doc/a.txt"] {
        fs::remove_file(m.join(gone)).unwrap();
    }
    mount.unmount();
    nix::unistd::sync(); // start clean: no other writer's dirty pages to flush
    let cpu = || {
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
        let (u, s) = (usage.user_time(), usage.system_time());
        Duration::from_micros((u.tv_sec() * 1_000_000 + u.tv_usec() + s.tv_sec() * 1_000_000 + s.tv_usec()) as u64)
    };
    let (start, cpu_start) = (Instant::now(), cpu());
    let out = fx.layer(&[fx.path("lower")]).unwrap();
    let took = (start.elapsed(), cpu() - cpu_start);
    // data/ and its files; etc/ srv/ usr/ usr/share/ usr/share/doc/ and a whiteout in three of them.
    assert_eq!(fx.entries(&out).len(), 1 + 500 + 5 + 3);
    took
}
