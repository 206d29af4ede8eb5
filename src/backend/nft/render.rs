//! The nftables ruleset of one netns's services, as one nf_tables batch
//! that replaces netloom's table atomically, or changes only some
//! services in it. Every rule carries a comment naming what it is for:
//! observation reads the rules back by comment.

use super::expr::{self, Exprs};
use super::wire::{Attrs, Batch, Msg};
use crate::model::Proto;
use crate::observed::NftObs;
use crate::resource::Endpoint;
use crate::resource::ServiceRes;
use std::collections::HashMap;
use std::net::IpAddr;

/// The comment on the table's own rules.
pub const BASE: &str = "nl base";

/// The base chains' rules, (chain, comment) in order.
pub const BASE_RULES: [(&str, &str); 6] = [
    ("nat-prerouting", BASE),
    ("nat-output", BASE),
    ("nat-postrouting", BASE),
    ("nat-postrouting", BASE),
    ("filter-prerouting", BASE),
    ("filter-output", BASE),
];

/// What a rule does; `encode` gives its expressions.
#[derive(Clone, Debug)]
enum Body {
    /// `jump CHAIN`
    Jump(&'static str),
    /// `ct status dnat ct original ip[6] daddr @vips4|6 masquerade`
    Masq { v6: bool },
    /// `ip[6] daddr VIP PROTO dport PORT` then `goto CHAIN` (None: refuse:
    /// a TCP reset, an ICMP port unreachable for UDP)
    Dispatch {
        vip: IpAddr,
        proto: Proto,
        port: u16,
        to: Option<String>,
    },
    /// `numgen random mod N vmap { i : goto CHAIN_i }`
    Spread(Vec<String>),
    /// `ip[6] saddr @SET goto CHAIN`
    Sticky {
        set: String,
        v6: bool,
        chain: String,
    },
    /// `update @SET { ip[6] saddr }`
    Remember { set: String, v6: bool },
    /// `meta l4proto PROTO dnat ip[6] to ADDR:PORT`
    Dnat { proto: Proto, to: IpAddr, port: u16 },
}

struct Rule {
    chain: String,
    body: Body,
    comment: String,
}

/// A set a service needs (client-IP affinity), updated from the packet path.
struct SetDef {
    name: String,
    v6: bool,
    timeout: Option<u32>,
}

fn fam(ip: &IpAddr) -> (&'static str, u8) {
    match ip {
        IpAddr::V4(_) => ("ip", 4),
        IpAddr::V6(_) => ("ip6", 6),
    }
}

/// A service's rules and the chains and sets they need.
fn service_rules(s: &ServiceRes, endpoints: &[Endpoint]) -> (Vec<Rule>, Vec<String>, Vec<SetDef>) {
    let (mut rules, mut chains, mut sets) = (vec![], vec![], vec![]);
    let n = &s.name;
    let mut rule = |chain: &str, body: Body, comment: String| {
        rules.push(Rule {
            chain: chain.to_string(),
            body,
            comment,
        })
    };
    for p in &s.ports {
        let proto = p.protocol.as_str();
        for f in [4u8, 6] {
            let vips: Vec<&IpAddr> = s.vips.iter().filter(|v| fam(v).1 == f).collect();
            if vips.is_empty() {
                continue;
            }
            let v6 = f == 6;
            let eps: Vec<(String, IpAddr, String)> = endpoints
                .iter()
                .filter_map(|e| match f {
                    4 => {
                        e.v4.map(|a| (e.name.clone(), IpAddr::V4(a), format!("{a}:{}", p.target)))
                    }
                    _ => {
                        e.v6.map(|a| (e.name.clone(), IpAddr::V6(a), format!("[{a}]:{}", p.target)))
                    }
                })
                .collect();
            let svc = format!("svc-{n}-{proto}{}-{f}", p.port);
            for vip in &vips {
                let empty = eps.is_empty();
                rule(
                    if empty { "noep" } else { "services" },
                    Body::Dispatch {
                        vip: **vip,
                        proto: p.protocol,
                        port: p.port,
                        to: (!empty).then(|| svc.clone()),
                    },
                    if empty {
                        format!("nl svc {n} refuse {vip} {proto}/{}", p.port)
                    } else {
                        format!("nl svc {n} to {vip} {proto}/{}", p.port)
                    },
                );
            }
            if eps.is_empty() {
                continue;
            }
            chains.push(svc.clone());
            let ep_chain = |i: usize| format!("ep-{n}-{proto}{}-{f}-{i}", p.port);
            let aff_set = |i: usize| format!("aff-{n}-{proto}{}-{f}-{i}", p.port);
            if let Some(secs) = s.affinity {
                for i in 0..eps.len() {
                    sets.push(SetDef {
                        name: aff_set(i),
                        v6,
                        timeout: Some(secs),
                    });
                    rule(
                        &svc,
                        Body::Sticky {
                            set: aff_set(i),
                            v6,
                            chain: ep_chain(i),
                        },
                        format!("nl svc {n} sticky {i}"),
                    );
                }
            }
            rule(
                &svc,
                Body::Spread((0..eps.len()).map(ep_chain).collect()),
                format!("nl svc {n} spread {}", eps.len()),
            );
            for (i, (name, addr, to)) in eps.iter().enumerate() {
                let c = ep_chain(i);
                chains.push(c.clone());
                if s.affinity.is_some() {
                    rule(
                        &c,
                        Body::Remember {
                            set: aff_set(i),
                            v6,
                        },
                        format!("nl svc {n} remember {i}"),
                    );
                }
                rule(
                    &c,
                    Body::Dnat {
                        proto: p.protocol,
                        to: *addr,
                        port: p.target,
                    },
                    format!("nl svc {n} ep {name} {to}"),
                );
            }
        }
    }
    (rules, chains, sets)
}

/// Whether the table holds exactly the rules (by chain and comment) that
/// `s` spread over `endpoints` is written as.
pub fn rules_match(s: &ServiceRes, endpoints: &[Endpoint], t: &NftObs) -> bool {
    let have = t.rules_of(&s.name);
    let mut want: Vec<Rule> = service_rules(s, endpoints).0;
    if want.len() != have.len() {
        return false;
    }
    want.sort_unstable_by(|a, b| (&a.chain, &a.comment).cmp(&(&b.chain, &b.comment)));
    want.iter()
        .zip(have)
        .all(|(w, (chain, comment))| w.chain == chain && w.comment == comment)
}

/// Builds one batch for `table`: sets are named by id within it, so a
/// rule may use a set made by the same transaction.
pub struct Writer {
    table: String,
    pub batch: Batch,
    set_ids: HashMap<String, u32>,
}

// NFTA_* of tables, chains, sets, elements, rules.
const TABLE_NAME: u16 = 1;
const TABLE_FLAGS: u16 = 2;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_KEY_TYPE: u16 = 4;
const SET_KEY_LEN: u16 = 5;
const SET_DATA_TYPE: u16 = 6;
const SET_DATA_LEN: u16 = 7;
const SET_DESC: u16 = 9;
const SET_ID: u16 = 10;
const SET_TIMEOUT: u16 = 11;
const SET_USERDATA: u16 = 13;
const ELEM_LIST_TABLE: u16 = 1;
const ELEM_LIST_SET: u16 = 2;
const ELEM_LIST_ELEMENTS: u16 = 3;
const ELEM_LIST_SET_ID: u16 = 4;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
// set flags; nft's data types (ipv4_addr 7, ipv6_addr 8, integer 4)
const F_ANONYMOUS: u32 = 0x1;
const F_CONSTANT: u32 = 0x2;
const F_MAP: u32 = 0x8;
const F_TIMEOUT: u32 = 0x10;
const F_EVAL: u32 = 0x20;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
/// Set elements per message: a verdict element with a long chain name is
/// under 200 bytes, so 256 of them stay far below the 64 KiB an
/// attribute's 16-bit length allows.
const ELEMS_PER_MESSAGE: usize = 256;

/// libnftnl's set user data: key byte order (1 host, 2 big endian), as
/// nft writes it, so `nft list` prints the keys as they were meant.
fn set_udata(byteorder: u32, verdict_map: bool) -> Vec<u8> {
    let mut u = vec![0, 4];
    u.extend_from_slice(&byteorder.to_ne_bytes());
    if verdict_map {
        // data byte order 0; data typeof: a verdict expression; no interval.
        u.extend_from_slice(&[1, 4]);
        u.extend_from_slice(&0u32.to_ne_bytes());
        u.extend_from_slice(&[4, 8, 0, 4]);
        u.extend_from_slice(&1u32.to_ne_bytes());
        u.extend_from_slice(&[1, 0]);
        u.extend_from_slice(&[6, 4]);
        u.extend_from_slice(&0u32.to_ne_bytes());
    }
    u
}

impl Writer {
    pub fn new(table: &str) -> Writer {
        Writer {
            table: table.to_string(),
            batch: Batch::new(),
            set_ids: HashMap::new(),
        }
    }

