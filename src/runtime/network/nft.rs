//! berth's nftables table, `inet berth`: masquerading for the project
//! subnets and a wall between project bridges.
//!
//! ```text
//! table inet berth {
//!     set bridges { type ifname; }                        # one element per project
//!     set subnets { type ipv4_addr; flags interval; }     # one element per project
//!     set subnets6 { type ipv6_addr; flags interval; }    # one per project with IPv6
//!     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr @subnets oifname != @bridges masquerade }
//!     chain postrouting6 { type nat hook postrouting priority srcnat; policy accept;
//!         ip6 saddr @subnets6 oifname != @bridges masquerade }
//!     chain forward { type filter hook forward priority filter; policy accept;
//!         iifname @bridges oifname @bridges drop }
//! }
//! ```
//!
//! The wall is an `inet` chain, so it holds for IPv6 as for IPv4. IPv6
//! masquerading has a chain of its own (`postrouting6`), declared with
//! the rest whether or not a project has IPv6.
//!
//! Published ports and DNS forwarding add their own maps and chains to the
//! table ([`super::dnat`]); every batch here declares them too.
//!
//! The rules are the same for every project; a project is only its two
//! (three with IPv6) set elements, so removing it is exact (no rule handles to find), and the
//! table goes with the last project. Every change is one `nft -j -f -`
//! batch, which the kernel applies whole or not at all; each batch
//! re-declares the table, sets and chains (a no-op when they are there) and
//! rewrites the two rules (flush, then add), so an interrupted first attach
//! never leaves a table without its rules, nor a rule twice.
//!
//! # Why the `nft` binary with JSON
//!
//! The kernel's nftables interface is netlink, but its messages are a
//! bytecode that the `nft` tool compiles from rules; the crates that speak
//! it directly either bind the C libraries (`nftnl`, needing libnftnl at
//! build time) or re-implement that compiler (`rustables`, young and thinly
//! kept). `nft -j` is the interface nftables itself calls stable for
//! programs, and what podman's netavark uses. The batches here are a dozen
//! fixed objects, built with `serde_json` and checked by unit tests; the
//! `nftables` crate would type them but brings a schema generator along for
//! no rule berth does not already spell out. So berth needs `nft` on the
//! host (Debian's `nftables` package) for a project network with outbound
//! access, and says so when it is missing.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::NetworkError;
use super::ipv6::Subnet6;
use super::subnet::Subnet;

/// The table's family and name.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "berth";

fn table() -> Value {
    json!({"family": FAMILY, "name": TABLE})
}

fn in_table(extra: Value) -> Value {
    let mut v = json!({"family": FAMILY, "table": TABLE});
    v.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
    v
}

fn subnet_elem(subnet: Subnet) -> Value {
    json!({"prefix": {"addr": subnet.network().to_string(), "len": Subnet::PREFIX}})
}

/// The commands that make the table, its sets, chains and rules, whatever
/// is there already (elements kept).
fn declare() -> Vec<Value> {
    let set_ref = |name: &str| json!(format!("@{name}"));
    let postrouting = in_table(json!({"name": "postrouting"}));
    let forward = in_table(json!({"name": "forward"}));
    vec![
        json!({"add": {"table": table()}}),
        json!({"add": {"set": in_table(json!({"name": "bridges", "type": "ifname"}))}}),
        json!({"add": {"set": in_table(json!({"name": "subnets", "type": "ipv4_addr", "flags": ["interval"]}))}}),
        json!({"add": {"chain": in_table(json!({
            "name": "postrouting", "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"
        }))}}),
        json!({"add": {"chain": in_table(json!({
            "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"
        }))}}),
        json!({"flush": {"chain": postrouting}}),
        json!({"add": {"rule": in_table(json!({"chain": "postrouting", "comment": "berth: project subnets reach out", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": set_ref("subnets")}},
            {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": set_ref("bridges")}},
            {"masquerade": null}
        ]}))}}),
        json!({"flush": {"chain": forward}}),
        json!({"add": {"rule": in_table(json!({"chain": "forward", "comment": "berth: projects do not reach each other", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": set_ref("bridges")}},
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": set_ref("bridges")}},
            {"drop": null}
        ]}))}}),
    ]
}

fn subnet6_elem(subnet: Subnet6) -> Value {
    json!({"prefix": {"addr": subnet.network().to_string(), "len": Subnet6::PREFIX}})
}

