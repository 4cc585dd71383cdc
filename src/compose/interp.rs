//! Compose's variable interpolation, applied to every string of the file
//! before it is converted, as `docker compose` does when it reads the file:
//! `$VAR` and `${VAR}`, `${VAR:-default}` (unset or empty) and
//! `${VAR-default}` (unset), `${VAR:+alt}` and `${VAR+alt}`, `${VAR:?why}`
//! and `${VAR?why}` (an error when unset), and `$$` for a literal `$`.
//! Values come from the environment berth runs in, then from the `.env`
//! file beside the compose file (the environment wins, as in Compose).
//! A variable that is unset becomes the empty string, with a warning.

use std::collections::BTreeMap;
use std::path::Path;

/// Where variables come from.
pub struct Vars {
    values: BTreeMap<String, String>,
    /// Variables used but unset, for warnings.
    pub unset: Vec<String>,
}

impl Vars {
    /// The `.env` file in `dir` (if any) under the process environment.
    pub fn for_dir(dir: &Path) -> Result<Vars, String> {
        let mut values = BTreeMap::new();
        let dotenv = dir.join(".env");
        if dotenv.is_file() {
            let text =
                std::fs::read_to_string(&dotenv).map_err(|e| format!("cannot read {}: {e}", dotenv.display()))?;
            values.extend(parse_env_file(&text));
        }
        values.extend(std::env::vars());
        Ok(Vars { values, unset: Vec::new() })
    }

    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Vars {
        Vars { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), unset: Vec::new() }
    }

    /// `text` with its variables substituted; `Err` says what is wrong.
    pub fn interpolate(&mut self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = closing_brace(body).ok_or_else(|| format!("{text:?}: \"${{\" has no closing \"}}\""))?;
                out.push_str(&self.braced(&body[..end], text)?);
                rest = &body[end + 1..];
            } else {
                let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                if len == 0 {
                    out.push('$');
                    rest = after;
                } else {
                    out.push_str(&self.get(&after[..len]).unwrap_or_default());
                    rest = &after[len..];
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn get(&mut self, name: &str) -> Option<String> {
        let v = self.values.get(name).cloned();
        if v.is_none() && !self.unset.iter().any(|u| u == name) {
            self.unset.push(name.to_owned());
        }
        v
    }

    fn braced(&mut self, body: &str, whole: &str) -> Result<String, String> {
        let name_len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
        let (name, op) = body.split_at(name_len);
        if name.is_empty() {
            return Err(format!("{whole:?}: \"${{{body}}}\" names no variable"));
        }
        let value = self.values.get(name).cloned();
        let (colon, op) = match op.strip_prefix(':') {
            Some(o) => (true, o),
            None => (false, op),
        };
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        let Some(kind) = op.chars().next() else {
            if colon {
                return Err(format!("{whole:?}: \"${{{body}}}\" needs -, +, or ? after the colon"));
            }
            return Ok(self.get(name).unwrap_or_default());
        };
        let arg = &op[kind.len_utf8()..];
        match kind {
            '-' if set => Ok(value.unwrap_or_default()),
            '-' => self.interpolate(arg),
            '+' if set => self.interpolate(arg),
            '+' => Ok(String::new()),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' => Err(format!(
                "required variable {name} is not set: {}",
                if arg.is_empty() { "(no message)" } else { arg }
            )),
            _ => Err(format!(
                "{whole:?}: \"${{{body}}}\" is not a substitution Compose knows (${{VAR}}, ${{VAR:-default}}, ${{VAR:?error}}, ${{VAR:+alt}})"
            )),
        }
    }
}

/// The index of the `}` that closes a `${` whose body starts `body`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// `KEY=VALUE` lines as Compose's env files have them: blank lines and
/// `#` comments skipped, an `export ` prefix allowed, a value in single or
/// double quotes unquoted (`\n` in double quotes is a newline), a line with
/// no `=` skipped.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        let v = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            // An unquoted value ends at " #" (an inline comment).
            v.split(" #").next().unwrap_or("").trim_end().to_owned()
        };
        out.push((k.trim().to_owned(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_as_compose_defines_them() {
        let mut v = Vars::of(&[("TAG", "1.2"), ("EMPTY", "")]);
        assert_eq!(v.interpolate("app:${TAG}").unwrap(), "app:1.2");
        assert_eq!(v.interpolate("app:$TAG-x").unwrap(), "app:1.2-x");
        assert_eq!(v.interpolate("$$TAG costs $$5").unwrap(), "$TAG costs $5");
        assert_eq!(v.interpolate("${EMPTY:-d} ${EMPTY-d} ${NOPE-d}").unwrap(), "d  d");
        assert_eq!(v.interpolate("${TAG:+set} ${NOPE:+set}.").unwrap(), "set .");
        assert_eq!(v.interpolate("${NOPE:-${TAG}}").unwrap(), "1.2");
        assert_eq!(v.interpolate("${UNSET}x").unwrap(), "x");
        assert_eq!(v.unset, ["UNSET"]);
        assert!(v.interpolate("${NOPE:?give a tag}").unwrap_err().contains("give a tag"));
        assert!(v.interpolate("${TAG").is_err());
        assert_eq!(v.interpolate("cost: 5$").unwrap(), "cost: 5$");
    }

    #[test]
    fn env_files() {
        let text = "# c\n\nA=1\nexport B = two \nC=\"x\\ny\"\nD='$literal'\nE=v # note\nnoequals\n";
        let got = parse_env_file(text);
        let want = [("A", "1"), ("B", "two"), ("C", "x\ny"), ("D", "$literal"), ("E", "v")];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }
}
