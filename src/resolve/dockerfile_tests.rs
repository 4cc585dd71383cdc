//! Keys of Dockerfile steps against berth.toml's: the same step, the same key.

use std::path::Path;

use super::*;
use crate::dockerfile::{Options, expand, parse_str};
use crate::manifest::Lock;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/a.txt"), "a").unwrap();
    dir
}

/// The keys of berth.toml env `e`'s chain.
fn toml_keys(dir: &Path, text: &str) -> Vec<String> {
    let m = crate::manifest::parse(text, Path::new("berth.toml"), dir).unwrap();
    let r = crate::resolve::resolve(&m, &Lock::default()).unwrap();
    r.graph.chain("e").iter().map(|i| r.graph.node(*i).key.to_string()).collect()
}

/// The keys of a Dockerfile's target chain (scratch bases only).
fn docker_keys(dir: &Path, text: &str) -> Vec<String> {
    let file = parse_str(text, Path::new("Dockerfile")).unwrap();
    let expanded = expand(&file, &Options::default()).unwrap();
    let ignore = crate::dockerfile::ignore::Ignore::parse("").unwrap();
    let g = resolve_dockerfile(&expanded, dir, &ignore, Path::new("Dockerfile"), &|_| ImageBase::default()).unwrap();
    let tip = g.stages.last().unwrap().tip;
    g.graph.chain_from(tip).iter().map(|i| g.graph.node(*i).key.to_string()).collect()
}

const TOML: &str =
    "[env.e]\nimage = \"scratch\"\ncopy = [{ src = \"app\", dest = \"/srv/app\" }]\nrun = [\"echo hi > /x\"]\n";

#[test]
fn the_same_copy_and_run_have_berth_tomls_keys() {
    let p = project();
    let toml = toml_keys(p.path(), TOML);
    let docker = docker_keys(p.path(), "FROM scratch\nCOPY app /srv/app\nRUN echo hi > /x\n");
    assert_eq!(toml, docker);
    // Config-only instructions change no key.
    let labelled =
        docker_keys(p.path(), "FROM scratch\nLABEL a=b\nCOPY ./app/ /srv/app\nRUN echo hi > /x\nCMD [\"sh\"]\n");
    assert_eq!(toml, labelled);
}

#[test]
fn what_the_run_sees_is_in_its_key() {
    let p = project();
    let toml = toml_keys(p.path(), TOML);
    for other in [
        "FROM scratch\nCOPY app /srv/app\nENV A=1\nRUN echo hi > /x\n",
        "FROM scratch\nCOPY app /srv/app\nARG V=1\nRUN echo hi > /x\n",
        "FROM scratch\nCOPY app /srv/app\nUSER 1000\nRUN echo hi > /x\n",
        "FROM scratch\nCOPY app /srv/app\nRUN [\"/bin/sh\", \"-c\", \"echo hi > /x\", \"x\"]\n",
        "FROM scratch\nCOPY app /srv/app\nSHELL [\"/bin/ash\", \"-c\"]\nRUN echo hi > /x\n",
        "FROM scratch\nCOPY app /srv/app\nRUN --network=none echo hi > /x\n",
    ] {
        let docker = docker_keys(p.path(), other);
        assert_eq!(toml[..2], docker[..2], "{other}");
        assert_ne!(toml[2], docker[docker.len() - 1], "{other}");
    }
    // The exec form of exactly `/bin/sh -c CMD` is the same step.
    let exec = docker_keys(p.path(), "FROM scratch\nCOPY app /srv/app\nRUN [\"/bin/sh\", \"-c\", \"echo hi > /x\"]\n");
    assert_eq!(toml, exec);
}

#[test]
fn what_is_not_built_yet_is_refused_at_its_line() {
    let p = project();
    let file =
        parse_str("FROM scratch\nCOPY app /a\nADD https://example.org/repo.git /x\n", Path::new("Dockerfile")).unwrap();
    let expanded = expand(&file, &Options::default()).unwrap();
    let ignore = crate::dockerfile::ignore::Ignore::parse("").unwrap();
    let err = resolve_dockerfile(&expanded, p.path(), &ignore, Path::new("Dockerfile"), &|_| ImageBase::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "Dockerfile:3:1: ADD of a git repository (https://example.org/repo.git) is not supported by berth yet"
        ),
        "{err}"
    );
}

#[test]
fn a_workdir_after_user_is_made_as_that_user() {
    let p = project();
    let root = docker_keys(p.path(), "FROM scratch\nWORKDIR /w\n");
    let as_root = docker_keys(p.path(), "FROM scratch\nUSER 0\nUSER \"\"\nWORKDIR /w\n");
    assert_eq!(root, as_root, "no user: the same mkdir");
    let user = docker_keys(p.path(), "FROM scratch\nUSER 1000:1000\nWORKDIR /w\n");
    assert_eq!(root[0], user[0]);
    assert_ne!(root[1], user[1], "the user is in the mkdir's key");
    let file = parse_str("FROM scratch\nUSER app\nWORKDIR /w\n", Path::new("Dockerfile")).unwrap();
    let expanded = expand(&file, &Options::default()).unwrap();
    let ignore = crate::dockerfile::ignore::Ignore::parse("").unwrap();
    let g =
        resolve_dockerfile(&expanded, p.path(), &ignore, Path::new("Dockerfile"), &|_| ImageBase::default()).unwrap();
    let step = &g.graph.node(g.stages[0].tip).step;
    assert!(matches!(step, Step::Mkdir { owner: Some(u), .. } if u == "app"), "{step:?}");
}
