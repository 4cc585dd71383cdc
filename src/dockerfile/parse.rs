//! Logical lines to typed instructions, as BuildKit's `instructions/parse.go`
//! types them: each instruction's argument rules, its flags, exec and shell
//! forms, heredoc sources. Unknown instructions and flags are errors.

use super::error::{Located, Pos};
use super::flags::{Flags, Kind};
use super::health;
use super::instruction::*;
use super::lexer::{self, Heredoc, Logical};
use super::mount;
use super::shell::Lex;
use super::words::{self, Json, Piece};

/// Every instruction name, for "did you mean".
pub const NAMES: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ARG",
    "ADD",
    "COPY",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Where one instruction's text starts inside its logical line.
struct At<'a> {
    line: &'a Logical,
    base: usize,
    escape: char,
}

impl At<'_> {
    fn pos(&self, offset: usize) -> Pos {
        self.line.pos(self.base + offset)
    }
}

/// Parses one logical line.
pub fn parse_line(line: &Logical, escape: char) -> Result<Spanned, Located> {
    let at = At { line, base: 0, escape };
    let split = words::split_command(&line.text);
    let instruction = parse_at(&at, &line.text)?;
    Ok(Spanned {
        pos: line.pos(split.command_offset),
        end_line: line.end_line,
        original: line.text.trim().to_owned(),
        instruction,
    })
}

