//! `berth plan` end to end: the layer graph of the demo manifest, shared
//! nodes, which keys change when an input changes, and that planning changes
//! nothing on disk.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::{Berth, copy_tree, repo, snapshot};

/// Node keys by (envs, step kind, description), from `plan --json`.
fn keys(plan: &Value) -> BTreeMap<String, String> {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let label =
                format!("{} {} {}", n["envs"], n["kind"], n.get("src").or(n.get("command")).unwrap_or(&Value::Null));
            (label, n["key"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("manifests/demo"), dir.path());
    dir
}

fn plan_json(berth: &Berth, dir: &Path) -> Value {
    berth.run_in(dir, &["plan", "--json"]).json()
}

#[test]
fn demo_lists_the_shared_base_once() {
    let berth = Berth::new();
    let plan = berth.run(&["plan", "-f", "manifests/demo/berth.toml", "--json"]).json();
    let nodes = plan["nodes"].as_array().unwrap();
    let bases: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "base").collect();
    assert_eq!(bases.len(), 1, "one base node for three envs: {nodes:#?}");
    assert_eq!(bases[0]["envs"], serde_json::json!(["api", "base", "worker"]));
    let packages: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "packages").collect();
    assert_eq!(packages.len(), 1);
    let keys: Vec<&str> = nodes.iter().map(|n| n["key"].as_str().unwrap()).collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(keys.len(), unique.len(), "every node is listed once");
    // api and worker share base → packages, then diverge.
    let api = plan["envs"]["api"]["nodes"].as_array().unwrap();
    let worker = plan["envs"]["worker"]["nodes"].as_array().unwrap();
    assert_eq!(api[..2], worker[..2]);
    assert_ne!(api[2], worker[2]);
    assert!(nodes.iter().all(|n| n["action"] == "build"), "an empty store has nothing cached");
    assert_eq!(plan["envs"]["api"]["spec"]["env_vars"]["LANG"], "C.UTF-8", "inherited through from");
}

#[test]
fn editing_a_copied_file_changes_that_node_and_below_only() {
    let berth = Berth::new();
    let dir = demo_copy();
    let before = keys(&plan_json(&berth, dir.path()));

    std::fs::write(dir.path().join("app/index.html"), "<p>changed</p>\n").unwrap();
    let after = keys(&plan_json(&berth, dir.path()));
    let changed: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    assert_eq!(changed.len(), 2, "api's copy and the run below it: {changed:#?}");
    assert!(changed.iter().any(|k| k.contains("copy") && k.contains("\"app\"")));
    assert!(changed.iter().any(|k| k.contains("run") && k.contains("[\"api\"]")));

    // worker.py is in both api's tree and worker's own copy.
    std::fs::write(dir.path().join("app/worker.py"), "print('v2')\n").unwrap();
    let again = keys(&plan_json(&berth, dir.path()));
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != again[*k]).collect();
    assert_eq!(changed.len(), 3, "api's copy and run, worker's copy: {changed:#?}");
    for shared in ["base", "packages"] {
        assert!(!changed.iter().any(|k| k.contains(shared)), "{shared} must keep its key");
    }
}

#[test]
fn mtimes_and_ignored_files_do_not_change_keys() {
    let berth = Berth::new();
    let dir = demo_copy();
    let before = keys(&plan_json(&berth, dir.path()));
    let f = std::fs::File::options().append(true).open(dir.path().join("app/index.html")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345)).unwrap();
    std::fs::create_dir_all(dir.path().join("app/__pycache__")).unwrap();
    std::fs::write(dir.path().join("app/__pycache__/x.pyc"), "junk").unwrap();
    assert_eq!(before, keys(&plan_json(&berth, dir.path())));
}

#[test]
fn planning_changes_nothing_on_disk() {
    let berth = Berth::new();
    let dir = demo_copy();
    // No store yet: plan must not create one.
    berth.run_in(dir.path(), &["plan"]).ok();
    assert!(!berth.store_root().exists(), "plan created the store");
    // An existing store stays byte-identical, and so does the project.
    std::fs::create_dir_all(berth.store_root()).unwrap();
    berth::store::Store::open(&berth.store_root()).unwrap();
    let store_before = snapshot(&berth.store_root());
    let project_before = snapshot(dir.path());
    berth.run_in(dir.path(), &["plan", "--json"]).ok();
    berth.run_in(dir.path(), &["plan"]).ok();
    assert_eq!(store_before, snapshot(&berth.store_root()));
    assert_eq!(project_before, snapshot(dir.path()));
}

