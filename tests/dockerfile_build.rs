//! `berth build -t NAME:TAG CONTEXT` end to end (issue 15, stage 2): a
//! multi-stage Dockerfile on the busybox test image becomes a runnable,
//! named image with Docker's config and history; rebuilds use the cache; a
//! berth.toml step and the same Dockerfile RUN share one cache entry;
//! errors name `Dockerfile:LINE:COL`.

mod support;

use std::path::Path;

use support::Berth;
use support::differential::{Reference, config_differences, filesystems, raw_config, share_bases};
use support::image_fs::differences;

/// The target stage has 10 instructions after its FROM (each one history entry).
const DOCKERFILE: &str = r#"FROM busybox:latest AS build
ARG GREETING=hi
COPY tools /tools
RUN echo "$GREETING from $(cat /tools/name)" > /greeting && mkdir -p /out && cp /greeting /out/

FROM busybox:latest
LABEL org.example.team=shop
ENV APP_MODE=test NAME=berth
WORKDIR /srv/app
COPY --from=build /out/greeting ./
COPY app/ ./www/
RUN ls /srv/app/www > /srv/app/listing
USER 1000:1000
EXPOSE 8080 53/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /srv/app/greeting"]
"#;

const TARGET_INSTRUCTIONS: usize = 10;

/// A build context with `dockerfile` as its Dockerfile, `app/` (with a file
/// `.dockerignore` leaves out) and `tools/`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("app")).unwrap();
    std::fs::create_dir_all(p.join("tools")).unwrap();
    std::fs::write(p.join("app/index.html"), "hello\n").unwrap();
    std::fs::write(p.join("app/secret.env"), "k=v\n").unwrap();
    std::fs::write(p.join("tools/name"), "tools\n").unwrap();
    std::fs::write(p.join(".dockerignore"), "**/*.env\n").unwrap();
    std::fs::write(p.join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn build(berth: &Berth, ctx: &Path, extra: &[&str]) -> support::Run {
    let ctx = ctx.to_str().unwrap();
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx);
    berth.run(&args)
}

/// The digest a build printed (`TAG\tDIGEST`).
fn digest(out: &str) -> String {
    out.trim().rsplit('\t').next().unwrap_or_default().to_owned()
}

