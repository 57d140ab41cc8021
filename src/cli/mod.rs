//! The command line, one module per command or group of commands, each calling
//! the engine and printing what it did into the output `main` writes. `args`
//! holds the clap types; `context` what the commands share (definitions, the
//! database, refusals, exit codes, tables); `logging` the stderr logs.

pub mod args;
pub mod backup;
pub mod case;
pub mod clips;
pub mod contacts;
pub mod context;
pub mod key;
pub mod logging;
pub mod milestones;
pub mod occurrence;
pub mod preview;
pub mod purge;
pub mod rules;
pub mod schema;
pub mod serve;
pub mod status;
pub mod test;
pub mod token;
pub mod validate;
