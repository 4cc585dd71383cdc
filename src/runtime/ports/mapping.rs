//! [`PortMapping`]: the one type and the one parser of a published port.
//!
//! The manifest's `ports`, `berth run -p`, the container record and the
//! proxy all hold this type; its text form is parsed here only
//! ([`FromStr`]), and serde goes through the same parser, so no other
//! module reads or writes the text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::Deserialize as _;
use serde::de::{self, MapAccess, Visitor, value::MapAccessDeserializer};

use super::PortError;

/// The transport of a published port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// One published port, `[ADDR:]HOST:CONTAINER[/tcp|/udp]`: what reaches
/// `host` (TCP connections or UDP datagrams) is forwarded to
/// `container_port` inside the container.
///
/// Parsed from text only by [`FromStr`], which refuses port 0; code may
/// build one with host port 0 to take any free port (see
/// [`ProxySet::published`](super::ProxySet::published)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Where the host side listens; 127.0.0.1 unless an address is given.
    pub host: SocketAddr,
    /// The port inside the container.
    pub container_port: u16,
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = PortError;

    /// `[ADDR:]HOST:CONTAINER[/tcp|/udp]`: ADDR an IP address (IPv6 in
    /// brackets), 127.0.0.1 when left out; both ports from 1 to 65535.
    fn from_str(input: &str) -> Result<PortMapping, PortError> {
        let fail = |reason: String| PortError::Parse { input: input.to_owned(), reason };
        let (mapping, protocol) = match input.rsplit_once('/') {
            None => (input, Protocol::Tcp),
            Some((mapping, "tcp")) => (mapping, Protocol::Tcp),
            Some((mapping, "udp")) => (mapping, Protocol::Udp),
            Some((_, other)) => {
                return Err(fail(format!("the protocol {other:?} must be tcp (the default) or udp")));
            }
        };
        let (ip, ports) = if let Some(rest) = mapping.strip_prefix('[') {
            let (ip, ports) =
                rest.split_once("]:").ok_or_else(|| fail("missing \"]:\" after the IPv6 address".to_owned()))?;
            match ip.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V6(_)) => (ip, ports),
                Ok(IpAddr::V4(_)) => return Err(fail(format!("only IPv6 addresses go in brackets; write {ip}:…"))),
                Err(_) => return Err(fail(format!("{ip:?} is not an IPv6 address"))),
            }
        } else {
            match mapping.matches(':').count() {
                0 => return Err(fail("both a host and a container port are needed".to_owned())),
                1 => (IpAddr::V4(Ipv4Addr::LOCALHOST), mapping),
                2 => {
                    let (ip, ports) = mapping.split_once(':').unwrap_or_default();
                    let ip: IpAddr = ip.parse().map_err(|_| fail(format!("{ip:?} is not an IP address")))?;
                    (ip, ports)
                }
                _ => return Err(fail("an IPv6 address goes in brackets, as in [::1]:8080:80".to_owned())),
            }
        };
        let (host_port, container_port) =
            ports.split_once(':').ok_or_else(|| fail("both a host and a container port are needed".to_owned()))?;
        if host_port.is_empty() {
            return Err(fail("the host port is missing; name the one to publish on, as in 8080:80".to_owned()));
        }
        let host_port = port(host_port).map_err(fail)?;
        let container_port = port(container_port).map_err(fail)?;
        Ok(PortMapping { host: SocketAddr::new(ip, host_port), container_port, protocol })
    }
}

fn port(s: &str) -> Result<u16, String> {
    if s.contains('-') && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(format!("{s:?} is a range, which berth does not publish; publish each port"));
    }
    match s.parse::<u16>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("{s:?} is not a port between 1 and 65535")),
    }
}

impl PortMapping {
    /// The form `docker ps` lists: `127.0.0.1:8080->80/tcp`.
    pub fn listing(&self) -> String {
        format!("{}->{}/{}", self.host, self.container_port, self.protocol)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl fmt::Display for PortMapping {
    /// The form [`FromStr`] reads, in full: `127.0.0.1:8080:80/tcp`,
    /// `[::1]:5353:53/udp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr shows an IPv6 address in brackets.
        write!(f, "{}:{}/{}", self.host, self.container_port, self.protocol)
    }
}

impl serde::Serialize for PortMapping {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PortMapping {
    /// The text form, through [`FromStr`]; also the table
    /// `{host_addr, host_port, container_port, protocol}` that env specs
    /// (and so frozen archives) held before, checked by the same parser.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PortMapping, D::Error> {
        deserializer.deserialize_any(MappingVisitor)
    }
}

struct MappingVisitor;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    host_addr: IpAddr,
    host_port: u16,
    container_port: u16,
    protocol: Protocol,
}