#[test]
fn cached_nodes_are_reported_as_cached() {
    let berth = Berth::new();
    let dir = demo_copy();
    let plan = plan_json(&berth, dir.path());
    let base_key: berth::resolve::CacheKey = plan["nodes"][0]["key"].as_str().unwrap().parse().unwrap();
    let store = berth::store::Store::open(&berth.store_root()).unwrap();
    store.cache_put(&base_key, &berth::store::CacheEntry::new(Vec::new(), std::time::SystemTime::now())).unwrap();
    let plan = plan_json(&berth, dir.path());
    assert_eq!(plan["nodes"][0]["action"], "cached");
    let text = berth.run_in(dir.path(), &["plan"]).ok().to_owned();
    assert!(text.contains(&format!("= {}  base bootstrap bookworm", &base_key.to_string()[..12])), "{text}");
    assert!(text.contains("Plan: 4 to build, 1 cached; 2 to create, 0 to change, 0 to remove."), "{text}");
}

#[test]
fn exit_code_reports_pending_changes() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), "[env.x]\nimage = \"scratch\"\n").unwrap();
    let run = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    run.fails_with(2);
    let plan = plan_json(&berth, dir.path());
    let key: berth::resolve::CacheKey = plan["nodes"][0]["key"].as_str().unwrap().parse().unwrap();
    let store = berth::store::Store::open(&berth.store_root()).unwrap();
    store.cache_put(&key, &berth::store::CacheEntry::new(Vec::new(), std::time::SystemTime::now())).unwrap();
    berth.run_in(dir.path(), &["plan", "--exit-code"]).ok();
}

#[test]
fn finds_the_manifest_in_a_parent_directory_or_says_how_to_make_one() {
    let berth = Berth::new();
    let dir = demo_copy();
    let plan = plan_json(&berth, &dir.path().join("app"));
    assert_eq!(plan["project"], "demo");
    let empty = tempfile::tempdir().unwrap();
    let err = berth.run_in(empty.path(), &["plan"]).fails_with(1).to_owned();
    assert!(err.contains("no berth.toml in") && err.contains("berth init"), "{err}");
}

#[test]
fn a_missing_base_file_is_named() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), "[env.x]\nimage = \"rootfs:base.tar\"\n").unwrap();
    let err = berth.run_in(dir.path(), &["plan"]).fails_with(1).to_owned();
    assert!(err.contains("env \"x\": cannot read the base image") && err.contains("base.tar"), "{err}");
}

#[test]
fn a_copy_of_the_project_dir_leaves_out_the_lock_up_writes() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = "project = \"whole\"\n[env.x]\nimage = \"scratch\"\ncopy = [{ src = \".\", dest = \"/app\" }]\n";
    std::fs::write(dir.path().join("berth.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("main.txt"), "main\n").unwrap();
    berth.run_in(dir.path(), &["up", "-d"]).ok();
    // What up writes once it pins packages (here by hand: pinning needs a
    // Debian base). The lock is not part of the copy: nothing to build.
    let lock = "version = 1\n\n[env.other.packages]\ncurl = \"7.88.1-10+deb12u5\"\n";
    std::fs::write(dir.path().join("berth.lock"), lock).unwrap();
    berth.run_in(dir.path(), &["plan"]).ok();
    let plan = berth.run_in(dir.path(), &["plan", "--exit-code"]);
    assert_eq!(plan.code, 0, "plan after up:\n{}{}", plan.stdout, plan.stderr);
    // The manifest itself is still copied (a copy of "." may want it).
    let inspect = berth.run(&["inspect", "whole/x"]).json();
    let layers = inspect[0]["Manifest"]["layers"].as_array().unwrap().clone();
    let hex = layers.last().unwrap()["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
    let tar = support::image::require_tool("tar", "tar");
    let out = std::process::Command::new(tar)
        .arg("-tzf")
        .arg(berth.store_root().join("oci/blobs/sha256").join(hex))
        .output()
        .unwrap();
    let listing = support::image::succeeded("tar -tzf the copy layer", &out);
    assert!(
        listing.lines().any(|l| l == "app/berth.toml") && listing.lines().any(|l| l == "app/main.txt"),
        "{listing}"
    );
    assert!(!listing.contains("berth.lock"), "{listing}");
}
