//! Validation of `[bgp]`: the speaker, its peers, announcements and route
//! policy. Passwords are read here (from the environment or a file) and
//! from then on held only as a `Secret`, which never prints.

use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::{
    BgpPeerSpec, BgpPolicySpec, BgpSpec, BgpTermSpec, Loaded, PasswordSpec, Section,
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A password: compared, sent to gobgpd, and never shown (Debug, Display
/// and serde all write `(redacted)`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

pub const REDACTED: &str = "(redacted)";

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    /// The secret itself, for gobgpd's API only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fam {
    Ipv4,
    Ipv6,
}

impl Fam {
    pub fn of(ip: IpAddr) -> Fam {
        if ip.is_ipv4() { Fam::Ipv4 } else { Fam::Ipv6 }
    }
    pub fn of_net(n: &IpNet) -> Fam {
        Fam::of(n.addr())
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Fam::Ipv4 => "ipv4",
            Fam::Ipv6 => "ipv6",
        }
    }
}

/// A BGP community, ASN:VALUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Community(pub u16, pub u16);

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl Community {
    pub fn parse(s: &str) -> Option<Community> {
        let (a, b) = s.split_once(':')?;
        Some(Community(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn as_u32(self) -> u32 {
        (u32::from(self.0) << 16) | u32::from(self.1)
    }
}

/// A prefix-list entry: `net` and the prefix lengths it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PrefixMatch {
    pub net: IpNet,
    pub min: u8,
    pub max: u8,
}

impl fmt::Display for PrefixMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.net.prefix_len();
        match (self.min == len, self.max == len) {
            (true, true) => write!(f, "{}", self.net),
            (true, false) => write!(f, "{} le {}", self.net, self.max),
            (false, _) => write!(f, "{} ge {} le {}", self.net, self.min, self.max),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub prefixes: Vec<PrefixMatch>,
    pub communities: Vec<Community>,
    pub accept: bool,
    pub set_communities: Vec<Community>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub prepend: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// For routes no term matches: accept (true) or reject; none: on to the next.
    pub default: Option<bool>,
    pub terms: Vec<Term>,
    #[serde(skip)]
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub loc: Loc,
    pub address: IpAddr,
    pub asn: u32,
    pub password: Option<Secret>,
    pub hold_time: u32,
    pub passive: bool,
    pub multihop: Option<u32>,
    pub families: Vec<Fam>,
    pub max_prefixes: Option<u32>,
    pub import: Vec<String>,
    pub export: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Bgp {
    pub loc: Loc,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub announce: Vec<IpNet>,
    pub install: bool,
    pub table: u32,
    pub listen_port: i32,
    /// An existing gobgpd's API socket; none: netloom runs one.
    pub api: Option<PathBuf>,
    pub peers: BTreeMap<String, Peer>,
    pub policies: BTreeMap<String, Policy>,
}

pub const DEFAULT_HOLD_TIME: u32 = 90;

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

fn asn(file: usize, v: &Spanned<i64>, what: &str, diags: &mut Vec<Diagnostic>) -> Option<u32> {
    match u32::try_from(*v.get_ref()) {
        Ok(a) if a > 0 => Some(a),
        _ => {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, v),
                    format!("{what} {} is not a valid AS number", v.get_ref()),
                )
                .help("AS numbers are 1–4294967295 (private: 64512–65534, 4200000000–4294967294)"),
            );
            None
        }
    }
}

