//! nf_tables expressions, encoded as a rule's NFTA_RULE_EXPRESSIONS list.
//! Attribute numbers: uapi linux/netfilter/nf_tables.h.

use super::wire::Attrs;
use std::net::IpAddr;

pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;

/// Verdict codes (NF_ACCEPT and the NFT_* ones).
pub const GOTO: u32 = (-4i32) as u32;
pub const JUMP: u32 = (-3i32) as u32;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// `nft_data` holding a value.
pub fn value(a: &mut Attrs, kind: u16, v: &[u8]) {
    a.nest(kind, |d| {
        d.bytes(NFTA_DATA_VALUE, v);
    });
}

/// `nft_data` holding a verdict (goto/jump CHAIN).
pub fn verdict(a: &mut Attrs, kind: u16, code: u32, chain: &str) {
    a.nest(kind, |d| {
        d.nest(NFTA_DATA_VERDICT, |v| {
            v.be32(NFTA_VERDICT_CODE, code)
                .str(NFTA_VERDICT_CHAIN, chain);
        });
    });
}

/// A rule's expressions, in order.
#[derive(Default)]
pub struct Exprs(pub Attrs);

impl Exprs {
    fn expr(&mut self, name: &str, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.0.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name).nest(NFTA_EXPR_DATA, f);
        });
        self
    }

    pub fn meta(&mut self, key: u32, dreg: u32) -> &mut Self {
        self.expr("meta", |d| {
            d.be32(2, key).be32(1, dreg);
        })
    }

    pub fn cmp_eq(&mut self, sreg: u32, v: &[u8]) -> &mut Self {
        self.cmp(sreg, 0, v)
    }

    fn cmp(&mut self, sreg: u32, op: u32, v: &[u8]) -> &mut Self {
        self.expr("cmp", |d| {
            d.be32(1, sreg).be32(2, op);
            value(d, 3, v);
        })
    }

    pub fn payload(&mut self, base: u32, offset: u32, len: u32, dreg: u32) -> &mut Self {
        self.expr("payload", |d| {
            d.be32(1, dreg).be32(2, base).be32(3, offset).be32(4, len);
        })
    }

    pub fn immediate(&mut self, dreg: u32, v: &[u8]) -> &mut Self {
        self.expr("immediate", |d| {
            d.be32(1, dreg);
            value(d, 2, v);
        })
    }

    /// `goto CHAIN` / `jump CHAIN`.
    pub fn verdict_to(&mut self, code: u32, chain: &str) -> &mut Self {
        self.expr("immediate", |d| {
            d.be32(1, REG_VERDICT);
            verdict(d, 2, code, chain);
        })
    }

    /// A lookup in a set (`dreg`: a map's value, e.g. the verdict).
    pub fn lookup(&mut self, sreg: u32, set: &str, id: u32, dreg: Option<u32>) -> &mut Self {
        self.expr("lookup", |d| {
            d.be32(2, sreg);
            if let Some(r) = dreg {
                d.be32(3, r);
            }
            d.str(1, set).be32(4, id);
        })
    }

    /// `numgen random mod N`.
    pub fn numgen_random(&mut self, dreg: u32, modulus: u32) -> &mut Self {
        self.expr("numgen", |d| {
            d.be32(1, dreg).be32(2, modulus).be32(3, 1).be32(4, 0);
        })
    }

    /// `ct original ...`: a conntrack key of the original direction.
    pub fn ct(&mut self, key: u32, original: bool, dreg: u32) -> &mut Self {
        self.expr("ct", |d| {
            d.be32(2, key).be32(1, dreg);
            if original {
                d.u8(3, 0);
            }
        })
    }

    /// `reg = (reg & mask) ^ 0`, then `reg != 0`: a flag test.
    pub fn flag_set(&mut self, reg: u32, mask: u32) -> &mut Self {
        self.expr("bitwise", |d| {
            d.be32(1, reg).be32(2, reg).be32(3, 4);
            value(d, 4, &mask.to_ne_bytes());
            value(d, 5, &[0; 4]);
        });
        self.cmp(reg, 1, &[0; 4])
    }

    pub fn masq(&mut self) -> &mut Self {
        self.expr("masq", |_| {})
    }

    /// `reject with tcp reset` (type 1) or ICMP port unreachable (type 0).
    pub fn reject(&mut self, kind: u32, code: u8) -> &mut Self {
        self.expr("reject", |d| {
            d.be32(1, kind).u8(2, code);
        })
    }

    /// `update @SET { key }` (NFT_DYNSET_OP_UPDATE).
    pub fn dynset_update(&mut self, set: &str, id: u32, sreg: u32) -> &mut Self {
        self.expr("dynset", |d| {
            d.be32(2, id).be32(3, 1).str(1, set).be32(4, sreg);
        })
    }

    /// `dnat ip|ip6 to ADDR:PORT` from registers.
    pub fn dnat(&mut self, v6: bool, reg_addr: u32, reg_port: u32) -> &mut Self {
        self.expr("nat", |d| {
            d.be32(1, 1)
                .be32(2, if v6 { 10 } else { 2 })
                .be32(3, reg_addr)
                .be32(5, reg_port)
                .be32(7, 2); // NF_NAT_RANGE_PROTO_SPECIFIED
        })
    }
}

// meta keys
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;
// payload bases
pub const NETWORK: u32 = 1;
pub const TRANSPORT: u32 = 2;
// ct keys
pub const CT_STATUS: u32 = 2;
pub const CT_DST_IP: u32 = 20;
pub const CT_DST_IP6: u32 = 22;
pub const IPS_DST_NAT: u32 = 1 << 5;

/// `meta nfproto ipv4|ipv6` then `ip|ip6 saddr|daddr` into reg 1.
pub fn ip_addr(e: &mut Exprs, v6: bool, dst: bool) {
    e.meta(META_NFPROTO, REG_1)
        .cmp_eq(REG_1, &[if v6 { 10 } else { 2 }]);
    let (off, len) = match (v6, dst) {
        (false, false) => (12, 4),
        (false, true) => (16, 4),
        (true, false) => (8, 16),
        (true, true) => (24, 16),
    };
    e.payload(NETWORK, off, len, REG_1);
}

pub fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}
