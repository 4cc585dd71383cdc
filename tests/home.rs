//! `$HOME` as Docker and podman set it, for every process berth starts in a
//! container: the home directory of the user's `/etc/passwd` entry in the
//! image (`/root` for root), `/` when the user has none, unless the image's
//! `Env` or the user (`-e HOME=…`) sets it. The busybox fixture lists root
//! (`/root`), nobody (`/nonexistent`) and user 1000 (`/home/user`).

mod support;

use std::time::{Duration, Instant};

use support::Berth;

/// The `HOME=` lines of `env`'s output (there must be exactly one).
#[track_caller]
fn home_in(env_output: &str) -> String {
    let homes: Vec<&str> = env_output.lines().filter_map(|l| l.strip_prefix("HOME=")).collect();
    assert_eq!(homes.len(), 1, "one HOME in {env_output:?}");
    homes[0].to_owned()
}

/// `berth ARGS…` (a command that runs `env` last) and its `$HOME`.
#[track_caller]
fn home(berth: &Berth, args: &[&str]) -> String {
    home_in(berth.run(args).ok())
}

#[test]
fn run_and_exec_take_home_from_passwd_unless_it_is_set() {
    let berth = Berth::with_busybox();
    // `berth run`: the container's user, root by default.
    assert_eq!(home(&berth, &["run", "--rm", "busybox", "env"]), "/root");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "user", "busybox", "env"]), "/home/user");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "1000:1000", "busybox", "env"]), "/home/user");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "nobody", "busybox", "env"]), "/nonexistent");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "4242", "busybox", "env"]), "/", "a uid with no entry");
    assert_eq!(home(&berth, &["run", "--rm", "-e", "HOME=/x", "busybox", "env"]), "/x");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "user", "-e", "HOME=/x", "busybox", "env"]), "/x");

    // `berth exec`: the exec's user if given, else the container's.
    berth.detach(&["--name", "root", "busybox", "sleep", "300"]);
    assert_eq!(home(&berth, &["exec", "root", "env"]), "/root");
    assert_eq!(home(&berth, &["exec", "-u", "user", "root", "env"]), "/home/user");
    assert_eq!(home(&berth, &["exec", "-u", "4242", "root", "env"]), "/");
    assert_eq!(home(&berth, &["exec", "-u", "user", "-e", "HOME=/y", "root", "env"]), "/y");
    berth.detach(&["--name", "user", "-u", "user", "busybox", "sleep", "300"]);
    assert_eq!(home(&berth, &["exec", "user", "env"]), "/home/user");
    assert_eq!(home(&berth, &["exec", "-u", "root", "user", "env"]), "/root");
    // A HOME the user set stays, whoever execs.
    berth.detach(&["--name", "set", "-e", "HOME=/x", "busybox", "sleep", "300"]);
    assert_eq!(home(&berth, &["exec", "-u", "user", "set", "env"]), "/x");
}

const MANIFEST: &str = r#"
project = "home"

[env.built]
image = "rootfs:busybox.tar"
run = ["echo \"$HOME\" > /build-home"]

[env.homed]
image = "rootfs:busybox.tar"
env = { HOME = "/srv" }
"#;

/// Polls `berth ps --global --json` until container `name` has a health
/// verdict other than `starting`; returns it.
fn verdict(berth: &Berth, name: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = berth.run(&["ps", "--global", "--json"]).json();
        let row = ps.as_array().unwrap().iter().find(|r| r["name"] == name).cloned();
        let status = row.as_ref().and_then(|r| r["health"]["status"].as_str()).unwrap_or("starting").to_owned();
        if status != "starting" {
            return status;
        }
        assert!(Instant::now() < until, "{name} got no health verdict: {ps}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn build_steps_health_checks_and_image_env() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    berth.run_in(dir.path(), &["build", "-q"]).ok();

    // A build step runs as root, with root's home.
    assert_eq!(berth.run(&["run", "--rm", "home/built", "cat", "/build-home"]).ok(), "/root\n");

    // The image's ENV HOME wins, for run and for exec as another user.
    assert_eq!(home(&berth, &["run", "--rm", "home/homed", "env"]), "/srv");
    assert_eq!(home(&berth, &["run", "--rm", "-u", "user", "home/homed", "env"]), "/srv");
    berth.detach(&["--name", "homed", "home/homed", "sleep", "300"]);
    assert_eq!(home(&berth, &["exec", "-u", "user", "homed", "env"]), "/srv");

    // Health checks run as the container's user, with its home.
    let check = |name: &str, user: &str, home: &str| {
        let test = format!("test \"$HOME\" = {home}");
        let mut args = vec!["--name", name, "-u", user, "--health-cmd", &test];
        args.extend(["--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "300"]);
        berth.detach(&args);
        verdict(&berth, name)
    };
    assert_eq!(check("checked-root", "root", "/root"), "healthy");
    assert_eq!(check("checked-user", "user", "/home/user"), "healthy");
    assert_eq!(check("checked-4242", "4242", "/"), "healthy");
    // Not vacuous: a check that expects another HOME fails.
    assert_eq!(check("checked-wrong", "root", "/"), "unhealthy");
}
