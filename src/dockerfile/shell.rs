//! Word processing and variable substitution as Docker defines it (BuildKit's
//! `shell/lex.go`): quotes, the escape character, `$V`, `${V}`, `${V:-x}`,
//! `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`,
//! `${V%p}`, `${V%%p}`, `${V/p/r}` and `${V//p/r}`.
//!
//! One pass gives both the processed word (spaces kept) and the words it
//! splits into (splitting happens after substitution; quoted text never
//! splits). The options mirror BuildKit's: raw quotes/escapes keep the quote
//! and escape characters (used to find heredoc words), and "skip unset"
//! leaves references to unset variables as written.

use std::collections::BTreeSet;

/// Looks a variable up: `None` when it is unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How words are processed.
#[derive(Debug, Clone, Copy)]
pub struct Lex {
    pub escape: char,
    pub raw_quotes: bool,
    pub raw_escapes: bool,
    pub skip_unset: bool,
}

/// What one word became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The word after substitution and quote removal, spaces kept.
    pub word: String,
    /// The same split into words (as for `COPY a b c`).
    pub words: Vec<String>,
    /// Variables it referred to that were set.
    pub matched: BTreeSet<String>,
    /// Variables it referred to that were not set.
    pub unmatched: BTreeSet<String>,
}

impl Lex {
    pub fn new(escape: char) -> Self {
        Lex { escape, raw_quotes: false, raw_escapes: false, skip_unset: false }
    }

    /// Processes `input` with the variables `env` gives.
    pub fn process(&self, input: &str, env: Lookup<'_>) -> Result<Processed, String> {
        Scanner::new(*self, input, env, false).run(input)
    }

    /// The processed word alone.
    pub fn word(&self, input: &str, env: Lookup<'_>) -> Result<String, String> {
        self.process(input, env).map(|p| p.word)
    }

    /// A heredoc body: variables and escapes processed, quotes kept as text.
    pub fn body(&self, input: &str, env: Lookup<'_>) -> Result<String, String> {
        Scanner::new(*self, input, env, true).run(input).map(|p| p.word)
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scanner<'a> {
    lex: Lex,
    /// Quotes are plain characters (heredoc bodies).
    skip_quotes: bool,
    chars: Vec<char>,
    pos: usize,
    env: Lookup<'a>,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Scanner<'a> {
    fn new(lex: Lex, input: &str, env: Lookup<'a>, skip_quotes: bool) -> Self {
        Scanner {
            lex,
            skip_quotes,
            chars: input.chars().collect(),
            pos: 0,
            env,
            raw_escapes: lex.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn run(mut self, input: &str) -> Result<Processed, String> {
        let (word, words) =
            self.until(None, self.lex.raw_escapes).map_err(|e| format!("failed to process {input:?}: {e}"))?;
        Ok(Processed { word, words, matched: self.matched, unmatched: self.unmatched })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&mut self, name: &str) -> Option<String> {
        let v = (self.env)(name);
        if v.is_some() {
            self.matched.insert(name.to_owned());
        } else {
            self.unmatched.insert(name.to_owned());
        }
        v
    }

    /// Reads up to `stop` (consumed) or the end when `stop` is `None`.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), String> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.until_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                '\'' if !self.skip_quotes => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' if !self.skip_quotes => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character escapes the next one; at the end it is dropped.
                        let Some(esc) = self.next() else { break };
                        words.add_raw_char(esc);
                        result.push(esc);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!("unexpected end of statement while looking for matching {stop}"));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        // Everything up to the next ' is literal; nothing escapes inside.
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        // Literal except `$` and the escape character, which escapes only `"`, `$` and itself.
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else { return Err("syntax error: missing '}'".into()) };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.get(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.replace(&name),
            ':' => {
                null_is_unset = true;
                ch = self.next().ok_or("syntax error: missing '}'")?;
                modifier.push(ch);
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
        let word = match self.until(Some('}'), ch == '#' || ch == '%') {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let value = self.get(&name);
        if self.lex.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = value.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            '-' => Ok(if empty { word } else { value.unwrap_or_default() }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                None => Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be unset" } else { &word })),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be empty" } else { &word }))
                }
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, word),
                };
                let value = value.unwrap_or_default();
                if ch == '#' { trim_prefix(&pattern, &value, greedy) } else { trim_suffix(&pattern, &value, greedy) }
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let missing = |s: &Self, e: String, what: &str| if s.peek().is_none() { what.to_owned() } else { e };
        let (pattern, _) =
            self.until(Some('/'), true).map_err(|e| missing(self, e, "syntax error: missing '/' in ${}"))?;
        let (replacement, _) =
            self.until(Some('}'), true).map_err(|e| missing(self, e, "syntax error: missing '}'"))?;
        let value = self.get(name);
        let Some(value) = value else {
            if self.lex.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let re = shell_pattern(&pattern, true, false)?;
        Ok(if all {
            re.replace_all(&value, regex::NoExpand(&replacement)).into_owned()
        } else {
            re.replace(&value, regex::NoExpand(&replacement)).into_owned()
        })
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// A shell pattern (`*`, `?`, `\` escapes; no brackets) as a regex; like
/// BuildKit's, `.` stops at a newline.
fn shell_pattern(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, String> {
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => match it.peek() {
                Some('}' | '/') => {}
                Some(&n @ ('*' | '?' | '\\')) => {
                    it.next();
                    out.push('\\');
                    out.push(n);
                }
                other => {
                    return Err(format!(
                        "invalid pattern ({pattern}) in substitution: invalid escape '\\{}'",
                        other.map(|c| c.to_string()).unwrap_or_default()
                    ));
                }
            },
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    regex::Regex::new(&out).map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = shell_pattern(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// Shortest or longest suffix: reverse both, so it becomes a prefix search.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p: Vec<char> = pattern.chars().collect();
    let mut rev = vec!['\0'; p.len()];
    let mut i = 0;
    while i < p.len() {
        let out = p.len() - 1 - i;
        if p[i] == '\\' && i + 1 < p.len() {
            rev[out - 1] = '\\';
            rev[out] = p[i + 1];
            i += 2;
        } else {
            rev[out] = p[i];
            i += 1;
        }
    }
    let rev_pattern: String = rev.into_iter().collect();
    let rev_value: String = value.chars().rev().collect();
    Ok(trim_prefix(&rev_pattern, &rev_value, greedy)?.chars().rev().collect())
}
