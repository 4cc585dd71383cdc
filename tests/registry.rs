//! Registry verbs end to end against a real `docker-registry` on
//! 127.0.0.1 (see `support/registry.rs`): push what berth made, pull it
//! into an empty store and run it; pull what skopeo pushed; Basic auth
//! behind TLS with a test CA; `--locked` builds after a tag moved; a
//! tampered blob; and the errors users meet every day. No test sends
//! anything to any address but 127.0.0.1.

mod support;

use std::fs;
use std::process::Command;

use support::registry::{Options, Registry, User, free_port};
use support::{Berth, snapshot};

/// Pushes the busybox image of a fresh store to `REGISTRY/team/busybox:1`;
/// returns the store and the manifest digest.
fn push_busybox(user: &User, registry: &Registry, extra: &[&str]) -> (Berth, String) {
    let berth = Berth::with_busybox();
    let target = format!("{}/team/busybox:1", registry.addr());
    let mut args = vec!["push", "busybox", target.as_str()];
    args.extend_from_slice(extra);
    let digest = user.run(&berth, &args).ok().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    (berth, digest)
}

#[test]
fn push_then_pull_into_an_empty_store_and_run() {
    let registry = Registry::start();
    let user = User::new();
    let (source, digest) = push_busybox(&user, &registry, &[]);
    let image = format!("{}/team/busybox:1", registry.addr());

    let berth = Berth::new();
    let pulled = user.run(&berth, &["pull", &image]);
    assert_eq!(pulled.ok().trim(), digest, "the same manifest comes back");
    assert!(pulled.stderr.contains("1 blob fetched"), "{}", pulled.stderr);
    let images = berth.run(&["images", "--json"]).json();
    assert_eq!(images[0]["repository"], format!("{}/team/busybox", registry.addr()));
    let out = berth.run(&["run", "--rm", &image, "echo", "hello from the registry"]).ok().to_owned();
    assert_eq!(out.trim(), "hello from the registry");

    // Pulling again fetches nothing; pushing again uploads nothing.
    let again = user.run(&berth, &["pull", &image]);
    assert!(again.ok().contains(&digest) && again.stderr.contains("0 blobs fetched"), "{}", again.stderr);
    let again = user.run(&source, &["push", "busybox", &image]);
    assert!(again.ok().contains(&digest) && again.stderr.contains("0 blobs uploaded"), "{}", again.stderr);
    assert!(again.stderr.contains("2 already there"), "{}", again.stderr);
}

#[test]
fn push_mounts_blobs_from_another_repository_and_uploads_in_chunks() {
    let registry = Registry::start();
    let user = User::new();
    let berth = Berth::with_busybox();
    let a = format!("{}/team/a:1", registry.addr());
    let b = format!("{}/team/b:1", registry.addr());
    berth.run(&["tag", "busybox", &a]).ok();
    let pushed = user.run(&berth, &["push", &a, "--chunk-size", "256KiB"]);
    assert!(pushed.stderr.contains("2 blobs uploaded"), "{}", pushed.stderr);
    berth.run(&["tag", "busybox", &b]).ok();
    let mounted = user.run(&berth, &["push", &b]);
    assert!(mounted.stderr.contains("mounted from team/a"), "{}", mounted.stderr);
    assert!(mounted.stderr.contains("0 blobs uploaded") && mounted.stderr.contains("2 mounted"), "{}", mounted.stderr);

    let fresh = Berth::new();
    user.run(&fresh, &["pull", &b]).ok();
    assert_eq!(fresh.run(&["run", "--rm", &b, "true"]).code, 0);
    let found = user.run(&fresh, &["search", &format!("{}/team", registry.addr())]).ok().to_owned();
    assert!(found.contains(&a.replace(":1", "")) && found.contains(&b.replace(":1", "")), "{found}");
    let found = user.run(&fresh, &["search", &format!("{}/zzz", registry.addr()), "--json"]).json();
    assert_eq!(found, serde_json::json!([]));
}

