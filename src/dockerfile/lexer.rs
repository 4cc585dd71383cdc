//! From text to logical lines, as BuildKit's parser reads a Dockerfile:
//! parser directives at the top, comments, line continuations (which run on
//! across comment lines and blank lines, the latter with a warning) and
//! heredoc bodies after the line that opens them.

use super::error::{Located, Pos, Warning};
use super::shell::Lex;
use super::words::{self, Json};

/// The parser directives of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directives {
    /// `# escape=`: `\` (the default) or `` ` ``.
    pub escape: char,
    /// `# syntax=`: accepted and ignored (berth has one frontend).
    pub syntax: Option<String>,
    /// `# check=`: accepted and ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', syntax: None, check: None }
    }
}

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
    /// False when the delimiter was quoted: no variable expansion in the body.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body's lines.
    pub chomp: bool,
    /// The body, every line with its newline.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs stripped when `<<-` asked for it.
    pub fn text(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
    }
}

/// One instruction's text, continuations joined.
#[derive(Debug, Clone)]
pub struct Logical {
    pub text: String,
    /// (offset in `text`, position of that byte in the file), ascending.
    map: Vec<(usize, Pos)>,
    pub start_line: usize,
    pub end_line: usize,
    pub heredocs: Vec<Heredoc>,
}

impl Logical {
    /// The file position of byte `offset` of `text`.
    pub fn pos(&self, offset: usize) -> Pos {
        let i = self.map.partition_point(|(o, _)| *o <= offset).saturating_sub(1);
        let (start, p) = self.map.get(i).copied().unwrap_or((0, Pos::new(self.start_line, 1)));
        let chars = self.text.get(start..offset.min(self.text.len())).map_or(0, |s| s.chars().count());
        Pos::new(p.line, p.col + chars)
    }

    fn push(&mut self, piece: &str, at: Pos) {
        self.map.push((self.text.len(), at));
        self.text.push_str(piece);
    }
}

/// The lexer's output.
pub struct Lexed {
    pub directives: Directives,
    pub lines: Vec<Logical>,
    pub warnings: Vec<Warning>,
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips the continuation character at the end (`\` or the escape
/// directive's), unless it is itself escaped; true when one was there.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else { return (line, false) };
    if before.is_empty() {
        return ("", true);
    }
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

struct DirectiveReader {
    done: bool,
    directives: Directives,
    seen: Vec<String>,
}

impl DirectiveReader {
    /// `# key=value` lines before anything else; the first other line ends them.
    fn read(&mut self, line: &str, pos: Pos) -> Result<(), Located> {
        if self.done {
            return Ok(());
        }
        let parsed = line.strip_prefix('#').and_then(|rest| {
            let (k, v) = rest.split_once('=')?;
            let k = k.trim();
            let v = v.trim();
            let mut ks = k.chars();
            let ok = ks.next().is_some_and(|c| c.is_ascii_alphabetic()) && ks.all(|c| c.is_ascii_alphanumeric());
            (ok && !v.is_empty()).then(|| (k.to_ascii_lowercase(), v.to_owned()))
        });
        let Some((key, value)) = parsed.filter(|(k, _)| matches!(k.as_str(), "escape" | "syntax" | "check")) else {
            self.done = true;
            return Ok(());
        };
        if self.seen.contains(&key) {
            return Err(Located::new(pos, format!("only one `{key}` parser directive can be used; remove this one")));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(Located::new(
                            pos,
                            format!("invalid escape token {value:?}: expected `\\` or a backtick (`)"),
                        ));
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(())
    }
}

/// Cuts `text` into logical lines.
pub fn lex(text: &str) -> Result<Lexed, Located> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let physical: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dirs = DirectiveReader { done: false, directives: Directives::default(), seen: Vec::new() };
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let raw = physical[i].trim_end_matches(['\r', '\n']);
        let line_no = i + 1;
        i += 1;
        let stripped = raw.trim_start();
        let indent = raw[..raw.len() - stripped.len()].chars().count();
        dirs.read(stripped, Pos::new(line_no, indent + 1))?;
        let escape = dirs.directives.escape;
        if stripped.starts_with('#') {
            continue;
        }
        let (first, mut more) = trim_continuation(stripped, escape);
        if !more && first.is_empty() {
            continue;
        }
        let mut logical = Logical {
            text: String::new(),
            map: Vec::new(),
            start_line: line_no,
            end_line: line_no,
            heredocs: Vec::new(),
        };
        logical.push(first, Pos::new(line_no, indent + 1));
        let mut empty_continuation = false;
        while more && i < physical.len() {
            let raw = physical[i].trim_end_matches(['\r', '\n']);
            let no = i + 1;
            i += 1;
            logical.end_line = no;
            dirs.read(raw, Pos::new(no, 1))?;
            if is_comment(raw) {
                continue;
            }
            if raw.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (piece, again) = trim_continuation(raw, escape);
            logical.push(piece, Pos::new(no, 1));
            more = again;
        }
        if empty_continuation {
            warnings.push(Warning {
                pos: Pos::new(line_no, indent + 1),
                message: format!(
                    "empty continuation line found in: {}; empty continuation lines will become errors in a future release",
                    logical.text
                ),
            });
        }
        let docs = heredocs_of(&logical.text).map_err(|m| Located::new(Pos::new(line_no, indent + 1), m))?;
        for mut doc in docs {
            let mut terminated = false;
            while i < physical.len() {
                let line = physical[i];
                i += 1;
                logical.end_line = i;
                let mut candidate = line.trim_end_matches(['\r', '\n']);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(line);
            }
            if !terminated {
                return Err(Located::new(
                    Pos::new(line_no, indent + 1),
                    format!("unterminated heredoc: no line `{}` ends the heredoc opened here", doc.name),
                ));
            }
            logical.heredocs.push(doc);
        }
        lines.push(logical);
    }
    Ok(Lexed { directives: dirs.directives, lines, warnings })
}