pub(super) fn build(loaded: &Loaded, diags: &mut Vec<Diagnostic>) -> Option<Bgp> {
    let mut found: Option<(&Section<BgpSpec>, usize)> = None;
    for f in &loaded.files {
        if let Some(s) = &f.bgp {
            if let Some((first, _)) = found {
                diags.push(
                    Diagnostic::at(&s.name_loc, "[bgp] is declared more than once")
                        .related(&first.name_loc, "first declared here")
                        .help("a topology has one BGP speaker: declare [bgp] in one file"),
                );
                continue;
            }
            found = Some((s, f.file));
        }
    }
    let (s, file) = found?;
    let dir = loaded
        .sources
        .path(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let before = diags.len();
    let spec = &s.spec;
    let asn_v = asn(file, &spec.asn, "asn", diags);
    let router_id = match spec.router_id.get_ref().parse::<Ipv4Addr>() {
        Ok(r) => Some(r),
        Err(_) => {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, &spec.router_id),
                    format!("router_id `{}` is not an IPv4 address", spec.router_id.get_ref()),
                )
                .help("a BGP router id is written as an IPv4 address, e.g. \"10.0.0.1\", even on IPv6-only speakers"),
            );
            None
        }
    };
    let mut announce = vec![];
    for a in &spec.announce {
        let loc = loc_of(file, a);
        match a.get_ref().parse::<IpNet>() {
            Err(_) => diags.push(
                Diagnostic::at(&loc, format!("`{}` is not a prefix", a.get_ref()))
                    .help("announce prefixes in CIDR form, e.g. \"192.168.100.0/24\""),
            ),
            Ok(n) if n.trunc() != n => diags.push(
                Diagnostic::at(&loc, format!("announced prefix {n} has host bits set"))
                    .help(format!("announce the network itself: \"{}\"", n.trunc())),
            ),
            Ok(n) if announce.contains(&n) => diags.push(
                Diagnostic::at(&loc, format!("{n} is announced twice"))
                    .help("list each prefix once"),
            ),
            Ok(n) => announce.push(n),
        }
    }
    let table = match &spec.table {
        None => super::MAIN_TABLE,
        Some(t) => {
            match u32::try_from(*t.get_ref()) {
                Ok(v) if v > 0 && v != 255 => v,
                _ => {
                    diags.push(
                    Diagnostic::at(&loc_of(file, t), format!("table {} is not a table learned routes can go in", t.get_ref()))
                        .help("a kernel table id 1–4294967295 other than 255 (local); default 254 (main)"),
                );
                    0
                }
            }
        }
    };
    let listen_port = match &spec.listen_port {
        None => 179,
        Some(p) => match *p.get_ref() {
            -1 => -1,
            v @ 1..=65535 => v as i32,
            v => {
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, p),
                        format!("listen_port {v} is not a TCP port"),
                    )
                    .help("1–65535, or -1 for a speaker that only connects out"),
                );
                179
            }
        },
    };
    let api = spec.api.as_ref().and_then(|a| {
        match a.get_ref().strip_prefix("unix://") {
            Some(p) if p.starts_with('/') => Some(PathBuf::from(p)),
            _ => {
                diags.push(
                    Diagnostic::at(&loc_of(file, a), format!("api `{}` is not a unix socket URL", a.get_ref()))
                        .help("write it as \"unix:///run/gobgpd.sock\" (netloom never talks to gobgpd over TCP)"),
                );
                None
            }
        }
    });
    let mut policies = BTreeMap::new();
    for (name, p) in &spec.policy {
        if let Err(m) = super::check_scope_name("policy name", name.get_ref()) {
            diags.push(
                Diagnostic::at(&loc_of(file, name), m.0)
                    .help("name policies with letters, digits, `-`, `_` and `.`"),
            );
            continue;
        }
        if let Some(p) = policy(file, name, p, diags) {
            policies.insert(name.get_ref().clone(), p);
        }
    }
    let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
    let mut by_addr: BTreeMap<IpAddr, Loc> = BTreeMap::new();
    for (name, p) in &spec.peer {
        let loc = loc_of(file, name);
        if let Err(m) = super::check_scope_name("peer name", name.get_ref()) {
            diags.push(
                Diagnostic::at(&loc, m.0).help("name peers with letters, digits, `-`, `_` and `.`"),
            );
            continue;
        }
        let Some(peer) = peer(file, &dir, name.get_ref(), loc, p, &policies, diags) else {
            continue;
        };
        let aloc = loc_of(file, &p.address);
        if let Some(first) = by_addr.get(&peer.address) {
            diags.push(
                Diagnostic::at(
                    &aloc,
                    format!("two peers have the address {}", peer.address),
                )
                .related(first, "first used here")
                .help("gobgpd keys peers by address: give each peer its own"),
            );
            continue;
        }
        by_addr.insert(peer.address, aloc);
        peers.insert(peer.name.clone(), peer);
    }
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Bgp {
        loc: s.name_loc.clone(),
        asn: asn_v?,
        router_id: router_id?,
        announce,
        install: spec.install.unwrap_or(true),
        table,
        listen_port,
        api,
        peers,
        policies,
    })
}

