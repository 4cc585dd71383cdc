//! `berth init --from compose.yaml` against the real Compose: one
//! two-service compose file brought up by `podman-compose up -d`, and,
//! converted unedited, by `berth up -d`, answers the same on the same
//! port; the dependent service runs under both.
//!
//! Traffic goes to 127.0.0.1 only. podman-compose makes a podman network
//! (`PROJECT_default`, a netavark bridge) whose definition lives host-wide;
//! the guard removes it with the containers, also when the test fails.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};

use support::Berth;
use support::image::{busybox_tar, require_tool};
use support::podman::Podman;

const PROJECT: &str = "berthcompose";

fn compose_file(port: u16) -> String {
    format!(
        r#"services:
  web:
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo \"hello from $$GREETING\" > /www/index.html && exec httpd -f -p 8000 -h /www"]
    environment:
      GREETING: ${{GREETING:-compose}}
    ports: ["127.0.0.1:{port}:8000"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/"]
      interval: 1s
      retries: 60
  client:
    image: docker.io/library/busybox:latest
    command: sleep 1000
    depends_on:
      web: {{condition: service_healthy}}
"#
    )
}

/// The body of `GET /` on 127.0.0.1:`port`, once something answers.
fn body(port: u16) -> String {
    support::poll(&format!("an HTTP answer on 127.0.0.1:{port}"), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).filter(|b| !b.is_empty())
    })
}

/// podman-compose with the test's podman; downs the project and removes
/// its network when dropped.
struct Compose<'a> {
    podman: &'a Podman,
    dir: &'a std::path::Path,
}

impl Compose<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("podman-compose")
            .arg(format!("--podman-args={}", self.podman.global_args().join(" ")))
            .arg("--podman-run-args=--ulimit nofile=1024:1024 --ulimit nproc=1024:1024")
            .args(["-p", PROJECT, "-f", "compose.yaml"])
            .args(args)
            .current_dir(self.dir)
            .output()
            .expect("run podman-compose")
    }
}

impl Drop for Compose<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
        let _ = self.podman.run(&["network", "rm", "-f", &format!("{PROJECT}_default")]);
    }
}

fn ok(what: &str, out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn a_compose_file_answers_the_same_under_podman_compose_and_converted_under_berth() {
    require_tool("podman-compose", "podman-compose");
    let podman = Podman::new();
    let dir = tempfile::tempdir().unwrap();
    let port = support::registry::free_port();
    std::fs::write(dir.path().join("compose.yaml"), compose_file(port)).unwrap();

    let tar = busybox_tar();
    podman.ok(&["import", "-q", tar.to_str().unwrap(), "docker.io/library/busybox:latest"]);
    let from_podman = {
        let compose = Compose { podman: &podman, dir: dir.path() };
        ok("podman-compose up -d", &compose.run(&["up", "-d"]));
        let answer = body(port);
        let ps = podman.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.contains(&format!("{PROJECT}_client_1 Up")), "{ps}");
        ok("podman-compose down", &compose.run(&["down"]));
        answer
    };
    assert_eq!(from_podman, "hello from compose\n");

    let berth = Berth::with_busybox();
    let init = berth.run_in(dir.path(), &["init", "--from", "compose.yaml", "--project", PROJECT]);
    assert!(init.ok().contains("2 envs"), "{}", init.stdout);
    let manifest = std::fs::read_to_string(dir.path().join("berth.toml")).unwrap();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    assert_eq!(body(port), from_podman, "berth.toml:\n{manifest}");
    let ps = berth.run_in(dir.path(), &["ps", "--json"]).json();
    let running: Vec<&str> = ps.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(running.iter().any(|n| n.contains("client")), "{running:?}");
    berth.run_in(dir.path(), &["down"]).ok();
}