/// The IPv6 part of [`declare`]: the set of project /64s and the chain
/// that masquerades them.
fn declare_v6() -> Vec<Value> {
    let postrouting6 = in_table(json!({"name": "postrouting6"}));
    vec![
        json!({"add": {"set": in_table(json!({"name": "subnets6", "type": "ipv6_addr", "flags": ["interval"]}))}}),
        json!({"add": {"chain": in_table(json!({
            "name": "postrouting6", "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"
        }))}}),
        json!({"flush": {"chain": postrouting6}}),
        json!({"add": {"rule": in_table(json!({"chain": "postrouting6", "comment": "berth: project /64s reach out", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@subnets6"}},
            {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}},
            {"masquerade": null}
        ]}))}}),
    ]
}

/// Everything the table holds but elements: [`declare`], [`declare_v6`]
/// and [`super::dnat::declare`].
pub(super) fn declare_all() -> Vec<Value> {
    let mut cmds = declare();
    cmds.extend(declare_v6());
    cmds.extend(super::dnat::declare());
    cmds
}

/// The batch that adds one project (`bridge`, `subnet`, and `v6` when it
/// has IPv6), with its DNS forwarded to the host's loopback resolver
/// `dns_stub` if any.
fn add_batch(listed: &Listed, bridge: &str, subnet: Subnet, v6: Option<Subnet6>, dns_stub: Option<Ipv4Addr>) -> Value {
    let mut cmds = declare_all();
    cmds.extend(super::dnat::dns_batch(&listed.dnat, subnet, dns_stub));
    cmds.push(json!({"add": {"element": in_table(json!({"name": "bridges", "elem": [bridge]}))}}));
    cmds.push(json!({"add": {"element": in_table(json!({"name": "subnets", "elem": [subnet_elem(subnet)]}))}}));
    if let Some(v6) = v6 {
        cmds.push(json!({"add": {"element": in_table(json!({"name": "subnets6", "elem": [subnet6_elem(v6)]}))}}));
    }
    json!({"nftables": cmds})
}

/// What berth's table holds now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// Whether the table is there at all.
    pub present: bool,
    pub bridges: Vec<String>,
    pub subnets: Vec<(Ipv4Addr, u8)>,
    pub subnets6: Vec<(Ipv6Addr, u8)>,
    /// Published ports and DNS forwarding.
    pub dnat: super::dnat::Listed,
}

/// The batch that removes one project's elements of `listed`, and the table
/// when no other project is left in it; `None` when there is nothing to do.
/// The project's /64 is the one of its /24, whether or not it had IPv6.
fn remove_batch(listed: &Listed, bridge: &str, subnet: Subnet) -> Option<Value> {
    if !listed.present {
        return None;
    }
    let v6 = Subnet6::of(subnet);
    let has_bridge = listed.bridges.iter().any(|b| b == bridge);
    let has_subnet = listed.subnets.contains(&(subnet.network(), Subnet::PREFIX));
    let has_v6 = listed.subnets6.contains(&(v6.network(), Subnet6::PREFIX));
    let others = listed.bridges.iter().any(|b| b != bridge)
        || listed.subnets.iter().any(|s| *s != (subnet.network(), Subnet::PREFIX))
        || listed.subnets6.iter().any(|s| *s != (v6.network(), Subnet6::PREFIX))
        || super::dnat::others(&listed.dnat, subnet);
    let mut cmds = Vec::new();
    if !others {
        cmds.push(json!({"delete": {"table": table()}}));
    } else {
        cmds.extend(super::dnat::remove_subnet(&listed.dnat, subnet));
        if has_bridge {
            cmds.push(json!({"delete": {"element": in_table(json!({"name": "bridges", "elem": [bridge]}))}}));
        }
        if has_subnet {
            cmds.push(
                json!({"delete": {"element": in_table(json!({"name": "subnets", "elem": [subnet_elem(subnet)]}))}}),
            );
        }
        if has_v6 {
            cmds.push(
                json!({"delete": {"element": in_table(json!({"name": "subnets6", "elem": [subnet6_elem(v6)]}))}}),
            );
        }
    }
    (!cmds.is_empty()).then(|| json!({"nftables": cmds}))
}

/// An element `{"prefix": {"addr": …, "len": …}}` of an interval set.
fn prefix<A: std::str::FromStr>(e: &Value) -> Option<(A, u8)> {
    let p = &e["prefix"];
    Some((p["addr"].as_str()?.parse().ok()?, u8::try_from(p["len"].as_u64()?).ok()?))
}

