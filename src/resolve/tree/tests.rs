//! Tests of copy-source hashing: ignore rules, symlinks, special files,
//! what changes the digest and what does not.

use std::fs::{self, FileTimes, Permissions};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;

/// A project directory in a temp dir, built a few lines per test.
struct Project(tempfile::TempDir);

impl Project {
    fn new() -> Project {
        Project(tempfile::tempdir().unwrap())
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }

    fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        self
    }

    fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    fn link(&self, rel: &str, target: &str) -> &Self {
        symlink(target, self.path(rel)).unwrap();
        self
    }

    fn mode(&self, rel: &str, mode: u32) -> &Self {
        fs::set_permissions(self.path(rel), Permissions::from_mode(mode)).unwrap();
        self
    }

    fn hash(&self, src: &str) -> TreeDigest {
        hash_tree(self.0.path(), Path::new(src)).unwrap()
    }

    fn error(&self, src: &str) -> String {
        hash_tree(self.0.path(), Path::new(src)).unwrap_err().to_string()
    }

    fn root(&self) -> String {
        self.0.path().display().to_string()
    }
}

/// A small app: nested dirs, an executable, a symlink, an empty dir.
fn sample() -> Project {
    let p = Project::new();
    p.file("app/main.py", "print('hi')\n")
        .file("app/lib/util.py", "X = 1\n")
        .file("app/bin/run", "#!/bin/sh\n")
        .mode("app/bin/run", 0o755)
        .link("app/current", "lib/util.py")
        .dir("app/empty");
    p
}

fn set_mtime(path: &Path, secs: u64) {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let file = fs::File::open(path).unwrap();
    file.set_times(FileTimes::new().set_modified(when).set_accessed(when)).unwrap();
}

#[test]
fn same_tree_in_two_dirs_with_different_mtimes_hashes_the_same() {
    let (a, b) = (sample(), sample());
    for rel in ["app/main.py", "app/lib/util.py", "app/lib", "app"] {
        set_mtime(&b.path(rel), 1_000_000);
    }
    assert_eq!(a.hash("app"), b.hash("app"));
}

#[test]
fn touching_a_file_changes_nothing() {
    let p = sample();
    let before = p.hash("app");
    set_mtime(&p.path("app/main.py"), 42);
    assert_eq!(p.hash("app"), before);
}

#[test]
fn one_byte_changes_the_hash() {
    let p = sample();
    let before = p.hash("app");
    p.file("app/lib/util.py", "X = 2\n");
    assert_ne!(p.hash("app").hash, before.hash);
}

#[test]
fn a_mode_bit_changes_the_hash() {
    let p = sample();
    let before = p.hash("app");
    p.mode("app/bin/run", 0o754);
    assert_ne!(p.hash("app").hash, before.hash);
}

#[test]
fn a_symlink_target_changes_the_hash() {
    let p = sample();
    let before = p.hash("app");
    fs::remove_file(p.path("app/current")).unwrap();
    p.link("app/current", "main.py");
    assert_ne!(p.hash("app").hash, before.hash);
}

#[test]
fn a_file_name_changes_the_hash() {
    let p = sample();
    let before = p.hash("app");
    fs::rename(p.path("app/main.py"), p.path("app/main2.py")).unwrap();
    assert_ne!(p.hash("app").hash, before.hash);
}

#[test]
fn an_empty_dir_changes_the_hash() {
    let p = sample();
    let before = p.hash("app");
    p.dir("app/lib/new");
    let after = p.hash("app");
    assert_ne!(after.hash, before.hash);
    assert_eq!(after.files, before.files);
}

#[test]
fn counts_files_and_bytes() {
    let d = sample().hash("app");
    assert_eq!(d.files, 3);
    assert_eq!(d.bytes, 12 + 6 + 10);
}

#[test]
fn digest_format_is_stable() {
    // Cache keys of every existing layer depend on this value: change it
    // only with the "berth tree v1" tag, on purpose. The expected value was
    // computed outside this code, from the stream as `TreeDigest` documents
    // it (a hand-built byte string piped to b3sum).
    let p = Project::new();
    p.file("t/a.txt", "a\n").mode("t/a.txt", 0o644).link("t/l", "a.txt").dir("t/d").mode("t/d", 0o755).mode("t", 0o755);
    assert_eq!(hex::encode(p.hash("t").hash), "46ba5f8ee2d21d9be4fdaf3dd08ba1396b9c7b0f862f28f353532a88a8d60857");
}

