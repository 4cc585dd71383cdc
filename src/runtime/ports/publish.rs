//! The checked port mapping, parsed once from `-p`/the manifest.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use super::PortError;

/// The transport of a published port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Tcp,
}

/// One published port: connections to `host` are forwarded to
/// `container_port` inside the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Publish {
    /// Where the shim listens. Port 0 takes any free port
    /// (see [`ProxySet::published`](super::ProxySet::published)).
    pub host: SocketAddr,
    /// The port inside the container; never 0.
    pub container_port: u16,
    pub protocol: Protocol,
}

impl FromStr for Publish {
    type Err = PortError;

    /// `[ADDR:]HOST:CONTAINER[/tcp]`; an IPv6 ADDR in brackets; HOST may be
    /// empty (`127.0.0.1::80`) for any free port.
    fn from_str(input: &str) -> Result<Publish, PortError> {
        let fail = |reason: &str| PortError::Parse { input: input.to_owned(), reason: reason.to_owned() };
        let (mapping, protocol) = match input.rsplit_once('/') {
            None => (input, Protocol::Tcp),
            Some((mapping, "tcp")) => (mapping, Protocol::Tcp),
            Some((_, "udp")) => return Err(fail("UDP ports cannot be published yet, only TCP")),
            Some((_, other)) => return Err(fail(&format!("unknown protocol {other:?}"))),
        };
        let (ip, ports) = if let Some(rest) = mapping.strip_prefix('[') {
            let (ip, ports) = rest.split_once("]:").ok_or_else(|| fail("missing \"]:\" after the IPv6 address"))?;
            let ip: IpAddr = ip.parse().map_err(|_| fail(&format!("{ip:?} is not an IPv6 address")))?;
            if ip.is_ipv4() {
                return Err(fail("only IPv6 addresses go in brackets"));
            }
            (ip, ports)
        } else {
            match mapping.matches(':').count() {
                1 => (IpAddr::V4(Ipv4Addr::LOCALHOST), mapping),
                2 => {
                    let (ip, ports) = mapping.split_once(':').unwrap_or_default();
                    let ip: Ipv4Addr = ip.parse().map_err(|_| fail(&format!("{ip:?} is not an IPv4 address")))?;
                    (IpAddr::V4(ip), ports)
                }
                0 => return Err(fail("both the host port and the container port are needed")),
                _ => return Err(fail("an IPv6 address must be written in brackets")),
            }
        };
        let (host_port, container_port) = ports.split_once(':').ok_or_else(|| fail("missing the container port"))?;
        let host_port = if host_port.is_empty() { 0 } else { port(host_port).map_err(|r| fail(&r))? };
        let container_port = port(container_port).map_err(|r| fail(&r))?;
        if container_port == 0 {
            return Err(fail("the container port cannot be 0"));
        }
        Ok(Publish { host: SocketAddr::new(ip, host_port), container_port, protocol })
    }
}

fn port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number (ranges are not supported)"));
    }
    s.parse().map_err(|_| format!("{s} is not a port number from 1 to 65535"))
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
        }
    }
}

impl fmt::Display for Publish {
    /// The form `docker ps` shows: `127.0.0.1:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}/{}", self.host, self.container_port, self.protocol)
    }
}

impl serde::Serialize for Publish {
    /// As `-p` takes it: `127.0.0.1:8080:80/tcp`, `[::1]:8080:80/tcp`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ip = match self.host.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        serializer.collect_str(&format_args!("{ip}:{}:{}/{}", self.host.port(), self.container_port, self.protocol))
    }
}

impl<'de> serde::Deserialize<'de> for Publish {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Publish, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(host: &str, container_port: u16) -> Publish {
        Publish { host: host.parse().expect("socket address"), container_port, protocol: Protocol::Tcp }
    }

    #[test]
    fn parses_mappings() {
        let cases = [
            ("8080:80", publish("127.0.0.1:8080", 80)),
            ("8080:80/tcp", publish("127.0.0.1:8080", 80)),
            ("0.0.0.0:8443:443", publish("0.0.0.0:8443", 443)),
            ("10.1.2.3:1:65535", publish("10.1.2.3:1", 65535)),
            ("[::1]:5432:5432", publish("[::1]:5432", 5432)),
            ("[::]:80:8080/tcp", publish("[::]:80", 8080)),
            ("127.0.0.1::80", publish("127.0.0.1:0", 80)),
            (":80", publish("127.0.0.1:0", 80)),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Publish>().expect(input), expected, "{input}");
        }
    }

    #[test]
    fn rejects_bad_mappings() {
        let cases = [
            ("80", "both the host port and the container port"),
            ("8080:0", "the container port cannot be 0"),
            ("8080:", "\"\" is not a port number"),
            ("8080:80/udp", "UDP ports cannot be published yet"),
            ("8080:80/sctp", "unknown protocol \"sctp\""),
            ("8080-8081:80-81", "ranges are not supported"),
            ("70000:80", "70000 is not a port number from 1 to 65535"),
            ("localhost:8080:80", "\"localhost\" is not an IPv4 address"),
            ("::1:8080:80", "an IPv6 address must be written in brackets"),
            ("[::1]8080:80", "missing \"]:\""),
            ("[127.0.0.1]:8080:80", "only IPv6 addresses go in brackets"),
            ("[fe80::zz]:1:2", "is not an IPv6 address"),
            ("[::1]:8080", "missing the container port"),
        ];
        for (input, message) in cases {
            let err = input.parse::<Publish>().expect_err(input).to_string();
            assert!(err.contains(message), "{input}: {err}");
            assert!(err.contains("expected [ADDR:]HOST:CONTAINER[/tcp]"), "{err}");
        }
    }

    #[test]
    fn shows_and_serializes() {
        let p: Publish = "[::1]:8080:80".parse().expect("parse");
        assert_eq!(p.to_string(), "[::1]:8080->80/tcp");
        let json = serde_json::to_string(&p).expect("serialize");
        assert_eq!(json, "\"[::1]:8080:80/tcp\"");
        assert_eq!(serde_json::from_str::<Publish>(&json).expect("deserialize"), p);
        let v4: Publish = "8080:80".parse().expect("parse");
        assert_eq!(serde_json::to_string(&v4).expect("serialize"), "\"127.0.0.1:8080:80/tcp\"");
        assert!(serde_json::from_str::<Publish>("\"80\"").is_err());
    }
}
