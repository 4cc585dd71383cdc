//! Dockerfile instructions that change an image's config, as `docker import
//! --change` takes them: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`,
//! `STOPSIGNAL`, `USER`, `VOLUME` and `WORKDIR`.
//!
//! The rules are Docker's:
//! - the instruction is case-insensitive; its arguments are the rest of the
//!   line;
//! - `CMD`, `ENTRYPOINT` and `VOLUME` take a JSON array of strings (exec
//!   form); anything that is not one is the shell form — `["/bin/sh", "-c",
//!   LINE]` for the first two, whitespace-separated words for `VOLUME`;
//! - `ENV` and `LABEL` take `KEY=VALUE` pairs, or the legacy `KEY VALUE…`
//!   (one pair, the value being the rest of the line);
//! - arguments (except those of `CMD` and `ENTRYPOINT`, which the shell sees
//!   at run time) are words as a shell reads them: single quotes keep
//!   everything, double quotes keep spaces and expand variables, a backslash
//!   escapes the next character, and `$NAME`, `${NAME}`, `${NAME:-word}` and
//!   `${NAME:+word}` expand from the image's environment as it was before
//!   the instruction;
//! - a relative `WORKDIR` is joined to the previous one (`/` at first); all
//!   working directories are cleaned (`.`, `..`, repeated `/`);
//! - `EXPOSE` takes `PORT[/PROTO]` or `FIRST-LAST[/PROTO]`, the protocol
//!   being `tcp` (the default), `udp` or `sctp`.

use super::ImageConfigInput;

/// The instructions `apply_change` understands, as listed in errors.
const SUPPORTED: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR";

/// Why a `--change` instruction cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--change {change:?}: {reason}")]
pub struct ChangeError {
    /// The instruction as given.
    pub change: String,
    /// What is wrong and what would be right.
    pub reason: String,
}