/// Parses `nft -j list table inet berth`.
fn parse_listing(json: &Value) -> Listed {
    let mut out = Listed::default();
    for item in json["nftables"].as_array().into_iter().flatten() {
        out.present |= item["table"]["name"] == TABLE;
        let set = &item["set"];
        let elems = set["elem"].as_array().into_iter().flatten();
        match set["name"].as_str() {
            Some("bridges") => out.bridges.extend(elems.filter_map(|e| e.as_str().map(str::to_owned))),
            Some("subnets") => out.subnets.extend(elems.filter_map(prefix)),
            Some("subnets6") => out.subnets6.extend(elems.filter_map(prefix)),
            _ => {}
        }
    }
    out.dnat = super::dnat::parse(json);
    out
}

pub(super) fn nft(args: &[&str], input: Option<&Value>) -> Result<std::process::Output, NetworkError> {
    let program = crate::tools::find_program("nft")
        .ok_or_else(|| NetworkError::NftMissing { why: "it is not installed".into() })?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => NetworkError::NftMissing { why: source.to_string() },
            _ => NetworkError::Nft { what: format!("run nft {}", args.join(" ")), detail: source.to_string() },
        })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let text = input.to_string();
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NetworkError::Nft { what: "write a batch to nft".into(), detail: e.to_string() })?;
    }
    child.wait_with_output().map_err(|e| NetworkError::Nft { what: "wait for nft".into(), detail: e.to_string() })
}

pub(super) fn apply(batch: &Value, what: String) -> Result<(), NetworkError> {
    let out = nft(&["-j", "-f", "-"], Some(batch))?;
    if !out.status.success() {
        return Err(NetworkError::Nft { what, detail: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
    }
    Ok(())
}

/// What the table holds; empty when there is no table.
pub fn list() -> Result<Listed, NetworkError> {
    let out = nft(&["-j", "list", "table", FAMILY, TABLE], None)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(Listed::default());
        }
        return Err(NetworkError::Nft { what: format!("list table {FAMILY} {TABLE}"), detail: err.trim().to_owned() });
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| NetworkError::Nft { what: "read nft's listing".into(), detail: e.to_string() })?;
    Ok(parse_listing(&json))
}

/// Adds the project of `bridge` and `subnet` (and its /64 `v6`), making
/// the table if needed, with its DNS forwarded to `dns_stub`
/// ([`super::dnat`]) if given. On a host without `nft`, root installs
/// Debian's nftables first (as mmdebstrap for a bootstrap), so a fresh
/// machine's first `up` works.
pub fn add(bridge: &str, subnet: Subnet, v6: Option<Subnet6>, dns_stub: Option<Ipv4Addr>) -> Result<(), NetworkError> {
    crate::tools::find_or_install("nft", "nftables").map_err(|why| NetworkError::NftMissing { why })?;
    let listed = list()?;
    apply(
        &add_batch(&listed, bridge, subnet, v6, dns_stub),
        format!("add {bridge} and {subnet} to table {FAMILY} {TABLE}"),
    )
}

