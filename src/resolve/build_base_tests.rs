//! `build` envs in the resolver: the Dockerfile's nodes in the project's
//! graph, the env's own steps on top, keys that see what the steps see.

use std::path::Path;

use crate::manifest::Lock;
use crate::resolve::{Resolution, Step, resolve, resolve_with};

/// Resolves `manifest` in a project whose `svc/Dockerfile` is `dockerfile`.
fn resolved(dockerfile: &str, manifest: &str) -> Resolution {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("svc/app")).unwrap();
    std::fs::write(dir.path().join("svc/app/f"), "x").unwrap();
    std::fs::write(dir.path().join("svc/Dockerfile"), dockerfile).unwrap();
    let m = crate::manifest::parse(manifest, Path::new("berth.toml"), dir.path()).unwrap();
    resolve(&m, &Lock::default()).unwrap()
}

const DOCKERFILE: &str =
    "FROM scratch AS build\nCOPY app /app\nFROM scratch\nCOPY --from=build /app /app\nENV MODE=prod\n";
const MANIFEST: &str =
    "[env.a]\nbuild = \"svc\"\nrun = [\"echo $MODE > /m\"]\n[env.b]\nfrom = \"a\"\nrun = [\"true\"]\n";

#[test]
fn the_dockerfiles_nodes_are_in_the_graph_and_the_envs_steps_stack_on_its_target() {
    let r = resolved(DOCKERFILE, MANIFEST);
    let kinds: Vec<&str> = r.graph.chain("a").iter().map(|i| r.graph.node(*i).step.kind()).collect();
    assert_eq!(kinds, ["base", "files", "run"], "scratch, COPY --from, the env's run");
    assert_eq!(r.graph.len(), 5, "and the build stage's COPY off the chain, and b's run");
    let b = &r.builds["a"];
    assert_eq!(b.nodes.len(), 3);
    assert_eq!(r.graph.node(r.graph.chain("a")[1]).key, b.tip);
    assert!(b.env.contains(&"MODE=prod".to_owned()), "{:?}", b.env);
    let run = r.graph.node(r.graph.chain("a")[2]);
    let Step::Run { with, .. } = &run.step else { panic!("{:?}", run.step) };
    assert_eq!(with.env.as_ref(), Some(&b.env), "the stage's ENV is what the run sees, so it is in its key");
    assert_eq!(r.graph.chain("b")[..3], r.graph.chain("a")[..], "from = \"a\" hangs under a's chain");
    assert!(b.missing.is_empty(), "FROM scratch needs no image");
    assert_eq!(b.has_command, Some(false));
    let cmd = resolved(&format!("{DOCKERFILE}CMD [\"serve\"]\n"), MANIFEST);
    assert_eq!(cmd.builds["a"].has_command, Some(true));
    let reset = resolved("FROM scratch AS top\nCMD [\"serve\"]\nFROM top\nENTRYPOINT []\n", MANIFEST);
    assert_eq!(reset.builds["a"].has_command, Some(false), "an ENTRYPOINT resets the CMD of the stage below");
    let kept = resolved("FROM scratch AS top\nCMD [\"serve\"]\nFROM top\nENV X=1\n", MANIFEST);
    assert_eq!(kept.builds["a"].has_command, Some(true), "a CMD is inherited from the stage below");
}

#[test]
fn an_env_the_dockerfile_changes_without_a_layer_changes_the_keys_of_the_steps_on_top() {
    let first = resolved(DOCKERFILE, MANIFEST);
    let other = resolved(&DOCKERFILE.replace("MODE=prod", "MODE=dev"), MANIFEST);
    assert_eq!(first.builds["a"].tip, other.builds["a"].tip, "ENV makes no layer");
    assert_ne!(first.specs["a"].image, other.specs["a"].image, "but the run above sees it");
    let with_packages = resolved(DOCKERFILE, "[env.a]\nbuild = \"svc\"\npackages = [\"curl\"]\n");
    let node = with_packages.graph.node(with_packages.graph.chain("a")[2]);
    let Step::Packages { env, .. } = &node.step else { panic!("{:?}", node.step) };
    assert_eq!(env.as_ref(), Some(&with_packages.builds["a"].env), "the install sees the stage's ENV too");
    let plain = resolved("FROM scratch\nCOPY app /app\n", MANIFEST);
    let top = plain.graph.node(plain.graph.chain("a")[2]);
    let Step::Run { with, .. } = &top.step else { panic!() };
    assert_eq!(with.env, None, "no ENV: the run is keyed as over any base");
}

#[test]
fn a_from_image_is_keyed_by_the_digest_found_or_is_provisional() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("svc")).unwrap();
    std::fs::write(dir.path().join("svc/Dockerfile"), "FROM busybox:latest\nRUN true\n").unwrap();
    let m = crate::manifest::parse("[env.a]\nbuild = \"svc\"\n", Path::new("berth.toml"), dir.path()).unwrap();
    let unknown = resolve(&m, &Lock::default()).unwrap();
    assert_eq!(unknown.builds["a"].missing, ["docker.io/library/busybox:latest"]);
    let digest: crate::oci::Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
    let known = |_: &crate::oci::ImageRef, _: Option<&crate::oci::Digest>| {
        Some(crate::resolve::KnownImage {
            digest: digest.clone(),
            config: serde_json::json!({"config": {"Env": ["PATH=/bin"]}}),
        })
    };
    let found = resolve_with(&m, &Lock::default(), &known).unwrap();
    assert!(found.builds["a"].missing.is_empty());
    assert_eq!(found.builds["a"].images["docker.io/library/busybox:latest"], digest);
    assert_ne!(found.builds["a"].tip, unknown.builds["a"].tip, "the digest is part of the base's key");
    // The lock's pin is what the lookup is asked for.
    let mut lock = Lock::default();
    lock.env.entry("a".into()).or_default().images.insert("docker.io/library/busybox:latest".into(), digest.clone());
    let asked = std::cell::RefCell::new(None);
    let spy = |_: &crate::oci::ImageRef, pin: Option<&crate::oci::Digest>| {
        *asked.borrow_mut() = pin.cloned();
        None
    };
    resolve_with(&m, &lock, &spy).unwrap();
    assert_eq!(asked.into_inner(), Some(digest));
}
