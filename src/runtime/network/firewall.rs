//! Living with another firewall: accept rules for berth's bridges in the
//! forward chains of other tables that would drop their traffic.
//!
//! A packet passes every base chain on its hook, each table's in turn, and
//! a drop in any of them is final; an accept only ends that one chain. So
//! berth's own table cannot let through what another table drops. Docker
//! does exactly that: it sets the iptables `FORWARD` policy to `DROP`
//! (with iptables-nft: `table ip filter { chain FORWARD { type filter hook
//! forward priority filter; policy drop; } }`) and accepts only its own
//! bridges, so on a host with Docker a berth env reaches its bridge but not
//! the outside. Podman's netavark (iptables driver) meets the same and adds
//! its own accept rules to that chain; berth does likewise:
//!
//! ```text
//! iifname "berth-*" accept comment "berth"
//! oifname "berth-*" ct state established,related accept comment "berth"
//! ```
//!
//! inserted at the top of every forward base chain (type filter) with
//! policy drop in a table other than `inet berth`, or, when that chain's
//! table has a `DOCKER-USER` chain, there instead: Docker jumps to it
//! first from `FORWARD` and documents it as the place for the host's own
//! rules (it never rewrites it). Only connections from the envs are let
//! out, and their answers back in; nothing new from outside reaches a
//! bridge, and the wall between projects (berth's table) still holds.
//!
//! The rules are added at every attach when missing (a firewall started
//! after berth's first project gets them with the next `up`), and removed,
//! found by their comment, just before berth's table goes with its last
//! project (a crash in between leaves the table, which the next removal
//! finds, never rules without it).
//!
//! # iptables' own tables
//!
//! Docker and podman write their rules with `iptables` (on Debian
//! `iptables-nft`, which keeps them as nftables tables `ip filter`, `ip6
//! filter`, …). iptables refuses to list or change a table holding a rule
//! it cannot read back ("table `filter' is incompatible, use 'nft' tool"),
//! and it cannot read nftables' own `ct state` (it writes its conntrack
//! match as an `xt` expression nft cannot make). So into a chain of an
//! `ip`/`ip6` table named `filter`, berth puts the same two rules with
//! `iptables-nft`/`ip6tables-nft` (`-i berth-+ … -m comment --comment
//! berth -j ACCEPT`, as netavark's iptables driver does), and takes them
//! out with it; only when that program is missing or refuses (a table of
//! the same name that iptables did not make) does it write them with nft.
//! Only nftables is seen: a firewall in iptables-legacy's tables
//! (`iptables-legacy -S`) is out of berth's sight, and docs/network.md
//! gives the two iptables commands for it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::NetworkError;
use super::nft::{self, FAMILY, TABLE};

/// The comment that marks berth's rules in other tables' chains.
pub const COMMENT: &str = "berth";

/// Docker's chain for the host's own forwarding rules.
const DOCKER_USER: &str = "DOCKER-USER";

/// A chain, named by its table's family and name and its own name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    family: String,
    table: String,
    name: String,
}

impl Chain {
    fn of(item: &Value, name_key: &str) -> Option<Chain> {
        Some(Chain {
            family: item["family"].as_str()?.to_owned(),
            table: item["table"].as_str()?.to_owned(),
            name: item[name_key].as_str()?.to_owned(),
        })
    }

    fn ours(&self) -> bool {
        self.family == FAMILY && self.table == TABLE
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.name)
    }
}

fn items(ruleset: &Value) -> impl Iterator<Item = &Value> {
    ruleset["nftables"].as_array().into_iter().flatten()
}

/// The chains berth's rules belong in (see the module page).
fn targets(ruleset: &Value) -> Vec<Chain> {
    let chains: Vec<&Value> = items(ruleset).filter_map(|i| i.get("chain")).collect();
    let mut out = Vec::new();
    for c in &chains {
        let dropping = c["hook"] == "forward" && c["type"] == "filter" && c["policy"] == "drop";
        let Some(chain) = Chain::of(c, "name").filter(|ch| dropping && !ch.ours()) else { continue };
        let docker_user = chains
            .iter()
            .filter_map(|o| Chain::of(o, "name"))
            .find(|o| o.family == chain.family && o.table == chain.table && o.name == DOCKER_USER);
        let target = docker_user.unwrap_or(chain);
        if !out.contains(&target) {
            out.push(target);
        }
    }
    out
}