fn parse_at(at: &At<'_>, text: &str) -> Result<Instruction, Located> {
    let split = words::split_command(text);
    let kw = at.pos(split.command_offset);
    let flags = Flags::new(split.flags.iter().map(|p| (p.text.clone(), at.pos(p.offset))));
    let args = &split.args.text;
    let args_pos = at.pos(split.args.offset);
    let name = split.command.to_ascii_uppercase();
    let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(Located::new(kw, format!("{name} {what}"))) };
    let no_flags = || flags.check(&name, &[]).map(|_| ());
    Ok(match name.as_str() {
        "FROM" => {
            let f = flags.check(&name, &[("platform", Kind::String)])?;
            let w = words::blank_words(args);
            let stage = match w.as_slice() {
                [_] => None,
                [_, as_, n] if as_.text.eq_ignore_ascii_case("as") => {
                    Some(stage_name(n, at.pos(split.args.offset + n.offset))?)
                }
                _ => return Err(Located::new(kw, "FROM takes one or three arguments: FROM IMAGE [AS NAME]")),
            };
            Instruction::From(FromImage { platform: f.value("platform"), image: w[0].text.clone(), name: stage })
        }
        "RUN" => {
            let f = flags.check(&name, &[("mount", Kind::List), ("network", Kind::String)])?;
            let mut mounts = Vec::new();
            for (v, p) in f.list("mount") {
                let m = mount::parse(&v, p)?;
                if let Some(from) = &m.from {
                    literal_from(from, p, at.escape)?;
                }
                mounts.push(m);
            }
            let network = match f.string("network") {
                None => None,
                Some((v, p)) => Some(match v.as_str() {
                    "default" => Network::Default,
                    "none" => Network::None,
                    "host" => Network::Host,
                    _ => return Err(Located::new(p, format!("--network={v}: expected default, none or host"))),
                }),
            };
            let command = command_line(&name, args, args_pos, kw, &at.line.heredocs)?;
            Instruction::Run(Run { command, mounts, network })
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags()?;
            let c = command_line(&name, args, args_pos, kw, &[])?;
            if name == "CMD" { Instruction::Cmd(c) } else { Instruction::Entrypoint(c) }
        }
        "LABEL" | "ENV" => {
            no_flags()?;
            let pairs = pairs(&name, args, args_pos, kw, at)?;
            if name == "ENV" { Instruction::Env(pairs) } else { Instruction::Label(pairs) }
        }
        "MAINTAINER" => {
            no_flags()?;
            need(!args.is_empty(), "needs exactly one argument: MAINTAINER NAME")?;
            Instruction::Maintainer(args.clone())
        }
        "EXPOSE" => {
            no_flags()?;
            let mut ports: Vec<String> = words::blank_words(args).into_iter().map(|p| p.text).collect();
            need(!ports.is_empty(), "needs at least one port: EXPOSE PORT[/PROTO]…")?;
            ports.sort();
            Instruction::Expose(ports)
        }
        "ARG" => {
            no_flags()?;
            let w = words::quoted_words(args, at.escape);
            need(!w.is_empty(), "needs at least one argument: ARG NAME[=DEFAULT]…")?;
            let mut decls = Vec::new();
            for p in w {
                let decl = match p.text.split_once('=') {
                    Some(("", _)) => {
                        return Err(Located::new(at.pos(split.args.offset + p.offset), "ARG names can not be blank"));
                    }
                    Some((k, v)) => ArgDecl { name: k.to_owned(), default: Some(v.to_owned()) },
                    None => ArgDecl { name: p.text, default: None },
                };
                decls.push(decl);
            }
            Instruction::Arg(decls)
        }
        "ADD" => {
            let f = flags.check(
                &name,
                &[
                    ("chown", Kind::String),
                    ("chmod", Kind::String),
                    ("link", Kind::Bool),
                    ("keep-git-dir", Kind::Bool),
                    ("checksum", Kind::String),
                    ("exclude", Kind::List),
                ],
            )?;
            Instruction::Add(Add {
                sources: sources(&name, args, args_pos, kw, &at.line.heredocs)?,
                checksum: f.value("checksum"),
                chown: f.value("chown"),
                chmod: f.value("chmod"),
                link: f.bool("link"),
                keep_git_dir: f.bool("keep-git-dir"),
                exclude: f.list("exclude").into_iter().map(|(v, _)| v).collect(),
            })
        }
        "COPY" => {
            let f = flags.check(
                &name,
                &[
                    ("from", Kind::String),
                    ("chown", Kind::String),
                    ("chmod", Kind::String),
                    ("link", Kind::Bool),
                    ("parents", Kind::Bool),
                    ("exclude", Kind::List),
                ],
            )?;
            let from = f.string("from").map(|(v, p)| literal_from(&v, p, at.escape)).transpose()?;
            Instruction::Copy(Copy {
                sources: sources(&name, args, args_pos, kw, &at.line.heredocs)?,
                from,
                chown: f.value("chown"),
                chmod: f.value("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                exclude: f.list("exclude").into_iter().map(|(v, _)| v).collect(),
            })
        }
        "VOLUME" => {
            no_flags()?;
            let list = json_or_words(args, args_pos)?;
            need(!list.is_empty(), "needs at least one path: VOLUME PATH… or VOLUME [\"PATH\", …]")?;
            let mut out = Vec::new();
            for v in list {
                let v = v.trim();
                if v.is_empty() {
                    return Err(Located::new(args_pos, "VOLUME paths can not be empty strings"));
                }
                out.push(v.to_owned());
            }
            Instruction::Volume(out)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            no_flags()?;
            need(!args.is_empty(), "needs exactly one argument")?;
            match name.as_str() {
                "USER" => Instruction::User(args.clone()),
                "WORKDIR" => Instruction::Workdir(args.clone()),
                _ => Instruction::StopSignal(args.clone()),
            }
        }
        "ONBUILD" => {
            no_flags()?;
            need(!args.is_empty(), "needs an instruction: ONBUILD INSTRUCTION")?;
            let inner = words::split_command(args).command.to_ascii_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(Located::new(args_pos, format!("{inner} isn't allowed as an ONBUILD trigger")));
            }
            let inner_at = At { line: at.line, base: at.base + split.args.offset, escape: at.escape };
            let trigger = parse_at(&inner_at, args)?;
            let mut expression = args.clone();
            for doc in &at.line.heredocs {
                expression.push('\n');
                expression.push_str(&doc.content);
                expression.push_str(&doc.name);
            }
            Instruction::Onbuild(Onbuild { expression, trigger: Box::new(trigger) })
        }
        "HEALTHCHECK" => health::parse(&flags, args, args_pos, kw)?,
        "SHELL" => {
            no_flags()?;
            match words::json_array(args) {
                Json::Array(v) if !v.is_empty() => Instruction::Shell(v),
                Json::Array(_) => return Err(Located::new(args_pos, "SHELL needs at least one argument")),
                Json::NotStrings => return Err(not_strings(args_pos)),
                Json::NotJson => {
                    return Err(Located::new(
                        args_pos,
                        "SHELL takes only the JSON form; write SHELL [\"executable\", \"parameters\"]",
                    ));
                }
            }
        }
        _ => {
            let suggestion = NAMES
                .iter()
                .map(|n| (strsim::damerau_levenshtein(&name, n), n))
                .filter(|(d, n)| *d <= (n.len() / 3).max(1))
                .min_by_key(|(d, _)| *d)
                .map(|(_, n)| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            return Err(Located::new(
                kw,
                format!("unknown instruction {}{suggestion}; Dockerfiles know {}", split.command, NAMES.join(", ")),
            ));
        }
    })
}

