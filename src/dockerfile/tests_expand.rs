//! Substitution exactly as Docker defines it, ARG/ENV scoping, the build
//! args each RUN sees, and the stages a target needs.

use std::collections::BTreeMap;
use std::path::Path;

use super::env::Vars;
use super::expand::{Base, BaseConfig, Expanded, Options, expand};
use super::instruction::*;
use super::parse_str;
use super::shell::Lex;
use super::tests::show;
use crate::oci::ImageRef;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    let mut v = Vars::default();
    for (k, val) in pairs {
        v.set(k, val);
    }
    v
}

fn sub(text: &str) -> Result<String, String> {
    let env = vars(&[("V", "a/b/c.tar.gz"), ("E", ""), ("W", "one  two"), ("HOME", "/root")]);
    let lookup = env.lookup();
    Lex::new('\\').word(text, &lookup)
}

#[test]
fn substitution_forms() {
    let cases = [
        ("$V", "a/b/c.tar.gz"),
        ("${V}x", "a/b/c.tar.gzx"),
        ("${U:-dflt}", "dflt"),
        ("${E:-dflt}", "dflt"),
        ("${E-dflt}", ""),
        ("${U-dflt}", "dflt"),
        ("${V:+set}", "set"),
        ("${E:+set}", ""),
        ("${E+set}", "set"),
        ("${U+set}", ""),
        ("${U:-$HOME/x}", "/root/x"),
        ("${V#*/}", "b/c.tar.gz"),
        ("${V##*/}", "c.tar.gz"),
        ("${V%.*}", "a/b/c.tar"),
        ("${V%%.*}", "a/b/c"),
        ("${V/b/B}", "a/B/c.tar.gz"),
        ("${V//a/A}", "A/b/c.tAr.gz"),
        ("'$V'", "$V"),
        ("\"$V\"", "a/b/c.tar.gz"),
        ("\"'$V'\"", "'a/b/c.tar.gz'"),
        ("\\$V", "$V"),
        ("\"\\$V \\\" \\x\"", "$V \" \\x"),
        ("$", "$"),
        ("a$ b", "a$ b"),
        ("$1x", "x"),
        ("$U", ""),
        ("\\\\", "\\"),
        ("ünï$V", "ünïa/b/c.tar.gz"),
    ];
    for (input, want) in cases {
        assert_eq!(sub(input).as_deref(), Ok(want), "{input}");
    }
    assert_eq!(sub("${U:?must be set}").unwrap_err(), "failed to process \"${U:?must be set}\": U: must be set");
    assert!(sub("${E:?}").unwrap_err().ends_with("E: is not allowed to be empty"));
    assert_eq!(sub("${E?}").as_deref(), Ok(""));
    assert!(sub("${V").unwrap_err().ends_with("syntax error: missing '}'"));
    assert!(sub("${}").unwrap_err().ends_with("syntax error: bad substitution"));
    assert!(sub("${V!x}").unwrap_err().ends_with("unsupported modifier (!) in substitution"));
    assert!(sub("'open").unwrap_err().contains("matching single-quote"));
}

#[test]
fn words_split_after_substitution_but_not_inside_quotes() {
    let env = vars(&[("W", "one  two")]);
    let lookup = env.lookup();
    let lex = Lex::new('\\');
    assert_eq!(lex.process("$W x", &lookup).unwrap().words, ["one", "two", "x"]);
    assert_eq!(lex.process("\"$W\" x", &lookup).unwrap().words, ["one  two", "x"]);
    let back = Lex::new('`');
    assert_eq!(back.word("`$W \\n", &lookup).unwrap(), "$W \\n");
}

