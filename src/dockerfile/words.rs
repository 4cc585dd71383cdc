//! How BuildKit's parser cuts an instruction's text before typing it: the
//! instruction word and its `--flags`, quote-keeping words (ENV, LABEL, ARG),
//! whitespace-separated words (FROM, EXPOSE, ADD, COPY, VOLUME) and JSON
//! (exec form) arrays with their fallback to the shell form.

/// A piece of an instruction's text and its byte offset in that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub offset: usize,
}

/// The instruction word, its `--flag[=value]` words and where the arguments start.
pub struct Split {
    pub command: String,
    pub command_offset: usize,
    pub flags: Vec<Piece>,
    /// Trimmed arguments and their offset.
    pub args: Piece,
}

/// Whitespace as BuildKit's `[\t\v\f\r ]`.
pub fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits a logical line into command, flags and arguments.
pub fn split_command(line: &str) -> Split {
    let command_offset = line.len() - line.trim_start().len();
    let trimmed = line.trim();
    let end = trimmed.find(is_blank).unwrap_or(trimmed.len());
    let command = trimmed[..end].to_owned();
    let after = command_offset + end;
    let (flags, args_offset) = extract_flags(line, after);
    let raw = &line[args_offset..];
    let lead = raw.len() - raw.trim_start().len();
    let args = Piece { text: raw.trim().to_owned(), offset: args_offset + lead };
    Split { command, command_offset, flags, args }
}

/// Reads `--name[=value]` words from `start`; quotes group, `\` escapes, a
/// lone `--` ends the flags. Returns the flags and where the rest begins.
fn extract_flags(line: &str, start: usize) -> (Vec<Piece>, usize) {
    let b: Vec<(usize, char)> = line[start..].char_indices().map(|(i, c)| (i + start, c)).collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].1.is_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return (flags, line.len());
        }
        let word_start = b[i].0;
        if !(b[i].1 == '-' && b.get(i + 1).is_some_and(|c| c.1 == '-')) {
            return (flags, word_start);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut quoted = false;
        while i < b.len() {
            let c = b[i].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if i + 1 < b.len() {
                        i += 1;
                        word.push(b[i].1);
                    } else if quote.is_some() {
                        quote = None;
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == "--" {
            let at = b.get(i).map_or(line.len(), |c| c.0);
            return (flags, at);
        }
        if quoted || !word.is_empty() {
            flags.push(Piece { text: word, offset: word_start });
        }
    }
}

/// Words separated by whitespace, quotes and escapes kept (they are removed
/// later, when the words are expanded): `a="x y" b=1` is two words.
pub fn quoted_words(rest: &str, escape: char) -> Vec<Piece> {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if quote.is_none() && c.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(Piece { text: std::mem::take(&mut word), offset: start });
            }
            word.clear();
            in_word = false;
            blank_ok = false;
            i += 1;
            continue;
        }
        if !in_word {
            in_word = true;
            start = at;
        }
        // The escape character escapes the next one, except inside single
        // quotes; a trailing one is dropped.
        let escapes = c == escape && quote != Some('\'');
        match quote {
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                blank_ok = true;
            }
            Some(q) if c == q => quote = None,
            _ => {}
        }
        if escapes {
            if let Some(&(_, next)) = chars.get(i + 1) {
                word.push(c);
                word.push(next);
            }
            i += 2;
            continue;
        }
        word.push(c);
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(Piece { text: word, offset: start });
    }
    words
}

/// Words separated by `[\t\v\f\r ]+`, nothing else special.
pub fn blank_words(rest: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in rest.char_indices().chain(std::iter::once((rest.len(), ' '))) {
        match (is_blank(c), start) {
            (true, Some(s)) => {
                out.push(Piece { text: rest[s..i].to_owned(), offset: s });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// What a JSON-looking argument turned out to be.
pub enum Json {
    /// A JSON array of strings (trailing text after it is ignored, as Docker does).
    Array(Vec<String>),
    /// Not JSON: the shell form applies.
    NotJson,
    /// A JSON array holding something other than strings: an error, no fallback.
    NotStrings,
}

/// Parses the exec form `["a", "b"]`.
pub fn json_array(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::NotJson;
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        _ => Json::NotJson,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &[Piece]) -> Vec<&str> {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn flags_stop_at_the_first_plain_word_or_a_lone_double_dash() {
        let s = split_command("COPY --from=build --chown=\"a b\" --link src dst");
        assert_eq!(s.command, "COPY");
        assert_eq!(texts(&s.flags), ["--from=build", "--chown=a b", "--link"]);
        assert_eq!(s.args.text, "src dst");
        let s = split_command("RUN --network=none -- --not-a-flag");
        assert_eq!(texts(&s.flags), ["--network=none"]);
        assert_eq!(s.args.text, "--not-a-flag");
    }

    #[test]
    fn quoted_words_keep_quotes_and_escapes() {
        assert_eq!(texts(&quoted_words(r#"a="x y" b=1 c=\"q"#, '\\')), [r#"a="x y""#, "b=1", r#"c=\"q"#]);
        assert_eq!(texts(&quoted_words("a='it\\' b", '\\')), ["a='it\\'", "b"]);
    }

    #[test]
    fn json_with_non_strings_is_an_error_and_bad_json_is_shell_form() {
        assert!(matches!(json_array(r#"["a", "b"] trailing"#), Json::Array(v) if v == ["a", "b"]));
        assert!(matches!(json_array("[1, 2]"), Json::NotStrings));
        assert!(matches!(json_array("[a, b]"), Json::NotJson));
        assert!(matches!(json_array("echo [1]"), Json::NotJson));
    }
}
