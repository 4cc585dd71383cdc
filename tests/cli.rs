//! The command line as a user meets it: help (every verb with an example),
//! version, init and images.

mod support;

use support::Berth;

const VERBS: &[&str] = &[
    "init", "plan", "up", "down", "ps", "logs", "exec", "diff", "snapshot", "freeze", "lock", "run", "start", "stop",
    "restart", "rm", "attach", "images", "tag", "rmi", "history", "inspect", "commit", "export", "import", "save",
    "load", "pull", "push", "gc", "system", "fsck", "version", "kill", "top", "login", "logout", "search",
];

#[test]
fn help_lists_every_verb_with_a_summary() {
    let help = Berth::new().run(&["--help"]).ok().to_owned();
    for verb in VERBS {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{verb} ")))
            .unwrap_or_else(|| panic!("{verb} missing from:\n{help}"));
        assert!(line.split_whitespace().count() > 2, "{verb} has no summary: {line}");
    }
}

#[test]
fn every_verb_has_an_example_in_its_help() {
    // The verbs as `berth --help` lists them, so a new verb is checked too.
    let help = Berth::new().run(&["--help"]).ok().to_owned();
    let commands = help.split("Commands:").nth(1).expect("a Commands section").split("\n\n").next().unwrap();
    let verbs: Vec<&str> =
        commands.lines().filter_map(|l| l.split_whitespace().next()).filter(|v| *v != "help").collect();
    assert!(verbs.len() > 30, "too few verbs listed:\n{help}");
    for verb in verbs {
        let help = Berth::new().run(&[verb, "--help"]).ok().to_owned();
        assert!(help.contains("Example: berth"), "{verb} --help has no example:\n{help}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = Berth::new().run(&["version"]).ok().to_owned();
    assert!(out.starts_with(&format!("berth {}", env!("CARGO_PKG_VERSION"))), "{out}");
    let json = Berth::new().run(&["version", "--json"]).json();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn images_of_an_empty_store_lists_nothing() {
    let berth = Berth::new();
    let out = berth.run(&["images"]).ok().to_owned();
    assert_eq!(out.trim(), "REPOSITORY   TAG   IMAGE ID   CREATED   SIZE");
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]));
    berth::store::Store::open(&berth.store_root()).unwrap();
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn images_refuses_a_directory_that_is_not_a_store() {
    let berth = Berth::new();
    std::fs::create_dir_all(berth.store_root()).unwrap();
    std::fs::write(berth.store_root().join("holiday.jpg"), "x").unwrap();
    let err = berth.run(&["images"]).fails_with(1).to_owned();
    assert!(err.contains(&berth.store_root().display().to_string()), "{err}");
}

#[test]
fn init_writes_a_starter_that_plans_and_refuses_to_overwrite() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("My Shop");
    std::fs::create_dir(&project).unwrap();
    let out = berth.run_in(&project, &["init"]).ok().to_owned();
    assert!(out.contains("project \"my-shop\""), "{out}");
    let text = std::fs::read_to_string(project.join("berth.toml")).unwrap();
    assert!(text.contains("project = \"my-shop\"") && text.contains("# "), "commented starter:\n{text}");
    berth.run_in(&project, &["plan"]).ok();
    let err = berth.run_in(&project, &["init"]).fails_with(1).to_owned();
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    berth.run_in(&project, &["init", "--force", "--project", "shop"]).ok();
    assert!(std::fs::read_to_string(project.join("berth.toml")).unwrap().contains("project = \"shop\""));
    let err = berth.run_in(&project, &["init", "--force", "--project", "Bad Name"]).fails_with(1).to_owned();
    assert!(err.contains("bad project name"), "{err}");
}

#[test]
fn store_root_comes_from_berth_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("via-env");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["images", "--json"])
        .env("BERTH_ROOT", &root)
        .output()
        .unwrap();
    assert!(status.status.success());
    // images only reads; pointing it at a bad root shows the env var was used.
    std::fs::write(&root, "not a dir").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["images"])
        .env("BERTH_ROOT", &root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("via-env"));
}

#[test]
fn reading_verbs_do_not_create_a_store() {
    let berth = Berth::new();
    assert_eq!(berth.run(&["ps", "-a"]).ok().lines().count(), 1, "only the header");
    let err = berth.run(&["logs", "web"]).fails_with(1).to_owned();
    assert!(err.contains("no store at") && err.contains("yet"), "{err}");
    assert!(!berth.store_root().exists());
}

#[test]
fn a_closed_standard_output_ends_berth_quietly() {
    // `berth version | head -c 0`: the reader is gone before berth prints.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("version")
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "as a shell reports SIGPIPE");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no panic message");
}