    fn id(&mut self, set: &str) -> u32 {
        let next = self.set_ids.len() as u32 + 1;
        *self.set_ids.entry(set.to_string()).or_insert(next)
    }

    fn table_msg(&mut self, msg: Msg) {
        let mut a = Attrs::default();
        a.str(TABLE_NAME, &self.table);
        if msg == Msg::NewTable {
            a.be32(TABLE_FLAGS, 0);
        }
        self.batch
            .push(msg, false, format!("table inet {}", &self.table), &a);
    }

    fn chain(&mut self, name: &str, hook: Option<(u32, i32, &str)>) {
        let mut a = Attrs::default();
        a.str(CHAIN_TABLE, &self.table).str(CHAIN_NAME, name);
        if let Some((num, prio, kind)) = hook {
            a.nest(CHAIN_HOOK, |h| {
                h.be32(1, num).be32(2, prio as u32);
            })
            .be32(CHAIN_POLICY, 1)
            .str(CHAIN_TYPE, kind);
        }
        self.batch
            .push(Msg::NewChain, false, format!("chain {name}"), &a);
    }

    fn named(&mut self, msg: Msg, kind: u16, what: &str, name: &str) {
        let mut a = Attrs::default();
        a.str(1, &self.table).str(kind, name);
        self.batch.push(msg, false, format!("{what} {name}"), &a);
    }

