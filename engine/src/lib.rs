//! palabre's engine: the worker that runs the flow durably, and the commands
//! people and messages give it.
//!
//! Definitions are loaded and checked by `palabre-plan`. The
//! [`runtime::Runtime`] is one worker: it plans their timers into
//! `palabre-store`, claims and fires them when due (the planner decides what each
//! fire sends), and delivers the outbox through the connectors plugins implement
//! (`palabre-core`). [`commands::Commands`] is the one service through which the
//! CLI, the API and inbound webhooks change anything. See ARCHITECTURE.md at the
//! repository root for the map of the crates.

pub mod answer_links;
pub mod commands;
mod messages;
pub mod runtime;