/// berth's rules in other tables: each one's chain and handle.
fn placed(ruleset: &Value) -> Vec<(Chain, u64)> {
    items(ruleset)
        .filter_map(|i| i.get("rule"))
        .filter(|r| r["comment"] == COMMENT)
        .filter_map(|r| Some((Chain::of(r, "chain")?, r["handle"].as_u64()?)))
        .filter(|(c, _)| !c.ours())
        .collect()
}

fn rule(chain: &Chain, expr: Value) -> Value {
    json!({"family": chain.family, "table": chain.table, "chain": chain.name, "comment": COMMENT, "expr": expr})
}

/// The two rules, to be inserted at the top of `chain` (the second
/// inserted ends up first).
fn inserts(chain: &Chain) -> [Value; 2] {
    let bridges = |key: &str| json!({"match": {"op": "==", "left": {"meta": {"key": key}}, "right": "berth-*"}});
    let answers = rule(
        chain,
        json!([
            bridges("oifname"),
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
            {"accept": null}
        ]),
    );
    let out = rule(chain, json!([bridges("iifname"), {"accept": null}]));
    [json!({"insert": {"rule": answers}}), json!({"insert": {"rule": out}})]
}

fn delete(chain: &Chain, handle: u64) -> Value {
    json!({"delete": {"rule": {"family": chain.family, "table": chain.table, "chain": chain.name, "handle": handle}}})
}

/// The batch that gives every chain of `targets` berth's two rules as
/// nftables rules (replacing any other number of them there); `None` when
/// each has them.
fn admit_batch(ruleset: &Value, targets: &[Chain]) -> Option<Value> {
    let placed = placed(ruleset);
    let mut cmds = Vec::new();
    for target in targets.iter().cloned() {
        let here: Vec<u64> = placed.iter().filter(|(c, _)| *c == target).map(|(_, h)| *h).collect();
        if here.len() == 2 {
            continue;
        }
        cmds.extend(here.into_iter().map(|h| delete(&target, h)));
        cmds.extend(inserts(&target));
    }
    (!cmds.is_empty()).then(|| json!({"nftables": cmds}))
}

/// The batch that removes every rule of berth's from other tables.
fn withdraw_batch(ruleset: &Value) -> Option<Value> {
    let cmds: Vec<Value> = placed(ruleset).iter().map(|(c, h)| delete(c, *h)).collect();
    (!cmds.is_empty()).then(|| json!({"nftables": cmds}))
}

fn ruleset() -> Result<Value, NetworkError> {
    let out = nft::nft(&["-j", "list", "ruleset"], None)?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(NetworkError::Nft { what: "list the ruleset".into(), detail });
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| NetworkError::Nft { what: "read nft's listing of the ruleset".into(), detail: e.to_string() })
}

/// The two rules as iptables writes them (after `-A CHAIN`).
const IPTABLES_RULES: [&str; 2] = [
    "-i berth-+ -m comment --comment berth -j ACCEPT",
    "-o berth-+ -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment berth -j ACCEPT",
];

/// The iptables program that owns `chain`'s table, when it is one of
/// iptables' and the program is there.
fn iptables_for(chain: &Chain) -> Option<PathBuf> {
    let program = match (chain.family.as_str(), chain.table.as_str()) {
        ("ip", "filter") => "iptables-nft",
        ("ip6", "filter") => "ip6tables-nft",
        _ => return None,
    };
    crate::tools::find_program(program)
}