fn peer(
    file: usize,
    dir: &Path,
    name: &str,
    loc: Loc,
    p: &BgpPeerSpec,
    policies: &BTreeMap<String, Policy>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Peer> {
    let before = diags.len();
    let address = match p.address.get_ref().parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, &p.address),
                    format!(
                        "peer address `{}` is not an IP address",
                        p.address.get_ref()
                    ),
                )
                .help("the neighbour's address, without a prefix: \"10.0.0.2\" or \"fd00::2\""),
            );
            None
        }
    };
    let asn_v = asn(file, &p.asn, "asn", diags);
    let hold_time = match &p.hold_time {
        None => DEFAULT_HOLD_TIME,
        Some(h) => match u32::try_from(*h.get_ref()) {
            Ok(v) if (3..=65535).contains(&v) => v,
            _ => {
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, h),
                        format!("hold_time {} is not allowed", h.get_ref()),
                    )
                    .help("hold times are 3–65535 seconds (RFC 4271 also allows 0, but gobgpd turns 0 into its default of 90)"),
                );
                0
            }
        },
    };
    let multihop = p
        .multihop
        .as_ref()
        .and_then(|m| match u8::try_from(*m.get_ref()) {
            Ok(v) if v > 0 => Some(u32::from(v)),
            _ => {
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, m),
                        format!("multihop {} is not a TTL", m.get_ref()),
                    )
                    .help("an eBGP multihop TTL is 1–255"),
                );
                None
            }
        });
    let max_prefixes = p
        .max_prefixes
        .as_ref()
        .and_then(|m| match u32::try_from(*m.get_ref()) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, m),
                        format!("max_prefixes {} is out of range", m.get_ref()),
                    )
                    .help("1–4294967295"),
                );
                None
            }
        });
    let mut families = vec![];
    match &p.families {
        None => families.extend(address.map(Fam::of)),
        Some(list) => {
            for f in list.get_ref() {
                match f.get_ref().as_str() {
                    "ipv4" => families.push(Fam::Ipv4),
                    "ipv6" => families.push(Fam::Ipv6),
                    other => diags.push(
                        Diagnostic::at(
                            &loc_of(file, f),
                            format!("unknown address family `{other}`"),
                        )
                        .help("families are \"ipv4\" and \"ipv6\""),
                    ),
                }
            }
            if list.get_ref().is_empty() {
                diags.push(
                    Diagnostic::at(&loc_of(file, list), "a peer needs at least one family")
                        .help("families = [\"ipv4\"], [\"ipv6\"] or both; omit it for the family of `address`"),
                );
            }
        }
    }
    families.sort();
    families.dedup();
    // gobgpd sends IPv6 routes over an IPv4 session with an IPv4 next hop,
    // which BIRD and most routers reject.
    if let (Some(a), Some(list)) = (address, &p.families)
        && a.is_ipv4()
        && families.contains(&Fam::Ipv6)
    {
        diags.push(
            Diagnostic::warning(
                &loc_of(file, list),
                format!("peer `{name}` carries ipv6 over an IPv4 session: gobgpd gives those routes an IPv4 next hop, which most peers reject"),
            )
            .help("peer over the neighbour's IPv6 address for IPv6 routes (a second [bgp.peer.NAME])"),
        );
    }
    let password = p.password.as_ref().and_then(|pw| {
        let ploc = loc_of(file, pw);
        match pw.get_ref() {
            PasswordSpec::Literal(s) => {
                if p.allow_literal_password != Some(true) {
                    diags.push(
                        Diagnostic::warning(&ploc, format!("peer `{name}`'s password is written in the topology file"))
                            .help("it would be committed to git with the file: use password = { env = \"VAR\" } or { file = \"/path\" }, or set allow_literal_password = true")
                            .concealed(),
                    );
                }
                Some(Secret::new(s.clone()))
            }
            PasswordSpec::Env { env } => match std::env::var(env) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    diags.push(
                        Diagnostic::at(&ploc, format!("environment variable `{env}` (peer `{name}`'s password) is not set"))
                            .help(format!("export {env}=… before running netloom, or use password = {{ file = \"/path\" }}")),
                    );
                    None
                }
            },
            PasswordSpec::File { file: f } => {
                let path = dir.join(f);
                match std::fs::read_to_string(&path) {
                    Ok(v) if !v.trim_end_matches(['\n', '\r']).is_empty() => {
                        Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_string()))
                    }
                    Ok(_) => {
                        diags.push(
                            Diagnostic::at(&ploc, format!("password file {} is empty", path.display()))
                                .help("put the password on the file's first line"),
                        );
                        None
                    }
                    Err(e) => {
                        diags.push(
                            Diagnostic::at(&ploc, format!("cannot read password file {}: {e}", path.display()))
                                .help("the path is relative to this topology file; it must be readable by netloom"),
                        );
                        None
                    }
                }
            }
        }
    });
    let mut refs = |list: &[Spanned<String>], dirn: &str| -> Vec<String> {
        let mut out = vec![];
        for r in list {
            let rloc = loc_of(file, r);
            let Some(pol) = policies.get(r.get_ref()) else {
                let names: Vec<&str> = policies.keys().map(String::as_str).collect();
                let mut d = Diagnostic::at(
                    &rloc,
                    format!("{dirn} policy `{}` is not defined", r.get_ref()),
                );
                d = match did_you_mean(r.get_ref(), names.iter().copied()) {
                    Some(s) => d.help(format!(
                        "did you mean `{s}`? Policies are declared as [bgp.policy.NAME]"
                    )),
                    None => d.help(format!("declare it as [bgp.policy.{}]", r.get_ref())),
                };
                diags.push(d.unresolved());
                continue;
            };
            for t in &pol.terms {
                for pm in &t.prefixes {
                    let fam = Fam::of_net(&pm.net);
                    if !families.is_empty() && !families.contains(&fam) {
                        diags.push(
                            Diagnostic::at(&rloc, format!("policy `{}` matches {} prefix {pm}, but peer `{name}` carries only {}", pol.name, fam.as_str(), families.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")))
                                .help(format!("add \"{}\" to the peer's families, or use a policy for its own family", fam.as_str())),
                        );
                    }
                }
            }
            if out.contains(r.get_ref()) {
                diags.push(
                    Diagnostic::at(
                        &rloc,
                        format!("{dirn} policy `{}` is listed twice", r.get_ref()),
                    )
                    .help("list each policy once: they apply in order"),
                );
                continue;
            }
            out.push(r.get_ref().clone());
        }
        out
    };
    let import = refs(&p.import, "import");
    let export = refs(&p.export, "export");
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Peer {
        name: name.to_string(),
        loc,
        address: address?,
        asn: asn_v?,
        password,
        hold_time,
        passive: p.passive.unwrap_or(false),
        multihop,
        families,
        max_prefixes,
        import,
        export,
    })
}