impl ImageConfigInput {
    /// Applies one Dockerfile instruction, such as `ENV PATH=/bin:$PATH` or
    /// `CMD ["sh"]` (see the module page for the rules). On error nothing
    /// is changed.
    pub fn apply_change(&mut self, change: &str) -> Result<(), ChangeError> {
        let fail = |reason: String| ChangeError { change: change.to_owned(), reason };
        let line = change.trim();
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let keyword = keyword.to_ascii_uppercase();
        if keyword.is_empty() {
            return Err(fail(format!("the instruction is empty; expected one of {SUPPORTED}")));
        }
        if rest.is_empty() {
            return Err(fail(format!("{keyword} needs arguments")));
        }
        let mut next = self.clone();
        next.apply(&keyword, rest).map_err(fail)?;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, keyword: &str, rest: &str) -> Result<(), String> {
        match keyword {
            "CMD" => self.cmd = Some(command(rest)),
            "ENTRYPOINT" => self.entrypoint = Some(command(rest)),
            "ENV" => {
                for (name, value) in self.pairs(rest, "ENV")? {
                    if name.contains('=') || name.chars().any(char::is_whitespace) {
                        return Err(format!("ENV name {name:?} must not contain '=' or whitespace"));
                    }
                    self.set_env(&name, &value);
                }
            }
            "LABEL" => {
                for (key, value) in self.pairs(rest, "LABEL")? {
                    self.labels.insert(key, value);
                }
            }
            "EXPOSE" => {
                for word in split_words(rest)? {
                    let port = self.expand(word)?;
                    self.exposed_ports.extend(ports(&port)?);
                }
            }
            "VOLUME" => {
                let words = match json_array(rest) {
                    Some(paths) => paths,
                    None => split_words(rest)?.into_iter().map(|w| self.expand(w)).collect::<Result<_, _>>()?,
                };
                for path in words {
                    if path.trim().is_empty() {
                        return Err("VOLUME paths must not be empty".to_owned());
                    }
                    self.volumes.insert(path);
                }
            }
            "USER" => self.user = Some(self.single(rest, "USER", "a user name or uid, optionally :group")?),
            "STOPSIGNAL" => {
                let signal = self.single(rest, "STOPSIGNAL", "a signal name or number")?;
                let named = signal.strip_prefix("SIG").is_some_and(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+')
                });
                if !named && signal.parse::<u8>().is_err() {
                    return Err(format!("{signal:?} is not a signal; expected a name such as SIGTERM or a number"));
                }
                self.stop_signal = Some(signal);
            }
            "WORKDIR" => {
                let dir = self.single(rest, "WORKDIR", "a directory path")?;
                let base = self.working_dir.as_deref().unwrap_or("/");
                self.working_dir = Some(clean_path(&if dir.starts_with('/') { dir } else { format!("{base}/{dir}") }));
            }
            other => return Err(format!("unknown instruction {other}; `--change` accepts {SUPPORTED}")),
        }
        Ok(())
    }

    /// The whole of `rest` as one expanded word, which must not be empty.
    fn single(&self, rest: &str, keyword: &str, expected: &str) -> Result<String, String> {
        let value = self.expand(rest)?;
        if value.is_empty() {
            return Err(format!("{keyword} is empty after expansion; expected {expected}"));
        }
        Ok(value)
    }

    /// `KEY=VALUE …` or the legacy `KEY VALUE…`, each part expanded.
    fn pairs(&self, rest: &str, keyword: &str) -> Result<Vec<(String, String)>, String> {
        let words = split_words(rest)?;
        let mut pairs = Vec::new();
        if !words[0].contains('=') {
            let (key, value) = rest.split_once(char::is_whitespace).ok_or_else(|| {
                format!(
                    "{keyword} {rest} has no value; expected {keyword} KEY=VALUE [KEY=VALUE…] or {keyword} KEY VALUE"
                )
            })?;
            pairs.push((self.expand(key)?, self.expand(value.trim_start())?));
        } else {
            for word in words {
                let (key, value) = word.split_once('=').ok_or_else(|| {
                    format!("{word:?} is not KEY=VALUE; quote values with spaces, as in {keyword} KEY=\"a b\"")
                })?;
                pairs.push((self.expand(key)?, self.expand(value)?));
            }
        }
        if let Some((key, _)) = pairs.iter().find(|(k, _)| k.is_empty()) {
            return Err(format!("{keyword} has an empty name in {key:?}=…; expected KEY=VALUE"));
        }
        Ok(pairs)
    }

    /// Removes quotes and backslashes from `word` and expands variables.
    fn expand(&self, word: &str) -> Result<String, String> {
        let chars: Vec<char> = word.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\'' => {
                    let end = find(&chars, i + 1, '\'').ok_or_else(|| unterminated(word, '\''))?;
                    out.extend(&chars[i + 1..end]);
                    i = end + 1;
                }
                '"' => {
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(unterminated(word, '"')),
                            Some('"') => break,
                            Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$')) => {
                                out.push(chars[i + 1]);
                                i += 2;
                            }
                            Some('$') => i = self.variable(&chars, i, &mut out)?,
                            Some(&c) => {
                                out.push(c);
                                i += 1;
                            }
                        }
                    }
                    i += 1;
                }
                '\\' => {
                    out.extend(chars.get(i + 1));
                    i += 2;
                }
                '$' => i = self.variable(&chars, i, &mut out)?,
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// Expands the variable reference at `chars[start]` (a `$`) into `out`
    /// and returns the index after it. A `$` not followed by a name is kept.
    fn variable(&self, chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let text: String = chars[start..].iter().collect();
        if chars.get(start + 1) == Some(&'{') {
            let end =
                find(chars, start + 2, '}').ok_or_else(|| format!("{text:?} has '${{' without a closing '}}'"))?;
            let inner: String = chars[start + 2..end].iter().collect();
            let (name, modifier) = match inner.split_once(':') {
                Some((name, rest)) if rest.starts_with(['-', '+']) => (name, Some(rest.split_at(1))),
                Some(_) => ("", None),
                None => (inner.as_str(), None),
            };
            if name.is_empty() || !name.chars().all(is_name) {
                return Err(format!(
                    "${{{inner}}} is not a variable; expected ${{NAME}}, ${{NAME:-default}} or ${{NAME:+alternative}}"
                ));
            }
            let value = self.env_var(name).unwrap_or("");
            match modifier {
                None => out.push_str(value),
                Some(("-", word)) => {
                    out.push_str(&if value.is_empty() { self.expand(word)? } else { value.to_owned() })
                }
                Some((_, word)) => out.push_str(&if value.is_empty() { String::new() } else { self.expand(word)? }),
            }
            return Ok(end + 1);
        }
        let len = chars[start + 1..].iter().take_while(|&&c| is_name(c)).count();
        if len == 0 {
            out.push('$');
            return Ok(start + 1);
        }
        let name: String = chars[start + 1..start + 1 + len].iter().collect();
        out.push_str(self.env_var(&name).unwrap_or(""));
        Ok(start + 1 + len)
    }
}

