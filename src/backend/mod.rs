//! Live-state backends: observation and operations per domain.

pub mod docker;
pub mod netlink;
