//! An instruction's `--flags`: each instruction declares the flags it takes,
//! and anything else is an error at the flag's line and column.

use super::error::{Located, Pos};

/// The kinds of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=VALUE`, once.
    String,
    /// `--mount=VALUE`, any number of times.
    List,
}

/// The flags given to one instruction, checked against what it takes.
pub struct Flags {
    given: Vec<(String, Option<String>, Pos)>,
}

impl Flags {
    /// Splits `--name[=value]` words; `pos` gives each word's position.
    pub fn new(words: impl IntoIterator<Item = (String, Pos)>) -> Self {
        let given = words
            .into_iter()
            .map(|(w, pos)| {
                let w = w.strip_prefix("--").unwrap_or(&w).to_owned();
                match w.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned()), pos),
                    None => (w, None, pos),
                }
            })
            .collect();
        Flags { given }
    }

    /// Checks every given flag against `spec` (name, kind) for `instruction`.
    pub fn check(&self, instruction: &str, spec: &[(&str, Kind)]) -> Result<Parsed, Located> {
        let mut parsed = Parsed { values: Vec::new() };
        for (name, value, pos) in &self.given {
            let Some((_, kind)) = spec.iter().find(|(n, _)| n == name) else {
                let takes = if spec.is_empty() {
                    format!("{instruction} takes no flags")
                } else {
                    let names: Vec<String> = spec.iter().map(|(n, _)| format!("--{n}")).collect();
                    format!("{instruction} takes {}", names.join(", "))
                };
                return Err(Located::new(*pos, format!("unknown flag --{name} for {instruction}; {takes}")));
            };
            if *kind != Kind::List && parsed.values.iter().any(|(n, _)| n == name) {
                return Err(Located::new(*pos, format!("--{name} is given twice; give it once")));
            }
            let v = match (kind, value) {
                (Kind::Bool, None) => "true".to_owned(),
                (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".to_owned(),
                    "false" => "false".to_owned(),
                    _ => {
                        return Err(Located::new(
                            *pos,
                            format!("--{name}={v}: expected a boolean value (true or false), or --{name} alone"),
                        ));
                    }
                },
                (_, None) => {
                    return Err(Located::new(*pos, format!("--{name} needs a value; write --{name}=VALUE")));
                }
                (_, Some(v)) => v.clone(),
            };
            parsed.values.push((name.clone(), (v, *pos)));
        }
        Ok(parsed)
    }
}

/// Checked flag values.
pub struct Parsed {
    values: Vec<(String, (String, Pos))>,
}

impl Parsed {
    /// A string flag's value and position.
    pub fn string(&self, name: &str) -> Option<(String, Pos)> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.string(name).map(|(v, _)| v)
    }

    pub fn bool(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v == "true")
    }

    /// Every value of a list flag, in order.
    pub fn list(&self, name: &str) -> Vec<(String, Pos)> {
        self.values.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }
}
