//! Wildcards in COPY and ADD sources, matched as BuildKit matches them
//! (fsutil's `ResolveWildcards`): the source is split at its first path
//! component holding `*`, `?` or `[` (a `\` escapes the next character);
//! the part before it must exist, and the rest is matched component by
//! component with Go's `filepath.Match` against the paths under it (`*` and
//! `?` never match `/`, `[a-c]`, `[^a-c]` classes, `\` escapes; `**` is two
//! stars, nothing more). Directories on the way are entered, symlinks are
//! not; a directory that matches is a source of its own. Matches come in
//! lexical path order. A pattern that matches nothing is no error: BuildKit
//! copies nothing for it.
//!
//! The tree is anything that lists a directory ([`Lister`]): the build
//! context with `.dockerignore` applied, or a stage's layers.

/// Lists one directory of a tree: `(name, is a real directory)`, sorted by
/// name; `None` when `dir` is not a directory. `dir` is relative, `""` for
/// the root.
pub trait Lister {
    fn list(&self, dir: &str) -> std::io::Result<Option<Vec<(String, bool)>>>;
}

/// Whether `p` holds a wildcard (`*`, `?`, `[` not escaped by `\`).
pub fn has_wildcards(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The components before the first that holds a wildcard, and the rest.
pub fn split(p: &str) -> (Vec<&str>, Vec<&str>) {
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    match parts.iter().position(|c| has_wildcards(c)) {
        Some(i) => (parts[..i].to_vec(), parts[i..].to_vec()),
        None => (parts, Vec::new()),
    }
}

/// The paths (relative to the tree's root, `/`-separated) `pattern` matches
/// in `tree`, in lexical order. An error when the part before the first
/// wildcard does not exist or a pattern is malformed.
pub fn expand(tree: &dyn Lister, pattern: &str) -> Result<Vec<String>, String> {
    let (base, rest) = split(pattern);
    let base = base.join("/");
    if rest.is_empty() {
        return Ok(vec![base]);
    }
    for seg in &rest {
        segment_matches(seg, "").map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
    }
    let mut out = Vec::new();
    match tree.list(&base).map_err(|e| format!("{base}: {e}"))? {
        None => return Err(format!("{} does not exist", if base.is_empty() { "." } else { &base })),
        Some(entries) => walk(tree, &base, entries, &rest, &mut out)?,
    }
    Ok(out)
}

fn walk(
    tree: &dyn Lister,
    dir: &str,
    entries: Vec<(String, bool)>,
    rest: &[&str],
    out: &mut Vec<String>,
) -> Result<(), String> {
    for (name, is_dir) in entries {
        if !segment_matches(rest[0], &name)? {
            continue;
        }
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        if rest.len() == 1 {
            out.push(path);
        } else if is_dir && let Some(children) = tree.list(&path).map_err(|e| format!("{path}: {e}"))? {
            walk(tree, &path, children, &rest[1..], out)?;
        }
    }
    Ok(())
}

/// Go's `filepath.Match` for one path component.
pub fn segment_matches(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_at(&p, &n)
}

fn matches_at(p: &[char], n: &[char]) -> Result<bool, String> {
    if p.is_empty() {
        return Ok(n.is_empty());
    }
    match p[0] {
        '*' => {
            // Check the rest of the pattern is well formed even when the name ran out.
            for k in 0..=n.len() {
                if matches_at(&p[1..], &n[k..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => Ok(!n.is_empty() && matches_at(&p[1..], &n[1..])?),
        '[' => {
            let (hit, used) = class(&p[1..], n.first().copied())?;
            Ok(hit && matches_at(&p[1 + used..], &n[1..])?)
        }
        '\\' => {
            let c = *p.get(1).ok_or("a trailing \\ escapes nothing")?;
            Ok(n.first() == Some(&c) && matches_at(&p[2..], &n[1..])?)
        }
        c => Ok(n.first() == Some(&c) && matches_at(&p[1..], &n[1..])?),
    }
}

/// A `[…]` class after its `[`: whether `c` is in it, and how many pattern
/// characters it took (the closing `]` included).
fn class(p: &[char], c: Option<char>) -> Result<(bool, usize), String> {
    let bad = || "an unterminated or malformed [class]".to_owned();
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let ch = *p.get(i).ok_or_else(bad)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = escaped(p, &mut i).ok_or_else(bad)?;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            escaped(p, &mut i).ok_or_else(bad)?
        } else {
            lo
        };
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            hit = true;
        }
    }
    Ok((c.is_some() && hit != negated, i))
}

fn escaped(p: &[char], i: &mut usize) -> Option<char> {
    let mut c = *p.get(*i)?;
    if c == '\\' {
        *i += 1;
        c = *p.get(*i)?;
    }
    *i += 1;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<&'static str>);

    impl Lister for Fake {
        fn list(&self, dir: &str) -> std::io::Result<Option<Vec<(String, bool)>>> {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            if !dir.is_empty() && !self.0.iter().any(|p| p.starts_with(&prefix)) {
                return Ok(None);
            }
            let mut out: Vec<(String, bool)> = Vec::new();
            for p in &self.0 {
                if let Some(rest) = p.strip_prefix(&prefix) {
                    let (name, deeper) = match rest.split_once('/') {
                        Some((n, _)) => (n, true),
                        None => (rest, false),
                    };
                    if let Some(e) = out.iter_mut().find(|(n, _)| n == name) {
                        e.1 |= deeper;
                    } else {
                        out.push((name.to_owned(), deeper));
                    }
                }
            }
            out.sort();
            Ok(Some(out))
        }
    }

    #[test]
    fn go_filepath_match_per_component() {
        for (p, n, want) in [
            ("*.py", "a.py", true),
            ("*.py", ".hidden.py", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("**", "deep", true),
            ("*", "", true),
        ] {
            assert_eq!(segment_matches(p, n).unwrap(), want, "{p} {n}");
        }
        assert!(segment_matches("[abc", "a").is_err());
    }

    #[test]
    fn expands_in_lexical_order_and_only_under_an_existing_base() {
        let tree = Fake(vec!["a.py", "b.py", "c.txt", "src/x/conf", "src/y/conf", "src/y/other", "src/z"]);
        assert_eq!(expand(&tree, "*.py").unwrap(), ["a.py", "b.py"]);
        assert_eq!(expand(&tree, "src/*/conf").unwrap(), ["src/x/conf", "src/y/conf"]);
        assert_eq!(expand(&tree, "./src/*").unwrap(), ["src/x", "src/y", "src/z"]);
        assert!(expand(&tree, "*.none").unwrap().is_empty(), "no match is no error");
        assert!(expand(&tree, "missing/*.py").unwrap_err().contains("missing does not exist"));
        assert_eq!(expand(&tree, "plain/path").unwrap(), ["plain/path"]);
        assert!(!has_wildcards("a\\*b") && has_wildcards("a[b]"));
    }
}