/// The exec form (a JSON array of strings) or the shell form of `CMD` and
/// `ENTRYPOINT`.
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
}

/// `rest` as a JSON array of strings, if it is one.
fn json_array(rest: &str) -> Option<Vec<String>> {
    rest.starts_with('[').then(|| serde_json::from_str(rest).ok()).flatten()
}

/// Splits on whitespace outside quotes, keeping quotes and backslashes for
/// [`ImageConfigInput::expand`].
fn split_words(rest: &str) -> Result<Vec<&str>, String> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"'), '\\') | (None, '\\') => escaped = true,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push(&rest[s..i]);
                }
                continue;
            }
            (None, _) => {}
        }
        start.get_or_insert(i);
    }
    if let Some(q) = quote {
        return Err(unterminated(rest, q));
    }
    words.extend(start.map(|s| &rest[s..]));
    Ok(words)
}

fn unterminated(text: &str, quote: char) -> String {
    format!("{text:?} has an opening {quote} without a closing one")
}

fn find(chars: &[char], from: usize, wanted: char) -> Option<usize> {
    chars.get(from..)?.iter().position(|&c| c == wanted).map(|p| from + p)
}

/// The ports of one `EXPOSE` word, as `PORT/PROTO`.
fn ports(word: &str) -> Result<Vec<String>, String> {
    let expected = "expected PORT[/tcp|udp|sctp] or FIRST-LAST[/PROTO] with ports 1-65535, such as 80 or 53/udp";
    let (range, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("EXPOSE {word}: unknown protocol {proto:?}; {expected}"));
    }
    let port = |s: &str| s.parse::<u16>().ok().filter(|&p| p > 0);
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (port(a), port(b)),
        None => (port(range), port(range)),
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last => Ok((first..=last).map(|p| format!("{p}/{proto}")).collect()),
        _ => Err(format!("EXPOSE {word} is not a port; {expected}")),
    }
}

