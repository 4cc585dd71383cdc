//! The reconciler's finer points: health checks run by the shim (with their
//! timeout enforced) as `berth ps` shows them in the project view, a plan
//! that names exactly the field a config edit changed, filesystem drift and
//! `--reset-drift`, and `berth restart ENV`.

mod support;

use std::path::Path;

use support::{Berth, poll, wait_until};

fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

/// Polls `berth ps --json` in `dir` until `env`'s health is `want`.
fn wait_health(berth: &Berth, dir: &Path, env: &str, want: &str) -> serde_json::Value {
    poll(&format!("{env} to become {want}"), || {
        let ps = berth.run_in(dir, &["ps", "--json"]).json();
        ps.as_array().unwrap().iter().find(|r| r["env"] == env && r["health"]["status"] == want).cloned()
    })
}

const HEALTHY: &str = r#"
project = "checked"

[env.web]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && httpd -f -p 8000 -h /www"]
ports = ["127.0.0.1:PORT:8000"]
health = { cmd = ["wget", "-q", "-O", "/dev/null", "http://localhost:8000/"], interval = "100ms", retries = 50 }

[env.slow]
image = "rootfs:busybox.tar"
cmd = ["sleep", "300"]
health = { cmd = ["sleep", "5"], interval = "100ms", timeout = "200ms", retries = 2 }
"#;

#[test]
fn the_shim_runs_health_checks_and_ps_shows_the_project() {
    let berth = Berth::new();
    // A free port, not a fixed one: another run of this test may be using that.
    let port = support::registry::free_port();
    let dir = project(&HEALTHY.replace("PORT", &port.to_string()));
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    wait_health(&berth, dir.path(), "web", "healthy");
    // A check that outlives its timeout is killed and counts as a failure.
    let slow = wait_health(&berth, dir.path(), "slow", "unhealthy");
    assert!(slow["health"]["last"].as_str().unwrap().contains("timed out after 200ms"), "{slow}");

    let table = berth.run_in(dir.path(), &["ps"]).ok().to_owned();
    let header = table.lines().next().unwrap();
    for column in ["ENV", "STATE", "HEALTH", "PORTS", "IMAGE", "UPTIME"] {
        assert!(header.contains(column), "{table}");
    }
    let web = table.lines().find(|l| l.starts_with("web ")).unwrap_or_else(|| panic!("{table}"));
    assert!(
        web.contains("running") && web.contains("healthy") && web.contains(&format!("127.0.0.1:{port}->8000/tcp")),
        "{table}"
    );
    assert!(web.contains("checked/web:latest ("), "the image and its digest: {table}");
    // Outside the project (or with --global), Docker's view, health in the status.
    let global = berth.run_in(dir.path(), &["ps", "--global"]).ok().to_owned();
    assert!(global.contains("CONTAINER ID") && global.contains("(healthy)"), "{global}");

    // A stopped env shows how it ended; `restart ENV` brings it back.
    berth.run_in(dir.path(), &["stop", "web"]).ok();
    let table = berth.run_in(dir.path(), &["ps"]).ok().to_owned();
    assert!(table.lines().any(|l| l.starts_with("web ") && l.contains("exited")), "{table}");
    berth.run_in(dir.path(), &["restart", "web"]).ok();
    wait_health(&berth, dir.path(), "web", "healthy");
}