#[test]
fn a_multi_stage_dockerfile_builds_a_runnable_image_with_dockers_config() {
    let berth = Berth::with_busybox();
    let ctx = context(DOCKERFILE);
    let out = build(&berth, ctx.path(), &["-t", "shop/app:1"]).ok().to_owned();
    assert!(out.starts_with("shop/app:1\tsha256:"), "{out}");

    // CMD through the ENTRYPOINT: the file copied from the build stage.
    assert_eq!(berth.run(&["run", "--rm", "shop/app:1"]).ok(), "hi from tools\n");
    let seen = berth
        .run(&[
            "run",
            "--rm",
            "shop/app:1",
            "id -u; id -g; pwd; echo $APP_MODE $NAME; ls /srv/app/www; cat /srv/app/listing; ls /tools 2>&1; true",
        ])
        .ok()
        .to_owned();
    assert_eq!(
        seen, "1000\n1000\n/srv/app\ntest berth\nindex.html\nindex.html\nls: /tools: No such file or directory\n",
        "user, workdir, env, the copied files without the ignored one, and nothing of the build stage but what was copied"
    );

    let inspect = berth.run(&["inspect", "shop/app:1"]).json();
    let config = &inspect[0]["Config"]["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["sh", "-c"]));
    assert_eq!(config["Cmd"], serde_json::json!(["cat /srv/app/greeting"]));
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["Labels"]["org.example.team"], "shop");
    assert_eq!(config["ExposedPorts"], serde_json::json!({ "8080/tcp": {}, "53/udp": {} }));
    let env: Vec<&str> = config["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"APP_MODE=test") && env.contains(&"NAME=berth"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "Docker sets PATH when the base has none: {env:?}");

    let base = berth.run(&["inspect", "busybox:latest"]).json();
    let base_history = base[0]["Config"]["history"].as_array().map_or(0, Vec::len);
    let history = inspect[0]["Config"]["history"].as_array().unwrap();
    assert_eq!(history.len(), base_history + TARGET_INSTRUCTIONS, "{history:#?}");
    let by: Vec<&str> = history.iter().map(|h| h["created_by"].as_str().unwrap_or_default()).collect();
    assert!(by.contains(&"ENV APP_MODE=test NAME=berth"), "{by:?}");
    assert!(by.contains(&"RUN /bin/sh -c ls /srv/app/www > /srv/app/listing # buildkit"), "{by:?}");
    let layered = history.iter().filter(|h| h["empty_layer"] != true).count();
    let layers = inspect[0]["Config"]["rootfs"]["diff_ids"].as_array().unwrap().len();
    assert_eq!(layered, layers, "one history entry per layer, the rest empty_layer: {history:#?}");

    // The image is like any other: it saves.
    let tar = ctx.path().join("saved.tar");
    berth.run(&["save", "-o", tar.to_str().unwrap(), "shop/app:1"]).ok();
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
}

#[test]
fn a_rebuild_is_all_cached_and_an_edit_rebuilds_only_from_that_copy() {
    let berth = Berth::with_busybox();
    let ctx = context(DOCKERFILE);
    let first = build(&berth, ctx.path(), &["-t", "shop/app:1"]);
    let first_digest = digest(first.ok());

    let again = build(&berth, ctx.path(), &["-t", "shop/app:1"]);
    assert_eq!(digest(again.ok()), first_digest, "the same image");
    assert!(again.stderr.contains("nothing to build: all 7 steps are cached"), "{}", again.stderr);

    // A change the .dockerignore hides changes nothing.
    std::fs::write(ctx.path().join("app/secret.env"), "k=other\n").unwrap();
    let ignored = build(&berth, ctx.path(), &["-t", "shop/app:1"]);
    assert!(ignored.ok().contains(&first_digest), "{}", ignored.stderr);
    assert!(ignored.stderr.contains("nothing to build"), "{}", ignored.stderr);

    std::fs::write(ctx.path().join("app/index.html"), "changed\n").unwrap();
    let edited = build(&berth, ctx.path(), &["-t", "shop/app:1"]);
    edited.ok();
    assert!(
        edited.stderr.contains("built 2 steps, 5 cached"),
        "the COPY of app/ and the RUN after it:\n{}",
        edited.stderr
    );
    let rebuilt: Vec<&str> = edited.stderr.lines().filter(|l| l.ends_with(": building")).collect();
    assert!(rebuilt[0].contains("copy") && rebuilt[0].contains("app -> /srv/app/www/"), "{rebuilt:?}");
    assert!(rebuilt[1].contains("run") && rebuilt[1].contains("ls /srv/app/www"), "{rebuilt:?}");
    assert_eq!(berth.run(&["run", "--rm", "shop/app:1", "cat /srv/app/www/index.html"]).ok(), "changed\n");

    // --no-cache builds every step again, to the same image.
    std::fs::write(ctx.path().join("app/index.html"), "hello\n").unwrap();
    let fresh = build(&berth, ctx.path(), &["-t", "shop/app:1", "--no-cache"]);
    assert_eq!(digest(fresh.ok()), first_digest, "a reproducible image");
    assert!(fresh.stderr.contains("built 7 steps, 0 cached"), "{}", fresh.stderr);
}

#[test]
fn a_berth_toml_run_and_the_same_dockerfile_run_share_one_cache_entry() {
    let berth = Berth::with_busybox();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("berth.toml"),
        "project = \"p\"\n[env.shared]\nimage = \"busybox:latest\"\nrun = [\"echo shared > /shared\"]\n",
    )
    .unwrap();
    berth.run_in(project.path(), &["build"]).ok();

    let ctx = context("FROM busybox:latest\nRUN echo shared > /shared\nCMD [\"cat\", \"/shared\"]\n");
    let out = build(&berth, ctx.path(), &["-t", "shared:1"]);
    out.ok();
    let run_line = out.stderr.lines().find(|l| l.contains("echo shared > /shared")).unwrap_or_default();
    assert!(run_line.ends_with(": cached"), "the berth.toml step's entry serves the RUN:\n{}", out.stderr);
    assert!(out.stderr.contains("nothing to build: all 2 steps are cached"), "{}", out.stderr);
    assert_eq!(berth.run(&["run", "--rm", "shared:1"]).ok(), "shared\n");

    // What a berth.toml step does not see (an ENV) makes another entry.
    let other = context("FROM busybox:latest\nENV X=1\nRUN echo shared > /shared\n");
    let out = build(&berth, other.path(), &["-t", "other:1"]);
    out.ok();
    assert!(out.stderr.contains("built 1 steps, 1 cached"), "{}", out.stderr);
}

