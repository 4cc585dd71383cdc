//! `no_new_privs` as Docker sets it: off by default, so setuid programs
//! such as sudo work inside a container; on with `--security-opt
//! no-new-privileges` (or `security_opt` in berth.toml), where they grant
//! nothing. Uses a Debian `bootstrap` base with sudo installed (about a
//! minute from Debian's archive), and a sudoers rule for `nobody`.

mod support;

use support::Berth;

const MANIFEST: &str = "project = \"nnp\"\n\n[env.app]\nbootstrap = { suite = \"bookworm\", variant = \"minbase\" }\n\
                        packages = [\"sudo\"]\n\
                        run = [\"echo 'nobody ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/nobody\"]\n";

#[test]
fn sudo_works_by_default_and_not_with_no_new_privileges() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), MANIFEST).unwrap();
    berth.run_in(dir.path(), &["build"]).ok();

    // Root dropping to nobody, and nobody rising to root through setuid.
    let out = berth.run(&["run", "--rm", "nnp/app", "sudo", "-u", "nobody", "id", "-un"]).ok().to_owned();
    assert_eq!(out, "nobody\n");
    let out = berth.run(&["run", "--rm", "-u", "nobody", "nnp/app", "sudo", "-n", "id", "-u"]).ok().to_owned();
    assert_eq!(out, "0\n");
    let status = berth.run(&["run", "--rm", "nnp/app", "grep", "NoNewPrivs", "/proc/self/status"]).ok().to_owned();
    assert_eq!(status, "NoNewPrivs:\t0\n");

    let nnp = ["--security-opt", "no-new-privileges"];
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(&nnp);
        all.extend_from_slice(args);
        berth.run(&all)
    };
    let refused = run(&["-u", "nobody", "nnp/app", "sudo", "-n", "id", "-u"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("no new privileges"), "{}", refused.stderr);
    let status = run(&["nnp/app", "grep", "NoNewPrivs", "/proc/self/status"]).ok().to_owned();
    assert_eq!(status, "NoNewPrivs:\t1\n");
}
