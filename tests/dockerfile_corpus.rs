//! The Dockerfile corpus (issue 15, Tests): every directory under
//! `fixtures/dockerfiles/` is a build context that `berth build -t` and
//! `podman build` (buildah) both build, from the same local bases; the two
//! images must have the same filesystem (path, type, mode, owner, content,
//! link target) and the same config (the fields of point 4, the author and
//! the history's length). `fixtures/dockerfiles/README.md` describes a
//! fixture's files (`args`, `target`, `allow`, `skip`, `Dockerfile.podman`).
//!
//! Two tests: the whole corpus in one berth store and one podman storage
//! (the bases loaded once, every image built, then compared), and the seed
//! example, `seed-ssh/`, which also runs: its sshd must answer on a
//! published port.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};

use support::Berth;
use support::differential::{DEBIAN, Reference, config_differences, filesystems, raw_config, share_bases};
use support::image_fs::{Filesystem, differences};

/// The seed example's directory, which its own test builds and runs.
const SEED: &str = "seed-ssh";

/// One build context of the corpus and how to build it.
struct Fixture {
    name: String,
    dir: PathBuf,
    /// `NAME=VALUE` build args, from the fixture's `args` file.
    args: Vec<String>,
    /// The stage to build, from the fixture's `target` file.
    target: Option<String>,
    /// The Dockerfile podman builds instead, when buildah 1.28 lacks a
    /// syntax point the fixture covers (`Dockerfile.podman`).
    podman_dockerfile: Option<PathBuf>,
    allow: Allow,
}

/// Known, justified differences of one fixture (its `allow` file): paths
/// (`/a/b`, or `/a/` for `/a` and everything under it) and config fields
/// (`config.Healthcheck`, `author`, `history`), each with its reason.
#[derive(Debug, Default)]
struct Allow {
    entries: Vec<String>,
}

impl Allow {
    fn read(file: &Path) -> Allow {
        let Ok(text) = std::fs::read_to_string(file) else { return Allow::default() };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (entry, reason) = line.split_once('#').unwrap_or((line, ""));
            assert!(
                !reason.trim().is_empty(),
                "{}:{}: `{line}` gives no reason; write `{} # why the builders differ there`",
                file.display(),
                i + 1,
                entry.trim()
            );
            entries.push(entry.trim().to_owned());
        }
        Allow { entries }
    }

    /// Whether the difference at `what` (a path or a config field) is allowed.
    fn allows(&self, what: &str) -> bool {
        self.entries.iter().any(|e| {
            e == what || (e.ends_with('/') && (what.starts_with(e.as_str()) || what == e.trim_end_matches('/')))
        })
    }
}