/// Runs `program -w -t filter ARGS`; its output, or why it failed.
fn iptables(program: &PathBuf, args: &[&str]) -> Result<String, NetworkError> {
    let fail = |detail: String| NetworkError::Nft {
        what: format!("run {} -t filter {}", program.display(), args.join(" ")),
        detail,
    };
    let out =
        Command::new(program).args(["-w", "-t", "filter"]).args(args).output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Which of [`IPTABLES_RULES`] `chain` has, read from `iptables -S`.
fn iptables_has(program: &PathBuf, chain: &Chain) -> Result<[bool; 2], NetworkError> {
    let listed = iptables(program, &["-S", &chain.name])?;
    let has = |rule: &str| listed.lines().any(|l| l.trim() == format!("-A {} {rule}", chain.name));
    Ok([has(IPTABLES_RULES[0]), has(IPTABLES_RULES[1])])
}

/// Gives `chain` (of one of iptables' tables) the rules it lacks, with
/// iptables.
fn iptables_admit(program: &PathBuf, chain: &Chain) -> Result<(), NetworkError> {
    let has = iptables_has(program, chain)?;
    for (rule, there) in IPTABLES_RULES.iter().zip(has).rev() {
        if !there {
            let args: Vec<&str> = ["-I", &chain.name].into_iter().chain(rule.split(' ')).collect();
            iptables(program, &args)?;
        }
    }
    Ok(())
}

/// Removes berth's rules from `chain` (of one of iptables' tables).
fn iptables_withdraw(program: &PathBuf, chain: &Chain) -> Result<(), NetworkError> {
    let has = iptables_has(program, chain)?;
    for (rule, there) in IPTABLES_RULES.iter().zip(has) {
        if there {
            let args: Vec<&str> = ["-D", &chain.name].into_iter().chain(rule.split(' ')).collect();
            iptables(program, &args)?;
        }
    }
    Ok(())
}

/// The chains of iptables' tables that hold a rule with an iptables
/// comment (berth's, perhaps).
fn iptables_commented(ruleset: &Value) -> Vec<Chain> {
    let mut out: Vec<Chain> = Vec::new();
    for r in items(ruleset).filter_map(|i| i.get("rule")) {
        let commented = r["expr"].as_array().into_iter().flatten().any(|e| e["xt"]["name"] == "comment");
        if let Some(chain) = Chain::of(r, "chain").filter(|c| commented && !out.contains(c)) {
            out.push(chain);
        }
    }
    out
}

/// Adds berth's accept rules where another table's forward chain would
/// drop the bridges' traffic (see the module page). The caller holds the
/// subnet record's lock.
pub fn admit() -> Result<(), NetworkError> {
    let ruleset = ruleset()?;
    let mut native = Vec::new();
    for target in targets(&ruleset) {
        let by_iptables = iptables_for(&target).is_some_and(|p| iptables_admit(&p, &target).is_ok());
        if !by_iptables {
            native.push(target);
        }
    }
    match admit_batch(&ruleset, &native) {
        Some(batch) => {
            let chains: Vec<String> = native.iter().map(Chain::to_string).collect();
            nft::apply(&batch, format!("accept berth's bridges in the forward chain {}", chains.join(", ")))
        }
        None => Ok(()),
    }
}

/// Removes berth's rules from other tables (when its last project goes).
pub fn withdraw() -> Result<(), NetworkError> {
    let ruleset = match ruleset() {
        Ok(r) => r,
        // No nft: berth never added a rule either.
        Err(NetworkError::NftMissing { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    for chain in iptables_commented(&ruleset) {
        if let Some(program) = iptables_for(&chain) {
            iptables_withdraw(&program, &chain)?;
        }
    }
    match withdraw_batch(&ruleset) {
        Some(batch) => nft::apply(&batch, "remove berth's rules from other tables' forward chains".into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(family: &str, table: &str, name: &str, hook: Option<&str>, policy: &str) -> Value {
        let mut c = json!({"family": family, "table": table, "name": name, "handle": 1});
        if let Some(hook) = hook {
            let more = json!({"type": "filter", "hook": hook, "prio": 0, "policy": policy});
            c.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        }
        json!({"chain": c})
    }

    fn ours_at(family: &str, table: &str, name: &str, handle: u64) -> Value {
        json!({"rule": {"family": family, "table": table, "chain": name, "handle": handle, "comment": COMMENT, "expr": []}})
    }

    #[test]
    fn a_drop_policy_forward_chain_gets_both_rules_and_docker_user_is_preferred() {
        let ruleset = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            chain("ip", "filter", "FORWARD", Some("forward"), "drop"),
            chain("ip", "filter", "DOCKER-USER", None, ""),
            chain("ip6", "fw", "fwd", Some("forward"), "drop"),
            chain("inet", "open", "forward", Some("forward"), "accept"),
            chain("inet", "filter", "input", Some("input"), "drop"),
            chain("inet", "berth", "forward", Some("forward"), "drop"),
        ]});
        let names: Vec<String> = targets(&ruleset).iter().map(Chain::to_string).collect();
        assert_eq!(names, ["ip filter DOCKER-USER", "ip6 fw fwd"]);
        let batch = admit_batch(&ruleset, &targets(&ruleset)).unwrap();
        let cmds = batch["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 4);
        let first = &cmds[1]["insert"]["rule"];
        assert_eq!((first["chain"].as_str(), first["comment"].as_str()), (Some("DOCKER-USER"), Some("berth")));
        assert_eq!(first["expr"][0]["match"]["left"]["meta"]["key"], "iifname");
        assert_eq!(first["expr"][0]["match"]["right"], "berth-*");
        assert_eq!(cmds[0]["insert"]["rule"]["expr"][1]["match"]["right"], json!(["established", "related"]));
        assert_eq!(cmds[3]["insert"]["rule"]["table"], "fw");
    }

    #[test]
    fn rules_are_added_once_and_withdrawn_exactly() {
        let mut ruleset = json!({"nftables": [
            chain("ip", "filter", "FORWARD", Some("forward"), "drop"),
            ours_at("ip", "filter", "FORWARD", 7),
            ours_at("ip", "filter", "FORWARD", 8),
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 9, "expr": []}},
            ours_at("inet", "berth", "forward", 3),
        ]});
        assert!(admit_batch(&ruleset, &targets(&ruleset)).is_none(), "both there");
        let gone = withdraw_batch(&ruleset).unwrap();
        let handles: Vec<&Value> =
            gone["nftables"].as_array().unwrap().iter().map(|c| &c["delete"]["rule"]["handle"]).collect();
        assert_eq!(handles, [7, 8], "only berth's, and none of berth's own table");
        // One of the two lost: both anew.
        ruleset["nftables"].as_array_mut().unwrap().remove(2);
        let again = admit_batch(&ruleset, &targets(&ruleset)).unwrap();
        let verbs: Vec<&str> = again["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        assert_eq!(verbs, ["delete", "insert", "insert"]);
        // No firewall of another's: nothing to do either way.
        let bare = json!({"nftables": [chain("inet", "berth", "forward", Some("forward"), "accept")]});
        assert!(admit_batch(&bare, &targets(&bare)).is_none() && withdraw_batch(&bare).is_none());
    }

    #[test]
    fn iptables_tables_are_told_apart_and_their_commented_chains_found() {
        let at =
            |family: &str, table: &str| Chain { family: family.into(), table: table.into(), name: "FORWARD".into() };
        // Found only where the program is; never for other tables.
        assert!(iptables_for(&at("inet", "filter")).is_none() && iptables_for(&at("ip", "docker")).is_none());
        let ruleset = json!({"nftables": [
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 4, "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "berth-*"}},
                {"xt": {"type": "match", "name": "comment"}},
                {"accept": null}
            ]}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 5, "expr": [{"accept": null}]}},
        ]});
        let found: Vec<String> = iptables_commented(&ruleset).iter().map(Chain::to_string).collect();
        assert_eq!(found, ["ip filter DOCKER-USER"]);
        assert!(placed(&ruleset).is_empty(), "an iptables comment is not an nft one");
    }
}
