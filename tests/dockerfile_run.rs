//! `RUN`'s mounts, networks and heredoc scripts, and ONBUILD triggers,
//! end to end: each test builds a Dockerfile on the busybox test image with
//! `berth build -t`, runs the image and checks what the build did.

mod support;

use std::path::Path;

use support::Berth;

/// A build context holding `files` (path, content) and `dockerfile`.
fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn build(berth: &Berth, ctx: &Path, tag: &str) -> support::Run {
    berth.run(&["build", "-t", tag, ctx.to_str().unwrap()])
}

/// What `script` prints in a container of `image`.
fn sh(berth: &Berth, image: &str, script: &str) -> String {
    berth.run(&["run", "--rm", "--entrypoint", "sh", image, "-c", script]).ok().to_owned()
}

/// A RUN that counts its runs in the cache `counter` mounted at `target`
/// and records the count at `seen`.
fn counting(target: &str, sharing: &str, seen: &str) -> String {
    format!(
        "RUN --mount=type=cache,id=counter,target={target},sharing={sharing} \
         n=$(cat {target}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {target}/n; echo $n > {seen}\n"
    )
}

#[test]
fn a_cache_mount_persists_across_builds_and_stays_out_of_the_image() {
    let berth = Berth::with_busybox();
    let first = context(&format!("FROM busybox:latest\n{}", counting("/var/cache/count", "shared", "/seen")), &[]);
    build(&berth, first.path(), "cache:1").ok();
    assert_eq!(
        sh(&berth, "cache:1", "cat /seen; ls /var/cache/count 2>&1; true"),
        "1\nls: /var/cache/count: No such file or directory\n"
    );

    // Another Dockerfile, another target, the same id: the same cache.
    let second = context(&format!("FROM busybox:latest\nENV OTHER=1\n{}", counting("/c", "locked", "/seen")), &[]);
    build(&berth, second.path(), "cache:2").ok();
    assert_eq!(sh(&berth, "cache:2", "cat /seen; ls -d /c 2>&1; true"), "2\nls: /c: No such file or directory\n");

    // The cache is not part of the key: a rebuild is a cache hit, and the
    // cache is where the docs say it is, named by its id.
    let again = build(&berth, second.path(), "cache:2");
    assert!(again.stderr.contains("nothing to build"), "{}", again.stderr);
    let dirs: Vec<_> = std::fs::read_dir(berth.store_root().join("cache-mounts")).unwrap().collect();
    assert_eq!(dirs.len(), 1);
    let dir = dirs[0].as_ref().unwrap().path();
    assert_eq!(std::fs::read_to_string(dir.join("id")).unwrap(), "counter");
    assert_eq!(std::fs::read_to_string(dir.join("data/n")).unwrap(), "2\n");

    // gc keeps caches unless asked; --cache-mounts lists and removes them.
    assert!(!berth.run(&["gc", "--dry-run"]).ok().contains("cache mount"));
    let listed = berth.run(&["gc", "--cache-mounts", "--dry-run"]).ok().to_owned();
    assert!(listed.contains("Would delete: cache mount counter ("), "{listed}");
    assert!(dir.join("data/n").exists(), "a dry run removes nothing");
    berth.run(&["gc", "--cache-mounts"]).ok();
    assert!(!dir.exists());
    let fresh = berth.run(&["build", "--no-cache", "-t", "cache:3", second.path().to_str().unwrap()]);
    fresh.ok();
    assert_eq!(sh(&berth, "cache:3", "cat /seen"), "1\n", "the cache starts empty again");
}

#[test]
fn a_cache_mount_gets_its_mode_and_owner_and_uses_the_target_as_its_id() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nRUN --mount=type=cache,target=/cache,mode=0700,uid=1000,gid=1000 stat -c '%a %u %g' /cache > /stat\n",
        &[],
    );
    build(&berth, ctx.path(), "owned:1").ok();
    assert_eq!(sh(&berth, "owned:1", "cat /stat"), "700 1000 1000\n");
    let dirs: Vec<_> = std::fs::read_dir(berth.store_root().join("cache-mounts")).unwrap().collect();
    let dir = dirs[0].as_ref().unwrap().path();
    assert_eq!(std::fs::read_to_string(dir.join("id")).unwrap(), "/cache");
}

