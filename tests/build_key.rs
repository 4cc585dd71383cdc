//! berth.toml's `build` key end to end (issue 15, point 1): an env whose
//! base is a Dockerfile's target stage (multi-stage, a target, build args)
//! with its own `copy` and `run` on top runs with the Dockerfile's config
//! and the stacked files; the Dockerfile's nodes are nodes of the plan,
//! cached after a build; a no-op `up` builds nothing; an edit in the
//! context rebuilds from that COPY on; `berth build -t` of the same
//! Dockerfile reuses every node; mistakes name `berth.toml:LINE:COL`.
//! Bases are the local busybox test image, no registry.

mod support;

use std::path::Path;

use support::{Berth, wait_until};

/// The `prod` target needs the `build` stage (COPY --from) and not `debug`.
const DOCKERFILE: &str = r#"FROM busybox:latest AS build
ARG GREETING=hi
COPY tools /tools
RUN echo "$GREETING from $(cat /tools/name)" > /greeting

FROM busybox:latest AS prod
ENV MODE=prod
WORKDIR /srv
COPY --from=build /greeting /srv/greeting
COPY app/ /srv/app/
EXPOSE 8080
CMD ["sh", "-c", "cp /srv/stacked /out/stacked; echo $MODE $EXTRA > /out/env; pwd > /out/pwd; ls /srv/app > /out/ls; exec sleep 1000"]

FROM prod AS debug
RUN echo debug > /debug
"#;

const MANIFEST: &str = r#"project = "bk"

[env.app]
build = { context = "svc", dockerfile = "docker/App.dockerfile", target = "prod", args = { GREETING = "hello" } }
copy = [{ src = "extra", dest = "/extra" }]
run = ["cat /srv/greeting /extra/note > /srv/stacked && echo $MODE >> /srv/stacked"]
env = { EXTRA = "1" }
volumes = ["out:/out"]
"#;

/// A project: berth.toml, `extra/`, and the context `svc/` with its
/// Dockerfile in `svc/docker/`, `app/` and `tools/`.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["svc/docker", "svc/app", "svc/tools", "extra"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("svc/docker/App.dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(p.join("svc/app/index.html"), "v1\n").unwrap();
    std::fs::write(p.join("svc/tools/name"), "tools\n").unwrap();
    std::fs::write(p.join("extra/note"), "note\n").unwrap();
    std::fs::write(p.join("berth.toml"), manifest).unwrap();
    dir
}

fn wait_for_file(path: &Path, want: &str) {
    wait_until(&format!("{} to read {want:?}", path.display()), || {
        std::fs::read_to_string(path).unwrap_or_default() == want
    });
}

/// The lines of a build's progress that say a node is being built.
fn building(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.ends_with(": building")).collect()
}

