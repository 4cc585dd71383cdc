//! `.dockerignore`: reading the file and matching context paths exactly as
//! Docker's patternmatcher does (`*`, `?`, `[…]`, `**`, `!` exceptions, a
//! leading `/` dropped, paths cleaned of `.` and `..`, `#` comments, a path
//! ignored when it or any parent directory matches, the last matching
//! pattern deciding).

use std::path::{Path, PathBuf};

use super::error::{DockerfileError, Located, Pos};

/// The ignore file for a build: `NAME.dockerignore` beside a Dockerfile
/// called NAME when there is one, else `.dockerignore` at the context's root.
pub fn find(dockerfile: &Path, context: &Path) -> Option<PathBuf> {
    let beside = dockerfile.file_name().map(|n| {
        let mut name = n.to_os_string();
        name.push(".dockerignore");
        dockerfile.with_file_name(name)
    });
    beside.filter(|p| p.is_file()).or_else(|| Some(context.join(".dockerignore")).filter(|p| p.is_file()))
}

/// Reads the ignore file for a build (no file: nothing is ignored).
pub fn load(dockerfile: &Path, context: &Path) -> Result<Ignore, DockerfileError> {
    let Some(path) = find(dockerfile, context) else { return Ok(Ignore { patterns: Vec::new() }) };
    let text = std::fs::read_to_string(&path).map_err(|source| DockerfileError::Read { path: path.clone(), source })?;
    Ignore::parse(&text).map_err(|e| e.in_file(path))
}

/// Compiled patterns.
#[derive(Debug, Clone)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    /// `dir/**`: everything under `dir/`.
    Prefix(String),
    /// `**/name`: anything ending so.
    Suffix(String),
    Regex(regex::Regex),
}

/// Lexically cleans a slash path as Go's `path.Clean` does.
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    match (rooted, out.is_empty()) {
        (true, _) => format!("/{}", out.join("/")),
        (false, true) => ".".to_owned(),
        (false, false) => out.join("/"),
    }
}

/// The patterns of an ignore file's text, as Docker reads them.
pub fn read_patterns(text: &str) -> Vec<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut p = p.to_owned();
        if !p.is_empty() {
            p = clean(&p);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        out.push((i + 1, if invert { format!("!{p}") } else { p }));
    }
    out
}

impl Ignore {
    /// Reads and compiles an ignore file's text.
    pub fn parse(text: &str) -> Result<Ignore, Located> {
        let mut patterns = Vec::new();
        for (line, p) in read_patterns(text) {
            if let Some(pattern) = compile(&p).map_err(|m| Located::new(Pos::new(line, 1), m))? {
                patterns.push(pattern);
            }
        }
        Ok(Ignore { patterns })
    }

    /// Compiles patterns given one by one (such as `COPY --exclude`).
    pub fn from_patterns<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for p in list {
            if let Some(pattern) = compile(p)? {
                patterns.push(pattern);
            }
        }
        Ok(Ignore { patterns })
    }

    /// Whether any pattern is an exception (`!…`): then an ignored directory
    /// must still be walked, as something under it may be let back in.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether the context path `file` (slash-separated, relative) is
    /// ignored: the last pattern matching it or one of its parents decides.
    pub fn matches(&self, file: &str) -> bool {
        let file = clean(file);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.hit(&file);
            if !hit {
                hit = (1..=parents.len()).any(|n| p.hit(&parents[..n].join("/")));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    fn hit(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

fn compile(raw: &str) -> Result<Option<Pattern>, String> {
    let p = raw.trim();
    if p.is_empty() {
        return Ok(None);
    }
    let mut p = clean(p);
    let exclusion = p.starts_with('!');
    if exclusion {
        if p.len() == 1 {
            return Err("illegal exclusion pattern \"!\": write !PATTERN to let PATTERN back in".into());
        }
        p.remove(0);
    }
    check_glob(&p).map_err(|why| format!("bad pattern {raw:?}: {why}"))?;
    let chars: Vec<char> = p.chars().collect();
    let mut re = String::from("^");
    let mut kind = Detected::Exact;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == Detected::Exact {
                        kind = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Detected::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Detected::Regex;
                }
                if step == 0 {
                    kind = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    kind = Detected::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Detected::Regex;
            }
            _ => re.push(ch),
        }
        step += 1;
    }
    let bad = |e: String| format!("bad pattern {raw:?}: {e}");
    let matcher = match kind {
        Detected::Exact => Matcher::Exact,
        Detected::Prefix => Matcher::Prefix(p[..p.len() - 2].to_owned()),
        Detected::Suffix => Matcher::Suffix(p[2..].to_owned()),
        Detected::Regex => {
            re.push('$');
            Matcher::Regex(regex::Regex::new(&re).map_err(|e| bad(e.to_string()))?)
        }
    };
    Ok(Some(Pattern { text: p, exclusion, matcher }))
}

/// Checks a pattern's syntax as Go's `filepath.Match` does (Docker refuses
/// what it refuses): every `[` closed, ranges with both ends, no `-` or `]`
/// where a character is expected, no `\` at the end.
fn check_glob(p: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    // One character of a class, escaped or not; the class must go on after it.
    let class_char = |i: &mut usize| -> Result<(), &'static str> {
        match chars.get(*i) {
            None | Some('-' | ']') => return Err("a character class is not closed or has an empty range end"),
            Some('\\') => {
                *i += 1;
                if *i >= chars.len() {
                    return Err("a `\\` ends the pattern");
                }
            }
            Some(_) => {}
        }
        *i += 1;
        if *i >= chars.len() {
            return Err("a character class is not closed");
        }
        Ok(())
    };
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 1;
                if i >= chars.len() {
                    return Err("a `\\` ends the pattern");
                }
                i += 1;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    class_char(&mut i)?;
                    if chars[i] == '-' {
                        i += 1;
                        class_char(&mut i)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}
