//! `berth up --watch`: an initial reconcile (and the envs' output shown),
//! then one per change — a copied file's edit recreates only the env that
//! copies it, an `env` edit only that env, a broken manifest is reported and
//! leaves the envs running — and Ctrl-C ends the watch, leaving the envs up.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use support::Berth;
use support::stream::{Collected, wait_child};

const MANIFEST: &str = r#"
project = "watched"

[env.web]
image = "rootfs:busybox.tar"
copy = [{ src = "www", dest = "/www" }]
cmd = ["sleep", "300"]

[env.other]
image = "rootfs:busybox.tar"
cmd = ["sh", "-c", "echo other says hi; exec sleep 300"]
"#;

/// A running `berth up --watch`, everything it has said on stderr and
/// the envs' output it showed on stdout.
struct Watch {
    child: Child,
    said: Collected,
    shown: Collected,
}

impl Watch {
    fn start(berth: &Berth, dir: &Path) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--root", &berth.store_root().to_string_lossy(), "up", "--watch"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = Collected::start(child.stderr.take().unwrap());
        let shown = Collected::start(child.stdout.take().unwrap());
        Watch { child, said, shown }
    }

    /// Waits until stderr, from byte `from` on, contains `text`; returns
    /// the length of stderr then.
    #[track_caller]
    fn wait_for(&self, from: usize, text: &str) -> usize {
        self.said.wait_for(from, text)
    }

    fn since(&self, from: usize) -> String {
        self.said.text().get(from..).unwrap_or_default().to_owned()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

fn ids(berth: &Berth, dir: &Path) -> (String, String) {
    // The global view: the project's own needs a manifest that loads.
    let ps = berth.run_in(dir, &["ps", "--global", "--json"]).json();
    let id = |env: &str| {
        let row = ps.as_array().unwrap().iter().find(|r| r["labels"]["org.berth.env"] == env);
        row.map(|r| r["id"].to_string()).unwrap_or_default()
    };
    (id("web"), id("other"))
}

#[test]
fn watch_applies_each_change_and_survives_a_broken_manifest() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::image::busybox_tar(), dir.path().join("busybox.tar")).unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "v1\n").unwrap();
    std::fs::write(dir.path().join("www/.berthignore"), "*.swp\n").unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    let mut watch = Watch::start(&berth, dir.path());
    let at = watch.wait_for(0, "watching ");
    assert!(watch.since(0).contains("web: created and started"), "the initial reconcile: {}", watch.since(0));
    let (web, other) = ids(&berth, dir.path());
    // The envs' output is shown, prefixed by name, as `up` in the foreground shows it.
    watch.shown.wait_for(0, "watched-other | other says hi\n");

    // An ignored file changes nothing; a copied file's edit recreates web only.
    std::fs::write(dir.path().join("www/index.html.swp"), "junk").unwrap();
    std::fs::write(dir.path().join("www/index.html"), "v2\n").unwrap();
    let at2 = watch.wait_for(at, "web: recreated");
    assert!(!watch.since(at).contains("other:"), "{}", watch.since(at));
    assert!(!watch.since(at).contains(".swp"), "ignored files are no change: {}", watch.since(at));
    assert_eq!(berth.run_in(dir.path(), &["exec", "web", "cat", "/www/index.html"]).ok(), "v2\n");
    let (web2, other2) = ids(&berth, dir.path());
    assert_ne!(web, web2);
    assert_eq!(other, other2);

    // An env edit recreates that env only.
    let edited = MANIFEST.replace("[env.other]\n", "[env.other]\nenv = { MODE = \"qa\" }\n");
    std::fs::write(dir.path().join("berth.toml"), &edited).unwrap();
    let at3 = watch.wait_for(at2, "other: recreated (env_vars: {} -> {\"MODE\":\"qa\"})");
    assert!(!watch.since(at2).contains("web:"), "{}", watch.since(at2));
    let (web3, other3) = ids(&berth, dir.path());
    assert_eq!(web3, web2);
    assert_ne!(other3, other2);

    // A broken manifest is reported; the envs stay as they are.
    std::fs::write(
        dir.path().join("berth.toml"),
        edited.replace("cmd = [\"sleep\", \"300\"]\n\n", "cmd = [\"sleep\"\n\n"),
    )
    .unwrap();
    let at4 = watch.wait_for(at3, "the running envs are left as they were");
    assert!(watch.since(at3).contains("berth.toml:"), "the error names the file: {}", watch.since(at3));
    assert_eq!(ids(&berth, dir.path()), (web3.clone(), other3.clone()));
    std::fs::write(dir.path().join("berth.toml"), &edited).unwrap();
    watch.wait_for(at4, "nothing to do");

    // Ctrl-C ends the watch; the envs keep running.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(watch.child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let status = wait_child(&mut watch.child, "berth up --watch after Ctrl-C");
    assert!(status.success(), "{status}");
    assert_eq!(ids(&berth, dir.path()), (web3, other3));
    berth.run_in(dir.path(), &["down"]).ok();
}
