//! A Debian `bootstrap` base with packages, end to end: the lock records
//! the installed versions, a second build does nothing, and `--locked`
//! installs exactly the locked versions or says which are missing; and the
//! digests depend on the manifest and lock alone, not on where the store or
//! the checkout is, nor on how the manifest was named.
//!
//! One test, so that the Debian root is bootstrapped only twice (about a
//! minute each, from Debian's archive): once into a store under a private
//! (0700) directory and once into a store every user can reach (0755 all
//! the way up). apt, run by the bootstrapper, drops to its `_apt` user only
//! in the second, so the bootstrap layer itself is what is compared.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::Berth;

const MANIFEST: &str = "project = \"deb\"\n\n[env.app]\nbootstrap = { suite = \"bookworm\", variant = \"minbase\" }\n\
                        packages = [\"hello\", \"jq\"]\nrun = [\"hello > /greeting\"]\n";

#[test]
fn bootstrap_packages_lock_and_digests() {
    // The private store: under a 0700 directory, as `mktemp -d` makes.
    let berth = Berth::new();
    std::fs::set_permissions(berth.store(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("checkout-a");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("berth.toml"), MANIFEST).unwrap();
    let build = |args: &[&str]| {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        berth.run_in(&dir, &all)
    };

    let first = build(&[]);
    first.ok();
    let lock = std::fs::read_to_string(dir.join("berth.lock")).unwrap();
    assert!(lock.contains("[env.app.packages]") && lock.contains("hello = \"") && lock.contains("jq = \""), "{lock}");
    let out = berth
        .run(&["run", "--rm", "deb/app", "sh", "-c", "cat /greeting; jq --version; ls /var/lib/apt/lists | wc -l"])
        .ok()
        .to_owned();
    assert_eq!(out, "Hello, world!\njq-1.6\n0\n", "installed, and the package lists cleaned in the same step");

    digests_depend_on_the_manifest_and_lock_alone(&berth, parent.path(), &dir);

    let again = build(&[]);
    assert!(again.stderr.contains("nothing to build"), "the lock's pins keep the keys: {}", again.stderr);
    assert!(build(&["--locked"]).ok().contains("deb/app:latest"));

    // A package the lock does not know.
    std::fs::write(dir.join("berth.toml"), MANIFEST.replace("\"jq\"]", "\"jq\", \"tree\"]")).unwrap();
    let err = build(&["--locked"]).fails_with(1).to_owned();
    assert!(err.contains("--locked, but berth.lock has no version for tree"), "{err}");

    // A locked version the archive no longer has.
    std::fs::write(dir.join("berth.toml"), MANIFEST).unwrap();
    let gone = lock
        .lines()
        .map(|l| if l.starts_with("hello = ") { "hello = \"0.0-gone\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("berth.lock"), gone).unwrap();
    let err = build(&["--locked"]).fails_with(1).to_owned();
    assert!(err.contains("apt install hello jq") && err.contains("exited with"), "{err}");
    assert!(err.contains("0.0-gone"), "apt's own words name the missing version: {err}");
}

/// Every layer digest, the config's labels and the image digest of
/// `deb/app` in `berth`'s store.
#[derive(Debug, PartialEq)]
struct Built {
    layers: Vec<String>,
    labels: Value,
    image: String,
}

fn built(berth: &Berth) -> Built {
    let inspect = berth.run(&["inspect", "deb/app"]).json();
    let layers = inspect[0]["Manifest"]["layers"].as_array().expect("the image's layers");
    Built {
        layers: layers.iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect(),
        labels: inspect[0]["Config"]["config"]["Labels"].clone(),
        image: inspect[0]["Id"].as_str().unwrap().to_owned(),
    }
}

/// Whether a user other than root can walk down to `path`.
fn others_can_reach(path: &Path) -> bool {
    path.ancestors().all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The project built by `private` from checkout `a` (in `parent`), built
/// again from a second checkout and with and without `-f`, into `private`
/// and into a store every user can reach: the same layers and images.
fn digests_depend_on_the_manifest_and_lock_alone(private: &Berth, parent: &Path, a: &Path) {
    let want = built(private);
    assert_eq!(want.layers.len(), 3, "bootstrap, packages, run: {want:?}");

    let b = parent.join("checkout-b");
    support::copy_tree(a, &b); // berth.toml and berth.lock
    let shared = Berth::new();
    std::fs::set_permissions(shared.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(others_can_reach(shared.store()), "apt's _apt user must reach {}", shared.store().display());
    assert!(!others_can_reach(&private.store_root()), "nobody but root may reach {}", private.store().display());

    let build = |berth: &Berth, cwd: &Path, args: &[&str]| {
        let mut all = vec!["build", "-q"];
        all.extend_from_slice(args);
        berth.run_in(cwd, &all).ok();
        built(berth)
    };
    let in_b: PathBuf = b.join("berth.toml");
    // A fresh bootstrap into the shared store, from the other checkout.
    let shared_b = build(&shared, &b, &[]);
    assert_eq!(shared_b, want, "a 0755 and a 0700 store, checkouts {} and {}", b.display(), a.display());
    // With -f, relative and absolute: cached layers, the same image.
    assert_eq!(build(&shared, parent, &["-f", "checkout-a/berth.toml"]), want, "built with -f");
    assert_eq!(build(private, Path::new("/"), &["-f", in_b.to_str().unwrap()]), want, "built with -f /…/checkout-b");
    assert_eq!(build(private, a, &[]), want, "built in checkout a again");
}
