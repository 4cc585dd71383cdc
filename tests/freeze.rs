//! The QA hand-off: `berth freeze ENV -o FILE.tar` on one store, `berth up
//! --from FILE.tar` on a fresh one with no manifest gives the same env —
//! its files as they were when frozen, its command, env vars, port and
//! health — and `berth inspect FILE.tar` shows the config without loading.

mod support;

use std::io::{Read, Write};

use support::{Berth, poll};

const MANIFEST: &str = r#"
project = "handoff"

[env.web]
image = "rootfs:busybox.tar"
env = { GREETING = "hello from qa" }
cmd = ["sh", "-c", "mkdir -p /www && echo \"$GREETING\" > /www/index.html && exec httpd -f -p 8000 -h /www"]
ports = ["127.0.0.1:PORT:8000"]
health = { cmd = ["wget", "-q", "-O", "/dev/null", "http://localhost:8000/"], interval = "100ms", retries = 50 }
limits = { memory = "64MiB" }

[env.client]
image = "rootfs:busybox.tar"
depends_on = ["web"]
cmd = ["sleep", "300"]
"#;

/// GET `path` on the published `port` until it answers 200 (or time is up).
fn get(port: u16, path: &str) -> String {
    poll(&format!("a 200 answer to GET {path} on port {port}"), || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        let ok = body.lines().next().is_some_and(|l| l.contains(" 200 "));
        ok.then(|| body.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
    })
}

#[test]
fn freeze_on_one_store_and_up_from_on_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    // A free port, not a fixed one: another run of this test may be using that.
    let port = support::registry::free_port();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST.replace("PORT", &port.to_string())).unwrap();
    let archive = dir.path().join("handoff.tar");

    let dev = Berth::new();
    dev.run_in(dir.path(), &["up", "-d"]).ok();
    assert_eq!(get(port, "/index.html"), "hello from qa\n");
    // State that only the running container has: it must travel.
    dev.run_in(dir.path(), &["exec", "web", "sh", "-c", "echo made by hand > /www/extra.html"]).ok();
    let frozen = dev.run_in(dir.path(), &["freeze", "web", "client", "-m", "for QA", "-o", archive.to_str().unwrap()]);
    frozen.ok();
    assert!(frozen.stderr.contains("web: frozen as handoff/web:frozen-"), "{}", frozen.stderr);
    dev.run_in(dir.path(), &["down"]).ok();

    // Inspect reads the archive without a store and shows the env's config.
    let nowhere = Berth::new();
    let inspected = nowhere.run(&["inspect", archive.to_str().unwrap()]).json();
    let images = inspected[0]["Images"].as_array().unwrap();
    let web = images.iter().find(|i| i["BerthEnv"]["env"] == "web").unwrap_or_else(|| panic!("{inspected}"));
    assert_eq!(web["BerthEnv"]["env_vars"]["GREETING"], "hello from qa");
    assert_eq!(web["BerthEnv"]["ports"][0], format!("127.0.0.1:{port}:8000/tcp"), "ports read as -p writes them");
    assert!(!nowhere.store_root().exists(), "inspect of a file makes no store");

    // Another machine: a fresh store, no manifest, another directory.
    let qa = Berth::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let up = qa.run_in(elsewhere.path(), &["up", "--from", archive.to_str().unwrap()]);
    up.ok();
    assert!(up.stderr.contains("web: created and started") && up.stderr.contains("client: created"), "{}", up.stderr);
    assert_eq!(get(port, "/extra.html"), "made by hand\n");
    assert_eq!(get(port, "/index.html"), "hello from qa\n");
    let ps = qa.run_in(elsewhere.path(), &["ps", "--json"]).json();
    let row = ps.as_array().unwrap().iter().find(|r| r["labels"]["org.berth.env"] == "web").cloned().unwrap();
    assert_eq!(row["health"]["status"], "healthy", "client waited for web's health: {ps}");
    let history = qa.run(&["history", row["image"].as_str().unwrap()]).ok().to_owned();
    assert!(history.contains("for QA"), "{history}");
    // The same archive again: nothing to do.
    let again = qa.run_in(elsewhere.path(), &["up", "--from", archive.to_str().unwrap()]);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    qa.run(&["rm", "-f", "handoff-web", "handoff-client"]).ok();
}

#[test]
fn up_from_an_archive_without_env_configs_says_what_it_is() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("plain.tar");
    berth.run(&["save", "busybox", "-o", archive.to_str().unwrap()]).ok();
    let fresh = Berth::new();
    let err = fresh.run(&["up", "--from", archive.to_str().unwrap()]).fails_with(1).to_owned();
    assert!(err.contains("was not written by `berth freeze`"), "{err}");
}