#[test]
fn a_context_bind_mount_is_read_only_keyed_by_content_and_ignores_what_dockerignore_does() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nRUN --mount=type=bind,source=app,target=/app \
         cat /app/index.html > /out; ls -a /app > /listing; touch /app/x 2>/dev/null || echo ro > /ro\n",
        &[("app/index.html", "one\n"), ("app/secret.env", "k=v\n"), (".dockerignore", "**/*.env\n")],
    );
    build(&berth, ctx.path(), "bind:1").ok();
    assert_eq!(
        sh(&berth, "bind:1", "cat /out /listing /ro; ls /app 2>&1; true"),
        "one\n.\n..\nindex.html\nro\nls: /app: No such file or directory\n"
    );

    // A changed bound file rebuilds the step.
    std::fs::write(ctx.path().join("app/index.html"), "two\n").unwrap();
    build(&berth, ctx.path(), "bind:1").ok();
    assert_eq!(sh(&berth, "bind:1", "cat /out"), "two\n");
}

#[test]
fn a_rw_bind_mount_throws_its_writes_away() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nRUN --mount=type=bind,target=/ctx,rw echo new > /ctx/app/index.html && cat /ctx/app/index.html > /seen\n",
        &[("app/index.html", "old\n")],
    );
    build(&berth, ctx.path(), "rw:1").ok();
    assert_eq!(sh(&berth, "rw:1", "cat /seen; ls /ctx 2>&1; true"), "new\nls: /ctx: No such file or directory\n");
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("app/index.html")).unwrap(),
        "old\n",
        "the context is untouched"
    );
}

#[test]
fn a_bind_mount_from_a_stage_and_a_tmpfs_mount() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest AS made\nRUN mkdir -p /out/sub && echo staged > /out/sub/f && echo file > /one\n\
         FROM busybox:latest\n\
         RUN --mount=from=made,source=/out,target=/m --mount=type=bind,from=made,source=/one,target=/etc/one \
         cat /m/sub/f /etc/one > /got\n\
         RUN --mount=type=bind,from=made,source=/out,target=/m,rw echo scribble > /m/sub/f && cat /m/sub/f >> /got\n\
         RUN --mount=type=tmpfs,target=/t echo x > /t/x && grep ' /t ' /proc/mounts | cut -d' ' -f3 > /fs\n",
        &[],
    );
    build(&berth, ctx.path(), "stage:1").ok();
    assert_eq!(
        sh(&berth, "stage:1", "cat /got /fs; ls /m /t /etc/one 2>&1; true"),
        "staged\nfile\nscribble\ntmpfs\nls: /m: No such file or directory\nls: /t: No such file or directory\nls: /etc/one: No such file or directory\n"
    );
}

#[test]
fn run_network_host_and_default_build_and_a_shebang_heredoc_runs_as_a_file() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nRUN --network=host echo host > /host\nRUN --network=default echo default > /default\n\
         RUN <<EOF\n#!/bin/sh\necho \"$0\" > /script\nEOF\n\
         RUN <<'AWK'\n#!/bin/awk -f\nBEGIN { print \"from awk\" > \"/awk\" }\nAWK\n",
        &[],
    );
    build(&berth, ctx.path(), "net:1").ok();
    assert_eq!(
        sh(&berth, "net:1", "cat /host /default /script /awk; ls /dev/pipes 2>&1; true"),
        "host\ndefault\n/dev/pipes/EOF\nfrom awk\nls: /dev/pipes: No such file or directory\n"
    );
}

/// The raw config blob of the stored image `image`.
fn raw_config(berth: &Berth, image: &str) -> serde_json::Value {
    let inspect = berth.run(&["inspect", image]).json();
    let digest = inspect[0]["Manifest"]["config"]["digest"].as_str().unwrap().to_owned();
    let path = berth.store_root().join("oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_base_images_onbuild_triggers_run_after_the_childs_from_and_are_not_inherited() {
    let berth = Berth::with_busybox();
    let base = context(
        "FROM busybox:latest\nONBUILD COPY . /app\nONBUILD RUN cat /app/name > /ran && echo \"$WHO\" >> /ran\nENV WHO=base\n",
        &[],
    );
    build(&berth, base.path(), "team/base:1").ok();
    assert_eq!(
        raw_config(&berth, "team/base:1")["config"]["OnBuild"],
        serde_json::json!(["COPY . /app", "RUN cat /app/name > /ran && echo \"$WHO\" >> /ran"])
    );
    assert_eq!(
        sh(&berth, "team/base:1", "ls /app /ran 2>&1; true"),
        "ls: /app: No such file or directory\nls: /ran: No such file or directory\n",
        "triggers do not run in the image that stores them"
    );

    let child = context("FROM team/base:1\nENV WHO=child\nRUN cat /ran > /child\n", &[("name", "first\n")]);
    build(&berth, child.path(), "child:1").ok();
    assert_eq!(
        sh(&berth, "child:1", "cat /app/name /child"),
        "first\nfirst\nbase\n",
        "the triggers ran before the child's own instructions"
    );
    let config = raw_config(&berth, "child:1");
    assert!(config["config"].get("OnBuild").is_none(), "{}", config["config"]);

    // The trigger's COPY is keyed by the child's context.
    std::fs::write(child.path().join("name"), "second\n").unwrap();
    build(&berth, child.path(), "child:1").ok();
    assert_eq!(sh(&berth, "child:1", "cat /child"), "second\nbase\n");

    // A grandchild does not run them again.
    let grandchild = context("FROM child:1\nRUN ls /app > /listing\n", &[("other", "x\n")]);
    build(&berth, grandchild.path(), "grandchild:1").ok();
    assert_eq!(sh(&berth, "grandchild:1", "cat /listing"), "Dockerfile\nname\n");
}

#[test]
fn mount_points_and_the_parents_made_for_them_stay_out_of_the_layer() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nRUN --mount=type=tmpfs,target=/x/y/z true\n\
         RUN --mount=type=cache,target=/w/c echo kept > /w/kept\n\
         WORKDIR /srv\nRUN --mount=type=tmpfs,target=rel grep ' /srv/rel ' /proc/mounts | cut -d' ' -f3 > /rel\n",
        &[],
    );
    build(&berth, ctx.path(), "stubs:1").ok();
    assert_eq!(
        sh(&berth, "stubs:1", "ls /x 2>&1; ls -A /w /srv; cat /rel; true"),
        "ls: /x: No such file or directory\n/srv:\n\n/w:\nkept\ntmpfs\n",
        "a relative target is under the WORKDIR"
    );
}

