//! Calls assembled from recordings. Text-to-speech does not exist for Bambara
//! or Fulfulde, so a call plays recorded clips, one file each, from
//! `workflows/audio/<language>/<clip>.wav`: a template's `voice` text renders to
//! the names of its clips, and spoken values (dates, times, reference digits)
//! are said by the `say_date`, `say_time` and `say_digits` filters as number,
//! weekday and month clips, the way telephone systems have always done it.
//! This module owns the clip names, the keypad's meaning, and the catalogue of
//! recordings with their durations (read by symphonia).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Datelike, Timelike};
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};

/// The folder of the recordings, in a workflows folder.
pub const AUDIO_DIR: &str = "audio";

/// The clips calls play besides their templates': the keypad's questions, and
/// what is said after each answer.
pub const CALL_CLIPS: [&str; 12] = [
    "keys",
    "keys-dispute",
    "keys-milestone",
    "keys-listen",
    "thanks-yes",
    "thanks-no",
    "thanks-dispute-yes",
    "thanks-dispute-no",
    "thanks-done",
    "thanks-not-yet",
    NEVER_CLIP,
    NOT_UNDERSTOOD_CLIP,
];
/// "You will not be called again. Goodbye."
pub const NEVER_CLIP: &str = "never-again";
/// "That key is not one of the choices." (then the question again)
pub const NOT_UNDERSTOOD_CLIP: &str = "not-understood";

/// What the keys after a call's message answer, by what the call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keypad {
    /// An invitation: 1 I will come, 2 I cannot.
    Attendance,
    /// A dispute reaching its responders: 1 I take it on, 2 I cannot.
    Dispute,
    /// A milestone its owner may report done: 1 it is done, 2 not yet.
    Milestone,
    /// Nothing to answer: only 9 (again) and 0 (never).
    ListenOnly,
}

impl Keypad {
    /// The clip asking for a key (it names 9 and 0 too).
    pub fn question(self) -> &'static str {
        match self {
            Keypad::Attendance => "keys",
            Keypad::Dispute => "keys-dispute",
            Keypad::Milestone => "keys-milestone",
            Keypad::ListenOnly => "keys-listen",
        }
    }

    /// The clip thanking for a 1 (`yes`) or a 2; `None` when there is nothing to answer.
    pub fn thanks(self, yes: bool) -> Option<&'static str> {
        match (self, yes) {
            (Keypad::Attendance, true) => Some("thanks-yes"),
            (Keypad::Attendance, false) => Some("thanks-no"),
            (Keypad::Dispute, true) => Some("thanks-dispute-yes"),
            (Keypad::Dispute, false) => Some("thanks-dispute-no"),
            (Keypad::Milestone, true) => Some("thanks-done"),
            (Keypad::Milestone, false) => Some("thanks-not-yet"),
            (Keypad::ListenOnly, _) => None,
        }
    }
}

/// The clip that says "hours" between the hour and the minutes.
const HOURS_CLIP: &str = "hours";

/// What a key pressed after the message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// 1: yes (I will come, I take the dispute, it is done).
    Yes,
    /// 2: no.
    No,
    /// 9: the message once more.
    Again,
    /// 0: never call me again.
    Never,
}

impl Key {
    /// The meaning of what the keypad sent (`"1"`, `"9#"`), if it has one.
    pub fn read(digits: &str) -> Option<Key> {
        match digits.trim().trim_end_matches('#') {
            "1" => Some(Key::Yes),
            "2" => Some(Key::No),
            "9" => Some(Key::Again),
            "0" => Some(Key::Never),
            _ => None,
        }
    }
}

fn number(n: u32) -> String {
    format!("number-{n}")
}

/// "weekday-3 number-2 month-12" for 2 December 2026 (a Wednesday); what is not
/// an ISO date is left as it is (and then names no clip a folder has).
pub fn say_date(value: &str) -> String {
    crate::dates::date_of(value).map_or_else(
        || value.to_owned(),
        |date| {
            format!(
                "weekday-{} {} month-{}",
                date.weekday().number_from_monday(),
                number(date.day()),
                date.month()
            )
        },
    )
}

/// "number-16 hours number-18" for 16:18, "number-9 hours" for 09:00.
pub fn say_time(value: &str) -> String {
    crate::dates::time_of(value).map_or_else(
        || value.to_owned(),
        |time| match time.minute() {
            0 => format!("{} {HOURS_CLIP}", number(time.hour())),
            minute => format!("{} {HOURS_CLIP} {}", number(time.hour()), number(minute)),
        },
    )
}

/// Each digit of `value` said alone: "number-7 number-2" for `72`; other
/// characters are skipped (a reference's dash).
pub fn say_digits(value: &str) -> String {
    value
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(number)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The clips the `say_…` filters a text uses can say, whatever the value.
pub fn spoken_clips(source: &str) -> Vec<String> {
    let mut clips = Vec::new();
    if source.contains("say_date") {
        clips.extend((1..=7).map(|d| format!("weekday-{d}")));
        clips.extend((1..=31).map(number));
        clips.extend((1..=12).map(|m| format!("month-{m}")));
    }
    if source.contains("say_time") {
        clips.extend((0..=59).map(number));
        clips.push(HOURS_CLIP.to_owned());
    }
    if source.contains("say_digits") {
        clips.extend((0..=9).map(number));
    }
    clips.sort();
    clips.dedup();
    clips
}

/// The clip names of a rendered voice text, in the order they play.
pub fn clips_of(script: &str) -> impl Iterator<Item = &str> {
    script.split_whitespace()
}

/// Every clip a call with the rendered voice text `script` plays when it is
/// answered: the text's, then the keypad's question.
pub fn call_clips(script: &str, keypad: Keypad) -> impl Iterator<Item = &str> {
    clips_of(script).chain([keypad.question()])
}

/// Whether `name` can name a clip file: lower-case letters, digits and dashes.
pub fn is_clip_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub path: PathBuf,
    pub duration: Duration,
}