    /// An address set: `vips4`/`vips6`, or an affinity set (timeout).
    fn set(&mut self, name: &str, v6: bool, timeout: Option<u32>) {
        let id = self.id(name);
        let mut a = Attrs::default();
        a.str(SET_TABLE, &self.table)
            .str(SET_NAME, name)
            .be32(SET_FLAGS, timeout.map_or(0, |_| F_TIMEOUT | F_EVAL))
            .be32(SET_KEY_TYPE, if v6 { 8 } else { 7 })
            .be32(SET_KEY_LEN, if v6 { 16 } else { 4 })
            .be32(SET_ID, id);
        if let Some(t) = timeout {
            a.be64(SET_TIMEOUT, u64::from(t) * 1000);
        }
        a.bytes(SET_USERDATA, &set_udata(2, false));
        self.batch
            .push(Msg::NewSet, false, format!("set {name}"), &a);
    }

    fn elements(&mut self, set: &str, addrs: &[IpAddr]) {
        if addrs.is_empty() {
            return;
        }
        let id = self.id(set);
        // An attribute's length is 16 bits: the list goes in several
        // messages (of one transaction still), as nft splits it.
        for part in addrs.chunks(ELEMS_PER_MESSAGE) {
            let mut a = Attrs::default();
            a.str(ELEM_LIST_TABLE, &self.table)
                .str(ELEM_LIST_SET, set)
                .be32(ELEM_LIST_SET_ID, id)
                .nest(ELEM_LIST_ELEMENTS, |l| {
                    for ip in part {
                        l.nest(1, |e| expr::value(e, 1, &expr::addr_bytes(ip)));
                    }
                });
            self.batch
                .push(Msg::NewSetElem, false, format!("elements of set {set}"), &a);
        }
    }