/// The heredocs a line opens: only RUN, COPY and ADD (also under ONBUILD) in
/// shell form can have them.
fn heredocs_of(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut split = words::split_command(line);
    let mut command = split.command.to_ascii_lowercase();
    if command == "onbuild" {
        split = words::split_command(&split.args.text);
        command = split.command.to_ascii_lowercase();
    }
    if !matches!(command.as_str(), "run" | "copy" | "add") || !line.contains("<<") {
        return Ok(Vec::new());
    }
    if matches!(words::json_array(&split.args.text), Json::Array(_)) {
        return Ok(Vec::new());
    }
    // BuildKit finds heredoc words with `\` whatever the escape directive says.
    let lex = Lex { escape: '\\', raw_quotes: true, raw_escapes: true, skip_unset: true };
    let unset = |_: &str| None;
    let found = lex.process(line, &unset).map(|p| p.words).unwrap_or_default();
    let mut docs = Vec::new();
    let mut words = found.into_iter().peekable();
    while let Some(mut word) = words.next() {
        // `<< EOF` and `<<- EOF`: the delimiter may stand apart from the operator.
        if is_bare_operator(&word)
            && let Some(next) = words.next()
        {
            word = format!("{word} {next}");
        }
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// `<<`, `<<-`, `3<<`: a heredoc operator without its delimiter.
fn is_bare_operator(word: &str) -> bool {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    rest == "<<" || rest == "<<-"
}

/// `[FD]<<[-]WORD` as a heredoc, `None` when the word is no heredoc.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else { return Ok(None) };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse().unwrap_or(0);
    let unset = |_: &str| None;
    let mut lex = Lex { escape: '\\', raw_quotes: false, raw_escapes: false, skip_unset: true };
    let plain = lex.process(rest, &unset)?.words;
    if plain.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process(rest, &unset)?.words;
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let name = plain[0].clone();
    let expand = raw.len() == 1 && quotes(&name) == quotes(&raw[0]);
    Ok(Some(Heredoc { name, fd, expand, chomp, content: String::new() }))
}