/// `path` with repeated `/`, `.` and `..` resolved lexically, as an absolute
/// path (`..` at the root stays at the root).
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ImageConfigInput {
        let mut input = ImageConfigInput::default();
        for c in changes {
            input.apply_change(c).unwrap_or_else(|e| panic!("{e}"));
        }
        input
    }

    fn error(changes: &[&str]) -> String {
        let mut input = ImageConfigInput::default();
        let (last, first) = changes.split_last().unwrap();
        for c in first {
            input.apply_change(c).unwrap();
        }
        let before = input.clone();
        let err = input.apply_change(last).unwrap_err();
        assert_eq!(input, before, "a failed change must change nothing");
        err.to_string()
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn cmd_and_entrypoint_take_exec_and_shell_forms() {
        let input = applied(&[r#"CMD ["a", "b c"]"#, "entrypoint /bin/run --fast"]);
        assert_eq!(input.cmd, strings(&["a", "b c"]));
        assert_eq!(input.entrypoint, strings(&["/bin/sh", "-c", "/bin/run --fast"]));
        assert_eq!(applied(&["CMD []"]).cmd, Some(vec![]));
        assert_eq!(applied(&["CMD [not json"]).cmd, strings(&["/bin/sh", "-c", "[not json"]));
        assert_eq!(applied(&["CMD echo $HOME"]).cmd, strings(&["/bin/sh", "-c", "echo $HOME"]));
    }

    #[test]
    fn env_takes_pairs_quotes_legacy_form_and_expands() {
        let input = applied(&[
            "ENV PATH=/bin A=1",
            r#"ENV PATH=/usr/bin:$PATH B="two words" C='$A' D=\$A E=${A}x F=${MISSING:-dflt} G=${A:+set}"#,
            "ENV LEGACY  value with  spaces",
        ]);
        let env: Vec<(&str, &str)> = input.env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [
                ("PATH", "/usr/bin:/bin"),
                ("A", "1"),
                ("B", "two words"),
                ("C", "$A"),
                ("D", "$A"),
                ("E", "1x"),
                ("F", "dflt"),
                ("G", "set"),
                ("LEGACY", "value with  spaces"),
            ]
        );
        assert_eq!(applied(&["ENV A=1", "ENV A=2 B=$A"]).env_var("B"), Some("1"), "expands from the env before");
    }

    #[test]
    fn label_expose_user_volume_stopsignal() {
        let input = applied(&[
            r#"LABEL org.example.a=1 "b"="x y""#,
            "EXPOSE 80 53/UDP 8000-8002",
            "USER 1000:1000",
            r#"VOLUME ["/data"]"#,
            "VOLUME /a /b",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(input.labels.get("org.example.a").map(String::as_str), Some("1"));
        assert_eq!(input.labels.get("b").map(String::as_str), Some("x y"));
        let ports: Vec<&str> = input.exposed_ports.iter().map(String::as_str).collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(input.user.as_deref(), Some("1000:1000"));
        let volumes: Vec<&str> = input.volumes.iter().map(String::as_str).collect();
        assert_eq!(volumes, ["/a", "/b", "/data"]);
        assert_eq!(input.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn workdir_joins_relative_paths_and_cleans() {
        assert_eq!(applied(&["WORKDIR /x"]).working_dir.as_deref(), Some("/x"));
        assert_eq!(applied(&["WORKDIR rel"]).working_dir.as_deref(), Some("/rel"));
        assert_eq!(applied(&["WORKDIR /a/b", "WORKDIR ../c/./d//"]).working_dir.as_deref(), Some("/a/c/d"));
        assert_eq!(applied(&["ENV D=/srv", "WORKDIR $D/app"]).working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(applied(&["WORKDIR /../.."]).working_dir.as_deref(), Some("/"));
    }

    #[test]
    fn bad_changes_are_refused_with_what_would_be_right() {
        let cases: &[(&[&str], &str)] = &[
            (&["RUN echo hi"], "unknown instruction RUN; `--change` accepts CMD"),
            (&[""], "the instruction is empty"),
            (&["CMD"], "CMD needs arguments"),
            (&["ENV A=1 B"], "\"B\" is not KEY=VALUE"),
            (&["ENV LONELY"], "has no value"),
            (&["ENV =x"], "empty name"),
            (&["ENV A=\"open"], "without a closing"),
            (&["ENV A=${B"], "without a closing '}'"),
            (&["ENV A=${B-x}"], "is not a variable"),
            (&["EXPOSE 0"], "is not a port"),
            (&["EXPOSE 70000"], "is not a port"),
            (&["EXPOSE 9-8"], "is not a port"),
            (&["EXPOSE 80/icmp"], "unknown protocol"),
            (&["STOPSIGNAL TERM"], "is not a signal"),
            (&["USER $NOBODY"], "USER is empty after expansion"),
        ];
        for (changes, expected) in cases {
            let err = error(changes);
            assert!(err.contains(expected), "{changes:?}: {err}");
            assert!(err.starts_with("--change "), "{err}");
        }
    }
}