#[test]
fn pulls_what_skopeo_pushed_in_docker_schema_2() {
    let skopeo = support::image::require_tool("skopeo", "skopeo");
    let registry = Registry::start();
    let user = User::new();
    let source = Berth::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox-oci.tar");
    let layout = format!("oci:{}:busybox:latest", source.store_root().join("oci").display());
    let skopeo_copy = |args: &[&str]| {
        let out = Command::new(&skopeo).arg("copy").arg("--quiet").args(args).output().unwrap();
        assert!(out.status.success(), "skopeo copy {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    skopeo_copy(&[&layout, &format!("oci-archive:{}", archive.display())]);
    let image = format!("{}/third/party:v2s2", registry.addr());
    skopeo_copy(&[
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{image}"),
    ]);

    let berth = Berth::new();
    let digest = user.run(&berth, &["pull", &image]).ok().trim().to_owned();
    let manifest = fs::read_to_string(berth.store_root().join("oci/blobs/sha256").join(&digest[7..])).unwrap();
    assert!(manifest.contains("application/vnd.docker.distribution.manifest.v2+json"), "{manifest}");
    let out = berth.run(&["run", "--rm", &image, "cat", "/etc/passwd"]).ok().to_owned();
    assert!(out.starts_with("root:x:0:0"), "{out}");
}

#[test]
fn basic_auth_behind_tls_with_a_private_ca() {
    let options = Options { user: Some(("alice".into(), "s3cret".into())), tls: true, ..Options::default() };
    let registry = Registry::start_with(options);
    let user = User::new();
    let addr = registry.addr();
    let ca = registry.ca().display().to_string();

    // Without the CA: a TLS error that names the registry.
    let err = user.run_in(
        &Berth::new(),
        &support::repo(),
        &["login", &addr, "-u", "alice", "--password-stdin"],
        Some("s3cret\n"),
    );
    let text = err.fails_with(1).to_owned();
    assert!(text.contains(&format!("TLS with the registry {addr} failed")) && text.contains("--ca-cert"), "{text}");

    // A wrong password is refused, and nothing is saved.
    let login = ["login", addr.as_str(), "-u", "alice", "--password-stdin", "--ca-cert", ca.as_str()];
    let err = user.run_in(&Berth::new(), &support::repo(), &login, Some("wrong\n"));
    let text = err.fails_with(1).to_owned();
    assert!(text.contains(&format!("the registry {addr} refused the login: unauthorized")), "{text}");
    assert!(!user.config_dir().join("auth.json").exists());

    // Logged in: push and pull work; the password is stored 0600, not in the clear.
    let ok = user.run_in(&Berth::new(), &support::repo(), &login, Some("s3cret\n"));
    assert!(ok.ok().contains("Login Succeeded") && !ok.stdout.contains("s3cret") && !ok.stderr.contains("s3cret"));
    let auth = user.config_dir().join("auth.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!fs::read_to_string(&auth).unwrap().contains("s3cret"));
    let (_, digest) = push_busybox(&user, &registry, &["--ca-cert", &ca]);
    let image = format!("{addr}/team/busybox:1");
    let berth = Berth::new();
    assert_eq!(user.run(&berth, &["pull", &image, "--ca-cert", &ca]).ok().trim(), digest);

    // The CA from registries.toml works as --ca-cert does.
    fs::write(user.config_dir().join("registries.toml"), format!("ca-certs = [{ca:?}]\n")).unwrap();
    user.run(&Berth::new(), &["pull", &image]).ok();

    // Logged out: unauthorized; Docker's config.json is read when berth has nothing.
    assert!(user.run(&berth, &["logout", &addr]).ok().contains(&format!("Removed login credentials for {addr}")));
    let err = user.run(&Berth::new(), &["pull", &image]).fails_with(1).to_owned();
    assert!(err.contains("unauthorized") && err.contains(&format!("berth login {addr}")), "{err}");
    fs::create_dir_all(user.docker_dir()).unwrap();
    let docker = serde_json::json!({"auths": {format!("https://{addr}"): {"auth": "YWxpY2U6czNjcmV0"}}});
    fs::write(user.docker_dir().join("config.json"), docker.to_string()).unwrap();
    assert_eq!(user.run(&Berth::new(), &["pull", &image]).ok().trim(), digest);
}

#[test]
fn bearer_tokens_from_a_token_service() {
    let options = Options { user: Some(("alice".into(), "s3cret".into())), token: true, ..Options::default() };
    let registry = Registry::start_with(options);
    let user = User::new();
    let addr = registry.addr();
    let image = format!("{addr}/team/app:1");
    let source = Berth::with_busybox();

    let err = user.run(&source, &["push", "busybox", &image]).fails_with(1).to_owned();
    assert!(err.contains(&format!("the registry {addr} refused")) && err.contains("unauthorized"), "{err}");
    let login = ["login", addr.as_str(), "-u", "alice", "--password-stdin"];
    let err = user.run_in(&source, &support::repo(), &login, Some("wrong\n")).fails_with(1).to_owned();
    assert!(err.contains("wrong user name or password"), "{err}");
    user.run_in(&source, &support::repo(), &login, Some("s3cret\n")).ok();

    let digest = user.run(&source, &["push", "busybox", &image]).ok().trim().to_owned();
    let berth = Berth::new();
    assert_eq!(user.run(&berth, &["pull", &image]).ok().trim(), digest);
    assert_eq!(berth.run(&["run", "--rm", &image, "true"]).code, 0);
}

#[test]
fn locked_builds_pull_by_digest_after_the_tag_moved() {
    let registry = Registry::start();
    let user = User::new();
    let (_, first) = push_busybox(&user, &registry, &[]);
    let base = format!("{}/team/busybox:1", registry.addr());
    let project = tempfile::tempdir().unwrap();
    fs::write(
        project.path().join("berth.toml"),
        format!("[env.app]\nimage = \"{base}\"\nrun = [\"echo built > /built\"]\n"),
    )
    .unwrap();
    let build = |berth: &Berth, args: &[&str]| {
        let mut all = vec!["build", "-q"];
        all.extend_from_slice(args);
        user.run_in(berth, project.path(), &all, None)
    };
    build(&Berth::new(), &[]).ok();
    let lock = fs::read_to_string(project.path().join("berth.lock")).unwrap();
    assert!(lock.contains(&first), "the lock pins the pulled digest:\n{lock}");

    // Another image under the same tag.
    let other = Berth::with_busybox();
    other
        .run(&["import", "--change", "ENV MOVED=1", &support::image::busybox_tar().display().to_string(), "moved"])
        .ok();
    let second = user.run(&other, &["push", "moved", &base]).ok().trim().to_owned();
    assert_ne!(first, second);

    // A fresh store: --locked pulls the locked digest, not the tag.
    let berth = Berth::new();
    build(&berth, &["--locked"]).ok();
    assert_eq!(fs::read_to_string(project.path().join("berth.lock")).unwrap(), lock, "the lock is unchanged");
    let blobs = berth.store_root().join("oci/blobs/sha256");
    assert!(blobs.join(&first[7..]).exists(), "the locked manifest was pulled");
    assert!(!blobs.join(&second[7..]).exists(), "the moved tag was not followed");

    // `berth lock` resolves the tag afresh.
    user.run_in(&berth, project.path(), &["lock", "-q"], None).ok();
    let relocked = fs::read_to_string(project.path().join("berth.lock")).unwrap();
    assert!(relocked.contains(&second), "berth lock follows the tag:\n{relocked}");

    // --locked with no digest in the lock is refused.
    fs::remove_file(project.path().join("berth.lock")).unwrap();
    let err = build(&Berth::new(), &["--locked"]).fails_with(1).to_owned();
    assert!(err.contains("berth.lock has no version for the base image digest"), "{err}");
}

#[test]
fn a_tampered_blob_is_refused_and_the_store_is_unchanged() {
    let registry = Registry::start();
    let user = User::new();
    let (source, _) = push_busybox(&user, &registry, &[]);
    let layer = source.run(&["inspect", "busybox"]).json();
    let layer = layer[0]["Manifest"]["layers"][0]["digest"].as_str().unwrap().to_owned();
    let data = registry.blob_data(&layer);
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&data, bytes).unwrap();

    let berth = Berth::with_busybox(); // holds other things already
    let busybox_layer = berth.store_root().join("oci/blobs/sha256").join(&layer[7..]);
    fs::remove_file(&busybox_layer).unwrap(); // so that the pull must fetch it
    let before = snapshot(&berth.store_root());
    let err = user.run(&berth, &["pull", &format!("{}/team/busybox:1", registry.addr())]).fails_with(1).to_owned();
    assert!(err.contains(&format!("the blob {layer}")) && err.contains("tampered"), "{err}");
    assert!(err.contains("nothing of the image was stored"), "{err}");
    assert_eq!(snapshot(&berth.store_root()), before, "the store is unchanged");
}

#[test]
fn everyday_errors_say_what_is_wrong() {
    let registry = Registry::start();
    let user = User::new();
    push_busybox(&user, &registry, &[]);
    let berth = Berth::new();
    let addr = registry.addr();

    let err = user.run(&berth, &["pull", &format!("{addr}/team/busybox:nope")]).fails_with(1).to_owned();
    assert!(err.contains(&format!("{addr}/team/busybox: no tag \"nope\" in that repository (it has: 1)")), "{err}");
    let err = user.run(&berth, &["pull", &format!("{addr}/team/missing:1")]).fails_with(1).to_owned();
    assert!(err.contains(&format!("{addr}/team/missing: no such repository in that registry")), "{err}");
    let port = free_port();
    let err = user.run(&berth, &["pull", &format!("127.0.0.1:{port}/team/busybox:1")]).fails_with(1).to_owned();
    assert!(err.contains(&format!("cannot reach the registry 127.0.0.1:{port}")), "{err}");
    let err = user.run(&berth, &["pull", "Team/Busybox"]).fails_with(1).to_owned();
    assert!(err.contains("bad image reference") && err.contains("lower-case"), "{err}");
    let err =
        user.run(&berth, &["pull", &format!("{addr}/team/busybox:1"), "--platform", "linux"]).fails_with(1).to_owned();
    assert!(err.contains("bad platform \"linux\""), "{err}");
    assert_eq!(berth.run(&["images", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn registry_verbs_have_help_with_an_example() {
    for verb in ["pull", "push", "login", "logout", "search"] {
        let help = Berth::new().run(&[verb, "--help"]).ok().to_owned();
        assert!(help.contains("Example: berth"), "{verb} --help has no example:\n{help}");
    }
}