#[test]
fn a_config_edit_plans_exactly_that_field_and_drift_is_reset_on_request() {
    let berth = Berth::new();
    let manifest = "project = \"drifty\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n\
                    [env.other]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n";
    let dir = project(manifest);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let id = |env: &str| {
        let ps = berth.run_in(dir.path(), &["ps", "--json"]).json();
        ps.as_array().unwrap().iter().find(|r| r["env"] == env).map(|r| r["id"].clone())
    };
    let before = (id("app"), id("other"));

    // Drift: files changed inside the container, outside volumes and /tmp.
    berth.run_in(dir.path(), &["exec", "app", "sh", "-c", "echo x > /etc/drifted; rm /bin/vi; echo t > /tmp/t"]).ok();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 0, "drift alone is not a change `up` makes: {}", plan.stdout);
    assert!(plan.stdout.contains("= app: running, up to date"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("drift: 2 paths changed inside the container (D /bin/vi, A /etc/drifted)"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("/tmp/t"), "{}", plan.stdout);
    let reset = berth.run_in(dir.path(), &["plan", "--reset-drift", "--exit-code"]);
    assert_eq!(reset.code, 2, "{}", reset.stdout);
    assert!(reset.stdout.contains("~ app: recreate (filesystem drift: 2 paths changed)"), "{}", reset.stdout);
    let same = berth.run_in(dir.path(), &["up", "-d"]);
    same.ok();
    assert!(same.stderr.contains("nothing to do"), "{}", same.stderr);
    let up = berth.run_in(dir.path(), &["up", "-d", "--reset-drift"]);
    up.ok();
    assert!(up.stderr.contains("app: recreated (its files drifted: 2 paths changed)"), "{}", up.stderr);
    assert!(!up.stderr.contains("other:"), "{}", up.stderr);
    berth.run_in(dir.path(), &["exec", "app", "test", "-e", "/bin/vi"]).ok();
    assert_eq!(id("other"), before.1, "other was left alone");
    assert_ne!(id("app"), before.0);

    // A config edit: the plan names the one field, old -> new.
    std::fs::write(
        dir.path().join("berth.toml"),
        manifest.replacen("cmd = [\"sleep\", \"300\"]\n", "cmd = [\"sleep\", \"300\"]\nenv = { MODE = \"qa\" }\n", 1),
    )
    .unwrap();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    let lines: Vec<&str> = plan.stdout.lines().filter(|l| l.trim_start().starts_with(['~', '+', '-'])).collect();
    assert_eq!(lines, ["  ~ app: recreate (env_vars: {} -> {\"MODE\":\"qa\"})"], "{}", plan.stdout);
}

#[test]
fn a_container_whose_shim_died_is_reported_and_started_again() {
    let berth = Berth::new();
    let manifest = "project = \"orphan\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sleep\", \"300\"]\n";
    let dir = project(manifest);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let ps = berth.run_in(dir.path(), &["ps", "--json"]).json();
    let id = ps[0]["id"].as_str().unwrap().to_owned();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(berth.store_root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = nix::unistd::Pid::from_raw(state["shim_pid"].as_i64().unwrap() as i32);
    nix::sys::signal::kill(shim, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("the shim to die", || nix::sys::signal::kill(shim, None).is_err());
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    // The container's init dies with its shim: how it ended is unknown.
    assert!(
        plan.stdout.contains("~ app: start (it is exited: its shim is gone; how it ended is unknown)"),
        "{}",
        plan.stdout
    );
    let table = berth.run_in(dir.path(), &["ps"]).ok().to_owned();
    assert!(table.contains("exited — its shim is gone"), "{table}");
    let up = berth.run_in(dir.path(), &["up", "-d"]);
    up.ok();
    assert!(up.stderr.contains("app: started"), "{}", up.stderr);
    let ps = berth.run_in(dir.path(), &["ps", "--json"]).json();
    assert_eq!(ps.as_array().unwrap().len(), 1, "{ps}");
    assert_eq!(ps[0]["status"], "running");
    assert_eq!(ps[0]["id"], id.as_str(), "the same container, with a new shim");
}

#[test]
fn logs_of_the_whole_project_are_prefixed_by_name() {
    let berth = Berth::new();
    let manifest = "project = \"chatty\"\n\
                    [env.a]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sh\", \"-c\", \"echo hello from a; exec sleep 300\"]\n\
                    [env.b]\nimage = \"rootfs:busybox.tar\"\ncmd = [\"sh\", \"-c\", \"echo hello from b >&2; exec sleep 300\"]\n";
    let dir = project(manifest);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let all = poll("both envs' lines in the project's log", || {
        let run = berth.run_in(dir.path(), &["logs"]);
        let all = format!("{}{}", run.ok(), run.stderr);
        (all.contains("chatty-a | hello from a\n") && all.contains("chatty-b | hello from b\n")).then_some(all)
    });
    assert!(!all.contains("chatty-b | hello from a"), "{all}");
    // One container named: its output as it printed it, no prefix.
    assert_eq!(berth.run_in(dir.path(), &["logs", "a"]).ok(), "hello from a\n");
    let both = berth.run_in(dir.path(), &["logs", "a", "b"]);
    assert!(both.ok().contains("chatty-a | hello from a") && both.stderr.contains("chatty-b | hello from b"));
    // Outside a project, a name is needed.
    let err = berth.run(&["logs"]).fails_with(1).to_owned();
    assert!(err.contains("name a container, or run this in a project directory"), "{err}");
}

#[test]
fn an_image_rebuilt_to_other_bytes_recreates_its_env() {
    let berth = Berth::new();
    let manifest = "project = \"rebuilt\"\n[env.app]\nimage = \"rootfs:busybox.tar\"\n\
                    run = [\"cat /proc/sys/kernel/random/uuid > /stamp\"]\ncmd = [\"sleep\", \"300\"]\n";
    let dir = project(manifest);
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    let before = berth.run_in(dir.path(), &["exec", "app", "cat", "/stamp"]).ok().to_owned();
    // The same manifest, built again from scratch: other bytes, same spec.
    berth.run_in(dir.path(), &["build", "--no-cache"]).ok();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("~ app: recreate (image: sha256:"), "{}", plan.stdout);
    let up = berth.run_in(dir.path(), &["up", "-d"]);
    up.ok();
    assert!(up.stderr.contains("app: recreated (image: sha256:"), "{}", up.stderr);
    let after = berth.run_in(dir.path(), &["exec", "app", "cat", "/stamp"]).ok().to_owned();
    assert_ne!(before, after, "the container runs the rebuilt image");
    let again = berth.run_in(dir.path(), &["up", "-d"]);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
}
