//! palabre's engine: the workflow model, loading and validation, scheduling,
//! templates, the contact directory and the durable store.
//!
//! The flow runs one way: YAML and templates are loaded and checked into
//! [`definitions::Definitions`]; the [`plan::Planner`] turns them into fires and
//! messages over a [`clock::Clock`]; the [`store::Store`] keeps what must survive
//! a restart. This crate holds no network client code; connectors are plugins.
//! See ARCHITECTURE.md at the repository root for the code map.

pub mod calendars;
pub mod clock;
pub mod connector;
pub mod contacts;
pub mod definitions;
pub mod diagnostic;
pub mod escalation;
pub mod fingerprint;
pub mod ics;
pub mod milestones;
pub mod offset;
pub mod places;
pub mod plan;
pub mod recurrence;
pub mod redact;
pub mod replies;
pub mod rules;
pub mod runtime;
pub mod source_map;
pub mod store;
pub mod suggest;
pub mod templates;
pub mod webhooks;
pub mod workflow;
pub mod yaml;