impl<'de> Visitor<'de> for MappingVisitor {
    type Value = PortMapping;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a port mapping such as \"127.0.0.1:8080:80/tcp\"")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<PortMapping, E> {
        s.parse().map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortMapping, A::Error> {
        let old = Fields::deserialize(MapAccessDeserializer::new(map))?;
        let text = format!("{}:{}/{}", SocketAddr::new(old.host_addr, old.host_port), old.container_port, old.protocol);
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host: &str, container_port: u16, protocol: Protocol) -> PortMapping {
        PortMapping { host: host.parse().expect("socket address"), container_port, protocol }
    }

    #[test]
    fn parses_mappings() {
        let cases = [
            ("8080:80", mapping("127.0.0.1:8080", 80, Protocol::Tcp)),
            ("8080:80/tcp", mapping("127.0.0.1:8080", 80, Protocol::Tcp)),
            ("5353:53/udp", mapping("127.0.0.1:5353", 53, Protocol::Udp)),
            ("0.0.0.0:8443:443", mapping("0.0.0.0:8443", 443, Protocol::Tcp)),
            ("10.1.2.3:1:65535", mapping("10.1.2.3:1", 65535, Protocol::Tcp)),
            ("[::1]:5432:5432", mapping("[::1]:5432", 5432, Protocol::Tcp)),
            ("[::]:53:53/udp", mapping("[::]:53", 53, Protocol::Udp)),
        ];
        for (input, expected) in cases {
            let parsed = input.parse::<PortMapping>().expect(input);
            assert_eq!(parsed, expected, "{input}");
            // The text form reads back as the same value.
            assert_eq!(parsed.to_string().parse::<PortMapping>().expect("reparse"), parsed, "{input}");
        }
    }

    #[test]
    fn rejects_bad_mappings_saying_what_is_wrong() {
        let cases = [
            ("80", "both a host and a container port are needed"),
            ("8080:0", "\"0\" is not a port between 1 and 65535"),
            ("0:80", "\"0\" is not a port between 1 and 65535"),
            ("8080:", "\"\" is not a port between 1 and 65535"),
            (":80", "the host port is missing"),
            ("127.0.0.1::80", "the host port is missing"),
            ("8080:80/sctp", "the protocol \"sctp\" must be tcp (the default) or udp"),
            ("8080:80/UDP", "the protocol \"UDP\" must be tcp"),
            ("8080-8081:80-81", "\"8080-8081\" is a range"),
            ("70000:80", "\"70000\" is not a port between 1 and 65535"),
            ("+80:80", "\"+80\" is not a port"),
            ("localhost:8080:80", "\"localhost\" is not an IP address"),
            ("::1:8080:80", "an IPv6 address goes in brackets"),
            ("[::1]8080:80", "missing \"]:\""),
            ("[127.0.0.1]:8080:80", "only IPv6 addresses go in brackets"),
            ("[fe80::zz]:1:2", "is not an IPv6 address"),
            ("[::1]:8080", "both a host and a container port are needed"),
        ];
        for (input, message) in cases {
            let err = input.parse::<PortMapping>().expect_err(input).to_string();
            assert!(err.starts_with(&format!("bad port mapping {input:?}: ")), "{input}: {err}");
            assert!(err.contains(message), "{input}: {err}");
            assert!(err.ends_with(super::super::EXPECTED_MAPPING), "{err}");
        }
    }

    #[test]
    fn shows_and_serializes_through_the_parser() {
        let p: PortMapping = "[::1]:5353:53/udp".parse().expect("parse");
        assert_eq!(p.listing(), "[::1]:5353->53/udp");
        let json = serde_json::to_string(&p).expect("serialize");
        assert_eq!(json, "\"[::1]:5353:53/udp\"");
        assert_eq!(serde_json::from_str::<PortMapping>(&json).expect("deserialize"), p);
        let v4: PortMapping = "8080:80".parse().expect("parse");
        assert_eq!(serde_json::to_string(&v4).expect("serialize"), "\"127.0.0.1:8080:80/tcp\"");
        let err = serde_json::from_str::<PortMapping>("\"80\"").expect_err("no container port").to_string();
        assert!(err.contains("both a host and a container port"), "{err}");
    }

    #[test]
    fn reads_the_table_form_of_older_env_specs() {
        let old = r#"{"host_addr":"::1","host_port":5353,"container_port":53,"protocol":"udp"}"#;
        let p: PortMapping = serde_json::from_str(old).expect("the old form");
        assert_eq!(p, mapping("[::1]:5353", 53, Protocol::Udp));
        let zero = r#"{"host_addr":"127.0.0.1","host_port":0,"container_port":53,"protocol":"tcp"}"#;
        assert!(serde_json::from_str::<PortMapping>(zero).is_err(), "the same parser checks it");
    }
}
