//! Masking personal data for logs and listings.
//!
//! Leaders who talk to the state can face reprisals: a phone number or an email
//! address never appears in clear in logs or default listings. What remains is
//! enough for a coordinator to tell two contacts apart (`+223 •• •• 12 34`,
//! `a•••@example.org`).

/// A fake example: `+22376451234` → `+223 •• •• 12 34`; anything else keeps only its last 2 characters.
pub fn phone(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = e164.strip_prefix("+223").filter(|_| digits.len() == 11) {
        let last: String = rest.chars().skip(4).collect();
        return format!("+223 •• •• {} {}", &last[..2], &last[2..]);
    }
    let keep = digits.len().saturating_sub(2);
    let tail: String = digits[keep..].iter().collect();
    format!("{}{tail}", "•".repeat(keep.min(8)))
}

/// `awa.traore@example.org` → `a•••@example.org`.
pub fn email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_mali_numbers_like_the_operators_do() {
        assert_eq!(phone("+22376451234"), "+223 •• •• 12 34"); // a fake number
        assert!(!phone("+41791234567").contains("9123"));
        assert_eq!(email("awa.traore@example.org"), "a•••@example.org");
        assert_eq!(email("nonsense"), "•••");
    }
}