    /// Empties a set (DELSETELEM without elements).
    fn flush_set(&mut self, set: &str) {
        self.named(Msg::DelSetElem, ELEM_LIST_SET, "elements of set", set);
    }

    /// An anonymous verdict map `{ i : goto CHAIN_i }`, its id.
    fn vmap(&mut self, chains: &[String]) -> u32 {
        let name = format!("__map{}", self.set_ids.len());
        let id = self.id(&name);
        let mut a = Attrs::default();
        a.str(SET_TABLE, &self.table)
            .str(SET_NAME, "__map%d")
            .be32(SET_FLAGS, F_ANONYMOUS | F_CONSTANT | F_MAP)
            .be32(SET_KEY_TYPE, 4)
            .be32(SET_KEY_LEN, 4)
            .be32(SET_DATA_TYPE, NFT_DATA_VERDICT)
            .be32(SET_DATA_LEN, 0)
            .be32(SET_ID, id)
            .nest(SET_DESC, |d| {
                d.be32(1, chains.len() as u32);
            })
            .bytes(SET_USERDATA, &set_udata(1, true));
        self.batch
            .push(Msg::NewSet, false, "an anonymous verdict map".into(), &a);
        let numbered: Vec<(usize, &String)> = chains.iter().enumerate().collect();
        for part in numbered.chunks(ELEMS_PER_MESSAGE) {
            let mut e = Attrs::default();
            e.str(ELEM_LIST_TABLE, &self.table)
                .str(ELEM_LIST_SET, "__map%d")
                .be32(ELEM_LIST_SET_ID, id)
                .nest(ELEM_LIST_ELEMENTS, |l| {
                    for (i, c) in part {
                        l.nest(1, |el| {
                            expr::value(el, 1, &(*i as u32).to_ne_bytes());
                            expr::verdict(el, 2, expr::GOTO, c);
                        });
                    }
                });
            self.batch.push(
                Msg::NewSetElem,
                false,
                "the elements of an anonymous verdict map".into(),
                &e,
            );
        }
        id
    }

