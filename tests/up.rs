//! `berth up -d` and `berth down`: envs started in depends_on order in one
//! shared network namespace (reaching each other by name), named volumes,
//! nothing done when nothing changed, recreation of what changed, orphans
//! removed, and `down` leaving no trace.

mod support;

use support::stream::{Collected, wait_child};
use support::{Berth, wait_until};

const MANIFEST: &str = r#"
project = "shop"

[env.base]
image = "rootfs:busybox.tar"

[env.web]
from = "base"
copy = [{ src = "www", dest = "/www" }]
cmd = ["httpd", "-f", "-p", "8000", "-h", "/www"]
health = { cmd = ["wget", "-q", "-O", "/dev/null", "http://localhost:8000/index.html"], interval = "100ms", retries = 50 }

[env.client]
from = "base"
depends_on = ["web"]
cmd = ["sh", "-c", "while true; do wget -q -O /data/got http://web:8000/index.html; wget -q -O /data/local http://localhost:8000/index.html; sleep 0.2; done"]
volumes = ["data:/data"]
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "v1\n").unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    dir
}

fn wait_for_file(path: &std::path::Path, want: &str) {
    wait_until(&format!("{} to read {want:?}", path.display()), || {
        std::fs::read_to_string(path).unwrap_or_default() == want
    });
}

#[test]
fn up_reconciles_and_down_cleans() {
    let berth = Berth::new();
    let dir = project();
    let up = berth.run_in(dir.path(), &["up", "-d"]);
    up.ok();
    assert!(
        up.stderr.contains("web: created and started") && up.stderr.contains("client: created and started"),
        "{}",
        up.stderr
    );
    let volume = berth.store_root().join("volumes/shop/data");
    // client reaches web by its env name and on localhost: one namespace.
    wait_for_file(&volume.join("got"), "v1\n");
    wait_for_file(&volume.join("local"), "v1\n");
    let ps = berth.run(&["ps"]).ok().to_owned();
    assert!(ps.contains("shop-web") && ps.contains("shop-client") && !ps.contains("shop-base"), "{ps}");

    // Inside the project, an env's name names its container.
    assert!(berth.run_in(dir.path(), &["exec", "web", "cat", "/www/index.html"]).ok().contains("v1"));
    let again = berth.run_in(dir.path(), &["up", "-d"]);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);

    // The plan agrees: nothing to do, then exactly what changed.
    berth.run_in(dir.path(), &["plan", "--exit-code"]).ok();
    std::fs::write(dir.path().join("www/index.html"), "v2\n").unwrap();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("~ web: recreate (image: "), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("= client: running, up to date") && plan.stdout.contains("= base: image only"),
        "{}",
        plan.stdout
    );
    let json = berth.run_in(dir.path(), &["plan", "--json"]).json();
    assert!(json["containers"].as_array().unwrap().iter().any(|c| c["env"] == "web" && c["action"] == "recreate"));
    let changed = berth.run_in(dir.path(), &["up", "-d"]);
    assert!(changed.stderr.contains("web: recreated") && !changed.stderr.contains("client:"), "{}", changed.stderr);
    wait_for_file(&volume.join("got"), "v2\n");

    // An env removed from the manifest is an orphan.
    let without_client = MANIFEST[..MANIFEST.find("[env.client]").unwrap()].to_owned();
    std::fs::write(dir.path().join("berth.toml"), without_client).unwrap();
    let orphaned = berth.run_in(dir.path(), &["up", "-d"]);
    assert!(orphaned.stderr.contains("client: removed"), "{}", orphaned.stderr);

    let down = berth.run_in(dir.path(), &["down", "-v"]).ok().to_owned();
    assert_eq!(down, "shop-web\n");
    assert_eq!(berth.run(&["ps", "-aq"]).ok(), "");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains("shop.netns"));
    assert!(!volume.exists(), "-v removes named volumes");
}

#[test]
fn up_in_the_foreground_follows_the_logs_and_ctrl_c_stops_the_envs() {
    let berth = Berth::new();
    let dir = project();
    let manifest = "project = \"fg\"\n[env.ticker]\nimage = \"rootfs:busybox.tar\"\n\
                    cmd = [\"sh\", \"-c\", \"while true; do echo tick; sleep 0.2; done\"]\n";
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", &berth.store_root().to_string_lossy(), "up"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let shown = Collected::start(child.stdout.take().unwrap());
    shown.wait_for(0, "fg-ticker | tick\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_child(&mut child, "berth up after Ctrl-C");
    assert!(status.success(), "{status}");
    let ps = berth.run(&["ps", "-a", "--json"]).json();
    assert_eq!(ps[0]["status"], "exited", "Ctrl-C stops the envs: {ps}");
}

#[test]
fn a_dependency_that_never_gets_healthy_stops_up_with_its_log() {
    let berth = Berth::new();
    let dir = project();
    let manifest = r#"
project = "sick"

[env.db]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "echo starting the db; sleep 300"]
health = { cmd = ["false"], interval = "50ms", retries = 3 }

[env.app]
image = "rootfs:busybox.tar"
depends_on = ["db"]
cmd = ["sleep", "300"]
"#;
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    let err = berth.run_in(dir.path(), &["up", "-d"]).fails_with(1).to_owned();
    assert!(
        err.contains("env \"db\" did not become healthy (it is unhealthy, last check: exit code 1) with `false`"),
        "{err}"
    );
    assert!(err.contains("  | starting the db"), "{err}");
    let ps = berth.run(&["ps"]).ok().to_owned();
    assert!(ps.contains("sick-db") && !ps.contains("sick-app"), "app is not started: {ps}");
}

#[test]
fn two_ups_at_once_make_one_set_of_containers() {
    let berth = Berth::new();
    let dir = project();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--root", &berth.store_root().to_string_lossy(), "up", "-d"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    assert!(said.contains("nothing to do"), "the second waited, then found nothing to do: {said}");
    let ps = berth.run(&["ps", "-a", "--json"]).json();
    assert_eq!(ps.as_array().unwrap().len(), 2, "one web, one client: {ps}");
}

#[test]
fn a_failed_start_leaves_nothing_and_the_next_up_retries() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    let manifest = |cmd: &str| format!("project = \"half\"\n[env.bad]\nimage = \"rootfs:busybox.tar\"\ncmd = {cmd}\n");
    std::fs::write(dir.path().join("berth.toml"), manifest(r#"["no-such-command"]"#)).unwrap();
    let err = berth.run_in(dir.path(), &["up", "-d"]).fails_with(1).to_owned();
    assert!(err.contains("env \"bad\"") && err.contains("no-such-command"), "{err}");
    // Nothing of that attempt is left: no container, no network namespace.
    assert_eq!(berth.run(&["ps", "-aq"]).ok(), "", "{err}");
    assert!(!berth.store_root().join("projects/half.netns").exists());
    let store = berth.store_root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&store), "a mount of the store is left:\n{mounts}");
    // plan says the container is still to be made, and up tries again.
    let plan = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(plan.contains("1 to create"), "{plan}");
    let again = berth.run_in(dir.path(), &["up", "-d"]).fails_with(1).to_owned();
    assert!(again.contains("no-such-command"), "{again}");
    assert_eq!(berth.run(&["ps", "-aq"]).ok(), "");
    std::fs::write(dir.path().join("berth.toml"), manifest(r#"["sleep", "300"]"#)).unwrap();
    let up = berth.run_in(dir.path(), &["up", "-d"]);
    up.ok();
    assert!(up.stderr.contains("bad: created and started"), "{}", up.stderr);
    berth.run_in(dir.path(), &["down"]).ok();
}
