//! Compose values → berth.toml values: ports, volumes, health checks and
//! durations, each checked with berth's own parser (`manifest::values`),
//! so what is written is what `berth plan` accepts; what cannot be carried
//! becomes a note.

use std::str::FromStr;

use yaml_serde::Value as Y;

use super::service::Shape;
use super::toml_out::Value;
use crate::manifest::values::{PortMapping, Tmpfs, Volume, is_name};

fn shape(at: &str, what: impl Into<String>) -> Shape {
    Shape { at: at.to_owned(), what: what.into() }
}

/// A string, number or boolean as text.
pub fn scalar(v: &Y) -> Option<String> {
    match v {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        Y::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of scalars (or one string).
pub fn strings(v: &Y, at: &str) -> Result<Vec<String>, Shape> {
    match v {
        Y::Sequence(s) => s.iter().map(|e| scalar(e).ok_or_else(|| shape(at, "entries must be strings"))).collect(),
        Y::String(s) => Ok(vec![s.clone()]),
        _ => Err(shape(at, "must be a list of strings")),
    }
}

/// `ports`: each entry as berth's `ADDR:HOST:CONTAINER[/udp]`, bound to
/// `0.0.0.0` unless Compose names an address (Compose publishes on every
/// interface; berth's own default is loopback), ranges expanded; notes for
/// the rest.
pub fn port_specs(v: &Y, at: &str) -> Result<(Vec<String>, Vec<String>), Shape> {
    let Y::Sequence(entries) = v else { return Err(shape(at, "must be a list")) };
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let (ip, host, container, proto) = match e {
            Y::Mapping(m) => {
                let target = m.get("target").and_then(scalar).ok_or_else(|| shape(&at, "needs a target port"))?;
                let host = m.get("published").and_then(scalar).unwrap_or_default();
                let ip = m.get("host_ip").and_then(scalar).unwrap_or_default();
                let proto = m.get("protocol").and_then(scalar).unwrap_or_else(|| "tcp".to_owned());
                (ip, host, target, proto)
            }
            other => {
                let text = scalar(other).ok_or_else(|| shape(&at, "must be a port string or a mapping"))?;
                split_port(&text)
            }
        };
        let shown = if host.is_empty() { container.clone() } else { format!("{host}:{container}") };
        if host.is_empty() {
            notes.push(format!("ports: {shown}: no host port; Compose picks a free one, berth needs it written"));
            continue;
        }
        if proto != "tcp" && proto != "udp" {
            notes.push(format!("ports: {shown}/{proto}: berth publishes tcp and udp only"));
            continue;
        }
        let (Some(hosts), Some(containers)) = (range(&host), range(&container)) else {
            notes.push(format!("ports: {shown}: not a port or a range of ports"));
            continue;
        };
        if hosts.len() != containers.len() {
            notes.push(format!("ports: {shown}: the two ranges differ in length"));
            continue;
        }
        let ip = match ip.as_str() {
            "" => "0.0.0.0".to_owned(),
            v6 if v6.contains(':') && !v6.starts_with('[') => format!("[{v6}]"),
            other => other.to_owned(),
        };
        let suffix = if proto == "udp" { "/udp" } else { "" };
        for (h, c) in hosts.into_iter().zip(containers) {
            let spec = format!("{ip}:{h}:{c}{suffix}");
            match PortMapping::from_str(&spec) {
                Ok(_) => out.push(spec),
                Err(e) => notes.push(format!("ports: {e}")),
            }
        }
    }
    Ok((out, notes))
}

/// `[IP:][HOST:]CONTAINER[/PROTO]` → (ip, host, container, proto).
fn split_port(text: &str) -> (String, String, String, String) {
    let (spec, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let (ip, rest) = match spec.strip_prefix('[').and_then(|s| s.split_once("]:")) {
        Some((ip, rest)) => (ip.to_owned(), rest),
        None => (String::new(), spec),
    };
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (ip, String::new(), c.to_string()),
        [c, h] => (ip, h.to_string(), c.to_string()),
        [c, h, i] => (i.to_string(), h.to_string(), c.to_string()),
        _ => (ip, String::new(), String::new()),
    };
    (ip, host, container, proto.to_owned())
}

/// `N` or `A-B` as the ports it covers.
fn range(text: &str) -> Option<Vec<u16>> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
            (a <= b).then(|| (a..=b).collect())
        }
        None => Some(vec![text.parse().ok()?]),
    }
}

