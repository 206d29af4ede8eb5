//! Typed field differences: one `Display` serves plan, show and verify, and
//! code that reacts to a change (cascade) reads values, not strings.

use ipnet::IpNet;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

/// Which end of an object a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// The object itself (or a pair's first end).
    Own,
    /// A veth's or link's other end.
    Peer,
    /// The host end of a container interface.
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Mtu,
    Up,
    Master,
    /// A set member: each added or removed address is its own change.
    Address,
    Mark,
    Via,
    Dev,
    /// A multipath route's next hops, as a whole.
    Nexthops,
    Metric,
    /// A sysctl's value.
    Value,
    Ipv4,
    Ipv6,
    Aliases,
    /// A service's endpoint (a set member, by container name).
    Endpoint,
    /// A service's rules as a whole.
    Rules,
    Asn,
    RouterId,
    ListenPort,
    /// A BGP password: shown only as changed, never its value.
    Password,
    HoldTime,
    Passive,
    Multihop,
    Families,
    MaxPrefixes,
    /// A learned route in the kernel (a set member).
    Route,
    /// The order of BGP policies gobgpd applies.
    Policies,
    /// A BGP policy's compiled statements for one peer and direction.
    Statements,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Mtu => "mtu",
            Field::Up => "up",
            Field::Master => "master",
            Field::Address => "address",
            Field::Mark => "mark",
            Field::Via => "via",
            Field::Dev => "dev",
            Field::Nexthops => "nexthops",
            Field::Metric => "metric",
            Field::Value => "value",
            Field::Ipv4 => "ipv4",
            Field::Ipv6 => "ipv6",
            Field::Aliases => "aliases",
            Field::Endpoint => "endpoint",
            Field::Rules => "rules",
            Field::Asn => "asn",
            Field::RouterId => "router_id",
            Field::ListenPort => "listen_port",
            Field::Password => "password",
            Field::HoldTime => "hold_time",
            Field::Passive => "passive",
            Field::Multihop => "multihop",
            Field::Families => "families",
            Field::MaxPrefixes => "max_prefixes",
            Field::Route => "route",
            Field::Policies => "policies",
            Field::Statements => "statements",
        }
    }

    /// Set members are shown as `+ address X` / `- address X`.
    pub fn is_member(self) -> bool {
        matches!(self, Field::Address | Field::Endpoint | Field::Route)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldName {
    pub side: Side,
    pub field: Field,
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.side {
            Side::Own => "",
            Side::Peer => "peer ",
            Side::Host => "host ",
        };
        write!(f, "{prefix}{}", self.field.name())
    }
}

/// A field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(u32),
    Bool(bool),
    Text(String),
    Net(IpNet),
    Addr(IpAddr),
    /// Shown comma-separated.
    List(Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => f.write_str(s),
            Value::Net(n) => write!(f, "{n}"),
            Value::Addr(a) => write!(f, "{a}"),
            Value::List(v) => f.write_str(&v.join(", ")),
        }
    }
}

/// One field that differs. For a set (addresses), each added or removed
/// member is its own entry with only `to` or only `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: FieldName,
    pub from: Option<Value>,
    pub to: Option<Value>,
}

fn shown(v: &Option<Value>) -> String {
    v.as_ref()
        .map(Value::to_string)
        .unwrap_or_else(|| "(none)".into())
}

impl FieldChange {
    pub fn new(side: Side, field: Field, from: Option<Value>, to: Option<Value>) -> Self {
        FieldChange {
            field: FieldName { side, field },
            from,
            to,
        }
    }

    /// `field: from → to`, whatever the field (show's drift lines).
    pub fn transition(&self) -> String {
        format!(
            "{}: {} → {}",
            self.field,
            shown(&self.from),
            shown(&self.to)
        )
    }

    /// `field: live ≠ wanted` (verification's wording).
    pub fn mismatch(&self) -> String {
        format!(
            "{}: {} ≠ {}",
            self.field,
            shown(&self.from),
            shown(&self.to)
        )
    }

    /// `mtu 1500→9000`, `+address 10.0.0.1/24`: for one-line logs.
    pub fn compact(&self) -> String {
        let v = |v: &Option<Value>| {
            v.as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "(none)".into())
        };
        match (&self.from, &self.to) {
            (None, Some(t)) if self.field.field.is_member() => format!("+{} {t}", self.field),
            (Some(w), None) if self.field.field.is_member() => format!("-{} {w}", self.field),
            _ => format!("{} {}→{}", self.field, v(&self.from), v(&self.to)),
        }
    }

    /// An address (of any end) this change removes.
    pub fn lost_net(&self) -> Option<IpNet> {
        match (&self.field.field, &self.from, &self.to) {
            (Field::Address, Some(Value::Net(n)), None) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for FieldChange {
    /// A plan line: `+ address X`, `- peer address X`, `mtu: 1500 → 9000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, &self.to) {
            (None, Some(t)) if self.field.field.is_member() => write!(f, "+ {} {t}", self.field),
            (Some(w), None) if self.field.field.is_member() => write!(f, "- {} {w}", self.field),
            _ => f.write_str(&self.transition()),
        }
    }
}

/// The JSON plan keeps its v1 shape: field name and values as strings.
/// A field change as JSON shows it (the schema of `FieldChange`'s
/// serialization): values in the plan's own words.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct FieldChangeDoc {
    /// `mtu`, `address`, `peer.master`, …
    field: String,
    /// The live value; none for an added member.
    from: Option<String>,
    /// The desired value; none for a removed member.
    to: Option<String>,
}

impl Serialize for FieldChange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("FieldChange", 3)?;
        st.serialize_field("field", &self.field.to_string())?;
        st.serialize_field("from", &self.from.as_ref().map(Value::to_string))?;
        st.serialize_field("to", &self.to.as_ref().map(Value::to_string))?;
        st.end()
    }
}

/// Pushes a change when the values differ.
pub fn field(
    out: &mut Vec<FieldChange>,
    side: Side,
    name: Field,
    from: Option<Value>,
    to: Option<Value>,
) {
    if from != to {
        out.push(FieldChange::new(side, name, from, to));
    }
}

/// One change per address added or removed.
pub fn addresses<'a>(
    out: &mut Vec<FieldChange>,
    side: Side,
    have: impl IntoIterator<Item = &'a IpNet>,
    want: impl IntoIterator<Item = &'a IpNet>,
) {
    let a: std::collections::BTreeSet<&IpNet> = have.into_iter().collect();
    let b: std::collections::BTreeSet<&IpNet> = want.into_iter().collect();
    for gone in a.difference(&b) {
        out.push(FieldChange::new(
            side,
            Field::Address,
            Some(Value::Net(**gone)),
            None,
        ));
    }
    for new in b.difference(&a) {
        out.push(FieldChange::new(
            side,
            Field::Address,
            None,
            Some(Value::Net(**new)),
        ));
    }
}