#[test]
fn add_unpacks_a_local_tar_workdir_makes_its_directory_and_run_network_none_is_offline() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nWORKDIR /opt/made/here\nADD bundle.tar /opt/\nADD app/index.html /opt/plain\nRUN --network=none cat /proc/net/dev > /netdev\n",
    );
    // A tar with a file owned by 1000, made with the test's own tar crate.
    let mut tar = tar::Builder::new(std::fs::File::create(ctx.path().join("bundle.tar")).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o640);
    header.set_uid(1000);
    header.set_gid(1000);
    header.set_cksum();
    tar.append_data(&mut header, "inside/file.txt", &b"tared\n"[..]).unwrap();
    tar.finish().unwrap();
    drop(tar);
    build(&berth, ctx.path(), &["-t", "add:1"]).ok();
    let seen = berth
        .run(&[
            "run",
            "--rm",
            "add:1",
            "sh",
            "-c",
            "pwd; cat /opt/inside/file.txt /opt/plain; stat -c '%u %a' /opt/inside/file.txt; ls /opt",
        ])
        .ok()
        .to_owned();
    assert_eq!(seen, "/opt/made/here\ntared\nhello\n1000 640\ninside\nmade\nplain\n");
    let netdev = berth.run(&["run", "--rm", "add:1", "sh", "-c", "grep -c : /netdev"]).ok().to_owned();
    assert_eq!(netdev.trim(), "1", "only lo in a RUN --network=none");
}

#[test]
fn errors_name_the_dockerfile_line_and_column() {
    let berth = Berth::with_busybox();
    let unsupported = context("FROM busybox:latest\nENV A=1\n  RUN --mount=type=cache,target=/x,from=other true\n");
    let err = build(&berth, unsupported.path(), &["-t", "bad:1"]).fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:3:3: a cache mount with from= or source="), "{err}");
    assert!(err.contains("is not supported by berth yet"), "{err}");

    let failing = context("FROM busybox:latest\nRUN echo about to fail; exit 3\n");
    let err = build(&berth, failing.path(), &["-t", "bad:1"]).fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:2:1: step `RUN echo about to fail; exit 3` exited with 3"), "{err}");
    assert!(err.contains("  | about to fail"), "{err}");

    let typo = context("FROM busybox:latest\nCOPPY app /app\n");
    let err = build(&berth, typo.path(), &["-t", "bad:1"]).fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:2:1: unknown instruction COPPY"), "{err}");

    let missing = context("FROM busybox:latest\nCOPY nothing-here /x\n");
    let err = build(&berth, missing.path(), &["-t", "bad:1"]).fails_with(1).to_owned();
    assert!(err.contains("Dockerfile:2:1: COPY nothing-here"), "{err}");
    assert!(berth.run(&["images"]).ok().lines().all(|l| !l.starts_with("bad")), "no image from a failed build");
}

#[test]
fn the_env_form_of_build_still_builds_berth_toml() {
    let berth = Berth::new();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("berth.toml"), "project = \"p\"\n[env.a]\nimage = \"scratch\"\n").unwrap();
    let out = berth.run_in(project.path(), &["build", "a"]).ok().to_owned();
    assert!(out.starts_with("a\tp/a:latest\t"), "{out}");
}

/// Every instruction the two builders share (buildah 1.28 has no COPY
/// heredocs), multi-stage with `COPY --from`.
const DIFFERENTIAL: &str = r#"FROM busybox:latest AS build
ARG GREETING=hi
COPY tools /tools
RUN echo "$GREETING" > /greeting && mkdir -p /out/deep && cp /greeting /out/deep/

FROM busybox:latest
LABEL org.example.team=shop version="1.0"
MAINTAINER berth tests
ENV APP_MODE=test NAME=berth
WORKDIR /srv/app
COPY --from=build /out/deep/greeting ./
COPY --from=build /out /from-build
COPY app/ ./www/
COPY app /home/user/app
COPY --chown=1000:1000 app/index.html /home/user/owned.html
COPY --chmod=600 tools/name /etc/tool-name
COPY app/index.html tools/name /multi/
ADD bundle.tar /opt/
ADD app/sub /opt/sub
SHELL ["/bin/sh", "-c"]
RUN ls /srv/app/www > /srv/app/listing && rm /bin/vi
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD cat /srv/app/greeting
USER 1000:1000
EXPOSE 8080 53/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /srv/app/greeting"]
"#;

