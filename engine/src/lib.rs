//! palabre's engine: the worker that runs the flow durably.
//!
//! Definitions are loaded and checked by `palabre-plan`; the [`runtime::Runtime`]
//! plans their timers into `palabre-store`, claims and fires them when due (the
//! planner decides what each fire sends), and delivers the outbox through the
//! connectors plugins implement (`palabre-core`). Coordinators' changes, case
//! actions, replies and receipts arrive here too. See ARCHITECTURE.md at the
//! repository root for the map of the crates.

pub mod runtime;