fn policy(
    file: usize,
    name: &Spanned<String>,
    p: &BgpPolicySpec,
    diags: &mut Vec<Diagnostic>,
) -> Option<Policy> {
    let before = diags.len();
    let default = p.default.as_ref().and_then(|d| action(file, d, diags));
    let mut terms = vec![];
    for t in &p.term {
        terms.extend(term(file, t, diags));
    }
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Policy {
        name: name.get_ref().clone(),
        default,
        terms,
        loc: Some(loc_of(file, name)),
    })
}

fn action(file: usize, a: &Spanned<String>, diags: &mut Vec<Diagnostic>) -> Option<bool> {
    match a.get_ref().as_str() {
        "accept" => Some(true),
        "reject" => Some(false),
        other => {
            diags.push(
                Diagnostic::at(&loc_of(file, a), format!("unknown action `{other}`"))
                    .help("an action is \"accept\" or \"reject\""),
            );
            None
        }
    }
}

fn communities(
    file: usize,
    list: &[Spanned<String>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Community> {
    let mut out = vec![];
    for c in list {
        match Community::parse(c.get_ref()) {
            Some(x) => out.push(x),
            None => diags.push(
                Diagnostic::at(
                    &loc_of(file, c),
                    format!("`{}` is not a BGP community", c.get_ref()),
                )
                .help("write a community as \"ASN:VALUE\", each 0–65535, e.g. \"65001:100\""),
            ),
        }
    }
    out
}

fn term(file: usize, t: &BgpTermSpec, diags: &mut Vec<Diagnostic>) -> Option<Term> {
    let mut prefixes = vec![];
    for p in &t.prefixes {
        match prefix_match(p.get_ref()) {
            Ok(m) => prefixes.push(m),
            Err((msg, help)) => diags.push(Diagnostic::at(&loc_of(file, p), msg).help(help)),
        }
    }
    let accept = t
        .action
        .as_ref()
        .map_or(Some(true), |a| action(file, a, diags))?;
    if !accept && let (Some(a), Some(_)) = (&t.action, &t.set) {
        diags.push(
            Diagnostic::warning(&loc_of(file, a), "a rejecting term's `set` does nothing").help(
                "routes this term matches are dropped: remove `set`, or make the action \"accept\"",
            ),
        );
    }
    let mut out = Term {
        prefixes,
        communities: communities(file, &t.communities, diags),
        accept,
        set_communities: vec![],
        local_pref: None,
        med: None,
        prepend: None,
    };
    if let Some(s) = &t.set {
        out.set_communities = communities(file, &s.communities, diags);
        let num = |v: &Option<Spanned<i64>>, what: &str, max: i64, diags: &mut Vec<Diagnostic>| {
            v.as_ref().and_then(|x| {
                if (0..=max).contains(x.get_ref()) {
                    Some(*x.get_ref() as u32)
                } else {
                    diags.push(
                        Diagnostic::at(
                            &loc_of(file, x),
                            format!("{what} {} is out of range", x.get_ref()),
                        )
                        .help(format!("{what} is 0–{max}")),
                    );
                    None
                }
            })
        };
        out.local_pref = num(&s.local_pref, "local_pref", u32::MAX as i64, diags);
        out.med = num(&s.med, "med", u32::MAX as i64, diags);
        out.prepend = num(&s.prepend, "prepend", 32, diags).filter(|p| *p > 0);
    }
    Some(out)
}

/// `10.0.0.0/8`, `10.0.0.0/8 exact`, `10.0.0.0/8 le 24`, `10.0.0.0/8 ge 16 le 24`, `… ge 16`.
pub fn prefix_match(s: &str) -> Result<PrefixMatch, (String, String)> {
    let syntax = "a prefix-list entry is \"NET/LEN\", \"NET/LEN le N\" or \"NET/LEN ge N le M\"";
    let words: Vec<&str> = s.split_whitespace().collect();
    let Some(first) = words.first() else {
        return Err(("an empty prefix-list entry".into(), syntax.into()));
    };
    let net: IpNet = first
        .parse()
        .map_err(|_| (format!("`{first}` is not a prefix"), syntax.to_string()))?;
    if net.trunc() != net {
        return Err((
            format!("prefix {net} has host bits set"),
            format!("match the network itself: \"{}\"", net.trunc()),
        ));
    }
    let len = net.prefix_len();
    let top = net.max_prefix_len();
    let (mut ge, mut le) = (None, None);
    let mut rest = words[1..].iter();
    while let Some(w) = rest.next() {
        let slot = match *w {
            "exact" => continue,
            "ge" => &mut ge,
            "le" => &mut le,
            other => {
                return Err((
                    format!("unknown word `{other}` in prefix-list entry `{s}`"),
                    syntax.into(),
                ));
            }
        };
        let v: u8 = rest.next().and_then(|n| n.parse().ok()).ok_or_else(|| {
            (
                format!("`{w}` needs a prefix length in `{s}`"),
                syntax.to_string(),
            )
        })?;
        *slot = Some(v);
    }
    if let Some(l) = le {
        if l > top {
            return Err((
                format!("le {l} is longer than an address ({top} bits) in `{s}`"),
                format!("le is at most {top} for this family"),
            ));
        }
        if l < len {
            return Err((
                format!("le {l} is shorter than the prefix /{len} in `{s}`"),
                format!("le must be {len}–{top}"),
            ));
        }
    }
    if let Some(g) = ge {
        if g > top {
            return Err((
                format!("ge {g} is longer than an address ({top} bits) in `{s}`"),
                format!("ge is at most {top} for this family"),
            ));
        }
        if g < len {
            return Err((
                format!("ge {g} is shorter than the prefix /{len} in `{s}`"),
                format!("ge must be {len}–{top}"),
            ));
        }
        if let Some(l) = le
            && g > l
        {
            return Err((
                format!("ge {g} is greater than le {l} in `{s}`"),
                "ge must not exceed le".into(),
            ));
        }
    }
    let min = ge.unwrap_or(len);
    let max = le.unwrap_or(if ge.is_some() { top } else { len });
    Ok(PrefixMatch { net, min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lists() {
        let m = prefix_match("10.20.0.0/16 le 24").unwrap();
        assert_eq!((m.min, m.max), (16, 24));
        assert_eq!(m.to_string(), "10.20.0.0/16 le 24");
        let m = prefix_match("10.0.0.0/8 ge 16 le 24").unwrap();
        assert_eq!((m.min, m.max), (16, 24));
        let m = prefix_match("fd00::/32 ge 48").unwrap();
        assert_eq!((m.min, m.max), (48, 128));
        assert_eq!(prefix_match("10.0.0.0/8").unwrap().max, 8);
        assert!(
            prefix_match("10.0.0.1/8")
                .unwrap_err()
                .0
                .contains("host bits")
        );
        assert!(
            prefix_match("10.0.0.0/16 le 8")
                .unwrap_err()
                .0
                .contains("shorter")
        );
        assert!(
            prefix_match("10.0.0.0/8 ge 24 le 16")
                .unwrap_err()
                .0
                .contains("greater")
        );
        assert!(
            prefix_match("10.0.0.0/8 le 33")
                .unwrap_err()
                .0
                .contains("longer")
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(
            Community::parse("65001:666").unwrap().as_u32(),
            (65001 << 16) | 666
        );
        assert!(Community::parse("65536:1").is_none());
    }
}
