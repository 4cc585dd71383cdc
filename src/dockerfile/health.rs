//! `HEALTHCHECK NONE` and `HEALTHCHECK [OPTIONS] CMD …`, with durations
//! written as Go writes them (`30s`, `1m30s`, `500ms`).

use std::time::Duration;

use super::error::{Located, Pos};
use super::flags::{Flags, Kind};
use super::instruction::{Health, HealthCheck, Instruction};
use super::parse::not_strings;
use super::words::{self, Json};

/// Parses `HEALTHCHECK`'s arguments (after its flags were split off).
pub fn parse(flags: &Flags, args: &str, pos: Pos, kw: Pos) -> Result<Instruction, Located> {
    let end = args.find(char::is_whitespace).unwrap_or(args.len());
    let kind = args[..end].to_ascii_uppercase();
    let rest = args[end..].trim_start();
    if kind.is_empty() {
        return Err(Located::new(kw, "HEALTHCHECK needs NONE or CMD: HEALTHCHECK [OPTIONS] CMD command"));
    }
    if kind == "NONE" {
        if !rest.is_empty() {
            return Err(Located::new(pos, "HEALTHCHECK NONE takes no arguments"));
        }
        flags.check("HEALTHCHECK NONE", &[])?;
        return Ok(Instruction::Healthcheck(Health::None));
    }
    let spec = [
        ("interval", Kind::String),
        ("timeout", Kind::String),
        ("start-period", Kind::String),
        ("start-interval", Kind::String),
        ("retries", Kind::String),
    ];
    let f = flags.check("HEALTHCHECK", &spec)?;
    if kind != "CMD" {
        return Err(Located::new(pos, format!("unknown HEALTHCHECK type {:?}; use CMD or NONE", &args[..end])));
    }
    let test = match words::json_array(rest) {
        Json::Array(v) if v.is_empty() => {
            return Err(Located::new(pos, "HEALTHCHECK CMD needs a command after CMD"));
        }
        Json::Array(v) => std::iter::once("CMD".to_owned()).chain(v).collect(),
        Json::NotStrings => return Err(not_strings(pos)),
        Json::NotJson if rest.is_empty() => return Err(Located::new(pos, "HEALTHCHECK CMD needs a command after CMD")),
        Json::NotJson => vec!["CMD-SHELL".to_owned(), rest.to_owned()],
    };
    let duration = |flag: &str| -> Result<Option<Duration>, Located> {
        let Some((v, p)) = f.string(flag) else { return Ok(None) };
        let d = go_duration(&v).map_err(|m| Located::new(p, format!("--{flag}={v}: {m}")))?;
        if d.is_zero() {
            return Ok(None);
        }
        if d < Duration::from_millis(1) {
            return Err(Located::new(p, format!("--{flag}={v} is shorter than the minimum of 1ms")));
        }
        Ok(Some(d))
    };
    let retries =
        match f.string("retries") {
            None => None,
            Some((v, p)) => Some(v.parse::<u32>().map_err(|_| {
                Located::new(p, format!("--retries={v}: expected a whole number of retries, 0 or more"))
            })?),
        };
    Ok(Instruction::Healthcheck(Health::Check(HealthCheck {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })))
}

/// A duration as Go writes them: `1h30m`, `2.5s`, `300ms`, `0`.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: expected numbers with units (ns, us, ms, s, m, h), such as 30s or 1m30s");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += number * unit;
        rest = &rest[u..];
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}
