//! The words people answer SMS with, from `workflows/replies.yaml`: yes and no
//! per language, and the opt-out and opt-in words. A reply is read by its first
//! word, accents and case ignored (`Arrêt`, `ARRET` and `arret` are one word),
//! and, for yes, no and done, the reference code after it (`OUI 4821`, `FAIT 5127`).

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::yaml;
use palabre_core::diagnostic::Diagnostics;

/// `replies.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepliesFile {
    /// Words meaning yes, by language (`fra: [OUI]`, `bam: [AWO]`).
    pub yes: BTreeMap<String, Vec<String>>,
    /// Words meaning no, by language.
    pub no: BTreeMap<String, Vec<String>>,
    /// Words an owner marks a milestone done with, by language (`FAIT 5127`).
    #[serde(default)]
    pub done: BTreeMap<String, Vec<String>>,
    /// Words that stop all SMS to the sender.
    pub stop: Vec<String>,
    /// Words that start them again.
    pub start: Vec<String>,
}

impl Default for RepliesFile {
    fn default() -> Self {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        RepliesFile {
            yes: BTreeMap::from([("fra".to_owned(), words(&["OUI"]))]),
            no: BTreeMap::from([("fra".to_owned(), words(&["NON"]))]),
            done: BTreeMap::from([("fra".to_owned(), words(&["FAIT"]))]),
            stop: words(&["STOP", "ARRET"]),
            start: words(&["START"]),
        }
    }
}

/// What a reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Yes or no, to the request whose reference follows (if any).
    Answer {
        yes: bool,
        reference: Option<String>,
    },
    /// Done, about the milestone whose reference follows (if any).
    Done {
        reference: Option<String>,
    },
    Stop,
    Start,
    NotUnderstood,
}

/// The keywords, normalized.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    yes: Vec<String>,
    no: Vec<String>,
    done: Vec<String>,
    stop: Vec<String>,
    start: Vec<String>,
    /// Language → normalized word → what it means there (`yes`, `no`, `done`).
    by_language: BTreeMap<String, BTreeMap<String, &'static str>>,
    /// (language, meaning) → the first word the file lists for it, normalized.
    first_words: BTreeMap<(String, &'static str), String>,
}

/// Upper case, without accents: what replies are compared as.
pub fn normalize(word: &str) -> String {
    crate::gsm::to_gsm_lookalikes(word)
        .to_uppercase()
        .chars()
        .map(|c| match c {
            'É' | 'È' => 'E',
            'À' => 'A',
            'Ù' => 'U',
            'Ì' => 'I',
            'Ò' => 'O',
            'Ç' => 'C',
            other => other,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

impl Replies {
    /// Loads `replies.yaml`; without the file, French defaults (OUI, NON, FAIT, STOP, ARRET, START).
    pub fn load(file: &Path, diagnostics: &mut Diagnostics) -> Replies {
        if !file.exists() {
            return Replies::from_file(&RepliesFile::default());
        }
        match yaml::parse_file::<RepliesFile>(file) {
            Ok(parsed) => {
                check_words(file, &parsed, diagnostics);
                Replies::from_file(&parsed.value)
            }
            Err(d) => {
                diagnostics.push(*d);
                Replies::default()
            }
        }
    }

    fn from_file(file: &RepliesFile) -> Replies {
        let all = |map: &BTreeMap<String, Vec<String>>| {
            map.values().flatten().map(|w| normalize(w)).collect()
        };
        let mut by_language: BTreeMap<String, BTreeMap<String, &'static str>> = BTreeMap::new();
        let mut first_words = BTreeMap::new();
        for (meaning, map) in [("yes", &file.yes), ("no", &file.no), ("done", &file.done)] {
            for (language, list) in map {
                let known = by_language.entry(language.clone()).or_default();
                known.extend(list.iter().map(|w| (normalize(w), meaning)));
                if let Some(first) = list.first() {
                    first_words.insert((language.clone(), meaning), normalize(first));
                }
            }
        }
        Replies {
            yes: all(&file.yes),
            no: all(&file.no),
            done: all(&file.done),
            stop: file.stop.iter().map(|w| normalize(w)).collect(),
            start: file.start.iter().map(|w| normalize(w)).collect(),
            by_language,
            first_words,
        }
    }

    /// The first word listed for `meaning` (`yes`, `no`, `done`) in `language`,
    /// as replies are read (capitals, no accents): what a button offers.
    pub fn first_word(&self, language: &str, meaning: &str) -> Option<String> {
        self.first_words
            .get(&(language.to_owned(), meaning))
            .cloned()
    }

    /// What `word` means as an answer in `language` (`yes`, `no` or `done`), if
    /// the file lists it there.
    pub fn meaning_in(&self, language: &str, word: &str) -> Option<&'static str> {
        self.by_language
            .get(language)?
            .get(&normalize(word))
            .copied()
    }

    /// What `text` says.
    pub fn read(&self, text: &str) -> Reply {
        let mut words = text.split_whitespace();
        let first = words.next().map(normalize).unwrap_or_default();
        let reference = words.next().map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_owned()
        });
        if self.stop.contains(&first) {
            Reply::Stop
        } else if self.start.contains(&first) {
            Reply::Start
        } else if self.yes.contains(&first) {
            Reply::Answer {
                yes: true,
                reference,
            }
        } else if self.no.contains(&first) {
            Reply::Answer {
                yes: false,
                reference,
            }
        } else if self.done.contains(&first) {
            Reply::Done { reference }
        } else {
            Reply::NotUnderstood
        }
    }
}