/// `--from` names a stage or an image literally: BuildKit substitutes no
/// variables there (a stage's args would break the order between stages).
fn literal_from(value: &str, pos: Pos, escape: char) -> Result<String, Located> {
    let unset = |_: &str| None;
    let processed = Lex::new(escape).word(value, &unset).map_err(|e| Located::new(pos, e))?;
    if processed != value {
        return Err(Located::new(
            pos,
            format!(
                "from={value}: variables are not substituted in `from`; define a stage with `ARG` before the \
                 first FROM and `FROM ${{ARG}} AS name`, then use from=name"
            ),
        ));
    }
    Ok(processed)
}

/// The error for a JSON array holding something other than strings.
pub(super) fn not_strings(pos: Pos) -> Located {
    Located::new(pos, "a JSON array must hold only strings; quote every element, as in [\"a\", \"b\"]")
}

fn stage_name(p: &Piece, pos: Pos) -> Result<String, Located> {
    let n = p.text.to_ascii_lowercase();
    let mut chars = n.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Located::new(
            pos,
            format!(
                "invalid stage name {:?}: it must start with a letter and hold only letters, digits, '-', '_' and '.'",
                p.text
            ),
        ));
    }
    Ok(n)
}

fn command_line(name: &str, args: &str, pos: Pos, kw: Pos, heredocs: &[Heredoc]) -> Result<CommandLine, Located> {
    let form = match words::json_array(args) {
        Json::Array(v) => Form::Exec(v),
        Json::NotStrings => return Err(not_strings(pos)),
        Json::NotJson if args.is_empty() => {
            return Err(Located::new(
                kw,
                format!("{name} needs a command; write {name} [\"executable\", \"arg\"] or {name} command"),
            ));
        }
        Json::NotJson => Form::Shell(args.to_owned()),
    };
    Ok(CommandLine { form, heredocs: heredocs.to_vec() })
}

/// `KEY=VALUE …` or the old `KEY VALUE` (ENV, LABEL).
fn pairs(name: &str, args: &str, pos: Pos, kw: Pos, at: &At<'_>) -> Result<Vec<(String, String)>, Located> {
    let w = words::quoted_words(args, at.escape);
    let Some(first) = w.first() else {
        return Err(Located::new(kw, format!("{name} needs at least one argument: {name} KEY=VALUE …")));
    };
    if !first.text.contains('=') {
        let Some(i) = args.find(words::is_blank) else {
            return Err(Located::new(pos, format!("{name} {args} has no value; write {name} {args}=VALUE")));
        };
        let value = args[i..].trim_start_matches(words::is_blank);
        return Ok(vec![(args[..i].to_owned(), value.to_owned())]);
    }
    let mut out = Vec::new();
    for p in w {
        let Some((k, v)) = p.text.split_once('=') else {
            return Err(Located::new(
                pos,
                format!("{name}: no '=' in {:?}; write {name} KEY=VALUE (quote values with spaces)", p.text),
            ));
        };
        if k.is_empty() {
            return Err(Located::new(pos, format!("{name} names can not be blank")));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// The JSON form or whitespace-separated words (ADD, COPY, VOLUME).
fn json_or_words(args: &str, pos: Pos) -> Result<Vec<String>, Located> {
    match words::json_array(args) {
        Json::Array(v) => Ok(v),
        Json::NotStrings => Err(not_strings(pos)),
        Json::NotJson => Ok(words::blank_words(args).into_iter().map(|p| p.text).collect()),
    }
}

fn sources(name: &str, args: &str, pos: Pos, kw: Pos, heredocs: &[Heredoc]) -> Result<Sources, Located> {
    let list = json_or_words(args, pos)?;
    let Some((dest, srcs)) = list.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(Located::new(kw, format!("{name} needs a source and a destination: {name} SRC… DEST")));
    };
    if lexer::parse_heredoc(dest).ok().flatten().is_some() {
        return Err(Located::new(pos, format!("{name} cannot take a heredoc as its destination")));
    }
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match lexer::parse_heredoc(src).ok().flatten() {
            Some(doc) => {
                let body = heredocs.iter().find(|h| h.name == doc.name);
                let data = body.map(Heredoc::text).unwrap_or_default();
                inline.push(InlineFile { name: doc.name, data, expand: doc.expand });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok(Sources { paths, inline, dest: dest.clone() })
}
