//! netloom: a declarative network reconciler for Linux hosts that run containers.
//!
//! The core (spec → model → graph → diff → plan) is pure and synchronous;
//! the backends (kernel, Docker, container wiring) are async at the edge,
//! behind `backend::Backend`; `engine` holds what each command does. See
//! docs/ARCHITECTURE.md for the map.

pub mod backend;
pub mod convert;
pub mod diag;
pub mod diff;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod exec;
pub mod graph;
pub mod lab_view;
pub mod lock;
pub mod model;
pub mod naming;
pub mod netns;
pub mod observed;
pub mod ownership;
pub mod plan;
pub mod resource;
pub mod schemas;
pub mod spec;
pub mod verify;
