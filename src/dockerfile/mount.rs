//! `RUN --mount=…`: the mount types berth will carry out (`bind`, `cache`,
//! `tmpfs`) with their options, as BuildKit reads them (comma-separated
//! `key=value` fields, quotes allowed, some bare boolean keys).

use super::error::{Located, Pos};

/// What a RUN mount is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Files from the context or another stage/image (read-only by default).
    Bind,
    /// A directory kept between builds (`id`, `sharing`, `mode`, `uid`, `gid`).
    Cache,
    /// An empty in-memory directory.
    Tmpfs,
}

/// `--mount=type=cache` sharing modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    pub kind: MountKind,
    pub target: String,
    /// Path inside `from` (or the context), `bind` and `cache`.
    pub source: Option<String>,
    /// A stage name or image the source comes from.
    pub from: Option<String>,
    pub readonly: bool,
    /// Cache id (defaults to the target, as BuildKit's does).
    pub id: Option<String>,
    pub sharing: Sharing,
    /// Octal mode of a new cache directory (default 0755).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
}

/// Splits CSV fields: commas separate, double quotes group (`""` is a quote).
fn fields(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = value.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    out.push(field);
    Ok(out)
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(format!("invalid value {other:?} for {key}: expected true or false")),
    }
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(v, radix).map_err(|_| format!("invalid value {v:?} for {key}: expected a number"))
}

/// Parses one `--mount` value; `pos` is the flag's position.
pub fn parse(value: &str, pos: Pos) -> Result<Mount, Located> {
    parse_fields(value).map_err(|m| Located::new(pos, format!("--mount={value}: {m}")))
}

fn parse_fields(value: &str) -> Result<Mount, String> {
    let mut m = Mount {
        kind: MountKind::Bind,
        target: String::new(),
        source: None,
        from: None,
        readonly: true,
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
    };
    let mut readonly: Option<bool> = None;
    let fields = fields(value)?;
    // The type decides the defaults, so read it first wherever it stands.
    for f in &fields {
        if let Some(("type", t)) = f.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            m.kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountKind::Bind,
                "cache" => MountKind::Cache,
                "tmpfs" => MountKind::Tmpfs,
                "secret" | "ssh" => {
                    return Err(format!("type={t} is not supported by berth yet; use type=bind, cache or tmpfs"));
                }
                _ => return Err(format!("unknown mount type {t:?}; expected bind, cache or tmpfs")),
            };
        }
    }
    for f in fields.iter().filter(|f| !f.trim().is_empty()) {
        let (key, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (f.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| v.map(str::to_owned).ok_or(format!("field {key:?} must be a key=value pair"));
        match key.as_str() {
            "type" => {}
            "from" => m.from = Some(need(v)?),
            "source" | "src" => m.source = Some(need(v)?),
            "target" | "dst" | "destination" => m.target = need(v)?,
            "readonly" | "ro" => readonly = Some(parse_bool(&key, v)?),
            "readwrite" | "rw" => readonly = Some(!parse_bool(&key, v)?),
            "id" if m.kind == MountKind::Cache => m.id = Some(need(v)?),
            "sharing" if m.kind == MountKind::Cache => {
                m.sharing = match need(v)?.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => return Err(format!("unknown sharing {other:?}; expected shared, private or locked")),
                }
            }
            "mode" if m.kind == MountKind::Cache => m.mode = Some(parse_u32(&key, &need(v)?, 8)?),
            "uid" if m.kind == MountKind::Cache => m.uid = Some(parse_u32(&key, &need(v)?, 10)?),
            "gid" if m.kind == MountKind::Cache => m.gid = Some(parse_u32(&key, &need(v)?, 10)?),
            "size" if m.kind == MountKind::Tmpfs => {
                let s = need(v)?;
                m.size = Some(s.parse().map_err(|_| format!("invalid size {s:?}: expected a number of bytes"))?);
            }
            _ => {
                return Err(format!(
                    "unexpected key {key:?} for a {} mount",
                    format!("{:?}", m.kind).to_ascii_lowercase()
                ));
            }
        }
    }
    if m.target.is_empty() {
        return Err("the mount needs a target; add target=/PATH".into());
    }
    m.readonly = readonly.unwrap_or(m.kind == MountKind::Bind);
    if m.kind == MountKind::Tmpfs && m.from.is_some() {
        return Err("a tmpfs mount takes no `from`".into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_and_bind_mounts_with_their_defaults() {
        let m =
            parse("type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0700,uid=1000", Pos::default()).unwrap();
        assert_eq!((m.kind.clone(), m.readonly, m.sharing), (MountKind::Cache, false, Sharing::Locked));
        assert_eq!((m.id.as_deref(), m.mode, m.uid), (Some("pip"), Some(0o700), Some(1000)));
        let m = parse("target=/src,from=build,source=/out", Pos::default()).unwrap();
        assert_eq!((m.kind.clone(), m.readonly, m.from.as_deref()), (MountKind::Bind, true, Some("build")));
        let m = parse("type=bind,target=/src,rw", Pos::default()).unwrap();
        assert!(!m.readonly);
    }

    #[test]
    fn bad_mounts_say_what_would_be_right() {
        let e = |v| parse(v, Pos::new(3, 5)).unwrap_err().message;
        assert!(e("type=cache").contains("add target=/PATH"));
        assert!(e("type=secret,id=x").contains("not supported by berth yet"));
        assert!(e("type=bind,target=/x,sharing=locked").contains("unexpected key \"sharing\""));
        assert!(e("type=weird,target=/x").contains("expected bind, cache or tmpfs"));
    }
}
