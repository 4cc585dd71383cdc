//! A Debian `bootstrap` base with packages, end to end: the lock records
//! the installed versions, a second build does nothing, and `--locked`
//! installs exactly the locked versions or says which are missing. One test
//! (one bootstrap from Debian's archive, about a minute).

mod support;

use support::Berth;

#[test]
fn bootstrap_packages_lock_and_locked() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = "project = \"deb\"\n\n[env.app]\nbootstrap = { suite = \"bookworm\", variant = \"minbase\" }\n\
                    packages = [\"hello\", \"jq\"]\nrun = [\"hello > /greeting\"]\n";
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let build = |args: &[&str]| {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        berth.run_in(dir.path(), &all)
    };

    let first = build(&[]);
    first.ok();
    let lock = std::fs::read_to_string(dir.path().join("berth.lock")).unwrap();
    assert!(lock.contains("[env.app.packages]") && lock.contains("hello = \"") && lock.contains("jq = \""), "{lock}");
    let out = berth
        .run(&["run", "--rm", "deb/app", "sh", "-c", "cat /greeting; jq --version; ls /var/lib/apt/lists | wc -l"])
        .ok()
        .to_owned();
    assert_eq!(out, "Hello, world!\njq-1.6\n0\n", "installed, and the package lists cleaned in the same step");

    let again = build(&[]);
    assert!(again.stderr.contains("nothing to build"), "the lock's pins keep the keys: {}", again.stderr);
    assert!(build(&["--locked"]).ok().contains("deb/app:latest"));

    // A package the lock does not know.
    std::fs::write(dir.path().join("berth.toml"), manifest.replace("\"jq\"]", "\"jq\", \"tree\"]")).unwrap();
    let err = build(&["--locked"]).fails_with(1).to_owned();
    assert!(err.contains("--locked, but berth.lock has no version for tree"), "{err}");

    // A locked version the archive no longer has.
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let gone = lock
        .lines()
        .map(|l| if l.starts_with("hello = ") { "hello = \"0.0-gone\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("berth.lock"), gone).unwrap();
    let err = build(&["--locked"]).fails_with(1).to_owned();
    assert!(err.contains("apt install hello jq") && err.contains("exited with"), "{err}");
    assert!(err.contains("0.0-gone"), "apt's own words name the missing version: {err}");
}
