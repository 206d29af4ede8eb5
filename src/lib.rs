//! netloom: a declarative network reconciler for Linux hosts that run containers.
//!
//! The core (spec → model → graph → diff → plan) is pure and synchronous;
//! the kernel backend (observe, apply) is async at the edge.

pub mod apply;
pub mod backend;
pub mod cli;
pub mod diag;
pub mod diff;
pub mod error;
pub mod graph;
pub mod ledger;
pub mod lock;
pub mod model;
pub mod netns;
pub mod plan;
pub mod spec;
pub mod state;
pub mod verify;
