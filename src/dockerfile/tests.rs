//! The parser on odd cases: directives, comments, continuations, JSON and
//! shell forms, heredocs, flags, unicode; and an error naming line:col for
//! each bad form.

use std::fmt::Write;
use std::path::Path;

use super::instruction::*;
use super::{Dockerfile, parse_str};

fn parse(text: &str) -> Dockerfile {
    parse_str(text, Path::new("Dockerfile")).unwrap_or_else(|e| panic!("{e}\n--- in:\n{text}"))
}

/// `Dockerfile:LINE:COL: message` of a refused file.
fn error(text: &str) -> String {
    match parse_str(text, Path::new("Dockerfile")) {
        Ok(d) => panic!("accepted: {:?}", d.stages),
        Err(e) => e.to_string(),
    }
}

fn command(c: &CommandLine) -> String {
    let mut s = match &c.form {
        Form::Exec(v) => format!("{v:?}"),
        Form::Shell(t) => format!("sh:{t:?}"),
    };
    for h in &c.heredocs {
        let _ = write!(
            s,
            " <<{}{}{}={:?}",
            if h.chomp { "-" } else { "" },
            h.name,
            if h.expand { "" } else { "'" },
            h.content
        );
        if h.fd != 0 {
            let _ = write!(s, "@fd{}", h.fd);
        }
    }
    s
}

fn opt(name: &str, v: &Option<String>) -> String {
    v.as_ref().map(|v| format!("--{name}={v:?} ")).unwrap_or_default()
}

fn sources(s: &Sources) -> String {
    let inline: Vec<String> =
        s.inline.iter().map(|f| format!("<<{}{}={:?}", f.name, if f.expand { "" } else { "'" }, f.data)).collect();
    format!("{:?} {} -> {:?}", s.paths, inline.join(" "), s.dest)
}

/// A compact text form of an instruction.
pub fn show(i: &Instruction) -> String {
    let pairs = |p: &Vec<(String, String)>| p.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect::<Vec<_>>().join(" ");
    match i {
        Instruction::From(f) => {
            let platform = f.platform.as_ref().map(|p| format!("--platform={p} ")).unwrap_or_default();
            let name = f.name.as_ref().map(|n| format!(" AS {n}")).unwrap_or_default();
            format!("FROM {platform}{:?}{name}", f.image)
        }
        Instruction::Run(r) => {
            let mut s = String::from("RUN ");
            for m in &r.mounts {
                let _ = write!(s, "--mount={:?}:{} ", m.kind, m.target);
            }
            if let Some(n) = r.network {
                let _ = write!(s, "--network={n:?} ");
            }
            s + &command(&r.command)
        }
        Instruction::Cmd(c) => format!("CMD {}", command(c)),
        Instruction::Entrypoint(c) => format!("ENTRYPOINT {}", command(c)),
        Instruction::Label(p) => format!("LABEL {}", pairs(p)),
        Instruction::Env(p) => format!("ENV {}", pairs(p)),
        Instruction::Maintainer(m) => format!("MAINTAINER {m:?}"),
        Instruction::Expose(p) => format!("EXPOSE {p:?}"),
        Instruction::Arg(d) => {
            let d: Vec<String> = d
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v:?}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            format!("ARG {}", d.join(" "))
        }
        Instruction::Add(a) => format!(
            "ADD {}{}{}{}{}{}{}",
            opt("checksum", &a.checksum),
            opt("chown", &a.chown),
            opt("chmod", &a.chmod),
            if a.link { "--link " } else { "" },
            if a.keep_git_dir { "--keep-git-dir " } else { "" },
            a.exclude.iter().map(|e| format!("--exclude={e:?} ")).collect::<String>(),
            sources(&a.sources)
        ),
        Instruction::Copy(c) => format!(
            "COPY {}{}{}{}{}{}{}",
            opt("from", &c.from),
            opt("chown", &c.chown),
            opt("chmod", &c.chmod),
            if c.link { "--link " } else { "" },
            if c.parents { "--parents " } else { "" },
            c.exclude.iter().map(|e| format!("--exclude={e:?} ")).collect::<String>(),
            sources(&c.sources)
        ),
        Instruction::Volume(v) => format!("VOLUME {v:?}"),
        Instruction::User(u) => format!("USER {u:?}"),
        Instruction::Workdir(w) => format!("WORKDIR {w:?}"),
        Instruction::StopSignal(s) => format!("STOPSIGNAL {s:?}"),
        Instruction::Onbuild(o) => format!("ONBUILD {} [{:?}]", show(&o.trigger), o.expression),
        Instruction::Healthcheck(Health::None) => "HEALTHCHECK NONE".into(),
        Instruction::Healthcheck(Health::Check(c)) => format!(
            "HEALTHCHECK {:?} interval={:?} timeout={:?} start_period={:?} start_interval={:?} retries={:?}",
            c.test, c.interval, c.timeout, c.start_period, c.start_interval, c.retries
        ),
        Instruction::Shell(s) => format!("SHELL {s:?}"),
    }
}