fn build(text: &str, args: &[(&str, &str)], target: Option<&str>) -> Expanded {
    let file = parse_str(text, Path::new("Dockerfile")).unwrap();
    let options = Options {
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        target: target.map(str::to_owned),
        ..Options::default()
    };
    expand(&file, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(text: &str, args: &[(&str, &str)], target: Option<&str>) -> String {
    let file = parse_str(text, Path::new("Dockerfile")).unwrap();
    let options = Options {
        build_args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        target: target.map(str::to_owned),
        ..Options::default()
    };
    expand(&file, &options).map(|_| ()).unwrap_err().to_string()
}

fn steps(e: &Expanded, stage: usize) -> Vec<String> {
    e.stages[stage].steps.iter().map(|s| show(&s.instruction)).collect()
}

#[test]
fn global_args_reach_from_but_stages_only_after_redeclaring() {
    let text = "ARG TAG=1.0\nARG IMG=base:${TAG}\nFROM ${IMG} AS one\nRUN echo\nENV A=${TAG}\nARG TAG\nENV B=${TAG}\n";
    let e = build(text, &[], None);
    assert_eq!(e.stages[0].base, Base::Image("base:1.0".parse().unwrap()));
    assert_eq!(steps(&e, 0)[1], r#"ENV "A"="""#, "a global arg is not visible in a stage before ARG");
    assert_eq!(steps(&e, 0)[3], r#"ENV "B"="1.0""#);
    let e = build(text, &[("TAG", "2.0")], None);
    assert_eq!(e.stages[0].base, Base::Image("base:2.0".parse().unwrap()), "a build arg overrides a global default");
    assert_eq!(steps(&e, 0)[3], r#"ENV "B"="2.0""#);
}

#[test]
fn env_and_arg_in_order_with_docker_precedence() {
    let text = "FROM scratch\nENV A=1\nENV A=2 B=$A\nARG C=x${A}\nARG D\nENV C=env\nRUN make\nLABEL \"k $B\"=\"v ${C}\"\nWORKDIR app\nWORKDIR ../srv/$B\nUSER ${U:-nobody}\nEXPOSE ${P:-80} 53/UDP\nVOLUME $A /x\nSTOPSIGNAL SIG${S:-TERM}\n";
    let e = build(text, &[("D", "fromcli")], None);
    assert_eq!(
        steps(&e, 0),
        [
            r#"ENV "A"="1""#,
            r#"ENV "A"="2" "B"="1""#,
            r#"ARG C="x2""#,
            r#"ARG D="fromcli""#,
            r#"ENV "C"="env""#,
            r#"RUN sh:"make""#,
            r#"LABEL "k 1"="v env""#,
            r#"WORKDIR "/app""#,
            r#"WORKDIR "/srv/1""#,
            r#"USER "nobody""#,
            r#"EXPOSE ["80/tcp", "53/udp"]"#,
            r#"VOLUME ["2", "/x"]"#,
            r#"STOPSIGNAL "SIGTERM""#,
        ]
    );
    let run = &e.stages[0].steps[5];
    assert_eq!(
        run.build_args,
        vars(&[("C", "env"), ("D", "fromcli")]),
        "ENV shows its value for an arg of the same name"
    );
    let path = ("PATH", super::expand::DEFAULT_PATH);
    assert_eq!(run.env, vars(&[path, ("A", "2"), ("B", "1"), ("C", "env"), ("D", "fromcli")]));
    assert_eq!(
        e.stages[0].image_env,
        vars(&[path, ("A", "2"), ("B", "1"), ("C", "env")]),
        "ARG stays out of the image"
    );
    assert_eq!(e.stages[0].workdir, "/srv/1");
}

#[test]
fn a_stage_from_another_starts_with_its_variables_and_the_image_env() {
    let text = "FROM scratch AS base\nARG V=1\nENV E=2\nFROM base\nARG W\nUSER $V:$E:$PATH\nRUN x\n";
    let file = parse_str(text, Path::new("Dockerfile")).unwrap();
    let base_config = |image: &ImageRef| BaseConfig {
        env: vec![("PATH".to_owned(), format!("/{}/bin", image.familiar_name()))],
        workdir: Some("/srv".into()),
        shell: Some(vec!["/bin/bash".into(), "-c".into()]),
        ..BaseConfig::default()
    };
    let options = Options { base_config: &base_config, ..Options::default() };
    let e = expand(&file, &options).unwrap();
    let path = super::expand::DEFAULT_PATH;
    assert_eq!(steps(&e, 1)[1], format!("USER \"1:2:{path}\""));
    assert_eq!(e.stages[1].steps[2].build_args, vars(&[("W", "")]), "only the stage's own ARGs are in the key");
    let e = expand(&parse_str("FROM busybox\nUSER $PATH\n", Path::new("D")).unwrap(), &options).unwrap();
    assert_eq!(steps(&e, 0)[0], r#"USER "/busybox/bin""#, "the base image's env is visible");
    let text = "FROM busybox AS one\nWORKDIR app\nRUN make\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nFROM one\nRUN [\"true\"]\nRUN make\n";
    let e = expand(&parse_str(text, Path::new("D")).unwrap(), &options).unwrap();
    let (one, two) = (&e.stages[0], &e.stages[1]);
    assert_eq!((one.steps[1].workdir.as_str(), one.steps[1].shell.join(" ")), ("/srv/app", "/bin/bash -c".into()));
    let Instruction::Run(r) = &one.steps[1].instruction else { panic!() };
    assert_eq!(r.command.argv(&one.steps[1].shell), ["/bin/bash", "-c", "make"]);
    let argv = |s: &super::expand::Step| match &s.instruction {
        Instruction::Run(r) => r.command.argv(&s.shell),
        _ => panic!(),
    };
    assert_eq!(argv(&two.steps[0]), ["true"]);
    assert_eq!(
        argv(&two.steps[1]),
        ["/bin/ash", "-eo", "pipefail", "-c", "make"],
        "SHELL carries into a stage FROM it"
    );
    assert_eq!(two.workdir, "/srv/app");
}

#[test]
fn run_command_words_are_not_substituted_but_mounts_are() {
    let text = "FROM scratch\nARG CACHE=/cache\nRUN --mount=type=cache,target=$CACHE,id=c-${CACHE} echo $CACHE\nCMD echo $CACHE\nHEALTHCHECK CMD test $CACHE\nONBUILD RUN echo $CACHE\n";
    let e = build(text, &[], None);
    let s = steps(&e, 0);
    assert_eq!(s[1], r#"RUN --mount=Cache:/cache sh:"echo $CACHE""#);
    assert_eq!(s[2], r#"CMD sh:"echo $CACHE""#);
    assert!(s[3].contains("test $CACHE"));
    assert!(s[4].contains("echo $CACHE"));
    let Instruction::Run(r) = &e.stages[0].steps[1].instruction else { panic!() };
    assert_eq!(r.mounts[0].id.as_deref(), Some("c-/cache"));
}

#[test]
fn heredoc_bodies_expand_unless_the_delimiter_is_quoted() {
    let text = "FROM scratch\nENV N=world\nCOPY <<EOF <<'RAW' /x/\nhello \"$N\" \\$N\nEOF\nkeep $N\nRAW\n";
    let e = build(text, &[], None);
    assert_eq!(steps(&e, 0)[1], r#"COPY [] <<EOF="hello \"world\" $N\n" <<RAW'="keep $N\n" -> "/x/""#);
}

#[test]
fn proxy_and_platform_args_and_unused_build_args() {
    let text = "FROM scratch\nARG TARGETARCH\nARG USED\nRUN echo\n";
    let e = build(text, &[("http_proxy", "http://p:3128"), ("USED", "1"), ("NOBODY", "x")], None);
    let run = &e.stages[0].steps[2];
    let arch = run.build_args.get("TARGETARCH").unwrap().to_owned();
    assert!(!arch.is_empty(), "TARGETARCH comes from the platform when re-declared");
    assert_eq!(run.build_args, vars(&[("TARGETARCH", &arch), ("USED", "1")]), "proxies stay out of the cache key");
    assert_eq!(e.proxy_env, vars(&[("http_proxy", "http://p:3128")]));
    assert_eq!(e.unused_build_args, ["NOBODY"]);
}

#[test]
fn substitution_errors_name_the_instruction() {
    let err = refused("FROM scratch\nENV A=1\nUSER ${NAME:?set --build-arg NAME}\n", &[], None);
    assert_eq!(err, "Dockerfile:3:1: failed to process \"${NAME:?set --build-arg NAME}\": NAME: set --build-arg NAME");
    assert!(
        refused("FROM scratch\nEXPOSE 70000\n", &[], None).starts_with("Dockerfile:2:1: bad EXPOSE port \"70000\"")
    );
    assert!(refused("FROM scratch\nEXPOSE 80/icmp\n", &[], None).contains("unknown protocol"));
    for ok in ["SIGTERM", "quit", "9", "SIGRTMIN+3", "rtmax-1", "SIGRTMIN"] {
        build(&format!("FROM scratch\nSTOPSIGNAL {ok}\n"), &[], None);
    }
    for bad in ["SIGFOO", "0", "65", "RTMIN+16", "${S:-}"] {
        let err = refused(&format!("FROM scratch\nSTOPSIGNAL {bad}\n"), &[], None);
        assert!(err.starts_with("Dockerfile:2:1: STOPSIGNAL") && err.contains("no such signal"), "{bad}: {err}");
    }
    assert!(
        refused("ARG B=Debian\nFROM $B\n", &[], None)
            .starts_with("Dockerfile:2:1: FROM $B: bad image reference \"Debian\"")
    );
    let sum = "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d";
    let ok = build(&format!("FROM scratch\nADD --checksum={sum} https://example.com/a.tgz /a\n"), &[], None);
    assert!(steps(&ok, 0)[0].contains(sum));
    let err = refused(&format!("FROM scratch\nADD --checksum={sum} local.tgz /a\n"), &[], None);
    assert!(err.contains("\"local.tgz\" is no http:// or https:// URL"), "{err}");
    assert!(
        refused("FROM scratch\nADD --checksum=md5:x https://e.com/a /a\n", &[], None)
            .contains("ADD --checksum=md5:x: digest")
    );
    assert!(refused("ARG B\nFROM ${B}\n", &[], None).starts_with("Dockerfile:2:1: FROM ${B}: the image name is empty"));
    // A global ARG without a value is empty, not unset, in FROM and when a stage re-declares it.
    let e = build("ARG B\nFROM img${B-unset}\nARG B\nUSER x${B-unset}\n", &[], None);
    assert_eq!(e.stages[0].base, Base::Image("img".parse().unwrap()));
    assert_eq!(steps(&e, 0)[1], r#"USER "x""#);
}

const MULTI: &str = "\
FROM busybox AS deps
RUN fetch
FROM busybox AS tools
RUN build-tools
FROM deps AS build
COPY --from=tools /bin/t /bin/t
RUN --mount=type=bind,from=assets,target=/a make
FROM scratch AS assets
COPY x /x
FROM build AS test
RUN test
FROM scratch AS prod
COPY --from=build /out /out
COPY --from=1 /bin/t /t
COPY --from=registry.example/img:1 /y /y
ARG PORTS=80\\ 443/udp
EXPOSE $PORTS
FROM busybox AS unused
USER ${BROKEN:?never needed}
";

#[test]
fn target_needs_only_its_stages_in_levels() {
    let e = build(MULTI, &[], Some("prod"));
    let order: Vec<usize> = e.stages.iter().map(|s| s.index).collect();
    assert_eq!(order, [0, 1, 3, 2, 5]);
    assert_eq!(e.levels, [vec![0, 1, 3], vec![2], vec![5]], "deps, tools and assets are independent");
    assert_eq!(e.target, 5);
    let last = e.stages.last().unwrap().steps.last().unwrap();
    assert_eq!(show(&last.instruction), r#"EXPOSE ["80/tcp", "443/udp"]"#, "EXPOSE splits words after substitution");
    let e = build(MULTI, &[], Some("TOOLS"));
    assert_eq!(e.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [1]);
    let e = build(MULTI, &[], Some("test"));
    assert_eq!(e.levels, [vec![0, 1, 3], vec![2], vec![4]]);
    assert_eq!(e.stages.last().unwrap().base, Base::Stage(2));
    // Only the needed stages' base images are looked at.
    let asked = std::cell::RefCell::new(Vec::new());
    let base_config = |r: &ImageRef| {
        asked.borrow_mut().push(r.familiar_name());
        BaseConfig::default()
    };
    let file = parse_str(MULTI, Path::new("Dockerfile")).unwrap();
    let options = Options { target: Some("tools".into()), base_config: &base_config, ..Options::default() };
    expand(&file, &options).unwrap();
    assert_eq!(asked.into_inner(), ["busybox"]);
}

#[test]
fn a_needed_broken_stage_cycles_and_unknown_targets_are_errors() {
    assert!(
        refused(MULTI, &[], None).starts_with("Dockerfile:19:1: failed to process"),
        "the last stage is the default target"
    );
    let err =
        refused("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n", &[], Some("a"));
    assert!(err.starts_with("Dockerfile:4:1: circular dependency between stages: a -> b -> a"), "{err}");
    let err = refused(MULTI, &[], Some("prd"));
    assert!(
        err.starts_with("Dockerfile: target stage \"prd\" is not in the Dockerfile; its stages are deps, tools, build"),
        "{err}"
    );
}

/// Variables as name/value pairs.
type Env<'a> = &'a [(&'a str, &'a str)];

/// BuildKit's own expectations for the pattern and default forms.
#[test]
fn substitution_matches_buildkits_cases() {
    let run = |input: &str, env: &[(&str, &str)]| {
        let env = vars(env);
        let lookup = env.lookup();
        Lex::new('\\').word(input, &lookup)
    };
    let ok: &[(&str, Env, &str)] = &[
        ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &[("FOO", "xxx"), ("BAR", "")], "xxx  ccc"),
        ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &[("FOO", "xxx"), ("BAR", "")], "xxx bbb ccc"),
        ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &[("FOO", "xxx"), ("BAR", "")], "aaa bbb "),
        ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &[("FOO", "xxx"), ("BAR", "")], "aaa  "),
        ("${BAR?bbb}", &[("BAR", "")], ""),
        ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", &[("FOO", "()[]{}^$.*?|\\x")], "x"),
        ("${FOO%%\\**}", &[("FOO", "xx**")], "xx"),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], "y"),
        ("${FOO#*}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy"),
        ("${FOO#}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO##*x}", &[("FOO", "xxyy")], "yy"),
        ("${FOO#?\\?}", &[("FOO", "???y")], "?y"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy."),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a"),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            "/tmp/bar.txt - /bar.txt",
        ),
        (
            "${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}",
            &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("R", "/")],
            "/foo/b/c.txt - /foo/c.txt",
        ),
        ("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")], "\\/tmp\\/foo.txt"),
        ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
        ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
        ("${FOO///}", &[], ""),
        ("${VAR:?message here$ARG}", &[("VAR", "plain"), ("ARG", "x")], "plain"),
    ];
    for (input, env, want) in ok {
        assert_eq!(run(input, env).as_deref(), Ok(*want), "{input} with {env:?}");
    }
    let bad: &[(&str, Env)] = &[
        ("${BAZ?ccc}", &[]),
        ("${BAR:?bbb}", &[("BAR", "")]),
        ("${BAZ:?}", &[]),
        ("${FOO=aaa}", &[("FOO", "xxx")]),
        ("${FOO=:aaa}", &[("FOO", "xxx")]),
        ("${FOO=}", &[]),
        ("${FOO//ww}", &[("FOO", "xxyy")]),
        ("${FOO//}", &[("FOO", "xxyy")]),
    ];
    for (input, env) in bad {
        assert!(run(input, env).is_err(), "{input} must fail");
    }
    assert!(run("${VAR:?message here$ARG}", &[("VAR", ""), ("ARG", "x")]).unwrap_err().contains("message herex"));
    assert!(run("${VAR?message here$ARG}", &[("ARG", "x")]).unwrap_err().contains("message herex"));
}

#[test]
fn the_escape_directive_applies_to_substitution() {
    let e = build("# escape=`\nFROM scratch\nENV P=C:\\dir\\x Q=a`$b R=\"`\"q`\"\"\nWORKDIR C:\\\\w\n", &[], None);
    assert_eq!(steps(&e, 0)[0], r#"ENV "P"="C:\\dir\\x" "Q"="a$b" "R"="\"q\"""#);
}

#[test]
fn a_build_arg_spares_the_default_from_substitution() {
    let text = "FROM scratch\nARG X=${UNSET:?required}\nUSER $X\n";
    assert_eq!(steps(&build(text, &[("X", "u")], None), 0)[1], r#"USER "u""#);
    assert!(refused(text, &[], None).contains("UNSET: required"));
}
