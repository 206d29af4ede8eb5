//! The subset of gobgp's gRPC messages (package `apipb`, gobgp 3.x) netloom
//! uses, written as prost structs. Field numbers are facts of gobgp's wire
//! format; prost skips fields a struct does not name, so a subset decodes.
//! Enums are plain `int32` with the values as constants.

use prost::Message;

pub const SERVICE: &str = "apipb.GobgpApi";

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Any {
    pub fn pack<M: Message>(name: &str, m: &M) -> Any {
        Any {
            type_url: format!("type.googleapis.com/apipb.{name}"),
            value: m.encode_to_vec(),
        }
    }

    /// The message if this is an `apipb.<name>`.
    pub fn unpack<M: Message + Default>(&self, name: &str) -> Option<M> {
        let t = self.type_url.rsplit('/').next()?;
        (t == format!("apipb.{name}"))
            .then(|| M::decode(self.value.as_slice()).ok())
            .flatten()
    }
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message)]
pub struct Global {
    #[prost(uint32, tag = "1")]
    pub asn: u32,
    #[prost(string, tag = "2")]
    pub router_id: String,
    #[prost(int32, tag = "3")]
    pub listen_port: i32,
    #[prost(string, repeated, tag = "4")]
    pub listen_addresses: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StartBgpRequest {
    #[prost(message, optional, tag = "1")]
    pub global: Option<Global>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetBgpResponse {
    #[prost(message, optional, tag = "1")]
    pub global: Option<Global>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Family {
    #[prost(int32, tag = "1")]
    pub afi: i32,
    #[prost(int32, tag = "2")]
    pub safi: i32,
}

pub const AFI_IP: i32 = 1;
pub const AFI_IP6: i32 = 2;
pub const SAFI_UNICAST: i32 = 1;

impl Family {
    pub fn unicast(v6: bool) -> Family {
        Family {
            afi: if v6 { AFI_IP6 } else { AFI_IP },
            safi: SAFI_UNICAST,
        }
    }
}

// ---- peers ----

#[derive(Clone, PartialEq, Message)]
pub struct Peer {
    #[prost(message, optional, tag = "2")]
    pub conf: Option<PeerConf>,
    #[prost(message, optional, tag = "3")]
    pub ebgp_multihop: Option<EbgpMultihop>,
    #[prost(message, optional, tag = "5")]
    pub state: Option<PeerState>,
    #[prost(message, optional, tag = "6")]
    pub timers: Option<Timers>,
    #[prost(message, optional, tag = "7")]
    pub transport: Option<Transport>,
    #[prost(message, repeated, tag = "10")]
    pub afi_safis: Vec<AfiSafi>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PeerConf {
    #[prost(string, tag = "1")]
    pub auth_password: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub neighbor_address: String,
    #[prost(uint32, tag = "5")]
    pub peer_asn: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct EbgpMultihop {
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    #[prost(uint32, tag = "2")]
    pub multihop_ttl: u32,
}

pub const SESSION_ESTABLISHED: i32 = 6;

#[derive(Clone, PartialEq, Message)]
pub struct PeerState {
    #[prost(string, tag = "5")]
    pub neighbor_address: String,
    #[prost(uint32, tag = "6")]
    pub peer_asn: u32,
    #[prost(int32, tag = "13")]
    pub session_state: i32,
    #[prost(int32, tag = "15")]
    pub admin_state: i32,
    #[prost(string, tag = "20")]
    pub router_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Timers {
    #[prost(message, optional, tag = "1")]
    pub config: Option<TimersConfig>,
    #[prost(message, optional, tag = "2")]
    pub state: Option<TimersState>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimersConfig {
    #[prost(uint64, tag = "1")]
    pub connect_retry: u64,
    #[prost(uint64, tag = "2")]
    pub hold_time: u64,
    #[prost(uint64, tag = "3")]
    pub keepalive_interval: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimersState {
    #[prost(uint64, tag = "5")]
    pub negotiated_hold_time: u64,
    #[prost(message, optional, tag = "6")]
    pub uptime: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Transport {
    #[prost(bool, tag = "4")]
    pub passive_mode: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct AfiSafi {
    #[prost(message, optional, tag = "2")]
    pub config: Option<AfiSafiConfig>,
    #[prost(message, optional, tag = "3")]
    pub state: Option<AfiSafiState>,
    #[prost(message, optional, tag = "7")]
    pub prefix_limits: Option<PrefixLimit>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AfiSafiConfig {
    #[prost(message, optional, tag = "1")]
    pub family: Option<Family>,
    #[prost(bool, tag = "2")]
    pub enabled: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct AfiSafiState {
    #[prost(message, optional, tag = "1")]
    pub family: Option<Family>,
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    #[prost(uint64, tag = "3")]
    pub received: u64,
    #[prost(uint64, tag = "4")]
    pub accepted: u64,
    #[prost(uint64, tag = "5")]
    pub advertised: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct PrefixLimit {
    #[prost(message, optional, tag = "1")]
    pub family: Option<Family>,
    #[prost(uint32, tag = "2")]
    pub max_prefixes: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPeerRequest {
    #[prost(message, optional, tag = "1")]
    pub peer: Option<Peer>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeletePeerRequest {
    #[prost(string, tag = "1")]
    pub address: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPeerRequest {
    #[prost(string, tag = "1")]
    pub address: String,
    #[prost(bool, tag = "2")]
    pub enable_advertised: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPeerResponse {
    #[prost(message, optional, tag = "1")]
    pub peer: Option<Peer>,
}

pub const SOFT_RESET_IN: i32 = 0;
pub const SOFT_RESET_OUT: i32 = 1;
pub const SOFT_RESET_BOTH: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct ResetPeerRequest {
    #[prost(string, tag = "1")]
    pub address: String,
    #[prost(string, tag = "2")]
    pub communication: String,
    #[prost(bool, tag = "3")]
    pub soft: bool,
    #[prost(int32, tag = "4")]
    pub direction: i32,
}

// ---- paths ----

pub const TABLE_GLOBAL: i32 = 0;
pub const TABLE_ADJ_IN: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct Path {
    #[prost(message, optional, tag = "1")]
    pub nlri: Option<Any>,
    #[prost(message, repeated, tag = "2")]
    pub pattrs: Vec<Any>,
    #[prost(bool, tag = "4")]
    pub best: bool,
    #[prost(bool, tag = "5")]
    pub is_withdraw: bool,
    #[prost(message, optional, tag = "9")]
    pub family: Option<Family>,
    #[prost(bool, tag = "12")]
    pub filtered: bool,
    #[prost(bool, tag = "14")]
    pub is_from_external: bool,
    #[prost(string, tag = "15")]
    pub neighbor_ip: String,
    #[prost(bool, tag = "17")]
    pub is_nexthop_invalid: bool,
    /// Path attributes in BGP's wire format (RFC 4271 4.3), when asked for.
    #[prost(bytes = "vec", repeated, tag = "21")]
    pub pattrs_binary: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Destination {
    #[prost(string, tag = "1")]
    pub prefix: String,
    #[prost(message, repeated, tag = "2")]
    pub paths: Vec<Path>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPathRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(message, optional, tag = "3")]
    pub path: Option<Path>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPathResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub uuid: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AddPathStreamRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(message, repeated, tag = "3")]
    pub paths: Vec<Path>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeletePathRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(message, optional, tag = "3")]
    pub family: Option<Family>,
    #[prost(message, optional, tag = "4")]
    pub path: Option<Path>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPathRequest {
    #[prost(int32, tag = "1")]
    pub table_type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, optional, tag = "3")]
    pub family: Option<Family>,
    #[prost(bool, tag = "6")]
    pub enable_filtered: bool,
    /// Paths carry only `nlri_binary` and `pattrs_binary`: gobgpd then
    /// skips building an `Any` per attribute, most of ListPath's cost.
    #[prost(bool, tag = "9")]
    pub enable_only_binary: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPathResponse {
    #[prost(message, optional, tag = "1")]
    pub destination: Option<Destination>,
}

// ---- path attributes (attribute.proto) ----

#[derive(Clone, PartialEq, Message)]
pub struct IpAddressPrefix {
    #[prost(uint32, tag = "1")]
    pub prefix_len: u32,
    #[prost(string, tag = "2")]
    pub prefix: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct OriginAttribute {
    #[prost(uint32, tag = "1")]
    pub origin: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct NextHopAttribute {
    #[prost(string, tag = "1")]
    pub next_hop: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct MpReachNlriAttribute {
    #[prost(message, optional, tag = "1")]
    pub family: Option<Family>,
    #[prost(string, repeated, tag = "2")]
    pub next_hops: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub nlris: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommunitiesAttribute {
    #[prost(uint32, repeated, tag = "1")]
    pub communities: Vec<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LocalPrefAttribute {
    #[prost(uint32, tag = "1")]
    pub local_pref: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct MultiExitDiscAttribute {
    #[prost(uint32, tag = "1")]
    pub med: u32,
}

// ---- policy ----

pub const DEFINED_PREFIX: i32 = 0;
pub const DEFINED_NEIGHBOR: i32 = 1;
pub const DEFINED_COMMUNITY: i32 = 4;

#[derive(Clone, PartialEq, Message)]
pub struct Prefix {
    #[prost(string, tag = "1")]
    pub ip_prefix: String,
    #[prost(uint32, tag = "2")]
    pub mask_length_min: u32,
    #[prost(uint32, tag = "3")]
    pub mask_length_max: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct DefinedSet {
    #[prost(int32, tag = "1")]
    pub defined_type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, repeated, tag = "3")]
    pub list: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub prefixes: Vec<Prefix>,
}

pub const MATCH_ANY: i32 = 0;

#[derive(Clone, PartialEq, Message)]
pub struct MatchSet {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Conditions {
    #[prost(message, optional, tag = "1")]
    pub prefix_set: Option<MatchSet>,
    #[prost(message, optional, tag = "2")]
    pub neighbor_set: Option<MatchSet>,
    #[prost(message, optional, tag = "5")]
    pub community_set: Option<MatchSet>,
}

pub const ROUTE_NONE: i32 = 0;
pub const ROUTE_ACCEPT: i32 = 1;
pub const ROUTE_REJECT: i32 = 2;
pub const COMMUNITY_ADD: i32 = 0;
pub const MED_REPLACE: i32 = 1;

#[derive(Clone, PartialEq, Message)]
pub struct CommunityAction {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, repeated, tag = "2")]
    pub communities: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MedAction {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(int64, tag = "2")]
    pub value: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct AsPrependAction {
    #[prost(uint32, tag = "1")]
    pub asn: u32,
    #[prost(uint32, tag = "2")]
    pub repeat: u32,
    #[prost(bool, tag = "3")]
    pub use_left_most: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct LocalPrefAction {
    #[prost(uint32, tag = "1")]
    pub value: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Actions {
    #[prost(int32, tag = "1")]
    pub route_action: i32,
    #[prost(message, optional, tag = "2")]
    pub community: Option<CommunityAction>,
    #[prost(message, optional, tag = "3")]
    pub med: Option<MedAction>,
    #[prost(message, optional, tag = "4")]
    pub as_prepend: Option<AsPrependAction>,
    #[prost(message, optional, tag = "7")]
    pub local_pref: Option<LocalPrefAction>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Statement {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub conditions: Option<Conditions>,
    #[prost(message, optional, tag = "3")]
    pub actions: Option<Actions>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Policy {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub statements: Vec<Statement>,
}

pub const DIR_IMPORT: i32 = 1;
pub const DIR_EXPORT: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct PolicyAssignment {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub direction: i32,
    #[prost(message, repeated, tag = "4")]
    pub policies: Vec<Policy>,
    #[prost(int32, tag = "5")]
    pub default_action: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetPolicyAssignmentRequest {
    #[prost(message, optional, tag = "1")]
    pub assignment: Option<PolicyAssignment>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetPoliciesRequest {
    #[prost(message, repeated, tag = "1")]
    pub defined_sets: Vec<DefinedSet>,
    #[prost(message, repeated, tag = "2")]
    pub policies: Vec<Policy>,
    #[prost(message, repeated, tag = "3")]
    pub assignments: Vec<PolicyAssignment>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPolicyRequest {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPolicyResponse {
    #[prost(message, optional, tag = "1")]
    pub policy: Option<Policy>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListDefinedSetRequest {
    #[prost(int32, tag = "1")]
    pub defined_type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListDefinedSetResponse {
    #[prost(message, optional, tag = "1")]
    pub defined_set: Option<DefinedSet>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPolicyAssignmentRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub direction: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListPolicyAssignmentResponse {
    #[prost(message, optional, tag = "1")]
    pub assignment: Option<PolicyAssignment>,
}

// ---- events ----

#[derive(Clone, PartialEq, Message)]
pub struct WatchEventRequest {
    #[prost(message, optional, tag = "1")]
    pub peer: Option<WatchPeer>,
    #[prost(message, optional, tag = "2")]
    pub table: Option<WatchTable>,
}

#[derive(Clone, PartialEq, Message)]
pub struct WatchPeer {}

#[derive(Clone, PartialEq, Message)]
pub struct WatchTable {
    #[prost(message, repeated, tag = "1")]
    pub filters: Vec<WatchFilter>,
}

pub const FILTER_BEST: i32 = 0;

#[derive(Clone, PartialEq, Message)]
pub struct WatchFilter {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(bool, tag = "2")]
    pub init: bool,
}

/// To netloom only whether an event came matters (each reconcile re-reads);
/// the paths are read by the benchmark's floor client.
#[derive(Clone, PartialEq, Message)]
pub struct WatchEventResponse {
    /// One member of gobgpd's `event` oneof (wire-compatible with an
    /// optional field): best-path changes.
    #[prost(message, optional, tag = "3")]
    pub table: Option<TableEvent>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableEvent {
    #[prost(message, repeated, tag = "2")]
    pub paths: Vec<Path>,
}