#[test]
fn an_env_built_from_a_dockerfile_runs_with_its_config_and_the_stacked_steps() {
    let berth = Berth::with_busybox();
    let dir = project(MANIFEST);
    let p = dir.path();

    // The plan shows the Dockerfile's nodes, all to build, and only those the target needs.
    let plan = berth.run_in(p, &["plan"]).ok().to_owned();
    for node in [
        "run echo \"$GREETING from $(cat /tools/name)\" > /greeting",
        "files COPY --from=build /greeting -> /srv/greeting",
        "mkdir /srv",
        "copy app -> /srv/app/",
        "copy extra -> /extra",
        "run cat /srv/greeting /extra/note",
    ] {
        let line = plan.lines().find(|l| l.contains(node)).unwrap_or_else(|| panic!("no {node:?} in:\n{plan}"));
        assert!(line.trim_start().starts_with('+'), "to build: {line}");
    }
    assert!(!plan.contains("echo debug"), "the debug stage is not the target's: {plan}");
    assert!(plan.contains("app: create"), "the Dockerfile's CMD runs, as `up` will know: {plan}");
    let json = berth.run_in(p, &["plan", "--json"]).json();
    let to_build = json["nodes"].as_array().unwrap().len();
    assert_eq!(to_build, 8, "one busybox base for both stages; COPY, RUN; mkdir, 2 COPY; copy, run: {json:#}");

    let built = berth.run_in(p, &["build"]);
    built.ok();
    assert_eq!(building(&built.stderr).len(), 8, "{}", built.stderr);
    let plan = berth.run_in(p, &["plan"]).ok().to_owned();
    assert!(plan.contains("Plan: 0 to build, 8 cached"), "{plan}");

    let up = berth.run_in(p, &["up", "-d"]);
    up.ok();
    assert!(building(&up.stderr).is_empty(), "built already: {}", up.stderr);
    let out = berth.store_root().join("volumes/bk/out");
    // The Dockerfile's CMD, WORKDIR and ENV; the env's own env, copy and
    // run (which saw the stage's ENV) on top.
    wait_for_file(&out.join("stacked"), "hello from tools\nnote\nprod\n");
    wait_for_file(&out.join("env"), "prod 1\n");
    wait_for_file(&out.join("pwd"), "/srv\n");
    wait_for_file(&out.join("ls"), "index.html\n");
    let inspect = berth.run(&["inspect", "bk/app:latest"]).json();
    let config = &inspect[0]["Config"]["config"];
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(config["Cmd"][0], "sh");
    let history = inspect[0]["Config"]["history"].as_array().unwrap();
    let by: Vec<&str> = history.iter().map(|h| h["created_by"].as_str().unwrap_or_default()).collect();
    assert!(by.contains(&"ENV MODE=prod"), "the Dockerfile's history comes first: {by:?}");
    assert_eq!(
        by.last().copied(),
        Some("RUN cat /srv/greeting /extra/note > /srv/stacked && echo $MODE >> /srv/stacked")
    );

    // Nothing changed: nothing is built, the container stays.
    let again = berth.run_in(p, &["up", "-d"]);
    again.ok();
    assert!(building(&again.stderr).is_empty(), "{}", again.stderr);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);

    // A file of the context: its COPY and what is above it, nothing below.
    std::fs::write(p.join("svc/app/index.html"), "v2\n").unwrap();
    std::fs::write(p.join("svc/app/more.html"), "v2\n").unwrap();
    let edited = berth.run_in(p, &["up", "-d"]);
    edited.ok();
    let rebuilt = building(&edited.stderr);
    assert_eq!(rebuilt.len(), 3, "{}", edited.stderr);
    assert!(rebuilt[0].contains("app -> /srv/app/"), "{rebuilt:?}");
    assert!(edited.stderr.contains("app: recreated"), "{}", edited.stderr);
    wait_for_file(&out.join("ls"), "index.html\nmore.html\n");

    // `berth build -t` of the same Dockerfile, target and args: every node cached.
    let ctx = p.join("svc");
    let file = ctx.join("docker/App.dockerfile");
    let direct = berth.run(&[
        "build",
        "-t",
        "bk/direct:1",
        "-f",
        file.to_str().unwrap(),
        "--target",
        "prod",
        "--build-arg",
        "GREETING=hello",
        ctx.to_str().unwrap(),
    ]);
    direct.ok();
    assert!(building(&direct.stderr).is_empty(), "{}", direct.stderr);
    assert!(direct.stderr.contains("nothing to build: all 6 steps are cached"), "{}", direct.stderr);

    // berth.lock records the image the Dockerfile starts FROM.
    let lock = std::fs::read_to_string(p.join("berth.lock")).unwrap();
    assert!(lock.contains("[env.app.images]") && lock.contains("busybox:latest\" = \"sha256:"), "{lock}");
    berth.run_in(p, &["down"]).ok();
}

