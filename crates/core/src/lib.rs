//! The seam between palabre and its plugins: what a connector implements
//! ([`connector::Connector`]) and reads ([`connector::OutgoingMessage`]), how it
//! says a delivery failed ([`connector::DeliveryError`]), what a gateway's webhook
//! becomes ([`webhooks`]), the functions a plugin adds to the rule language
//! ([`rule_function::RuleFunction`]), and the small pieces every crate shares:
//! [`channel::Channel`], the injected [`clock::Clock`], [`diagnostic::Diagnostic`]
//! for problems in a user's file, [`redact`] for personal data in output.
//!
//! This crate has no database, no scripting engine and no template engine: a
//! plugin that depends on it alone cannot reach any of them.

pub mod channel;
pub mod clock;
pub mod connector;
pub mod diagnostic;
pub mod fingerprint;
pub mod offset;
pub mod outbox_file;
pub mod redact;
pub mod rule_function;
pub mod secret;
pub mod suggest;
pub mod voice;
pub mod webhooks;
