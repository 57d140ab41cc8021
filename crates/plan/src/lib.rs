//! Planning: from a workflows folder to what is due and what will be sent.
//!
//! [`definitions`] loads every file of a workflows folder, with the rules, and
//! checks them together (places, roles, templates, ids, zones, recurrences);
//! [`recipients`] resolves who a step reaches and on which channel; the
//! [`planner`] turns loaded definitions into fires and messages over a clock, and
//! drives `preview` over a virtual one, asking a reminders rule once per
//! occurrence ([`memo`]); [`schema`] gives editors the JSON Schema
//! of every kind of file. Pure: no database, no network; the engine persists
//! what the planner decides.

pub mod definitions;
pub mod memo;
pub mod planner;
pub mod recipients;
pub mod schema;