/// A volume entry as berth takes it.
pub enum Mount {
    /// `SOURCE:TARGET[:ro]` for `volumes`.
    Volume(String),
    /// `PATH[:options]` for `tmpfs`.
    Tmpfs(String),
}

/// One `volumes` entry (short or long syntax); `Err` inside is a note.
pub fn volume(v: &Y, at: &str, rebase: &dyn Fn(&str) -> String) -> Result<Result<Mount, String>, Shape> {
    let (kind, source, target, read_only, size) = match v {
        Y::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [t] => (String::new(), t.to_string(), ""),
                [s, t] => (s.to_string(), t.to_string(), ""),
                [s, t, m] => (s.to_string(), t.to_string(), *m),
                _ => return Err(shape(at, format!("{s:?} is not SOURCE:TARGET[:MODE]"))),
            };
            let read_only = mode.split(',').any(|m| m == "ro");
            let bind = source.starts_with(['/', '.', '~']);
            (if bind { "bind" } else { "volume" }.to_owned(), source, target, read_only, None)
        }
        Y::Mapping(m) => {
            let kind = m.get("type").and_then(scalar).unwrap_or_else(|| "volume".to_owned());
            let source = m.get("source").and_then(scalar).unwrap_or_default();
            let target = m.get("target").and_then(scalar).ok_or_else(|| shape(at, "needs a target"))?;
            let read_only = matches!(m.get("read_only"), Some(Y::Bool(true)));
            let size = m.get("tmpfs").and_then(|t| t.get("size")).and_then(scalar);
            (kind, source, target, read_only, size)
        }
        _ => return Err(shape(at, "must be a string or a mapping")),
    };
    let mount = match kind.as_str() {
        "tmpfs" => {
            let spec = match size {
                Some(size) => format!("{target}:size={size}"),
                None => target.clone(),
            };
            return Ok(match Tmpfs::from_str(&spec) {
                Ok(_) => Ok(Mount::Tmpfs(spec)),
                Err(e) => Err(format!("volumes: {e}")),
            });
        }
        _ if source.is_empty() => {
            return Ok(Err(format!(
                "volumes: {target}: an anonymous volume; berth has named volumes only: write NAME:{target}"
            )));
        }
        "bind" => rebase(&source),
        "volume" if is_name(&source) => source,
        "volume" => {
            return Ok(Err(format!(
                "volumes: {source:?} is not a berth volume name (lower-case letters, digits, '_', '.', '-'); rename it"
            )));
        }
        other => return Ok(Err(format!("volumes: type {other} is not supported"))),
    };
    let spec = format!("{mount}:{target}{}", if read_only { ":ro" } else { "" });
    Ok(match Volume::from_str(&spec) {
        Ok(_) => Ok(Mount::Volume(spec)),
        Err(e) => Err(format!("volumes: {e}")),
    })
}

/// `healthcheck` → berth's `health` (None when disabled), with notes.
pub fn health(v: &Y, at: &str) -> Result<(Option<Value>, Vec<String>), Shape> {
    let Y::Mapping(m) = v else { return Err(shape(at, "must be a mapping")) };
    let mut notes = Vec::new();
    if matches!(m.get("disable"), Some(Y::Bool(true))) {
        return Ok((None, notes));
    }
    let cmd = match m.get("test") {
        Some(Y::String(s)) => Value::Str(s.clone()),
        Some(t @ Y::Sequence(_)) => {
            let words = strings(t, &format!("{at}.test"))?;
            match words.split_first() {
                Some((first, _)) if first == "NONE" => return Ok((None, notes)),
                Some((first, rest)) if first == "CMD" => Value::strings(rest.to_vec()),
                Some((first, [shell])) if first == "CMD-SHELL" => Value::Str(shell.clone()),
                _ => return Err(shape(&format!("{at}.test"), "must start with CMD, CMD-SHELL (one string) or NONE")),
            }
        }
        Some(_) => return Err(shape(&format!("{at}.test"), "must be a string or a list")),
        // A check that only changes the timing of the image's own: berth cannot
        // see the image's HEALTHCHECK here.
        None => {
            notes.push("healthcheck: no test; berth does not take the image's own health check".to_owned());
            return Ok((None, notes));
        }
    };
    let mut fields = vec![("cmd".to_owned(), cmd)];
    for key in ["interval", "timeout", "start_period"] {
        if let Some(d) = m.get(key).and_then(scalar) {
            match duration(&d) {
                Ok(d) => fields.push((key.to_owned(), Value::Str(d))),
                Err(e) => notes.push(format!("healthcheck.{key}: {e}")),
            }
        }
    }
    if let Some(r) = m.get("retries") {
        match scalar(r).and_then(|r| r.parse::<i64>().ok()) {
            Some(r) if r > 0 => fields.push(("retries".to_owned(), Value::Int(r))),
            _ => notes.push("healthcheck.retries: berth needs a number above 0".to_owned()),
        }
    }
    if m.contains_key("start_interval") {
        notes.push("healthcheck.start_interval: not supported; checks run every interval".to_owned());
    }
    Ok((Some(Value::Table(fields)), notes))
}