#[test]
fn build_is_shorthand_for_the_context_and_its_dockerfile_config_is_the_base_config() {
    let berth = Berth::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("web")).unwrap();
    std::fs::write(
        p.join("web/Dockerfile"),
        "FROM busybox:latest\nUSER 1000:1000\nENTRYPOINT [\"echo\"]\nCMD [\"from\", \"the\", \"dockerfile\"]\n",
    )
    .unwrap();
    std::fs::write(p.join("berth.toml"), "project = \"short\"\n[env.web]\nbuild = \"web\"\n").unwrap();
    berth.run_in(p, &["build"]).ok();
    assert_eq!(berth.run(&["run", "--rm", "short/web:latest"]).ok(), "from the dockerfile\n");
    let config = &berth.run(&["inspect", "short/web:latest"]).json()[0]["Config"]["config"];
    assert_eq!(config["User"], "1000:1000");
    // The env's own settings win over the Dockerfile's, as over an image's.
    std::fs::write(p.join("berth.toml"), "project = \"short\"\n[env.web]\nbuild = \"web\"\ncmd = [\"mine\"]\n")
        .unwrap();
    berth.run_in(p, &["build"]).ok();
    assert_eq!(berth.run(&["run", "--rm", "short/web:latest"]).ok(), "mine\n");
}

/// `berth plan`'s error for `manifest` in a fresh project.
fn plan_error(manifest: &str) -> String {
    let berth = Berth::new();
    let dir = project(manifest);
    berth.run_in(dir.path(), &["plan"]).fails_with(1).to_owned()
}

#[test]
fn mistakes_in_build_name_the_place_in_berth_toml() {
    let both = "[env.app]\nimage = \"busybox:latest\"\nbuild = \"svc\"\n";
    let err = plan_error(both);
    assert!(err.contains("berth.toml:3:9: env \"app\" sets both `image` and `build`"), "{err}");

    let missing = "[env.app]\nbuild = { context = \"svc\", dockerfile = \"Nope.dockerfile\" }\n";
    let err = plan_error(missing);
    assert!(err.contains("berth.toml:2:41: no Dockerfile at ") && err.contains("/svc/Nope.dockerfile;"), "{err}");
    let default = "[env.app]\nbuild = \"svc\"\n";
    let err = plan_error(default);
    assert!(err.contains("berth.toml:2:9: no Dockerfile at ") && err.contains("/svc/Dockerfile (the default"), "{err}");
    let no_dir = "[env.app]\nbuild = \"nowhere\"\n";
    assert!(plan_error(no_dir).contains("berth.toml:2:9: build context \"nowhere\" is not a directory"));

    let target = "[env.app]\nbuild = { context = \"svc\", dockerfile = \"docker/App.dockerfile\", target = \"prd\" }\n";
    let err = plan_error(target);
    assert!(
        err.contains(
            "berth.toml:2:75: docker/App.dockerfile: target stage \"prd\" is not in the Dockerfile; its stages are build, prod, debug;"
        ),
        "{err}"
    );

    let unknown = "[env.app]\nbuild = { context = \"svc\", dokerfile = \"x\" }\n";
    let err = plan_error(unknown);
    assert!(
        err.contains("berth.toml:2:") && err.contains("unknown key \"dokerfile\" (did you mean \"dockerfile\"?)"),
        "{err}"
    );
    let bad_type = "[env.app]\nbuild = 3\n";
    assert!(plan_error(bad_type).contains("berth.toml:2:9:"));

    // A Dockerfile's own error keeps its Dockerfile:LINE:COL.
    let dir = project("[env.app]\nbuild = \"svc\"\n");
    std::fs::write(dir.path().join("svc/Dockerfile"), "FROM busybox:latest\nRUNN true\n").unwrap();
    let err = Berth::new().run_in(dir.path(), &["plan"]).fails_with(1).to_owned();
    assert!(
        err.contains("berth.toml:2:9: build: ") && err.contains("/svc/Dockerfile:2:1: unknown instruction"),
        "{err}"
    );
}
