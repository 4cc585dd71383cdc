//! Writing the converted manifest: TOML values by hand (strings quoted and
//! escaped as TOML's basic strings, inline arrays and tables), and each env
//! as its keys with the notes about what did not carry over as comments.

use std::fmt::Write as _;

/// A TOML value as the converter writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Value>),
    /// An inline table, keys in the order given.
    Table(Vec<(String, Value)>),
}

impl Value {
    pub fn strings(items: impl IntoIterator<Item = String>) -> Value {
        Value::Array(items.into_iter().map(Value::Str).collect())
    }

    pub fn render(&self) -> String {
        match self {
            Value::Str(s) => quote(s),
            Value::Int(i) => i.to_string(),
            Value::Float(f) if f.fract() == 0.0 => format!("{f:.1}"),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => {
                format!("[{}]", items.iter().map(Value::render).collect::<Vec<_>>().join(", "))
            }
            Value::Table(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{} = {}", key(k), v.render())).collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key: bare when TOML allows, quoted otherwise.
pub fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_owned()
    } else {
        quote(k)
    }
}

/// One line of an env's table.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Key(&'static str, Value),
    /// A comment: what compose said that berth does not carry, and why.
    Note(String),
}

/// Writes `[env.NAME]` and its items.
pub fn env_table(out: &mut String, name: &str, items: &[Item]) {
    let _ = writeln!(out, "\n[env.{}]", key(name));
    for item in items {
        match item {
            Item::Key(k, v) => {
                let _ = writeln!(out, "{k} = {}", v.render());
            }
            Item::Note(text) => {
                for (i, line) in text.lines().enumerate() {
                    let lead = if i == 0 { "# compose: " } else { "#   " };
                    let _ = writeln!(out, "{lead}{line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_tables_inline() {
        assert_eq!(quote("a \"b\" \\ c\nd\u{1}"), r#""a \"b\" \\ c\nd\u0001""#);
        let t = Value::Table(vec![
            ("memory".into(), Value::Str("256m".into())),
            ("cpus".into(), Value::Float(2.0)),
            ("pids".into(), Value::Int(64)),
        ]);
        assert_eq!(t.render(), r#"{ memory = "256m", cpus = 2.0, pids = 64 }"#);
        assert_eq!(key("org.label"), "\"org.label\"");
        assert_eq!(key("APP_MODE"), "APP_MODE");
    }
}
