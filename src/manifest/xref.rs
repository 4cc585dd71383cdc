//! Rules across envs: `from` and `depends_on` must name declared envs and
//! form no cycle; no two envs may publish the same host port, nor listen on
//! the same container port in the project's shared network namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use super::check::Checker;
use super::model::Env;
use super::raw::RawEnv;
use super::suggest::did_you_mean;
use super::values::{Network, PortMapping};

type Spans = BTreeMap<String, (Range<usize>, RawEnv)>;
/// The outgoing links of an env: target name and the span naming it.
type Edges<'a> = &'a dyn Fn(&str) -> Vec<(String, Range<usize>)>;

pub(super) fn check(c: &mut Checker<'_>, envs: &BTreeMap<String, Env>, spans: &Spans) {
    references(c, envs, spans);
    let from_edges = |name: &str| -> Vec<(String, Range<usize>)> {
        let raw = &spans[name].1;
        raw.from.iter().map(|f| (f.get_ref().clone(), f.span())).collect()
    };
    cycles(c, envs, "from", &from_edges);
    let dep_edges = |name: &str| -> Vec<(String, Range<usize>)> {
        spans[name].1.depends_on.iter().map(|d| (d.get_ref().clone(), d.span())).collect()
    };
    cycles(c, envs, "depends_on", &dep_edges);
    ports(c, spans);
}

fn references(c: &mut Checker<'_>, envs: &BTreeMap<String, Env>, spans: &Spans) {
    let names = || envs.keys().map(String::as_str);
    for (name, (_, raw)) in spans {
        let targets =
            raw.from.iter().map(|f| ("is built from", f)).chain(raw.depends_on.iter().map(|d| ("depends on", d)));
        let mut seen = Vec::new();
        for (verb, target) in targets {
            let t = target.get_ref();
            if t == name {
                c.error(&target.span(), format!("env \"{name}\" {verb} itself; name another env"));
            } else if !envs.contains_key(t) {
                let hint = did_you_mean(t, names());
                c.error(&target.span(), format!("env \"{name}\" {verb} \"{t}\", which is not declared{hint}"));
            } else if verb == "depends on" && seen.contains(&t) {
                c.error(&target.span(), format!("env \"{name}\" lists \"{t}\" twice in depends_on; keep one"));
            }
            // `from` and `depends_on` may name the same env.
            if verb == "depends on" {
                seen.push(t);
            }
        }
    }
}

/// Reports each cycle once, at the edge that closes it, naming every env on it.
fn cycles(c: &mut Checker<'_>, envs: &BTreeMap<String, Env>, key: &str, edges: Edges<'_>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = envs.keys().map(|k| (k.as_str(), Mark::New)).collect();
    let mut stack: Vec<String> = Vec::new();

    fn visit(
        name: &str,
        c: &mut Checker<'_>,
        key: &str,
        edges: Edges<'_>,
        marks: &mut BTreeMap<&str, Mark>,
        stack: &mut Vec<String>,
    ) {
        let Some(slot) = marks.get_mut(name) else { return };
        *slot = Mark::Active;
        stack.push(name.to_owned());
        for (target, span) in edges(name) {
            match marks.get(target.as_str()).copied() {
                Some(Mark::New) => visit(&target, c, key, edges, marks, stack),
                Some(Mark::Active) if target != name => {
                    let start = stack.iter().position(|s| *s == target).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                    cycle.push(&target);
                    c.error(
                        &span,
                        format!(
                            "`{key}` forms a cycle: {}; break it by removing one of these links",
                            cycle.join(" -> ")
                        ),
                    );
                }
                _ => {}
            }
        }
        stack.pop();
        if let Some(m) = marks.get_mut(name) {
            *m = Mark::Done;
        }
    }

    let names: Vec<String> = envs.keys().cloned().collect();
    for name in names {
        if marks.get(name.as_str()) == Some(&Mark::New) {
            visit(&name, c, key, edges, &mut marks, &mut stack);
        }
    }
}

/// Whether two host addresses conflict on one port: the same address, or a
/// wildcard (`0.0.0.0` and `::` both take the port on a dual-stack host).
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

fn ports(c: &mut Checker<'_>, spans: &Spans) {
    let mut host: Vec<(PortMapping, &str, usize)> = Vec::new();
    let mut inner: Vec<(PortMapping, &str, usize)> = Vec::new();
    // In file order, so a clash is reported at its second occurrence.
    let mut in_order: Vec<(&String, &(Range<usize>, RawEnv))> = spans.iter().collect();
    in_order.sort_by_key(|(_, (span, _))| span.start);
    for (name, (_, raw)) in in_order {
        let network = raw.network.as_ref().and_then(|n| n.get_ref().parse::<Network>().ok()).unwrap_or_default();
        if !matches!(network, Network::Project | Network::Isolated)
            && let Some(first) = raw.ports.first()
        {
            let why = match network {
                Network::Host => "the env listens on the host's own network, so its ports need no publishing",
                _ => "the env has no network to publish from",
            };
            c.error(
                &first.span(),
                format!(
                    "ports have no effect with network = \"{}\": {why}; remove `ports`",
                    if network == Network::Host { "host" } else { "none" }
                ),
            );
            continue;
        }
        for p in &raw.ports {
            let Ok(port) = p.get_ref().parse::<PortMapping>() else { continue };
            let line = c.map.at(&p.span(), "").line;
            if let Some((_, other, other_line)) = host.iter().find(|(q, _, _)| {
                q.host.port() == port.host.port()
                    && q.protocol == port.protocol
                    && overlaps(q.host.ip(), port.host.ip())
            }) {
                let by = if *other == name.as_str() { "this env".to_owned() } else { format!("env \"{other}\"") };
                let msg = format!(
                    "host port {} is already published by {by} on line {other_line}; choose another host port",
                    port.host
                );
                c.error(&p.span(), msg);
            } else if let Some((_, other, other_line)) = inner
                .iter()
                .find(|(q, o, _)| *o != name && q.container_port == port.container_port && q.protocol == port.protocol)
            {
                let msg = format!(
                    "container port {} is also published by env \"{other}\" on line {other_line}; all envs of a project share one network namespace, so only one of them can listen on it",
                    port.container_port
                );
                c.error(&p.span(), msg);
            }
            host.push((port, name, line));
            inner.push((port, name, line));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn check(text: &str) -> Result<(), String> {
        crate::manifest::parse(text, Path::new("berth.toml"), Path::new("/p")).map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn from_and_depends_on_may_name_the_same_env() {
        let both = "[env.db]\nimage = \"scratch\"\n[env.app]\nfrom = \"db\"\ndepends_on = [\"db\"]\n";
        check(both).expect("built from db and started after it");
        let twice = "[env.db]\nimage = \"scratch\"\n[env.app]\nfrom = \"db\"\ndepends_on = [\"db\", \"db\"]\n";
        let err = check(twice).expect_err("db listed twice");
        assert!(err.contains("lists \"db\" twice in depends_on"), "{err}");
    }
}