/// A Go duration (`1m30s`, `1.5s`, `250ms`, `10us`) as a berth duration
/// (whole milliseconds or seconds).
pub fn duration(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not a duration such as 30s or 1m30s");
    let mut rest = text.trim();
    let mut nanos = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += value * scale;
        rest = &rest[unit_len..];
    }
    let ms = (nanos / 1e6).ceil() as u64;
    Ok(if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(text: &str) -> Y {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn ports_short_and_long() {
        let (ports, notes) = port_specs(
            &y("['8080:80', '127.0.0.1:5353:53/udp', '9000-9001:9000-9001', '80', {target: 81, published: '8081', host_ip: '::1'}, '1:2/sctp']"),
            "p",
        )
        .unwrap_or_else(|s| panic!("{}", s.what));
        assert_eq!(
            ports,
            ["0.0.0.0:8080:80", "127.0.0.1:5353:53/udp", "0.0.0.0:9000:9000", "0.0.0.0:9001:9001", "[::1]:8081:81"]
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("no host port") && notes[1].contains("sctp"), "{notes:?}");
    }

    #[test]
    fn volumes_short_and_long() {
        let rebase = |p: &str| p.to_owned();
        let one = |v: &str| match volume(&y(v), "v", &rebase).unwrap_or_else(|s| panic!("{}", s.what)) {
            Ok(Mount::Volume(s)) => s,
            Ok(Mount::Tmpfs(t)) => format!("tmpfs {t}"),
            Err(note) => format!("note {note}"),
        };
        assert_eq!(one("'data:/var/lib/data'"), "data:/var/lib/data");
        assert_eq!(one("'./conf:/etc/app:ro,z'"), "./conf:/etc/app:ro");
        assert_eq!(one("{type: bind, source: /srv, target: /srv, read_only: true}"), "/srv:/srv:ro");
        assert_eq!(one("{type: tmpfs, target: /run, tmpfs: {size: 1000000}}"), "tmpfs /run:size=1000000");
        assert!(one("'/anon'").starts_with("note volumes: /anon: an anonymous volume"));
        assert!(one("'My_Data:/d'").starts_with("note volumes: \"My_Data\""));
    }

    #[test]
    fn health_checks_and_durations() {
        let (h, notes) = health(
            &y("{test: [CMD, wget, -q, localhost], interval: 1m30s, timeout: 1.5s, retries: 5, start_interval: 1s}"),
            "h",
        )
        .unwrap_or_else(|s| panic!("{}", s.what));
        assert_eq!(
            h.unwrap().render(),
            r#"{ cmd = ["wget", "-q", "localhost"], interval = "90s", timeout = "1500ms", retries = 5 }"#
        );
        assert_eq!(notes.len(), 1);
        let (h, _) =
            health(&y("{test: [CMD-SHELL, 'pg_isready || exit 1']}"), "h").unwrap_or_else(|s| panic!("{}", s.what));
        assert_eq!(h.unwrap().render(), r#"{ cmd = "pg_isready || exit 1" }"#);
        assert!(health(&y("{disable: true}"), "h").unwrap_or_else(|s| panic!("{}", s.what)).0.is_none());
        assert_eq!(duration("10us").unwrap(), "1ms");
        assert_eq!(duration("1h").unwrap(), "3600s");
        assert!(duration("5").is_err() && duration("").is_err() && duration("3d").is_err());
    }
}