    fn rule(&mut self, r: &Rule, echo: bool) {
        let mut e = Exprs::default();
        match &r.body {
            Body::Jump(c) => {
                e.verdict_to(expr::JUMP, c);
            }
            Body::Masq { v6 } => {
                let set = if *v6 { "vips6" } else { "vips4" };
                let id = self.id(set);
                e.ct(expr::CT_STATUS, false, expr::REG_1)
                    .flag_set(expr::REG_1, expr::IPS_DST_NAT)
                    .ct(
                        if *v6 {
                            expr::CT_DST_IP6
                        } else {
                            expr::CT_DST_IP
                        },
                        true,
                        expr::REG_1,
                    )
                    .lookup(expr::REG_1, set, id, None)
                    .masq();
            }
            Body::Dispatch {
                vip,
                proto,
                port,
                to,
            } => {
                let v6 = vip.is_ipv6();
                expr::ip_addr(&mut e, v6, true);
                e.cmp_eq(expr::REG_1, &expr::addr_bytes(vip));
                l4(&mut e, *proto);
                e.payload(expr::TRANSPORT, 2, 2, expr::REG_1)
                    .cmp_eq(expr::REG_1, &port.to_be_bytes());
                match (to, proto) {
                    (Some(c), _) => e.verdict_to(expr::GOTO, c),
                    (None, Proto::Tcp) => e.reject(1, 0),
                    // ICMP / ICMPv6 port unreachable
                    (None, Proto::Udp) => e.reject(0, if v6 { 4 } else { 3 }),
                };
            }
            Body::Spread(chains) => {
                let id = self.vmap(chains);
                e.numgen_random(expr::REG_1, chains.len() as u32).lookup(
                    expr::REG_1,
                    "__map%d",
                    id,
                    Some(expr::REG_VERDICT),
                );
            }
            Body::Sticky { set, v6, chain } => {
                let id = self.id(set);
                expr::ip_addr(&mut e, *v6, false);
                e.lookup(expr::REG_1, set, id, None)
                    .verdict_to(expr::GOTO, chain);
            }
            Body::Remember { set, v6 } => {
                let id = self.id(set);
                expr::ip_addr(&mut e, *v6, false);
                e.dynset_update(set, id, expr::REG_1);
            }
            Body::Dnat { proto, to, port } => {
                l4(&mut e, *proto);
                e.immediate(expr::REG_1, &expr::addr_bytes(to))
                    .immediate(expr::REG_2, &port.to_be_bytes())
                    .dnat(to.is_ipv6(), expr::REG_1, expr::REG_2);
            }
        }
        let mut udata = vec![0u8, (r.comment.len() + 1) as u8];
        udata.extend_from_slice(r.comment.as_bytes());
        udata.push(0);
        let mut a = Attrs::default();
        a.str(RULE_TABLE, &self.table)
            .str(RULE_CHAIN, &r.chain)
            .nest(RULE_EXPRESSIONS, |x| x.0.extend_from_slice(&e.0.0))
            .bytes(RULE_USERDATA, &udata);
        self.batch.push(
            Msg::NewRule,
            echo,
            format!("the rule \"{}\" in chain {}", r.comment, r.chain),
            &a,
        );
    }