/// The lines of a fixture's control file `name`, without comments and
/// blank lines.
fn lines(dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// The corpus: `fixtures/dockerfiles`, or the directory `BERTH_CORPUS`
/// names (relative to the repository: `fixtures/dockerfiles-pending` to try
/// the fixtures that wait for a fix).
fn corpus_root() -> (PathBuf, bool) {
    match std::env::var("BERTH_CORPUS") {
        Ok(dir) if !dir.is_empty() => (support::repo().join(dir), false),
        _ => (support::repo().join("fixtures/dockerfiles"), true),
    }
}

/// Every fixture directory, sorted by name (only those `BERTH_CORPUS_ONLY`
/// names, comma-separated, when it is set), and the skipped ones with the
/// reason their `skip` file gives.
fn corpus(root: &Path) -> (Vec<Fixture>, Vec<(String, String)>) {
    let only: Vec<String> = std::env::var("BERTH_CORPUS_ONLY")
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .filter(|p| only.is_empty() || only.iter().any(|n| p.file_name().is_some_and(|f| f == n.as_str())))
        .collect();
    dirs.sort();
    let (mut fixtures, mut skipped) = (Vec::new(), Vec::new());
    for dir in dirs {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(dir.join("Dockerfile").is_file(), "{}: a fixture needs a Dockerfile", dir.display());
        if dir.join("skip").is_file() {
            let reason = lines(&dir, "skip").join(" ");
            assert!(!reason.is_empty(), "{}/skip: say why the fixture is not built", dir.display());
            skipped.push((name, reason));
            continue;
        }
        let target = lines(&dir, "target").into_iter().next();
        let podman = dir.join("Dockerfile.podman");
        fixtures.push(Fixture {
            args: lines(&dir, "args"),
            target,
            podman_dockerfile: podman.is_file().then_some(podman),
            allow: Allow::read(&dir.join("allow")),
            name,
            dir,
        });
    }
    (fixtures, skipped)
}

impl Fixture {
    /// Whether a Dockerfile of the fixture starts from the Debian minbase.
    fn needs_debian(&self) -> bool {
        let files = [Some(self.dir.join("Dockerfile")), self.podman_dockerfile.clone()];
        files.into_iter().flatten().any(|f| std::fs::read_to_string(f).unwrap().contains(DEBIAN))
    }

    fn podman_tag(&self) -> String {
        format!("corpus-{}:podman", self.name)
    }

    /// podman's image, once brought into the berth store.
    fn podman_image(&self) -> String {
        format!("localhost/{}", self.podman_tag())
    }

    fn berth_tag(&self) -> String {
        format!("corpus-{}:berth", self.name)
    }

    fn podman_build(&self, reference: &Reference) -> Result<(), String> {
        let file = self.podman_dockerfile.as_deref();
        reference.build(&self.dir, file, &self.podman_tag(), &self.args, self.target.as_deref())
    }

    /// `berth build -t corpus-NAME:berth [--build-arg …] [--target …] DIR`.
    fn berth_build(&self, berth: &Berth) -> Result<(), String> {
        let tag = self.berth_tag();
        let mut args = vec!["build", "-q", "-t", &tag];
        for arg in &self.args {
            args.extend(["--build-arg", arg]);
        }
        if let Some(target) = &self.target {
            args.extend(["--target", target]);
        }
        args.push(self.dir.to_str().unwrap());
        let run = berth.run(&args);
        if run.code == 0 { Ok(()) } else { Err(format!("berth {} failed:\n{}", args.join(" "), run.stderr)) }
    }

    /// The differences between the two images, after the allowed ones.
    fn compare(&self, berth: &Berth) -> Vec<String> {
        let (ours, theirs) = filesystems(berth, &self.berth_tag(), &self.podman_image());
        let mut out = differences(&ours, &theirs, |p| self.allow.allows(p));
        let (ours, theirs) = (raw_config(berth, &self.berth_tag()), raw_config(berth, &self.podman_image()));
        out.extend(config_differences(&ours, &theirs, |f| self.allow.allows(f)));
        out
    }
}

#[test]
fn every_fixture_builds_the_filesystem_and_config_podman_build_does() {
    let (root, whole) = corpus_root();
    let (fixtures, skipped) = corpus(&root);
    for (name, reason) in &skipped {
        eprintln!("{}/{name}: not built here: {reason}", root.display());
    }
    let names: Vec<&str> = fixtures.iter().map(|f| f.name.as_str()).collect();
    if whole && std::env::var_os("BERTH_CORPUS_ONLY").is_none() {
        assert!(fixtures.len() >= 15, "the corpus lost fixtures: {names:?}");
    }
    assert!(!fixtures.is_empty(), "no fixture to build in {}", root.display());
    eprintln!("building {} fixtures with podman and berth: {names:?}", fixtures.len());

    let berth = Berth::with_busybox();
    let reference = Reference::new();
    share_bases(&berth, &reference.podman, fixtures.iter().any(Fixture::needs_debian));

    // The two builders work side by side (the store and podman's storage
    // are apart); podman's images then come over in one archive.
    let (theirs, ours) = std::thread::scope(|s| {
        let ours = s.spawn(|| fixtures.iter().map(|f| f.berth_build(&berth)).collect::<Vec<_>>());
        let theirs: Vec<_> = fixtures.iter().map(|f| f.podman_build(&reference)).collect();
        (theirs, ours.join().expect("the berth builds"))
    });
    let tags: Vec<String> =
        fixtures.iter().zip(&theirs).filter(|(_, r)| r.is_ok()).map(|(f, _)| f.podman_tag()).collect();
    reference.bring_to(&berth, &tags.iter().map(String::as_str).collect::<Vec<_>>());

    let mut failures: Vec<String> = Vec::new();
    for ((f, theirs), ours) in fixtures.iter().zip(theirs).zip(ours) {
        if let Err(e) = theirs {
            failures.push(format!("{}: the reference build failed (fix the fixture): {e}", f.name));
        } else if let Err(e) = ours {
            failures.push(format!("{}: {e}", f.name));
        } else {
            let diff = f.compare(&berth);
            if !diff.is_empty() {
                failures.push(format!("{}: berth's image differs from podman's:\n  {}", f.name, diff.join("\n  ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

/// The paths of the seed image whose bytes both builders must agree on:
/// the programs and configuration the two packages installed.
const SEED_FILES: [&str; 6] =
    ["/usr/sbin/sshd", "/usr/bin/wget", "/usr/bin/ssh-keygen", "/etc/ssh/sshd_config", "/etc/passwd", "/etc/group"];

/// Paths where the two seed images may differ in content but must both
/// exist with the same type, mode and owner: what apt, dpkg, the packages'
/// scripts and ssh-keygen write anew on every build (logs, caches, package
/// lists, dpkg's state, machine ids, random keys with the build
/// container's host name in their comment, password-change dates).
fn seed_varies(path: &str) -> bool {
    const VARIES: [&str; 11] = [
        "/var/log/",
        "/var/cache/",
        "/var/lib/apt/lists/",
        "/var/lib/dpkg/",
        "/var/lib/systemd/",
        "/etc/ssh/ssh_host_",
        "/root/.ssh/id_",
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/etc/shadow",
        "/etc/gshadow",
    ];
    VARIES.iter().any(|v| path.starts_with(v))
}

/// `fs` with the contents of the paths [`seed_varies`] accepts blanked.
fn without_varying_contents(fs: &Filesystem) -> Filesystem {
    use support::image_fs::Kind;
    fs.iter()
        .map(|(p, n)| {
            let mut n = n.clone();
            if seed_varies(p) && matches!(n.kind, Kind::File { .. }) {
                n.kind = Kind::File { size: 0, digest: "varies".repeat(4) };
            }
            (p.clone(), n)
        })
        .collect()
}

#[test]
fn the_seed_example_builds_as_podman_builds_it_and_its_sshd_listens() {
    let dir = support::repo().join("fixtures/dockerfiles").join(SEED);
    let berth = Berth::with_busybox();
    let reference = Reference::new();
    share_bases(&berth, &reference.podman, true);

    reference.build(&dir, None, "seed:podman", &[], None).unwrap_or_else(|e| panic!("{e}"));
    reference.bring_to(&berth, &["seed:podman"]);
    berth.run(&["build", "-q", "-t", "seed:berth", dir.to_str().unwrap()]).ok();

    let (ours, theirs) = (raw_config(&berth, "seed:berth"), raw_config(&berth, "localhost/seed:podman"));
    let diff = config_differences(&ours, &theirs, |_| false);
    assert!(diff.is_empty(), "the seed image's config differs from podman's:\n{}", diff.join("\n"));

    let (ours, theirs) = filesystems(&berth, "seed:berth", "localhost/seed:podman");
    for path in SEED_FILES {
        assert!(ours.contains_key(path), "the seed image has no {path}");
    }
    let diff = differences(&without_varying_contents(&ours), &without_varying_contents(&theirs), |_| false);
    assert!(diff.is_empty(), "the seed image's filesystem differs from podman's:\n{}", diff.join("\n"));

    // It runs, and sshd answers on the published port.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:22");
    berth.detach(&["--name", "seed", "-p", &publish, "seed:berth"]);
    let banner = support::poll("sshd's banner on the published port", || ssh_banner(port));
    assert!(banner.starts_with("SSH-2.0-OpenSSH"), "{banner:?}");
    let listening = berth.run(&["exec", "seed", "cat", "/proc/net/tcp"]).ok().to_owned();
    assert!(
        listening.lines().any(|l| l.contains(":0016 00000000:0000 0A")),
        "sshd listens on port 22 inside:\n{listening}"
    );
}

/// A TCP port nobody on 127.0.0.1 listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first line sshd sends on `port`, once something answers there.
fn ssh_banner(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") && got.len() < 256 {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&got).trim().to_owned())
}

#[test]
fn an_allow_file_names_paths_and_fields_each_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow");
    std::fs::write(&file, "# known differences\n/etc/motd # why\n/var/cache/ # why\nconfig.Healthcheck # why\n")
        .unwrap();
    let allow = Allow::read(&file);
    for allowed in ["/etc/motd", "/var/cache", "/var/cache/apt/x", "config.Healthcheck"] {
        assert!(allow.allows(allowed), "{allowed}");
    }
    for not in ["/etc/motd2", "/etc", "/var/cached", "config.Cmd", "history"] {
        assert!(!allow.allows(not), "{not}");
    }

    std::fs::write(&file, "/etc/motd\n").unwrap();
    let err = std::panic::catch_unwind(|| Allow::read(&file)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("allow:1: `/etc/motd` gives no reason"), "{msg}");
}