/// The recordings of a workflows folder, by language and clip name.
#[derive(Debug, Clone, Default)]
pub struct Audio {
    clips: BTreeMap<String, BTreeMap<String, Clip>>,
}

impl Audio {
    /// Reads `dir/<language>/<clip>.wav`, each file's duration included; a file
    /// that is not readable audio is an error naming it. No folder, no clips.
    pub fn load(dir: &Path, diagnostics: &mut Diagnostics) -> Audio {
        let mut audio = Audio::default();
        let Ok(languages) = std::fs::read_dir(dir) else {
            return audio;
        };
        let mut languages: Vec<PathBuf> = languages.flatten().map(|e| e.path()).collect();
        languages.sort();
        for language_dir in languages.into_iter().filter(|p| p.is_dir()) {
            let Some(language) = language_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Ok(files) = std::fs::read_dir(&language_dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = files.flatten().map(|e| e.path()).collect();
            files.sort();
            let clips = audio.clips.entry(language.to_owned()).or_default();
            for file in files {
                if file.extension().and_then(|e| e.to_str()) != Some("wav") {
                    continue;
                }
                let Some(name) = file.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                match duration_of(&file) {
                    Ok(duration) => {
                        clips.insert(
                            name.to_owned(),
                            Clip {
                                path: file.clone(),
                                duration,
                            },
                        );
                    }
                    Err(problem) => diagnostics.push(Diagnostic::error(
                        &file,
                        Position::START,
                        format!("not a readable WAV recording: {problem}"),
                    )),
                }
            }
        }
        audio
    }

    /// Whether `language` has any recording yet.
    pub fn has_recordings(&self, language: &str) -> bool {
        self.clips
            .get(language)
            .is_some_and(|clips| !clips.is_empty())
    }

    /// The recording of `clip` in `language`.
    pub fn clip(&self, language: &str, clip: &str) -> Option<&Clip> {
        self.clips.get(language)?.get(clip)
    }

    /// How long a call with the rendered voice text `script` plays once
    /// answered: its clips, then `keypad`'s question once (missing clips
    /// count nothing).
    pub fn call_length(&self, language: &str, script: &str, keypad: Keypad) -> Duration {
        self.duration(language, call_clips(script, keypad))
    }

    /// How long `clips` play in `language` (missing ones count nothing).
    fn duration<'c>(&self, language: &str, clips: impl IntoIterator<Item = &'c str>) -> Duration {
        clips
            .into_iter()
            .filter_map(|clip| self.clip(language, clip))
            .map(|clip| clip.duration)
            .sum()
    }
}

/// A WAV file's duration, read by symphonia from its header.
fn duration_of(file: &Path) -> Result<Duration, String> {
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let source = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let stream = MediaSourceStream::new(Box::new(source), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    let track = probed
        .format
        .default_track()
        .ok_or_else(|| "no audio track".to_owned())?;
    let params = &track.codec_params;
    match (params.n_frames, params.sample_rate) {
        (Some(frames), Some(rate)) if rate > 0 => {
            Ok(Duration::from_secs_f64(frames as f64 / f64::from(rate)))
        }
        _ => Err("its length is not in its header".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_values_are_number_weekday_and_month_clips() {
        assert_eq!(say_date("2026-12-02"), "weekday-3 number-2 month-12");
        assert_eq!(say_date("2027-01-03 09:00"), "weekday-7 number-3 month-1");
        assert_eq!(say_time("16:18"), "number-16 hours number-18");
        assert_eq!(say_time("2027-01-06 09:00"), "number-9 hours");
        assert_eq!(say_digits("7231"), "number-7 number-2 number-3 number-1");
        assert_eq!(say_digits("LT-07"), "number-0 number-7");
        assert_eq!(say_date("bientôt"), "bientôt");
    }

    #[test]
    fn the_filters_vocabulary_covers_what_they_say() {
        let source = "{{ d | say_date }} {{ t | say_time }} {{ r | say_digits }}";
        let vocabulary = spoken_clips(source);
        for said in [
            say_date("2027-08-31"),
            say_time("23:59"),
            say_time("00:00"),
            say_digits("0123456789"),
        ] {
            for clip in clips_of(&said) {
                assert!(vocabulary.iter().any(|v| v == clip), "{clip}");
            }
        }
        assert!(spoken_clips("welcome").is_empty());
    }

    #[test]
    fn keys_mean_what_the_question_says() {
        assert_eq!(Key::read("1"), Some(Key::Yes));
        assert_eq!(Key::read("2#"), Some(Key::No));
        assert_eq!(Key::read(" 9 "), Some(Key::Again));
        assert_eq!(Key::read("0"), Some(Key::Never));
        assert_eq!(Key::read("5"), None);
        assert_eq!(Key::read(""), None);
    }

    #[test]
    fn clip_names_are_file_names() {
        assert!(is_clip_name("number-12"));
        assert!(!is_clip_name("Number"));
        assert!(!is_clip_name("../x"));
        assert!(!is_clip_name(""));
    }
}
