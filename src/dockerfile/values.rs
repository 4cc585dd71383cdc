//! Typed values the Dockerfile frontend checks after substitution.

use std::fmt;
use std::str::FromStr;

/// `EXPOSE PORT[-END][/PROTO]`: a port or a range, `tcp` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ExposedPort {
    pub start: u16,
    pub end: u16,
    pub proto: Proto,
}

/// The protocols EXPOSE knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl ExposedPort {
    /// Every port of the range as the image config names them (`80/tcp`).
    pub fn config_keys(&self) -> Vec<String> {
        (self.start..=self.end).map(|p| format!("{p}/{}", self.proto)).collect()
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        })
    }
}

impl fmt::Display for ExposedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}/{}", self.start, self.proto)
        } else {
            write!(f, "{}-{}/{}", self.start, self.end, self.proto)
        }
    }
}

impl FromStr for ExposedPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("bad EXPOSE port {s:?}: {why}; expected PORT[-END][/tcp|/udp|/sctp], such as 80 or 53/udp")
        };
        let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            _ => return Err(bad("unknown protocol")),
        };
        let number = |p: &str| p.parse::<u16>().map_err(|_| bad(&format!("{p:?} is not a port between 0 and 65535")));
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(ports)?, number(ports)?),
        };
        if end < start {
            return Err(bad("the range ends before it starts"));
        }
        Ok(ExposedPort { start, end, proto })
    }
}

/// Checks a STOPSIGNAL value as Docker does: a number from 1 to 64, or a
/// signal name with or without `SIG`, in any case (`TERM`, `sigquit`,
/// `SIGRTMIN+3`). The image keeps the value as written.
pub fn check_signal(value: &str) -> Result<(), String> {
    let bad = || {
        format!("STOPSIGNAL {value}: no such signal; use a name such as SIGTERM or SIGQUIT, or a number from 1 to 64")
    };
    if let Ok(n) = value.parse::<u8>() {
        return if (1..=64).contains(&n) { Ok(()) } else { Err(bad()) };
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str, sign: char| {
        name.strip_prefix(base).is_some_and(|rest| {
            rest.is_empty()
                || rest.strip_prefix(sign).and_then(|n| n.parse::<u8>().ok()).is_some_and(|n| (1..=15).contains(&n))
        })
    };
    if realtime("RTMIN", '+') || realtime("RTMAX", '-') {
        return Ok(());
    }
    format!("SIG{name}").parse::<nix::sys::signal::Signal>().map(|_| ()).map_err(|_| bad())
}