#[test]
fn a_dockerfile_builds_the_filesystem_and_config_podman_build_does() {
    let berth = Berth::with_busybox();
    let ctx = context(DIFFERENTIAL);
    let p = ctx.path();
    std::fs::create_dir_all(p.join("app/sub")).unwrap();
    std::fs::write(p.join("app/sub/s.txt"), "s\n").unwrap();
    std::fs::set_permissions(p.join("tools/name"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut tar = tar::Builder::new(std::fs::File::create(p.join("bundle.tar")).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o640);
    header.set_uid(1000);
    header.set_gid(1000);
    header.set_cksum();
    tar.append_data(&mut header, "inside/f.txt", &b"tared\n"[..]).unwrap();
    tar.into_inner().unwrap();

    // The same base for both, podman's image compared in berth's store.
    let reference = Reference::new();
    share_bases(&berth, &reference.podman, false);
    reference.build(p, None, "diff:1", &[], None).unwrap_or_else(|e| panic!("{e}"));
    reference.bring_to(&berth, &["diff:1"]);
    build(&berth, p, &["-t", "shop/diff:1"]).ok();

    let (ours, podmans) = filesystems(&berth, "shop/diff:1", "localhost/diff:1");
    assert!(ours.get("/home/user").is_some_and(|n| n.uid == 1000 && n.gid == 1000), "{ours:#?}");
    let diff = differences(&ours, &podmans, |_| false);
    assert!(diff.is_empty(), "the filesystems differ:\n{}", diff.join("\n"));

    let (ours, podmans) = (raw_config(&berth, "shop/diff:1"), raw_config(&berth, "localhost/diff:1"));
    let diff = config_differences(&ours, &podmans, |_| false);
    assert!(diff.is_empty(), "the configs differ:\n{}", diff.join("\n"));
}

#[test]
fn heredocs_run_and_copy_and_target_builds_only_the_stage_it_names() {
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest AS base\nARG WHO=you\nRUN <<EOF\necho from heredoc > /heredoc\necho second >> /heredoc\nEOF\nCOPY <<EOF /etc/motd\nwelcome $WHO\nEOF\nRUN cat <<A > /a.txt\nin a\nA\n\nFROM base AS other\nRUN echo other > /other\n",
    );
    let out = build(&berth, ctx.path(), &["-t", "h:1", "--target", "base", "--build-arg", "WHO=berth"]);
    out.ok();
    assert!(!out.stderr.contains("echo other"), "the other stage is not built:\n{}", out.stderr);
    let seen = berth
        .run(&["run", "--rm", "h:1", "sh", "-c", "cat /heredoc /etc/motd /a.txt; ls /other 2>&1; true"])
        .ok()
        .to_owned();
    assert_eq!(seen, "from heredoc\nsecond\nwelcome berth\nin a\nls: /other: No such file or directory\n");
}

#[test]
fn a_step_over_two_identical_layers_runs() {
    // `COPY app /` and `COPY app/index.html /` write the same layer, one
    // directory in the store; overlayfs refuses a lower given twice.
    let berth = Berth::with_busybox();
    let ctx = context(
        "FROM busybox:latest\nCOPY tools /\nCOPY tools/name /\nWORKDIR /w\nCOPY . .\nRUN cat /name /w/tools/name > /both\n",
    );
    let out = build(&berth, ctx.path(), &["-t", "twice:1"]);
    out.ok();
    assert!(out.stderr.contains("built 6 steps"), "{}", out.stderr);
}

#[test]
fn onbuild_is_stored_its_triggers_run_in_a_child_and_a_built_image_is_a_base() {
    let berth = Berth::with_busybox();
    let ctx = context("FROM busybox:latest\nRUN echo built > /built\nONBUILD RUN echo triggered\nSTOPSIGNAL SIGINT\n");
    build(&berth, ctx.path(), &["-t", "team/onbuild:1"]).ok();
    let config = raw_config(&berth, "team/onbuild:1");
    assert_eq!(config["config"]["OnBuild"], serde_json::json!(["RUN echo triggered"]));
    assert_eq!(config["config"]["StopSignal"], "SIGINT");

    // The triggers run in a child (tests/dockerfile_run.rs tells more).
    let child = context("FROM team/onbuild:1\nRUN true\n");
    let out = build(&berth, child.path(), &["-t", "child:1"]);
    out.ok();
    assert!(out.stderr.contains("echo triggered"), "{}", out.stderr);

    let plain = context("FROM busybox:latest\nRUN echo built > /built\n");
    build(&berth, plain.path(), &["-t", "team/plain:1"]).ok();
    let child = context("FROM team/plain:1\nRUN cat /built > /seen\nCMD [\"cat\", \"/seen\"]\n");
    build(&berth, child.path(), &["-t", "child:1"]).ok();
    assert_eq!(berth.run(&["run", "--rm", "child:1"]).ok(), "built\n");
}
