//! The dashboard's texts, one catalogue per language (`web/catalogue/fr.yaml`,
//! `en.yaml`, embedded at build time), and the choice of a page's language:
//! the one asked in the address (`?lang=en`, then remembered in a cookie), else
//! the one remembered, else the browser's `Accept-Language`, else French.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A language the dashboard is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    French,
    English,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::French, Language::English];

    /// The code of the address, the cookie and `<html lang>`: `fr`, `en`.
    pub fn code(self) -> &'static str {
        match self {
            Language::French => "fr",
            Language::English => "en",
        }
    }

    /// The code `palabre_lang::dates` names it by.
    pub fn dates_code(self) -> &'static str {
        match self {
            Language::French => "fra",
            Language::English => "eng",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The page's language: `asked` (the address), else `remembered` (the
    /// cookie), else the first of `accept_language` the dashboard speaks, else
    /// French.
    pub fn choose(
        asked: Option<&str>,
        remembered: Option<&str>,
        accept_language: Option<&str>,
    ) -> Language {
        asked
            .and_then(Language::parse)
            .or_else(|| remembered.and_then(Language::parse))
            .or_else(|| accept_language.and_then(from_accept_language))
            .unwrap_or(Language::French)
    }

    pub fn catalogue(self) -> &'static Catalogue {
        match self {
            Language::French => &FRENCH,
            Language::English => &ENGLISH,
        }
    }
}

/// The first language of an `Accept-Language` header the dashboard speaks,
/// by the header's weights (`en-GB;q=0.8, fr;q=0.9` is French).
fn from_accept_language(header: &str) -> Option<Language> {
    let mut ranked: Vec<(f32, usize, Language)> = header
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            let primary = tag.split('-').next()?;
            Some((weight, order, Language::parse(primary)?))
        })
        .filter(|(weight, _, _)| *weight > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.first().map(|(_, _, language)| *language)
}

/// One language's texts, by key.
#[derive(Debug)]
pub struct Catalogue {
    pub texts: BTreeMap<String, String>,
}

fn load(source: &str) -> Catalogue {
    // Checked by the tests below: a catalogue that does not read is a build's bug.
    Catalogue {
        texts: serde_saphyr::from_str(source).unwrap_or_default(),
    }
}

static FRENCH: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../catalogue/fr.yaml")));
static ENGLISH: LazyLock<Catalogue> = LazyLock::new(|| load(include_str!("../catalogue/en.yaml")));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_then_the_cookie_then_the_browser_then_french() {
        assert_eq!(
            Language::choose(Some("en"), Some("fr"), Some("fr")),
            Language::English
        );
        assert_eq!(
            Language::choose(Some("xx"), Some("en"), None),
            Language::English
        );
        assert_eq!(
            Language::choose(None, None, Some("en-GB,en;q=0.9")),
            Language::English
        );
        assert_eq!(
            Language::choose(None, None, Some("en-GB;q=0.8, fr;q=0.9")),
            Language::French
        );
        assert_eq!(
            Language::choose(None, None, Some("bm, en;q=0.5")),
            Language::English
        );
        assert_eq!(
            Language::choose(None, None, Some("en;q=0")),
            Language::French
        );
        assert_eq!(Language::choose(None, None, None), Language::French);
    }

    #[test]
    fn both_catalogues_read_and_say_the_same_things() {
        let french: Vec<&String> = FRENCH.texts.keys().collect();
        let english: Vec<&String> = ENGLISH.texts.keys().collect();
        assert!(french.len() > 50, "{} texts", french.len());
        assert_eq!(french, english);
        for (language, catalogue) in [("fr", &*FRENCH), ("en", &*ENGLISH)] {
            for (key, text) in &catalogue.texts {
                assert!(!text.trim().is_empty(), "{language}: {key} is empty");
            }
        }
    }
}
