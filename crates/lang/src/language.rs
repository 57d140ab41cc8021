//! Language codes: contacts and templates name languages by ISO 639-3 code.

/// Whether `code` looks like an ISO 639-3 code: three lower-case ASCII letters.
pub fn is_language_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase())
}
