//! palabre's integration tests, in one test binary (one link, one run), as ripgrep
//! does. Each module drives the real `palabre` binary or the engine's public API
//! against real files and real databases: SQLite files in temporary folders, and
//! PostgreSQL at `PALABRE_TEST_POSTGRES_URL` (which `.ci/run` sets).

// Tests may unwrap, expect and panic: a failure is the test's answer. They set
// environment variables for gateway secrets, which edition 2024 marks unsafe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

mod answers;
mod api;
mod api_hardening;
mod architecture;
mod backup;
mod browser;
mod cases;
mod contacts;
mod dashboard;
mod directory;
mod encryption;
mod erasure;
mod escalation;
mod failures;
mod gateways;
mod hostile;
mod invitations;
mod milestones;
mod planning;
mod postgres_tcp;
mod preview;
mod readme;
mod replies;
mod retention;
mod rules;
mod runtime;
mod schema;
mod serve;
mod sms_flow;
mod smtp;
mod store;
mod texts;
mod util;
mod validate;
mod voice;
mod workers;
