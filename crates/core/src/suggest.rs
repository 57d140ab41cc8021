//! "Did you mean …?": the closest known name to a misspelt one.

/// Levenshtein distance between two short strings, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The known name closest to `wrong`, if it is close enough to be a typo.
pub fn closest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wrong.chars().count() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (distance(wrong, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// `" (did you mean 'x'?)"`, or nothing.
pub fn did_you_mean<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(wrong, known)
        .map(|k| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let known = ["mopti/koro", "mopti/djenne", "segou/macina"];
        assert_eq!(closest("mopti/korro", known), Some("mopti/koro"));
        assert_eq!(closest("mopti/djené", known), Some("mopti/djenne"));
        assert_eq!(closest("bamako", known), None);
        assert_eq!(
            did_you_mean("leadr", ["leader", "mayor"]),
            " (did you mean 'leader'?)"
        );
    }
}
