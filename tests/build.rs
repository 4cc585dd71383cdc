//! `berth build` end to end: copy and run steps as layers, deletions as
//! whiteouts, the cache (no-op and partial rebuilds), failing steps, and
//! two-store reproducibility.

mod support;

use std::path::Path;

use support::Berth;

/// A project dir with the busybox rootfs as `busybox.tar`, `app/` files and
/// `manifest` as its berth.toml.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::create_dir_all(dir.path().join("app/lib")).unwrap();
    std::fs::write(dir.path().join("app/index.html"), "hello\n").unwrap();
    std::fs::write(dir.path().join("app/lib/util.txt"), "util\n").unwrap();
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    dir
}

const MANIFEST: &str = r#"
project = "t"

[env.base]
image = "rootfs:busybox.tar"
run = ["echo built > /built && rm /bin/vi"]

[env.web]
from = "base"
copy = [{ src = "app", dest = "/www" }]
run = ["ls /www > /www.list"]
cmd = ["httpd", "-f", "-p", "80", "-h", "/www"]

[env.files]
image = "scratch"
copy = [{ src = "app/index.html", dest = "/data/", mode = 0o600 }]
"#;

fn build(berth: &Berth, dir: &Path, args: &[&str]) -> support::Run {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    berth.run_in(dir, &all)
}

fn digests(out: &str) -> Vec<String> {
    out.lines().map(|l| l.split('\t').nth(2).unwrap_or_default().to_owned()).collect()
}

#[test]
fn steps_become_layers_and_the_image_runs() {
    let berth = Berth::new();
    let dir = project(MANIFEST);
    let out = build(&berth, dir.path(), &[]).ok().to_owned();
    assert!(out.contains("web\tt/web:latest\tsha256:"), "{out}");
    let seen = berth
        .run(&["run", "--rm", "t/web", "sh", "-c", "cat /built /www/index.html /www.list; ls /bin/vi 2>&1; true"])
        .ok()
        .to_owned();
    assert_eq!(
        seen, "built\nhello\nindex.html\nlib\nls: /bin/vi: No such file or directory\n",
        "the deletion is a whiteout"
    );
    let images = berth.run(&["images"]).ok().to_owned();
    for tag in ["t/base", "t/web", "t/files"] {
        assert!(images.contains(tag), "{images}");
    }
    let inspect = berth.run(&["inspect", "t/web"]).json();
    let config = &inspect[0]["Config"]["config"];
    assert_eq!(config["Cmd"], serde_json::json!(["httpd", "-f", "-p", "80", "-h", "/www"]));
    assert_eq!(config["Labels"]["org.berth.env"], "web");
    let history = inspect[0]["Config"]["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["created_by"] == "COPY app /www"), "{history:?}");
}

#[test]
fn a_second_build_does_nothing_and_an_edit_rebuilds_from_that_layer() {
    let berth = Berth::new();
    let dir = project(MANIFEST);
    let first = build(&berth, dir.path(), &[]).ok().to_owned();
    let again = build(&berth, dir.path(), &[]);
    assert!(again.stderr.contains("nothing to build: all"), "{}", again.stderr);
    assert_eq!(digests(&first), digests(&again.stdout));
    std::fs::write(dir.path().join("app/lib/util.txt"), "changed\n").unwrap();
    let edit = build(&berth, dir.path(), &[]);
    let rebuilt: Vec<&str> = edit.stderr.lines().filter(|l| l.ends_with(": building")).collect();
    assert_eq!(rebuilt.len(), 2, "web's copy and the run after it: {}", edit.stderr);
    assert!(rebuilt[0].contains("copy") && rebuilt[1].contains("ls /www"), "{rebuilt:?}");
    let (a, b) = (digests(&first), digests(&edit.stdout));
    assert_eq!(a[0], b[0], "base unchanged");
    assert_eq!(a[1], b[1], "files copies only index.html, unchanged");
    assert_ne!(a[2], b[2], "web changed");
}

#[test]
fn two_empty_stores_give_the_same_digests() {
    let dir = project(MANIFEST);
    let (one, two) = (Berth::new(), Berth::new());
    let a = digests(build(&one, dir.path(), &["-q"]).ok());
    let b = digests(build(&two, dir.path(), &["-q"]).ok());
    // Scratch/rootfs bases with copy steps are byte for byte reproducible.
    assert_eq!(a[1], b[1], "files (scratch + copy)");
    // Run steps too here: busybox's sh writes nothing variable.
    assert_eq!(a, b);
}

#[test]
fn a_failing_step_says_why_and_leaves_no_layer() {
    let berth = Berth::new();
    let dir = project("[env.bad]\nimage = \"rootfs:busybox.tar\"\nrun = [\"echo first; echo second >&2; exit 4\"]\n");
    let err = build(&berth, dir.path(), &[]).fails_with(1).to_owned();
    assert!(err.contains("env \"bad\": step `echo first; echo second >&2; exit 4` exited with 4"), "{err}");
    assert!(err.contains("  | first") && err.contains("  | second"), "{err}");
    let plan = berth.run_in(dir.path(), &["plan", "--json"]).json();
    let run = plan["nodes"].as_array().unwrap().iter().find(|n| n["kind"] == "run").unwrap().clone();
    assert_eq!(run["action"], "build", "no cache entry for a failed step");
    let tmp = berth.store_root().join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "no build leftovers in {}", tmp.display());
}

