//! Functions a plugin adds to the rule language, as plain Rust.
//!
//! Plugins do not see the scripting engine: they describe pure functions of the
//! shapes below, and the rules crate registers them (with their documentation for
//! `palabre rules docs` and their signature for the checks that find unknown
//! functions in a script).

/// A pure function a plugin offers to rules.
#[derive(Debug, Clone, Copy)]
pub struct RuleFunction {
    /// The name scripts call it by (`sms_segments`).
    pub name: &'static str,
    /// Its documentation, one paragraph; shown by `palabre rules docs`.
    pub doc: &'static str,
    pub body: RuleFunctionBody,
}

/// The shapes of function a plugin can offer.
#[derive(Debug, Clone, Copy)]
pub enum RuleFunctionBody {
    /// `name(text: &str) -> i64`.
    TextToInteger(fn(&str) -> i64),
}

impl RuleFunctionBody {
    /// The parameters then the return type, as `palabre rules docs` shows them.
    pub fn signature(&self) -> &'static [&'static str] {
        match self {
            RuleFunctionBody::TextToInteger(_) => &["text: &str", "i64"],
        }
    }
}
