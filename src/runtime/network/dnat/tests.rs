//! The batches of [`super`] as JSON, and the listing parsed back.

use super::*;

fn sub(c: u8) -> Subnet {
    format!("10.123.{c}.0").parse().unwrap()
}

fn fwd(addr: Option<[u8; 4]>, protocol: Protocol, port: u16, target: Subnet, target_port: u16) -> Forward {
    Forward { addr: addr.map(Ipv4Addr::from), protocol, port, target: target.member(), target_port }
}

fn verbs(cmds: &[Value]) -> Vec<String> {
    cmds.iter().map(|c| c.as_object().unwrap().keys().next().unwrap().clone()).collect()
}

#[test]
fn the_guard_runs_before_any_nat_and_dnat_spares_traffic_from_bridges() {
    let cmds = declare();
    let chain = |name: &str| {
        cmds.iter().find(|c| c["add"]["chain"]["name"] == name).unwrap_or_else(|| panic!("{name}"))["add"]["chain"]
            .clone()
    };
    let guard = chain("loopback_guard");
    assert_eq!((guard["type"].as_str(), guard["hook"].as_str()), (Some("filter"), Some("prerouting")));
    assert!(guard["prio"].as_i64().unwrap() < chain("ports_prerouting")["prio"].as_i64().unwrap());
    assert_eq!(chain("ports_output")["hook"], "output");
    assert_eq!(chain("dns_input")["hook"], "input");
    let rules: Vec<&Value> = cmds.iter().filter_map(|c| c["add"].get("rule")).collect();
    let in_chain = |name: &str| rules.iter().filter(|r| r["chain"] == name).collect::<Vec<_>>();
    let guard = in_chain("loopback_guard");
    assert_eq!(guard.len(), 1);
    assert_eq!(guard[0]["expr"][1]["match"]["right"], json!({"prefix": {"addr": "127.0.0.0", "len": 8}}));
    assert_eq!(guard[0]["expr"][2], json!({"drop": null}));
    // From outside: DNS only from bridges, published ports only from elsewhere.
    let pre = in_chain("ports_prerouting");
    assert_eq!(pre.len(), 3);
    assert_eq!(pre[0]["expr"][1]["match"]["op"], "==");
    assert_eq!(pre[0]["expr"][2]["dnat"]["addr"]["map"]["data"], "@dns4");
    for (r, map) in pre[1..].iter().zip(["@ports4", "@wild4"]) {
        assert_eq!(
            r["expr"][1]["match"],
            json!({"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "@bridges"})
        );
        assert_eq!(r["expr"][3]["dnat"]["addr"]["map"]["data"], map);
        assert_eq!(r["expr"][3]["dnat"]["port"]["map"]["data"], format!("{map}_port"));
    }
    assert_eq!(in_chain("ports_output").len(), 2);
    assert_eq!(in_chain("ports_postrouting")[0]["expr"][2], json!({"masquerade": null}));
    assert_eq!(in_chain("dns_input")[0]["expr"][2]["snat"]["addr"], "127.0.0.1");
    // Every chain is flushed before its rules are added again.
    for name in ["loopback_guard", "ports_prerouting", "ports_output", "ports_postrouting", "dns_input"] {
        let flush = cmds.iter().position(|c| c["flush"]["chain"]["name"] == name).unwrap();
        let first = cmds.iter().position(|c| c["add"]["rule"]["chain"] == name).unwrap();
        assert!(flush < first, "{name}");
    }
}

#[test]
fn ipv4_mappings_become_forwards_and_ipv6_stays_with_the_proxy() {
    let mappings: Vec<PortMapping> =
        ["127.0.0.1:8080:80", "0.0.0.0:5353:53/udp", "[::1]:9000:9000"].iter().map(|m| m.parse().unwrap()).collect();
    let got = forwards(&mappings, sub(3).member());
    assert_eq!(
        got,
        [fwd(Some([127, 0, 0, 1]), Protocol::Tcp, 8080, sub(3), 80), fwd(None, Protocol::Udp, 5353, sub(3), 53)]
    );
    assert_eq!(got[1].host(), "0.0.0.0:5353/udp");
}

#[test]
fn a_key_left_by_a_killed_shim_is_replaced_and_an_equal_one_kept() {
    let mine = fwd(Some([127, 0, 0, 1]), Protocol::Tcp, 8080, sub(3), 80);
    let wild = fwd(None, Protocol::Udp, 53, sub(3), 53);
    let left = Listed { ports: vec![fwd(Some([127, 0, 0, 1]), Protocol::Tcp, 8080, sub(4), 81)], dns: vec![] };
    let cmds = add_ports(&left, &[mine, wild]);
    assert_eq!(verbs(&cmds), ["delete", "delete", "add", "add", "add", "add"]);
    let key = json!({"concat": ["127.0.0.1", "tcp", 8080]});
    assert_eq!(
        cmds[0]["delete"]["element"],
        json!({"family": "inet", "table": "berth", "name": "ports4", "elem": [key]})
    );
    assert_eq!(cmds[1]["delete"]["element"]["name"], "ports4_port");
    assert_eq!(cmds[2]["add"]["element"]["elem"], json!([[key, "10.123.3.2"]]));
    assert_eq!(cmds[3]["add"]["element"]["elem"], json!([[key, 80]]));
    assert_eq!(cmds[4]["add"]["element"]["name"], "wild4");
    assert_eq!(cmds[5]["add"]["element"]["name"], "wild4_port");
    assert_eq!(cmds[5]["add"]["element"]["elem"], json!([[{"concat": ["udp", 53]}, 53]]));
    let there = Listed { ports: vec![mine], dns: vec![] };
    assert!(add_ports(&there, &[mine]).is_empty(), "already there");
    // Withdrawing touches only what is there and still its own.
    assert_eq!(verbs(&remove_ports(&there, &[mine, wild])), ["delete", "delete"]);
    assert!(remove_ports(&left, &[mine]).is_empty(), "another target holds the key");
}

#[test]
fn dns_forwarding_follows_the_stub() {
    let stub = Ipv4Addr::new(127, 0, 0, 53);
    let cmds = dns_batch(&Listed::default(), sub(3), Some(stub));
    assert_eq!(verbs(&cmds), ["add", "add"]);
    assert_eq!(cmds[0]["add"]["element"]["elem"], json!([[{"concat": ["10.123.3.1", "udp", 53]}, "127.0.0.53"]]));
    let now = parse(&json!({"nftables": [{"map": {"name": "dns4", "elem": [
        cmds[0]["add"]["element"]["elem"][0], cmds[1]["add"]["element"]["elem"][0]
    ]}}]}));
    assert_eq!(now.dns.len(), 2);
    assert!(dns_batch(&now, sub(3), Some(stub)).is_empty(), "unchanged");
    assert_eq!(verbs(&dns_batch(&now, sub(3), Some(Ipv4Addr::LOCALHOST))), ["delete", "add", "delete", "add"]);
    assert_eq!(verbs(&dns_batch(&now, sub(3), None)), ["delete", "delete"]);
    assert!(dns_batch(&now, sub(4), None).is_empty(), "another project's");
}

#[test]
fn listings_parse_as_nft_prints_them() {
    let json = json!({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "inet", "name": "berth"}},
        {"map": {"family": "inet", "name": "ports4", "table": "berth", "type": ["ipv4_addr", "inet_proto", "inet_service"],
            "map": "ipv4_addr", "elem": [[{"concat": ["127.0.0.1", "tcp", 8080]}, "10.123.5.2"]]}},
        {"map": {"family": "inet", "name": "ports4_port", "table": "berth", "type": ["ipv4_addr", "inet_proto", "inet_service"],
            "map": "inet_service", "elem": [[{"concat": ["127.0.0.1", "tcp", 8080]}, 80]]}},
        {"map": {"name": "wild4", "elem": [[{"concat": ["udp", 53]}, "10.123.6.2"], ["garbage"],
            [{"concat": ["tcp", 1]}, "10.123.6.2"]]}},
        {"map": {"name": "wild4_port", "elem": [[{"concat": ["udp", 53]}, 53]]}},
        {"map": {"name": "dns4", "elem": [[{"concat": ["10.123.5.1", "tcp", 53]}, "127.0.0.53"]]}},
    ]});
    let listed = parse(&json);
    assert_eq!(
        listed.ports,
        [fwd(Some([127, 0, 0, 1]), Protocol::Tcp, 8080, sub(5), 80), fwd(None, Protocol::Udp, 53, sub(6), 53)]
    );
    assert_eq!(
        listed.dns,
        [DnsForward { gateway: sub(5).gateway(), protocol: Protocol::Tcp, stub: Ipv4Addr::new(127, 0, 0, 53) }]
    );
    // A project's removal takes its elements only.
    assert_eq!(verbs(&remove_subnet(&listed, sub(5))), ["delete", "delete", "delete"]);
    assert!(others(&listed, sub(5)));
    let only6 = Listed { ports: vec![listed.ports[1]], dns: vec![] };
    assert!(!others(&only6, sub(6)));
}