#[test]
fn root_rules_exclude_files_and_dirs() {
    let p = sample();
    let all = p.hash("app");
    p.file(".berthignore", "*.py\n/app/bin/\n");
    let d = p.hash("app");
    assert_eq!(d.files, 0);
    assert_ne!(d.hash, all.hash);
}

#[test]
fn root_rules_are_relative_to_the_project_root_when_src_is_a_subdir() {
    let p = sample();
    p.file("app/tmp/cache", "junk");
    let with_tmp = p.hash("app");
    // Anchored at the project root: `/tmp` is not `app/tmp`.
    p.file(".berthignore", "/tmp\n");
    assert_eq!(p.hash("app"), with_tmp);
    p.file(".berthignore", "/app/tmp\n");
    let d = p.hash("app");
    assert_eq!(d.files, with_tmp.files - 1);
    fs::remove_dir_all(p.path("app/tmp")).unwrap();
    fs::remove_file(p.path(".berthignore")).unwrap();
    assert_eq!(p.hash("app"), d, "same as a tree without app/tmp");
}

#[test]
fn rules_in_dirs_above_src_apply_when_src_is_deeper() {
    let p = sample();
    p.file("app/lib/tmp/x", "x").file("app/.berthignore", "lib/tmp/\n");
    assert_eq!(p.hash("app/lib").files, 1, "util.py only");
}

#[test]
fn siblings_sharing_a_name_prefix_stay_out() {
    let p = sample();
    let d = p.hash("app");
    p.file("app2/x.py", "x").file("ap", "x");
    assert_eq!(p.hash("app"), d);
}

#[test]
fn nested_rules_apply_below_their_dir() {
    let p = sample();
    p.file("app/lib/.berthignore", "*.py\n");
    let d = p.hash("app");
    // main.py stays, lib/util.py goes, lib/.berthignore is itself hashed.
    assert_eq!(d.files, 3);
    assert_eq!(d.bytes, 12 + 10 + 5);
}

#[test]
fn negation_reincludes_a_file() {
    let p = Project::new();
    p.file("src/a.log", "a").file("src/keep.log", "keep");
    p.file(".berthignore", "*.log\n!keep.log\n");
    let d = p.hash("src");
    assert_eq!((d.files, d.bytes), (1, 4));
    // A deeper file may re-include what a shallower one excludes.
    p.file(".berthignore", "*.log\n").file("src/.berthignore", "!a.log\n");
    assert_eq!(p.hash("src").files, 2, "a.log and src/.berthignore");
}

#[test]
fn ignored_dir_contents_are_not_read() {
    let p = sample();
    p.file("app/node_modules/x/index.js", "module.exports = 1\n");
    // A socket is an error wherever it is read, so it proves the walk
    // never went in (as root, a mode-000 file would still be readable).
    let _sock = UnixListener::bind(p.path("app/node_modules/x/s.sock")).unwrap();
    p.file(".berthignore", "node_modules/\n");
    let d = p.hash("app");
    assert_eq!(d.files, 3);
    fs::remove_dir_all(p.path("app/node_modules")).unwrap();
    fs::remove_file(p.path(".berthignore")).unwrap();
    assert_eq!(p.hash("app"), d);
}

#[test]
fn berthignore_files_are_hashed_unless_ignored() {
    let p = Project::new();
    p.file("src/a", "a").file("src/.berthignore", "*.tmp\n");
    assert_eq!(p.hash("src").files, 2);
    p.file("src/.berthignore", "*.tmp\n.berthignore\n");
    assert_eq!(p.hash("src").files, 1);
}

#[test]
fn gitignore_and_hidden_files_are_not_special() {
    let p = Project::new();
    p.file("src/.gitignore", "*\n").file("src/.env", "A=1\n");
    p.file(".ignore", "*\n");
    assert_eq!(p.hash("src").files, 2);
}