/// Every word of the file with its meaning and its path in the file.
fn words(file: &RepliesFile) -> Vec<(String, &'static str, &str)> {
    let mut all = Vec::new();
    for (meaning, map) in [("yes", &file.yes), ("no", &file.no), ("done", &file.done)] {
        for (language, list) in map {
            for (i, word) in list.iter().enumerate() {
                all.push((format!("{meaning}.{language}[{i}]"), meaning, word.as_str()));
            }
        }
    }
    for (meaning, list) in [("stop", &file.stop), ("start", &file.start)] {
        for (i, word) in list.iter().enumerate() {
            all.push((format!("{meaning}[{i}]"), meaning, word.as_str()));
        }
    }
    all
}

/// A word read as two things (`OUI` for yes and for done) could act on the wrong
/// request; a word of punctuation alone can never be read.
fn check_words(file: &Path, parsed: &yaml::Parsed<RepliesFile>, diagnostics: &mut Diagnostics) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (path, meaning, word) in words(&parsed.value) {
        let normalized = normalize(word);
        let problem = if normalized.is_empty() {
            Some(format!(
                "'{word}' has no letter or digit: no reply can match it"
            ))
        } else {
            match seen.insert(normalized, meaning) {
                Some(other) if other != meaning => Some(format!(
                    "'{word}' already means {other} (accents and case aside): a reply word means one thing"
                )),
                _ => None,
            }
        };
        if let Some(message) = problem {
            diagnostics.push(yaml::problem(
                file,
                &parsed.text,
                parsed.map.value(&path),
                message,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_by_their_first_word_without_accents() {
        let mut file = RepliesFile::default();
        file.yes.insert("bam".into(), vec!["Awɔ".into()]);
        file.stop.push("ARRÊT".into());
        let replies = Replies::from_file(&file);
        assert_eq!(
            replies.read("oui 4821"),
            Reply::Answer {
                yes: true,
                reference: Some("4821".into())
            }
        );
        assert_eq!(
            replies.read("AWO, 4821."),
            Reply::Answer {
                yes: true,
                reference: Some("4821".into())
            }
        );
        assert_eq!(
            replies.read("Non"),
            Reply::Answer {
                yes: false,
                reference: None
            }
        );
        assert_eq!(
            replies.read("Fait 5127"),
            Reply::Done {
                reference: Some("5127".into())
            }
        );
        assert_eq!(replies.read("Arrêt"), Reply::Stop);
        assert_eq!(replies.read("arret svp"), Reply::Stop);
        assert_eq!(replies.read("start"), Reply::Start);
        assert_eq!(replies.read("peut-être"), Reply::NotUnderstood);
        assert_eq!(replies.read(""), Reply::NotUnderstood);
    }
}
