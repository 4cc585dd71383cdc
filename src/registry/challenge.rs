//! `WWW-Authenticate` challenges, as registries send them with a 401:
//! `Basic realm="Registry"` or
//! `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`.
//!
//! Parsing is pure and strict enough to be safe: parameter names are
//! case-insensitive, values are tokens or quoted strings with `\` escapes,
//! and anything unparsable is simply not a challenge berth can answer.

/// What a registry asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic: send the user name and password with every request.
    Basic,
    /// The token flow: get a token from `realm` for `service` and `scope`,
    /// then send it as `Authorization: Bearer TOKEN`.
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// The challenge in a `WWW-Authenticate` header value, if berth can
    /// answer it.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
        let params = params(rest)?;
        let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let realm = get("realm").filter(|r| r.starts_with("https://") || r.starts_with("http://"))?;
            Some(Challenge::Bearer { realm, service: get("service"), scope: get("scope") })
        } else {
            None
        }
    }
}

/// `k=v, k="v", …` as pairs; `None` when malformed.
fn params(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if s.is_empty() {
            return Some(out);
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return None;
        }
        s = s[eq + 1..].trim_start();
        let value = if let Some(quoted) = s.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => value.push(chars.next()?.1),
                    (_, c) => value.push(c),
                }
            };
            s = &quoted[end + 1..];
            value
        } else {
            let end = s.find(',').unwrap_or(s.len());
            let value = s[..end].trim().to_owned();
            s = &s[end..];
            value
        };
        out.push((name.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_style_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#;
        assert_eq!(
            Challenge::parse(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/debian:pull".into()),
            })
        );
    }

    #[test]
    fn parses_basic_and_odd_spacing() {
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("basic"), Some(Challenge::Basic));
        let h = r#"bearer  realm = "http://127.0.0.1:1/t" , Service=reg,scope="repository:a:pull,push""#;
        assert_eq!(
            Challenge::parse(h),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("reg".into()),
                scope: Some("repository:a:pull,push".into()),
            })
        );
    }

    #[test]
    fn quoted_values_keep_escapes_and_commas() {
        let h = r#"Bearer realm="https://a/t",scope="x\"y,z""#;
        let Some(Challenge::Bearer { scope, .. }) = Challenge::parse(h) else { panic!() };
        assert_eq!(scope.as_deref(), Some("x\"y,z"));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        for bad in ["Negotiate abc", "Bearer service=x", r#"Bearer realm="ftp://x""#, r#"Bearer realm="https://x"#, ""]
        {
            assert_eq!(Challenge::parse(bad), None, "{bad}");
        }
    }
}