#[test]
fn invalid_rule_names_the_berthignore() {
    let p = sample();
    p.file(".berthignore", "ok\n[z-a]\n");
    let err = p.error("app");
    assert!(err.contains(".berthignore"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn ignored_src_is_an_error() {
    let p = sample();
    p.file(".berthignore", "app/lib\n");
    let err = p.error("app/lib/util.py");
    assert!(err.contains("\"app/lib/util.py\" is excluded by a .berthignore rule"), "{err}");
}

#[test]
fn single_file_src() {
    let p = sample();
    let d = p.hash("app/main.py");
    assert_eq!((d.files, d.bytes), (1, 12));
    // The name of src is the copy step's parameter, not part of the digest.
    p.file("other/renamed.py", "print('hi')\n");
    p.mode("other/renamed.py", 0o644).mode("app/main.py", 0o644);
    assert_eq!(p.hash("other/renamed.py"), p.hash("app/main.py"));
}

#[test]
fn symlink_src_hashes_the_link_not_the_target() {
    let p = sample();
    let d = p.hash("app/current");
    assert_eq!(d.files, 0);
    p.file("app/lib/util.py", "X = 3\n");
    assert_eq!(p.hash("app/current"), d);
    fs::remove_file(p.path("app/current")).unwrap();
    p.link("app/current", "main.py");
    assert_ne!(p.hash("app/current"), d);
}

#[test]
fn whole_project_as_dot() {
    let p = sample();
    assert_eq!(p.hash(".").files, 3);
    assert_eq!(p.hash("."), p.hash(""));
    assert_eq!(p.hash("./app"), p.hash("app"));
}

#[test]
fn missing_src_names_path_and_project_dir() {
    let p = sample();
    let err = p.error("app/nope/x.py");
    let want = format!("copy source \"app/nope/x.py\" does not exist in the project dir {}", p.root());
    assert!(err.starts_with(&want), "{err}");
}

#[test]
fn src_outside_the_project_is_refused() {
    let p = sample();
    for src in ["../etc", "/etc", "app/../../x"] {
        let err = p.error(src);
        assert!(err.contains("must be a relative path inside the project dir"), "{err}");
    }
}

#[test]
fn symlinked_dir_above_src_is_refused() {
    let p = sample();
    p.link("alias", "app");
    let err = p.error("alias/main.py");
    assert!(err.contains("goes through the symlink"), "{err}");
    assert!(err.contains("alias"), "{err}");
}

#[test]
fn socket_in_src_is_an_error_naming_it() {
    let p = sample();
    let _sock = UnixListener::bind(p.path("app/lib/s.sock")).unwrap();
    let err = p.error("app");
    assert!(err.contains("app/lib/s.sock is a socket"), "{err}");
    assert!(err.contains("add it to .berthignore"), "{err}");
}

#[test]
fn thread_count_does_not_change_the_hash() {
    let p = Project::new();
    for i in 0..2000 {
        p.file(&format!("t/d{}/s{}/f{i}", i % 7, i % 13), &"x".repeat(i % 300));
    }
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| p.hash("t"))
    };
    let one = on(1);
    assert_eq!(one.files, 2000);
    assert_eq!(on(8), one);
    assert_eq!(on(3), one);
}

#[test]
fn the_project_lock_is_left_out_of_copied_dirs_only() {
    let p = sample();
    let without = p.hash(".");
    p.file("berth.lock", "version = 1\n").file("app/berth.lock", "not the project's\n");
    let with = p.hash(".");
    assert_eq!(with.files, without.files + 1, "only app/berth.lock is added");
    p.file("berth.lock", "version = 1\n\n[env.x]\n");
    assert_eq!(p.hash("."), with, "rewriting the lock changes nothing");
    assert_eq!(p.hash("berth.lock").files, 1, "a copy of the lock itself takes it");
}

#[test]
fn a_dockerignored_dir_stays_out_despite_exceptions_unless_something_in_it_is_kept() {
    let p = Project::new();
    p.file("README.md", "r").file("NOTES.md", "n").file("secret/key", "s").file("app/deep/x.txt", "x");
    let rules = |text: &str| crate::dockerfile::ignore::Ignore::parse(text).unwrap();
    let names = |ignore: &crate::dockerfile::ignore::Ignore, src: &str| -> Vec<String> {
        copy_entries_with(p.0.path(), Path::new(src), Rules::Docker(ignore))
            .unwrap()
            .into_iter()
            .map(|e| e.rel.to_string_lossy().into_owned())
            .collect()
    };
    let hash = |ignore: &crate::dockerfile::ignore::Ignore, src: &str| {
        hash_tree_with(p.0.path(), Path::new(src), Rules::Docker(ignore)).unwrap()
    };
    let ignore = rules("*.md\n!README.md\nsecret/\napp/deep\n");
    assert_eq!(names(&ignore, "."), ["", "README.md", "app"]);
    let copied = hash(&ignore, ".");
    fs::remove_dir_all(p.path("secret")).unwrap();
    assert_eq!(hash(&ignore, "."), copied, "the hash leaves the ignored directory out as the copy does");
    assert_eq!(names(&ignore, "app"), [""], "below a subdirectory source too");
    // Something let back in keeps the directories on its way.
    p.file("app/deep/keep/k.txt", "k");
    let ignore = rules("app/deep\n!app/deep/keep/k.txt\n");
    assert_eq!(names(&ignore, "app"), ["", "deep", "deep/keep", "deep/keep/k.txt"]);
}