#[test]
fn a_registry_base_on_a_registry_that_is_down_says_so() {
    let berth = Berth::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = project(&format!("[env.x]\nimage = \"127.0.0.1:{port}/team/base:1\"\n"));
    let err = build(&berth, dir.path(), &[]).fails_with(1).to_owned();
    assert!(err.contains(&format!("cannot reach the registry 127.0.0.1:{port}")), "{err}");
}

#[test]
fn history_tag_and_rmi() {
    let berth = Berth::new();
    let dir = project(MANIFEST);
    build(&berth, dir.path(), &["-q"]).ok();
    let history = berth.run(&["history", "t/web"]).ok().to_owned();
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].contains("CREATED BY"), "{history}");
    assert!(lines[1].contains("RUN ls /www > /www.list") && lines[2].contains("COPY app /www"), "{history}");
    assert!(lines[3].contains("RUN echo built"), "{history}");
    berth.run(&["tag", "t/web", "shop/web:1.0"]).ok();
    assert!(berth.run(&["images"]).ok().contains("shop/web"));
    berth.run(&["run", "--name", "user", "shop/web:1.0", "true"]).ok();
    let err = berth.run(&["rmi", "shop/web:1.0"]).fails_with(1).to_owned();
    assert!(err.contains("is used by container user"), "{err}");
    berth.run(&["rm", "user"]).ok();
    assert_eq!(berth.run(&["rmi", "shop/web:1.0"]).ok(), "Untagged: shop/web:1.0\n");
    assert!(!berth.run(&["images"]).ok().contains("shop/web"));
}