    fn del_rule(&mut self, chain: &str, handle: Option<u64>) {
        let mut a = Attrs::default();
        a.str(RULE_TABLE, &self.table).str(RULE_CHAIN, chain);
        if let Some(h) = handle {
            a.be64(RULE_HANDLE, h);
        }
        let what = match handle {
            Some(h) => format!("deleting rule {h} of chain {chain}"),
            None => format!("flushing chain {chain}"),
        };
        self.batch.push(Msg::DelRule, false, what, &a);
    }
}

/// Every VIP of a family (4 or 6) the services have, once each, in order.
fn vips_of(services: &[ServiceRes], f: u8) -> Vec<IpAddr> {
    services
        .iter()
        .flat_map(|s| s.vips.iter().copied())
        .filter(|v| fam(v).1 == f)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn l4(e: &mut Exprs, proto: Proto) {
    e.meta(expr::META_L4PROTO, expr::REG_1)
        .cmp_eq(expr::REG_1, &[if proto == Proto::Tcp { 6 } else { 17 }]);
}

/// Whether a chain is one of the two every service dispatches from: only
/// their rules' handles are ever needed (to delete one service's), so
/// only theirs are echoed.
pub fn shared(chain: &str) -> bool {
    SHARED.contains(&chain)
}

/// A base chain: name, (hook, priority, type), rules.
type BaseChain = (&'static str, (u32, i32, &'static str), Vec<Body>);

/// The batch that makes `table` hold exactly these services' rules (or,
/// with none, removes it), and every rule it writes, (chain, comment), in
/// the order `nft list` shows them. Add then delete: there may be none.
pub fn whole(table: &str, services: &[ServiceRes]) -> (Writer, Vec<(String, String)>) {
    let mut w = Writer::new(table);
    w.table_msg(Msg::NewTable);
    w.table_msg(Msg::DelTable);
    if services.is_empty() {
        return (w, vec![]);
    }
    w.table_msg(Msg::NewTable);
    let (mut rules, mut chains, mut sets) = (vec![], vec![], vec![]);
    for s in services {
        let (r, c, st) = service_rules(s, &s.endpoints);
        rules.extend(r);
        chains.extend(c);
        sets.extend(st);
    }
    for (f, name) in [(4u8, "vips4"), (6, "vips6")] {
        w.set(name, f == 6, None);
        w.elements(name, &vips_of(services, f));
    }
    for s in &sets {
        w.set(&s.name, s.v6, s.timeout);
    }
    let base: [BaseChain; 5] = [
        (
            "nat-prerouting",
            (0, -100, "nat"),
            vec![Body::Jump("services")],
        ),
        ("nat-output", (3, -100, "nat"), vec![Body::Jump("services")]),
        (
            "nat-postrouting",
            (4, 100, "nat"),
            vec![Body::Masq { v6: false }, Body::Masq { v6: true }],
        ),
        // Before routing: a VIP with no route here is still refused with
        // a reset, not "network unreachable".
        (
            "filter-prerouting",
            (0, -110, "filter"),
            vec![Body::Jump("noep")],
        ),
        (
            "filter-output",
            (3, -10, "filter"),
            vec![Body::Jump("noep")],
        ),
    ];
    let mut order: Vec<String> = vec![];
    let mut all: Vec<Rule> = vec![];
    for (name, hook, bodies) in base {
        w.chain(name, Some(hook));
        order.push(name.to_string());
        for body in bodies {
            all.push(Rule {
                chain: name.to_string(),
                body,
                comment: BASE.to_string(),
            });
        }
    }
    for c in SHARED.iter().map(|s| s.to_string()).chain(chains) {
        w.chain(&c, None);
        order.push(c);
    }
    // Rules by chain, in chain order (a scan of every rule per chain was
    // quadratic in the number of endpoints).
    let mut by_chain: HashMap<String, Vec<Rule>> = HashMap::new();
    for r in rules {
        by_chain.entry(r.chain.clone()).or_default().push(r);
    }
    for c in &order {
        all.extend(by_chain.remove(c).unwrap_or_default());
    }
    for r in &all {
        w.rule(r, shared(&r.chain));
    }
    let written = all.into_iter().map(|r| (r.chain, r.comment)).collect();
    (w, written)
}

/// A change in place: its batch, whether anything is echoed (rules added
/// to the dispatch chains, whose handles a later change needs), and the
/// rules it writes.
pub struct Delta {
    pub writer: Writer,
    pub echo: bool,
    /// (chain, comment) of every rule added.
    pub written: Vec<(String, String)>,
    /// Changed services whose dispatch rules stayed as they were.
    pub kept: Vec<String>,
}

/// The chains of the table's own (every service's dispatch lives in them).
const SHARED: [&str; 2] = ["services", "noep"];

/// A batch that changes only the given services in an existing table of
/// netloom's (`observed`): each one's dispatch rules are deleted by handle
/// and its own chains flushed, then its rules come anew; chains and sets
/// it no longer has go. `None` when that cannot be done in place (a rule
/// without a handle): then the whole table is written.
pub fn delta(
    table: &str,
    changed: &[(&str, Option<&ServiceRes>)],
    all: &[ServiceRes],
    observed: &crate::observed::NftObs,
) -> Option<Delta> {
    let mut w = Writer::new(table);
    let (mut old_chains, mut new_chains) = (vec![], vec![]);
    let (mut old_sets, mut new_sets) = (vec![], vec![]);
    let mut new_rules = vec![];
    let mut echo = false;
    let mut kept = vec![];
    for (name, new) in changed {
        let old = observed.rules_with_handles(name);
        let mut old_shared: Vec<(&str, &str)> = old
            .iter()
            .filter(|(c, _, _)| shared(c))
            .map(|(c, m, _)| (*c, *m))
            .collect();
        old_shared.sort();
        let (rules, chains, sets) = new
            .map(|s| service_rules(s, &s.endpoints))
            .unwrap_or_default();
        let mut new_shared: Vec<(&str, &str)> = rules
            .iter()
            .filter(|r| shared(&r.chain))
            .map(|r| (r.chain.as_str(), r.comment.as_str()))
            .collect();
        new_shared.sort();
        // Dispatch rules unchanged (an endpoint change): left in place.
        let keep_shared = old_shared == new_shared;
        if keep_shared {
            kept.push(name.to_string());
        }
        for (chain, comment, handle) in old {
            // A service's comment in a base chain was put there by hand.
            if BASE_RULES.iter().any(|(b, _)| *b == chain) {
                return None;
            }
            if shared(chain) {
                if !keep_shared {
                    let handle = handle.filter(|h| *h != 0)?;
                    w.del_rule(chain, Some(handle));
                }
            } else if !old_chains.contains(&chain) {
                old_chains.push(chain);
                // An endpoint chain with a `remember` rule has a set of its own.
                if comment.contains(" remember ")
                    && let Some(set) = chain.strip_prefix("ep-")
                {
                    old_sets.push(format!("aff-{set}"));
                }
            }
        }
        // New rules in the shared chains are echoed, for their handles.
        echo |= !keep_shared && !new_shared.is_empty();
        new_rules.extend(
            rules
                .into_iter()
                .filter(|r| !(keep_shared && shared(&r.chain))),
        );
        new_chains.extend(chains);
        new_sets.extend(sets);
    }
    for c in &old_chains {
        w.del_rule(c, None);
    }
    for c in old_chains
        .iter()
        .filter(|c| !new_chains.iter().any(|n| n == *c))
    {
        w.named(Msg::DelChain, CHAIN_NAME, "chain", c);
    }
    for s in old_sets
        .iter()
        .filter(|s| !new_sets.iter().any(|n: &SetDef| &n.name == *s))
    {
        w.named(Msg::DelSet, SET_NAME, "set", s);
    }
    for s in &new_sets {
        w.set(&s.name, s.v6, s.timeout);
    }
    for c in &new_chains {
        w.chain(c, None);
    }
    for r in &new_rules {
        w.rule(r, shared(&r.chain));
    }
    // The VIP sets the masquerade rules match, whole, when a changed
    // service's VIPs moved (a VIP may serve several services).
    let old_vips: std::collections::BTreeSet<String> = changed
        .iter()
        .flat_map(|(n, _)| observed.rules_with_handles(n))
        .filter(|(c, _, _)| shared(c))
        .filter_map(|(_, comment, _)| {
            let rest = comment.split(' ').collect::<Vec<_>>();
            (rest.len() >= 5).then(|| rest[4].to_string())
        })
        .collect();
    let new_vips: std::collections::BTreeSet<String> = changed
        .iter()
        .filter_map(|(_, s)| *s)
        .flat_map(|s| s.vips.iter().map(ToString::to_string))
        .collect();
    let written = new_rules
        .iter()
        .map(|r| (r.chain.clone(), r.comment.clone()))
        .collect();
    if old_vips != new_vips {
        for (f, set) in [(4u8, "vips4"), (6, "vips6")] {
            w.flush_set(set);
            w.elements(set, &vips_of(all, f));
        }
    }
    Some(Delta {
        writer: w,
        echo,
        written,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_element_lists_go_in_several_messages() {
        let mut w = Writer::new("t");
        let addrs: Vec<IpAddr> = (0..600u32)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        w.elements("vips4", &addrs);
        assert_eq!(w.batch.len(), 3, "256 + 256 + 88");
        let chains: Vec<String> = (0..300).map(|i| format!("ep-{i}")).collect();
        w.vmap(&chains);
        assert_eq!(
            w.batch.len(),
            3 + 1 + 2,
            "the map, then its elements in two"
        );
    }
}