/// Removes the project of `bridge` and `subnet` (and its /64), and the
/// table with the last project. Nothing there is not an error. When the
/// table goes (or is not there), `last` runs first: what hangs on the table
/// elsewhere goes before it, so that a crash in between leaves the table,
/// which the next removal finds, rather than rules without one.
pub fn remove(
    bridge: &str,
    subnet: Subnet,
    last: impl FnOnce() -> Result<(), NetworkError>,
) -> Result<(), NetworkError> {
    let listed = match list() {
        Ok(listed) => listed,
        // No nft: berth never made a table either.
        Err(NetworkError::NftMissing { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let batch = remove_batch(&listed, bridge, subnet);
    let table_goes = match &batch {
        Some(b) => b["nftables"][0].get("delete").is_some_and(|d| d.get("table").is_some()),
        None => !listed.present,
    };
    if table_goes {
        last()?;
    }
    match batch {
        Some(batch) => apply(&batch, format!("remove {bridge} and {subnet} from table {FAMILY} {TABLE}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(c: u8) -> Subnet {
        format!("10.123.{c}.0").parse().unwrap()
    }

    #[test]
    fn an_add_declares_everything_and_rewrites_the_rules() {
        let batch = add_batch(&Listed::default(), "berth-aa", sub(3), None, None);
        let cmds = batch["nftables"].as_array().unwrap();
        let verbs: Vec<String> = cmds.iter().map(|c| c.as_object().unwrap().keys().next().unwrap().clone()).collect();
        let v6 = ["add", "add", "flush", "add"];
        let expected = [&["add", "add", "add", "add", "add", "flush", "add", "flush", "add"][..], &v6];
        assert_eq!(verbs[..13], expected.concat());
        assert_eq!(cmds[3]["add"]["chain"]["hook"], "postrouting");
        assert_eq!(cmds[6]["add"]["rule"]["expr"][2], json!({"masquerade": null}));
        assert_eq!(cmds[8]["add"]["rule"]["expr"][2], json!({"drop": null}));
        assert_eq!(cmds[12]["add"]["rule"]["expr"][0]["match"]["left"]["payload"]["protocol"], "ip6");
        // The DNAT maps and chains, then the project's elements.
        assert_eq!(cmds[13..cmds.len() - 2], super::super::dnat::declare()[..]);
        let n = cmds.len();
        assert_eq!(cmds[n - 2]["add"]["element"]["elem"], json!(["berth-aa"]));
        assert_eq!(cmds[n - 1]["add"]["element"]["elem"][0]["prefix"], json!({"addr": "10.123.3.0", "len": 24}));

        let with6 = add_batch(&Listed::default(), "berth-aa", sub(3), Some(Subnet6::of(sub(3))), None);
        let last = with6["nftables"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["add"]["element"]["name"], "subnets6");
        assert_eq!(last["add"]["element"]["elem"][0]["prefix"], json!({"addr": "fd0b:e127:5a1c:3::", "len": 64}));
        // With a loopback resolver: its DNS forwarding too.
        let stub = Some(Ipv4Addr::new(127, 0, 0, 53));
        let with_dns = add_batch(&Listed::default(), "berth-aa", sub(3), None, stub);
        assert_eq!(with_dns["nftables"].as_array().unwrap().len(), n + 2);
    }

    #[test]
    fn removal_is_exact_and_the_last_project_takes_the_table() {
        let two = Listed {
            present: true,
            bridges: vec!["berth-aa".into(), "berth-bb".into()],
            subnets: vec![(sub(3).network(), 24), (sub(4).network(), 24)],
            subnets6: vec![(Subnet6::of(sub(3)).network(), 64)],
            ..Listed::default()
        };
        let batch = remove_batch(&two, "berth-aa", sub(3)).unwrap();
        let cmds = batch["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0]["delete"]["element"]["elem"], json!(["berth-aa"]));
        assert_eq!(cmds[1]["delete"]["element"]["name"], "subnets");
        assert_eq!(cmds[2]["delete"]["element"]["name"], "subnets6");
        // bb has no IPv6: aa's /64 is not bb's to remove, but keeps the table.
        assert_eq!(remove_batch(&two, "berth-bb", sub(4)).unwrap()["nftables"].as_array().unwrap().len(), 2);

        let one = Listed {
            present: true,
            bridges: vec!["berth-bb".into()],
            subnets: vec![(sub(4).network(), 24)],
            subnets6: vec![],
            ..Listed::default()
        };
        let last = remove_batch(&one, "berth-bb", sub(4)).unwrap();
        assert_eq!(last["nftables"][0], json!({"delete": {"table": {"family": "inet", "name": "berth"}}}));
        // Only the other project's elements: nothing of this one to remove.
        let batch = remove_batch(&one, "berth-aa", sub(3));
        assert!(batch.is_none());
        assert!(remove_batch(&Listed::default(), "berth-bb", sub(4)).is_none(), "no table");
    }

    #[test]
    fn listings_parse() {
        let json = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "berth"}},
            {"set": {"name": "bridges", "elem": ["berth-aa"]}},
            {"set": {"name": "subnets", "elem": [{"prefix": {"addr": "10.123.3.0", "len": 24}}]}},
            {"set": {"name": "subnets6", "elem": [{"prefix": {"addr": "fd0b:e127:5a1c:3::", "len": 64}}]}},
        ]});
        let listed = parse_listing(&json);
        assert!(listed.present);
        assert_eq!(listed.bridges, ["berth-aa"]);
        assert_eq!(listed.subnets, [(sub(3).network(), 24)]);
        assert_eq!(listed.subnets6, [(Subnet6::of(sub(3)).network(), 64)]);
    }
}