#[test]
fn on_a_terminal_progress_is_a_live_view_and_quiet_is_quiet() {
    let berth = Berth::new();
    let dir = project(MANIFEST);
    let cmd = format!(
        "cd {} && {} --root {} build",
        dir.path().display(),
        env!("CARGO_BIN_EXE_berth"),
        berth.store_root().display()
    );
    let out = std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\x1b[2K") && text.contains("\x1b["), "redrawn in place: {text:?}");
    assert!(text.contains("copy     app -> /www: done in"), "{text:?}");
    let quiet = build(&berth, dir.path(), &["-q"]);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    // Not a terminal: plain timestamped lines.
    let plain = build(&berth, dir.path(), &[]);
    assert!(plain.stderr.lines().next().unwrap().starts_with("20"), "{}", plain.stderr);
}

#[test]
fn zstd_builds_zstd_layers_that_run() {
    let berth = Berth::new();
    let dir = project(MANIFEST);
    build(&berth, dir.path(), &["--compression", "zstd", "web"]).ok();
    let inspect = berth.run(&["inspect", "t/web"]).json();
    let types: Vec<&str> =
        inspect[0]["Manifest"]["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(types[0], "application/vnd.oci.image.layer.v1.tar+gzip", "the base keeps gzip: {types:?}");
    assert!(types[1..].iter().all(|t| *t == "application/vnd.oci.image.layer.v1.tar+zstd"), "{types:?}");
    let seen = berth.run(&["run", "--rm", "t/web", "cat", "/built", "/www/index.html"]).ok().to_owned();
    assert_eq!(seen, "built\nhello\n");
    let fsck = berth.run(&["fsck"]);
    assert!(fsck.ok().contains("store is consistent"), "{}", fsck.stdout);
}

/// `tar -t` of every layer of `image` in `berth`'s store, bottom first.
fn layer_listings(berth: &Berth, image: &str) -> Vec<String> {
    let tar = support::image::require_tool("tar", "tar");
    let inspect = berth.run(&["inspect", image]).json();
    let blobs = berth.store_root().join("oci/blobs/sha256");
    let layers = inspect[0]["Manifest"]["layers"].as_array().unwrap().clone();
    layers
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
            let out = std::process::Command::new(&tar).arg("-tzf").arg(blobs.join(hex)).output().unwrap();
            support::image::succeeded(&format!("tar -tzf layer {hex} of {image}"), &out)
        })
        .collect()
}

#[test]
fn run_step_layers_leave_out_the_build_containers_mount_points() {
    // The build container bind-mounts /etc/hosts and /etc/resolv.conf; when
    // the image has no such file the mount made an empty one in the upper
    // dir, which is no change of the step's (BuildKit leaves them out too).
    // When the image below has the file, it stays as that layer made it.
    let manifest = r#"
project = "t"

[env.plain]
image = "rootfs:busybox.tar"
run = ["echo x > /x"]

[env.has]
image = "rootfs:busybox.tar"
copy = [{ src = "app/index.html", dest = "/etc/hosts" }]
run = ["echo y > /y"]
"#;
    let dir = project(manifest);
    let berth = Berth::new();
    let first = digests(build(&berth, dir.path(), &["-q"]).ok());
    let plain = layer_listings(&berth, "t/plain");
    let has = layer_listings(&berth, "t/has");
    for (what, listing) in [("plain", &plain[1]), ("has", &has[2])] {
        assert!(listing.lines().any(|l| l == "x" || l == "y"), "{what}'s run layer:\n{listing}");
        for name in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            assert!(!listing.lines().any(|l| l == name), "{name} in {what}'s run layer:\n{listing}");
        }
    }
    assert!(has[1].lines().any(|l| l == "etc/hosts"), "the copy layer keeps its file:\n{}", has[1]);
    let other = Berth::new();
    assert_eq!(digests(build(&other, dir.path(), &["-q"]).ok()), first, "a second store gives the same digests");
}

/// A build step sees its base image's environment, as a Dockerfile's `RUN`
/// sees the `FROM` image's `ENV` (an image with `PATH` of its own needs
/// that to find its programs).
#[test]
fn build_steps_see_the_base_images_environment() {
    let berth = Berth::new();
    let first =
        project("project = \"e\"\n[env.a]\nimage = \"rootfs:busybox.tar\"\nenv = { GREETING = \"from the base\" }\n");
    build(&berth, first.path(), &[]).ok();
    let archive = first.path().join("a.tar");
    berth.run(&["save", "e/a:latest", "-o", archive.to_str().unwrap()]).ok();
    let second = project(
        "project = \"f\"\n[env.b]\nimage = \"oci-archive:a.tar\"\nrun = [\"echo \\\"$GREETING\\\" > /greeting\"]\n",
    );
    std::fs::copy(&archive, second.path().join("a.tar")).unwrap();
    build(&berth, second.path(), &[]).ok();
    let out = berth.run(&["run", "--rm", "f/b", "cat", "/greeting"]).ok().to_owned();
    assert_eq!(out, "from the base\n");
}
