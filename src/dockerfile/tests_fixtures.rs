//! The Dockerfile corpus in `fixtures/dockerfiles/` (which the next stage
//! builds with berth and `podman build`) parses and expands as Docker would.

use std::path::{Path, PathBuf};

use super::env::Platform;
use super::expand::{Base, DEFAULT_PATH, Expanded, Options, expand};
use super::ignore;
use super::instruction::Instruction;
use super::tests::show;
use super::{Dockerfile, load};

fn fixture(dir: &str) -> (PathBuf, Dockerfile) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dockerfiles").join(dir).join("Dockerfile");
    let file = load(&path).unwrap_or_else(|e| panic!("{e}"));
    (path, file)
}

fn expanded(file: &Dockerfile, target: Option<&str>) -> Expanded {
    let options = Options { target: target.map(str::to_owned), ..Options::default() };
    expand(file, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn steps(e: &Expanded, stage: usize) -> Vec<String> {
    e.stages[stage].steps.iter().map(|s| show(&s.instruction)).collect()
}

#[test]
fn ssh_seed_example() {
    let (_, file) = fixture("ssh");
    let e = expanded(&file, None);
    assert_eq!(e.stages[0].base, Base::Image("debian:bookworm".parse().unwrap()));
    let s = steps(&e, 0);
    assert_eq!(s.len(), 5);
    assert!(
        s[0].starts_with(r#"RUN sh:"apt-get update && apt-get install -y --no-install-recommends openssh-server wget"#)
    );
    assert_eq!(s[1], r#"ENV "SSH_PORT"="22" "LANG"="C.UTF-8""#);
    assert_eq!(s[3], r#"EXPOSE ["22/tcp"]"#);
    assert_eq!(s[4], r#"CMD ["sh", "-c", "service ssh start; sleep infinity"]"#);
}

#[test]
fn syntax_points() {
    let (_, file) = fixture("syntax");
    assert_eq!(file.directives.escape, '\\');
    assert_eq!(file.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(file.warnings.len(), 1, "the blank line inside the RUN");
    let e = expanded(&file, None);
    assert_eq!(e.stages[0].base, Base::Image("busybox".parse().unwrap()), "${{TAG:+:$TAG}} is empty");
    let s = steps(&e, 0);
    assert_eq!(
        s,
        [
            r#"ARG BASE="busybox""#,
            r#"ENV "GREETING"="hello world" "NAME"="berth""#,
            r#"RUN sh:"echo \"${GREETING}, ${NAME}\"     && echo 'the blank line above is skipped, with a warning'""#,
            r#"RUN ["sh", "-c", "echo exec form"]"#,
            r#"RUN sh:"[echo, not json]""#,
            r#"RUN sh:"<<EOF" <<EOF="echo \"from a heredoc on ${BASE}\"\n""#,
            r#"RUN sh:"<<-EOT sh" <<-EOT="\techo tabs stripped\n""#,
            r#"COPY [] <<RAW'="$NAME stays as written\n" <<COOKED="berth is substituted\n" -> "/etc/""#,
            r#"ENV "FILE"="archive.tar.gz""#,
            r#"LABEL "stem"="archive" "ext"="tar.gz" "default"="fallback" "alt"="set""#,
            r#"WORKDIR "/srv/berth""#,
            r#"WORKDIR "/srv/berth/sub""#,
        ]
    );
}

#[test]
fn multistage_targets_and_ignore_file() {
    let (path, file) = fixture("multistage");
    let e = expanded(&file, None);
    assert_eq!(e.target, 4);
    assert_eq!(e.levels, [vec![0, 1], vec![2], vec![4]], "test is not needed for prod");
    let build = e.stages.iter().find(|s| s.name.as_deref() == Some("build")).unwrap();
    assert_eq!(build.base, Base::Stage(0));
    let run = build.steps.iter().find(|s| matches!(s.instruction, Instruction::Run(_))).unwrap();
    assert_eq!(run.build_args.get("VERSION"), Some("1.0"));
    let e = expanded(&file, Some("test"));
    assert_eq!(e.levels, [vec![0, 1], vec![2], vec![3]]);
    let context = path.parent().unwrap();
    let ignore = ignore::load(&path, context).unwrap();
    assert!(ignore.matches("assets/notes.md"));
    assert!(!ignore.matches("assets/a.txt") && !ignore.matches("README.md"));
}

#[test]
fn every_instruction() {
    let (_, file) = fixture("instructions");
    let e = expanded(&file, None);
    assert_eq!(e.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(e.stages[0].platform.as_deref(), Some(Platform::host().spec().as_str()));
    let s = steps(&e, 0);
    let kinds: Vec<&str> = e.stages[0].steps.iter().map(|s| s.instruction.name()).collect();
    assert_eq!(
        kinds,
        [
            "LABEL",
            "LABEL",
            "MAINTAINER",
            "ARG",
            "ENV",
            "ENV",
            "WORKDIR",
            "ADD",
            "COPY",
            "RUN",
            "EXPOSE",
            "VOLUME",
            "VOLUME",
            "USER",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "SHELL",
            "ONBUILD",
            "ENTRYPOINT",
            "CMD"
        ]
    );
    assert_eq!(s[4], format!(r#"ENV "APP"="/srv/app" "PATH"="/srv/app/bin:{DEFAULT_PATH}""#));
    assert_eq!(s[7], r#"ADD --chown="1000:1000" --chmod="0644" --link ["files/"]  -> "./files/""#);
    assert_eq!(
        s[8],
        r#"COPY --chown="1000:1000" --chmod="755" --link --parents --exclude="*.tmp" ["files/"]  -> "./copied/""#
    );
    assert_eq!(s[10], r#"EXPOSE ["53/udp", "8080/tcp", "9000-9002/tcp"]"#);
    assert_eq!(s[13], r#"USER "1000:1000""#);
    assert_eq!(e.stages[0].workdir, "/srv/app");
    assert_eq!(e.stages[0].shell, ["/bin/sh", "-eu", "-c"]);
    assert_eq!(steps(&e, 1), ["HEALTHCHECK NONE", "ENTRYPOINT []"]);
}

#[test]
fn parsed_and_expanded_files_serialize() {
    for dir in ["ssh", "syntax", "multistage", "instructions"] {
        let (_, file) = fixture(dir);
        let parsed = serde_json::to_value(&file).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(parsed["stages"].is_array());
        let e = expanded(&file, None);
        serde_json::to_string(&e).unwrap_or_else(|e| panic!("{dir}: {e}"));
    }
    let (_, file) = fixture("ssh");
    let v = serde_json::to_value(&file.stages[0].instructions[3]).unwrap();
    assert_eq!(v["instruction"], serde_json::json!({"kind": "EXPOSE", "value": ["${SSH_PORT}"]}));
}