#[test]
fn a_bind_mount_from_an_image_is_keyed_by_its_digest() {
    let berth = Berth::with_busybox();
    let tools = context("FROM busybox:latest\nRUN mkdir /out && echo one > /out/tool\n", &[]);
    build(&berth, tools.path(), "team/tools:1").ok();
    let ctx = context(
        "FROM busybox:latest\nRUN --mount=type=bind,from=team/tools:1,source=/out,target=/t cat /t/tool > /got\n",
        &[],
    );
    build(&berth, ctx.path(), "from-image:1").ok();
    assert_eq!(sh(&berth, "from-image:1", "cat /got; ls /t 2>&1; true"), "one\nls: /t: No such file or directory\n");

    std::fs::write(tools.path().join("Dockerfile"), "FROM busybox:latest\nRUN mkdir /out && echo two > /out/tool\n")
        .unwrap();
    build(&berth, tools.path(), "team/tools:1").ok();
    build(&berth, ctx.path(), "from-image:1").ok();
    assert_eq!(sh(&berth, "from-image:1", "cat /got"), "two\n", "another image is another step");

    // (No test of a missing image: berth would ask its registry.)
    let bad = context("FROM busybox:latest\nRUN --mount=from=Not_A_Ref,target=/t true\n", &[]);
    let err = build(&berth, bad.path(), "bad:1").fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:2:1: --mount from=Not_A_Ref: no stage of this Dockerfile"), "{err}");
}

/// A RUN that marks `me` in the shared cache and waits (a bounded wait for
/// a condition, two minutes at most) until `other` is marked too: it can
/// only succeed when the other stage runs at the same time. It marks a
/// private cache too, and lists it once both ran.
fn rendezvous(me: &str, other: &str) -> String {
    format!(
        "RUN --mount=type=cache,id=meet,target=/meet --mount=type=cache,id=own,target=/own,sharing=private \
         touch /meet/{me} /own/{me}; i=0; \
         while [ ! -e /meet/{other} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; \
         test -e /meet/{other} && echo {me} > /{me} && ls /own > /{me}-own\n"
    )
}

#[test]
fn independent_stages_build_side_by_side_and_a_shared_node_builds_once() {
    let berth = Berth::with_busybox();
    let ctx = context(
        &format!(
            "FROM busybox:latest AS a\nRUN echo same > /same\n{}\
             FROM busybox:latest AS b\nRUN echo same > /same\n{}\
             FROM busybox:latest\nCOPY --from=a /a /a-own /\nCOPY --from=b /b /b-own /\nCMD [\"cat\", \"/a\", \"/b\"]\n",
            rendezvous("a", "b"),
            rendezvous("b", "a")
        ),
        &[],
    );
    let out = build(&berth, ctx.path(), "parallel:1");
    out.ok();
    assert_eq!(berth.run(&["run", "--rm", "parallel:1"]).ok(), "a\nb\n");
    let own = sh(&berth, "parallel:1", "cat /a-own /b-own");
    assert_eq!(own, "a\nb\n", "a busy private cache is not shared: each step saw only its own mark");
    let same = out.stderr.lines().filter(|l| l.contains("echo same") && l.ends_with(": building")).count();
    assert_eq!(same, 1, "the node the two stages share is built once:\n{}", out.stderr);
}