/// Every instruction of a file, in order, shown compactly.
fn list(text: &str) -> Vec<String> {
    let d = parse(text);
    let mut out: Vec<String> = d.meta_args.iter().map(|s| show(&s.instruction)).collect();
    for stage in &d.stages {
        out.push(show(&stage.from.instruction));
        out.extend(stage.instructions.iter().map(|s| show(&s.instruction)));
    }
    out
}

#[test]
fn directives_set_the_escape_and_are_read_only_at_the_top() {
    let d = parse("# syntax=docker/dockerfile:1\n# check=skip=all\n#escape = `\nFROM a\nRUN echo `\n  hi\n");
    assert_eq!(d.directives.escape, '`');
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(list("# escape=`\nFROM a\nRUN echo `\n  hi\n")[1], r#"RUN sh:"echo   hi""#);
    // After a comment, a blank line or an instruction, `# escape=` is a comment.
    for text in ["# hello\n# escape=`\nFROM a\nRUN a \\\n b\n", "\n# escape=`\nFROM a\nRUN a \\\n b\n"] {
        let d = parse(text);
        assert_eq!(d.directives.escape, '\\');
        assert_eq!(show(&d.stages[0].instructions[0].instruction), r#"RUN sh:"a  b""#);
    }
    // An unknown directive ends the directives too.
    assert_eq!(parse("# foo=bar\n# escape=`\nFROM a\n").directives.escape, '\\');
}

#[test]
fn bad_directives_name_their_line() {
    assert!(
        error("# escape=\\\n# escape=`\nFROM a\n").starts_with("Dockerfile:2:1: only one `escape` parser directive")
    );
    assert!(error("# escape=x\nFROM a\n").starts_with("Dockerfile:1:1: invalid escape token \"x\""));
}

#[test]
fn comments_and_continuations_as_buildkit_joins_them() {
    let text = "FROM a\n  # indented comment\nRUN apt-get update && \\\n# a comment inside\n    apt-get install -y \\\n\n      curl\nRUN echo a\\\\\nRUN echo done # not a comment\n";
    assert_eq!(
        list(text),
        [
            r#"FROM "a""#,
            r#"RUN sh:"apt-get update &&     apt-get install -y       curl""#,
            r#"RUN sh:"echo a\\\\""#,
            r#"RUN sh:"echo done # not a comment""#,
        ]
    );
    let d = parse(text);
    assert_eq!(d.warnings.len(), 1, "the empty continuation line is kept as a warning");
    assert_eq!(d.warnings[0].pos.line, 3);
    let run = &d.stages[0].instructions[0];
    assert_eq!((run.pos.line, run.pos.col, run.end_line), (3, 1, 7));
}

#[test]
fn continuation_at_end_of_file_and_a_lone_backslash_line() {
    assert_eq!(list("FROM a\nRUN a \\\n"), [r#"FROM "a""#, r#"RUN sh:"a""#]);
    assert_eq!(list("FROM a\nRUN a \\\n\\\n b\n"), [r#"FROM "a""#, r#"RUN sh:"a  b""#]);
}

#[test]
fn crlf_bom_and_case_insensitive_instructions() {
    assert_eq!(
        list("\u{feff}from  busybox  as  Build\r\nrun echo hi\r\nCmd [\"sh\"]\r\n"),
        [r#"FROM "busybox" AS build"#, r#"RUN sh:"echo hi""#, r#"CMD ["sh"]"#]
    );
}

#[test]
fn exec_and_shell_forms_and_the_json_fallback() {
    assert_eq!(
        list(
            "FROM a\nCMD [\"a\", \"b c\"]\nCMD [a, b]\nCMD ['a']\nENTRYPOINT []\nCMD [\"x\"] trailing\nRUN [ \"echo\" , \"\\u00e9\" ]\nCMD [\"unterminated\"\n"
        ),
        [
            r#"FROM "a""#,
            r#"CMD ["a", "b c"]"#,
            r#"CMD sh:"[a, b]""#,
            r#"CMD sh:"['a']""#,
            r#"ENTRYPOINT []"#,
            r#"CMD ["x"]"#,
            r#"RUN ["echo", "é"]"#,
            r#"CMD sh:"[\"unterminated\"""#,
        ]
    );
    assert!(error("FROM a\nCMD [\"a\", 1]\n").starts_with("Dockerfile:2:5: a JSON array must hold only strings"));
}

#[test]
fn heredocs() {
    let text = "FROM a\nRUN <<EOF\necho hi\n  EOF\nEOF\nRUN <<-EOT bash\n\techo tab\n\tEOT\nRUN <<'EOF'\necho $HOME\nEOF\nRUN cat <<A <<\"B\" > /x\na\nA\nb\nB\nRUN 3<<EOF cat /dev/fd/3\nx\nEOF\nRUN [\"echo\", \"<<EOF\"]\nRUN echo \"<<EOF\"\n";
    assert_eq!(
        list(text),
        [
            r#"FROM "a""#,
            r#"RUN sh:"<<EOF" <<EOF="echo hi\n  EOF\n""#,
            r#"RUN sh:"<<-EOT bash" <<-EOT="\techo tab\n""#,
            r#"RUN sh:"<<'EOF'" <<EOF'="echo $HOME\n""#,
            r#"RUN sh:"cat <<A <<\"B\" > /x" <<A="a\n" <<B'="b\n""#,
            r#"RUN sh:"3<<EOF cat /dev/fd/3" <<EOF="x\n"@fd3"#,
            r#"RUN ["echo", "<<EOF"]"#,
            r#"RUN sh:"echo \"<<EOF\"""#,
        ]
    );
}

#[test]
fn heredoc_files_for_copy_and_add_and_onbuild() {
    let text = "FROM a\nCOPY <<EOF /etc/motd\nhello $USER\nEOF\nCOPY <<-A <<'B' /dst/\n\tone\n\tA\ntwo\nB\nONBUILD RUN <<EOF\necho later\nEOF\n";
    assert_eq!(
        list(text),
        [
            r#"FROM "a""#,
            r#"COPY [] <<EOF="hello $USER\n" -> "/etc/motd""#,
            r#"COPY [] <<A="one\n" <<B'="two\n" -> "/dst/""#,
            r#"ONBUILD RUN sh:"<<EOF" <<EOF="echo later\n" ["RUN <<EOF\necho later\nEOF"]"#,
        ]
    );
    assert!(error("FROM a\nRUN <<EOF\necho\n").starts_with("Dockerfile:2:1: unterminated heredoc"));
    assert!(error("FROM a\nCOPY x <<EOF\nEOF\n").contains("COPY cannot take a heredoc as its destination"));
}

#[test]
fn env_label_arg_in_both_forms() {
    assert_eq!(
        list(
            "ARG A B=2 \"C\"=3\nFROM a\nENV X=1 Y=\"two words\" Z=a\\ b\nENV OLD  value with  spaces\nLABEL \"com.example\"=\"v\" k=v\nLABEL old style\nMAINTAINER Jane <j@example.com>\nENV E=\n"
        ),
        [
            r#"ARG A B="2" "C"="3""#,
            r#"FROM "a""#,
            r#"ENV "X"="1" "Y"="\"two words\"" "Z"="a\\ b""#,
            r#"ENV "OLD"="value with  spaces""#,
            r#"LABEL "\"com.example\""="\"v\"" "k"="v""#,
            r#"LABEL "old"="style""#,
            r#"MAINTAINER "Jane <j@example.com>""#,
            r#"ENV "E"="""#,
        ]
    );
    assert!(error("FROM a\nENV X=1 Y\n").starts_with("Dockerfile:2:5: ENV: no '=' in \"Y\""));
    assert!(error("FROM a\nENV X\n").starts_with("Dockerfile:2:5: ENV X has no value"));
    assert!(error("FROM a\nARG =x\n").starts_with("Dockerfile:2:5: ARG names can not be blank"));
}

#[test]
fn expose_volume_user_workdir_stopsignal() {
    assert_eq!(
        list(
            "FROM a\nEXPOSE 8080 53/udp 80 7000-7010/tcp\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /a /b\nUSER app:app\nWORKDIR /srv/app\nSTOPSIGNAL SIGQUIT\n"
        ),
        [
            r#"FROM "a""#,
            r#"EXPOSE ["53/udp", "7000-7010/tcp", "80", "8080"]"#,
            r#"VOLUME ["/data", "/logs"]"#,
            r#"VOLUME ["/a", "/b"]"#,
            r#"USER "app:app""#,
            r#"WORKDIR "/srv/app""#,
            r#"STOPSIGNAL "SIGQUIT""#,
        ]
    );
    assert!(error("FROM a\nVOLUME [\"\"]\n").starts_with("Dockerfile:2:8: VOLUME paths can not be empty"));
    assert!(error("FROM a\nUSER\n").starts_with("Dockerfile:2:1: USER needs exactly one argument"));
}

#[test]
fn copy_and_add_flags() {
    assert_eq!(
        list(
            "FROM a\nCOPY --from=build --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x src/ ./lib /app/\nADD --checksum=sha256:abc --keep-git-dir=true --link=false https://example.com/x.tgz /x\nCOPY [\"a b\", \"/c d/\"]\n"
        ),
        [
            r#"FROM "a""#,
            r#"COPY --from="build" --chown="1:2" --chmod="0755" --link --parents --exclude="*.md" --exclude="x" ["src/", "./lib"]  -> "/app/""#,
            r#"ADD --checksum="sha256:abc" --keep-git-dir ["https://example.com/x.tgz"]  -> "/x""#,
            r#"COPY ["a b"]  -> "/c d/""#,
        ]
    );
    assert!(
        error("FROM a\nCOPY --form=x a b\n")
            .starts_with("Dockerfile:2:6: unknown flag --form for COPY; COPY takes --from,")
    );
    assert!(error("FROM a\nCOPY --from a b\n").starts_with("Dockerfile:2:6: --from needs a value"));
    assert!(error("FROM a\nCOPY --link=maybe a b\n").contains("expected a boolean value"));
    assert!(error("FROM a\nCOPY --from=x --from=y a b\n").starts_with("Dockerfile:2:15: --from is given twice"));
    assert!(
        error("ARG IMG=x\nFROM a\nCOPY --from=$IMG a b\n")
            .starts_with("Dockerfile:3:6: from=$IMG: variables are not substituted in `from`")
    );
    assert!(
        error("FROM a\nRUN --mount=from=${X},target=/x make\n").contains("variables are not substituted in `from`")
    );
    assert!(error("FROM a\nCOPY onlyone\n").starts_with("Dockerfile:2:1: COPY needs a source and a destination"));
    assert!(
        error("FROM a\nENV --x=1 A=b\n").starts_with("Dockerfile:2:5: unknown flag --x for ENV; ENV takes no flags")
    );
}

#[test]
fn run_mounts_and_network() {
    assert_eq!(
        list(
            "FROM a\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    --mount=type=bind,from=build,source=/out,target=/in \\\n    --network=none make\n"
        ),
        [r#"FROM "a""#, r#"RUN --mount=Cache:/var/cache/apt --mount=Bind:/in --network=None sh:"make""#]
    );
    // The flag's position is found on its own continuation line.
    assert!(
        error("FROM a\nRUN --mount=type=cache,target=/x \\\n  --bogus=1 echo\n")
            .starts_with("Dockerfile:3:3: unknown flag --bogus for RUN; RUN takes --mount, --network")
    );
    assert!(
        error("FROM a\nRUN --network=bridge x\n")
            .starts_with("Dockerfile:2:5: --network=bridge: expected default, none or host")
    );
    assert!(error("FROM a\nRUN --mount=type=cache x\n").contains("add target=/PATH"));
    assert!(error("FROM a\nRUN\n").starts_with("Dockerfile:2:1: RUN needs a command"));
}

#[test]
fn healthcheck_and_shell() {
    assert_eq!(
        list(
            "FROM a\nHEALTHCHECK NONE\nHEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0 --start-interval=2s --retries=3 CMD curl -f http://localhost/\nHEALTHCHECK cmd [\"/bin/check\", \"-q\"]\nSHELL [\"/bin/bash\", \"-euo\", \"pipefail\", \"-c\"]\n"
        ),
        [
            r#"FROM "a""#,
            "HEALTHCHECK NONE",
            r#"HEALTHCHECK ["CMD-SHELL", "curl -f http://localhost/"] interval=Some(90s) timeout=Some(500ms) start_period=None start_interval=Some(2s) retries=Some(3)"#,
            r#"HEALTHCHECK ["CMD", "/bin/check", "-q"] interval=None timeout=None start_period=None start_interval=None retries=None"#,
            r#"SHELL ["/bin/bash", "-euo", "pipefail", "-c"]"#,
        ]
    );
    assert!(
        error("FROM a\nHEALTHCHECK --interval=5 CMD x\n")
            .starts_with("Dockerfile:2:13: --interval=5: invalid duration")
    );
    assert!(error("FROM a\nHEALTHCHECK --timeout=1us CMD x\n").contains("shorter than the minimum of 1ms"));
    assert!(error("FROM a\nHEALTHCHECK --retries=-1 CMD x\n").contains("--retries=-1: expected a whole number"));
    assert!(error("FROM a\nHEALTHCHECK EXEC x\n").starts_with("Dockerfile:2:13: unknown HEALTHCHECK type \"EXEC\""));
    assert!(error("FROM a\nHEALTHCHECK NONE x\n").contains("HEALTHCHECK NONE takes no arguments"));
    assert!(error("FROM a\nHEALTHCHECK CMD\n").contains("needs a command after CMD"));
    assert!(error("FROM a\nSHELL /bin/sh -c\n").starts_with("Dockerfile:2:7: SHELL takes only the JSON form"));
}

#[test]
fn onbuild_parses_its_trigger() {
    assert_eq!(
        list("FROM a\nONBUILD COPY . /src\nonbuild run make\n"),
        [r#"FROM "a""#, r#"ONBUILD COPY ["."]  -> "/src" ["COPY . /src"]"#, r#"ONBUILD RUN sh:"make" ["run make"]"#]
    );
    assert!(
        error("FROM a\nONBUILD ONBUILD RUN x\n")
            .starts_with("Dockerfile:2:9: ONBUILD isn't allowed as an ONBUILD trigger")
    );
    assert!(error("FROM a\nONBUILD FROM b\n").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(
        error("FROM a\nONBUILD COPY --bogus=1 a b\n").starts_with("Dockerfile:2:14: unknown flag --bogus for COPY")
    );
}

#[test]
fn stages_and_meta_args() {
    let d = parse(
        "ARG V=1\n\nFROM --platform=$BUILDPLATFORM golang:${V} AS Build\nRUN x\nFROM scratch\nCOPY --from=build /a /b\n",
    );
    assert_eq!(d.meta_args.len(), 1);
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].name(), Some("build"));
    assert_eq!(show(&d.stages[0].from.instruction), r#"FROM --platform=$BUILDPLATFORM "golang:${V}" AS build"#);
    assert_eq!(d.stages[1].name(), None);
}

#[test]
fn structural_errors_name_the_place() {
    assert!(
        error("RUN x\nFROM a\n")
            .starts_with("Dockerfile:1:1: RUN comes before the first FROM; only ARG may stand before FROM")
    );
    assert!(error("# only a comment\nARG X\n").starts_with("Dockerfile:2:1: the Dockerfile has no FROM"));
    assert!(error("FROM a AS x\nFROM b AS X\n").starts_with("Dockerfile:2:1: duplicate stage name \"x\": line 1"));
    assert!(error("FROM a AS 1st\n").starts_with("Dockerfile:1:11: invalid stage name \"1st\""));
    assert!(error("FROM a b\n").starts_with("Dockerfile:1:1: FROM takes one or three arguments"));
    assert!(error("FROM a\n  RUNN make\n").starts_with("Dockerfile:2:3: unknown instruction RUNN (did you mean RUN?)"));
    assert!(error("FROM a\nFETCH x\n").contains("unknown instruction FETCH; Dockerfiles know FROM, RUN,"));
}

#[test]
fn unicode_counts_columns_in_characters() {
    assert_eq!(
        list("FROM a\nLABEL \"clé\"=\"värde ☃\"\nRUN echo 'naïve ☃'\n"),
        [r#"FROM "a""#, r#"LABEL "\"clé\""="\"värde ☃\"""#, r#"RUN sh:"echo 'naïve ☃'""#]
    );
    assert!(error("FROM a\nLABEL é=1 ☃\n").starts_with("Dockerfile:2:7: LABEL: no '=' in \"☃\""));
    assert!(error("FROM a\n☃ x\n").starts_with("Dockerfile:2:1: unknown instruction ☃"));
}

/// BuildKit's own heredoc expectations (name, fd, expansion, tab stripping, body).
#[test]
fn heredocs_as_buildkit_extracts_them() {
    let text = "FROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nRUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN \"<<NOHEREDOC\"\n\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\nRUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\nRUN <<COMMENT\n# internal comment\necho foo bar # trailing comment\nCOMMENT\n\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\nRUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n\nCOPY <<file.txt /dest\nhello world\nfile.txt\n\nRUN <<eo'f'\necho foo\neof\n\nRUN <<eo\\'f\necho foo\neo'f\n\nRUN <<'e'o\\'f\necho foo\neo'f\n\nRUN <<'one two'\necho bar\none two\n\nRUN <<$EOF\n$EOF\n\nRUN <<  EOF\nEOF\n\nRUN <<  EOF  > foo\nEOF\n\nRUN << -EOF\n-EOF\n\nRUN [\"<<EOF\"]\n";
    let d = parse(text);
    let docs: Vec<String> = d.stages[0]
        .instructions
        .iter()
        .map(|s| match &s.instruction {
            Instruction::Run(r) => command(&r.command).split_once(" <<").map_or("-".into(), |(_, h)| format!("<<{h}")),
            Instruction::Copy(c) => sources(&c.sources),
            other => show(other),
        })
        .collect();
    assert_eq!(
        docs,
        [
            r#"ENV "NAME"="me""#,
            "-",
            r#"<<EMPTY="""#,
            r#"<<EMPTY2=""@fd3"#,
            "-",
            r#"<<INDENT="\tfoo\n\tbar\n""#,
            r#"<<-UNINDENT="\tbaz\n\tquux\n""#,
            r#"<<-UNINDENT2="\tbaz\n\tquux\n""#,
            r#"<<-NOEXPAND'="\tdon't expand $NAME\n""#,
            r##"<<COMMENT="# internal comment\necho foo bar # trailing comment\n""##,
            r#"<<MOUNT="echo hello\n""#,
            r#"[] <<X="Y\n" <<Y="X\n" -> "/dest""#,
            r#"<<COMPLEX="print('hello world')\n""#,
            r#"[] <<file.txt="hello world\n" -> "/dest""#,
            r#"<<eof'="echo foo\n""#,
            r#"<<eo'f="echo foo\n""#,
            r#"<<eo'f'="echo foo\n""#,
            r#"<<one two'="echo bar\n""#,
            r#"<<$EOF="""#,
            r#"<<EOF="""#,
            r#"<<EOF="""#,
            r#"<<-EOF="""#,
            "-",
        ]
    );
}

/// BuildKit warns once per instruction with blank lines inside its continuation; comments are fine.
#[test]
fn empty_continuation_lines_warn_as_buildkit_does() {
    let text = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
    let d = parse(text);
    let w: Vec<(usize, &str)> = d.warnings.iter().map(|w| (w.pos.line, w.message.as_str())).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].0, 7);
    assert!(w[0].1.contains("empty continuation line found in: RUN something     following     more"));
    assert!(w[1].1.contains("RUN another     thing"));
    assert_eq!(list(text)[4..], [r#"RUN sh:"non-indented    after-comment""#, r#"RUN sh:"indented     comment""#]);
}

/// BuildKit's argument-count rules: every instruction says what it needs.
#[test]
fn instructions_without_their_arguments() {
    for (text, want) in [
        ("MAINTAINER", "MAINTAINER needs exactly one argument"),
        ("WORKDIR", "WORKDIR needs exactly one argument"),
        ("USER", "USER needs exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL needs exactly one argument"),
        ("ENV", "ENV needs at least one argument"),
        ("LABEL", "LABEL needs at least one argument"),
        ("ARG", "ARG needs at least one argument"),
        ("ONBUILD", "ONBUILD needs an instruction"),
        ("HEALTHCHECK", "HEALTHCHECK needs NONE or CMD"),
        ("EXPOSE", "EXPOSE needs at least one port"),
        ("VOLUME", "VOLUME needs at least one path"),
        ("ADD arg1", "ADD needs a source and a destination"),
        ("COPY\t\n", "COPY needs a source and a destination"),
        ("CMD", "CMD needs a command"),
        ("ENTRYPOINT", "ENTRYPOINT needs a command"),
        ("SHELL []", "SHELL needs at least one argument"),
        ("MAINTAINER --boo joe@example.com", "unknown flag --boo for MAINTAINER"),
    ] {
        let err = error(&format!("FROM a\n{text}\n"));
        assert!(err.starts_with("Dockerfile:2:") && err.contains(want), "{text}: {err}");
    }
    // USER takes the rest of the line as one argument, as Docker does.
    assert_eq!(list("FROM a\nUSER a b\n")[1], r#"USER "a b""#);
    assert_eq!(list("FROM a AS STAGE_Name.1\n")[0], r#"FROM "a" AS stage_name.1"#);
}

/// Tabs separate words like spaces; a tab before a continuation stays.
#[test]
fn tabs_as_separators() {
    assert_eq!(
        list(
            "FROM\tubuntu:14.04\nLABEL\tmaintainer\tJane Doe <jd@example.com> (@jd)\nENV\tPLATFORMS\t\\\n\tlinux/386 linux/arm \\\n\tdarwin/amd64\nRUN\tapt-get install -yq \\\n\tcurl \\\n\t--no-install-recommends\nENTRYPOINT\t[\"hack/dind\"]\nCOPY\t.\t/go/src\n"
        ),
        [
            r#"FROM "ubuntu:14.04""#,
            r#"LABEL "maintainer"="Jane Doe <jd@example.com> (@jd)""#,
            r#"ENV "PLATFORMS"="linux/386 linux/arm \tdarwin/amd64""#,
            r#"RUN sh:"apt-get install -yq \tcurl \t--no-install-recommends""#,
            r#"ENTRYPOINT ["hack/dind"]"#,
            r#"COPY ["."]  -> "/go/src""#,
        ]
    );
}

/// Odd input never panics: every mix of tricky pieces either parses or is an error.
#[test]
fn no_input_panics() {
    let pieces = [
        "FROM a",
        "FROM a AS b",
        "RUN",
        "COPY",
        "ADD",
        "ENV",
        "ARG",
        "LABEL",
        "ONBUILD",
        "HEALTHCHECK",
        "CMD",
        "SHELL",
        "EXPOSE",
        "WORKDIR",
        "\\",
        "`",
        "#",
        "# escape=`",
        "<<",
        "<<-",
        "EOF",
        "\"",
        "'",
        "[",
        "]",
        "[\"a\"]",
        "$",
        "${",
        "}",
        ":-",
        "=",
        " ",
        "\t",
        "\n",
        "\r\n",
        "é",
        "☃",
        "--",
        "--mount=",
        "--from=",
        ",",
        "-",
        "3<<E",
    ];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let len = 1 + next(14);
        let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
        if let Ok(d) = parse_str(&text, Path::new("Dockerfile")) {
            let _ = super::expand(&d, &super::Options::default());
        }
    }
}

/// A small repeatable generator for the no-panic tests: `next(n)` is in
/// `0..n` (xorshift64).
pub(super) fn xorshift(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}
