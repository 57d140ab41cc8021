//! When leaders may be called, and what a call costs, from `workflows/calls.yaml`
//! (optional; without it, 08:00 to 20:00 in Africa/Bamako everywhere, and no
//! price): the hours of the day calls are placed, for the whole programme and
//! for a place and everything below it (the nearest place listed wins). A call
//! due outside them waits for the next start of its callee's hours; it is not
//! an attempt and nothing is lost. Rules can forbid more (prayer, market day)
//! with the `call_time` hook. The price of a minute lets `preview` estimate
//! what the calls it shows cost.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::places::Places;
use crate::recurrence::parse_time_zone;
use crate::yaml;
use palabre_core::diagnostic::Diagnostics;

/// `calls.yaml`: when calls are placed, and what a minute costs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallsFile {
    /// The IANA time zone the hours are in (default `Africa/Bamako`).
    #[serde(default = "default_zone")]
    pub timezone: String,
    /// The hours calls are placed everywhere a place does not say otherwise,
    /// `"HH:MM-HH:MM"` (default `"08:00-20:00"`).
    #[serde(default = "default_hours")]
    #[schemars(regex(pattern = r"^\d{2}:\d{2}-\d{2}:\d{2}$"))]
    pub hours: String,
    /// Other hours for a place and everything below it (`mopti/koro: "07:00-19:00"`).
    #[serde(default)]
    pub places: BTreeMap<String, String>,
    /// What the voice provider charges for a minute of call, started minutes
    /// counted whole (for `preview`'s estimate).
    #[serde(default)]
    pub price_per_minute: Option<CallPrice>,
}

/// A price, in a currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallPrice {
    /// Greater than 0.
    pub amount: f64,
    /// Its currency, as people write it (`XOF`, `USD`).
    pub currency: String,
}

impl CallPrice {
    /// What calls of `seconds` each cost, each started minute counted whole.
    pub fn of_calls(&self, seconds: impl IntoIterator<Item = f64>) -> f64 {
        seconds
            .into_iter()
            .map(|s| (s / 60.0).ceil().max(1.0) * self.amount)
            .sum()
    }
}

fn default_zone() -> String {
    "Africa/Bamako".to_owned()
}

fn default_hours() -> String {
    "08:00-20:00".to_owned()
}

/// A span of the day, `from` included, `until` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveTime,
    pub until: NaiveTime,
}

impl Window {
    /// `"08:00-20:00"`; the start must come before the end (calls are not
    /// placed across midnight).
    pub fn parse(text: &str) -> Result<Window, String> {
        let wrong = || format!("'{text}' is not hours like \"08:00-20:00\"");
        let (from, until) = text.split_once('-').ok_or_else(wrong)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| wrong());
        let window = Window {
            from: time(from)?,
            until: time(until)?,
        };
        if window.from >= window.until {
            return Err(format!(
                "'{text}': the start must come before the end, within one day"
            ));
        }
        Ok(window)
    }

    fn contains(&self, time: NaiveTime) -> bool {
        self.from <= time && time < self.until
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.from.format("%H:%M"),
            self.until.format("%H:%M")
        )
    }
}

/// The call hours, loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    zone: Tz,
    everywhere: Window,
    by_place: BTreeMap<String, Window>,
    price: Option<CallPrice>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            zone: chrono_tz::Africa::Bamako,
            everywhere: Window {
                from: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
                until: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
            },
            by_place: BTreeMap::new(),
            price: None,
        }
    }
}

impl Calls {
    /// Loads `file`; without it, the defaults. Every problem is reported at its
    /// position, and what is wrong keeps the default.
    pub fn load(file: &Path, places: &Places, diagnostics: &mut Diagnostics) -> Calls {
        let mut calls = Calls::default();
        if !file.exists() {
            return calls;
        }
        let parsed = match yaml::parse_file::<CallsFile>(file) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                return calls;
            }
        };
        let mut problem = |path: &str, message: String| {
            diagnostics.push(yaml::problem(
                file,
                &parsed.text,
                parsed.map.value(path),
                message,
            ));
        };
        let value = &parsed.value;
        match parse_time_zone(&value.timezone) {
            Ok(zone) => calls.zone = zone,
            Err(e) => problem("timezone", e.to_string()),
        }
        match Window::parse(&value.hours) {
            Ok(window) => calls.everywhere = window,
            Err(e) => problem("hours", e),
        }
        match &value.price_per_minute {
            Some(price) if !(price.amount > 0.0 && price.amount.is_finite()) => problem(
                "price_per_minute.amount",
                format!("{} is not a price: more than 0", price.amount),
            ),
            Some(price) => calls.price = Some(price.clone()),
            None => {}
        }
        for (place, text) in &value.places {
            let path = format!("places.{place}");
            if places.get(place).is_none() {
                problem(&path, places.unknown_message(place));
                continue;
            }
            match Window::parse(text) {
                Ok(window) => {
                    calls.by_place.insert(place.clone(), window);
                }
                Err(e) => problem(&path, e),
            }
        }
        calls
    }

    /// What a minute of call costs, when the file says.
    pub fn price(&self) -> Option<&CallPrice> {
        self.price.as_ref()
    }

    /// The time zone of the hours.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The hours of someone at `place`: those of the nearest place listed at or
    /// above it, else the programme's.
    pub fn window(&self, place: &str) -> Window {
        Places::upwards(place)
            .find_map(|p| self.by_place.get(p))
            .copied()
            .unwrap_or(self.everywhere)
    }

    /// `now` if someone at `place` may be called now, else the next start of
    /// their hours.
    pub fn next_allowed(&self, place: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        let window = self.window(place);
        let local = now.with_timezone(&self.zone);
        if window.contains(local.time()) {
            return now;
        }
        let mut day = local.date_naive();
        if local.time() >= window.until {
            day = day.succ_opt().unwrap_or(day);
        }
        // A start that falls in a daylight-saving gap is taken at the end of it.
        let mut start = day.and_time(window.from);
        for _ in 0..4 {
            if let Some(at) = self.zone.from_local_datetime(&start).earliest() {
                return at.with_timezone(&Utc);
            }
            start += TimeDelta::hours(1);
        }
        now + TimeDelta::hours(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::utc;

    fn places() -> Places {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("places.yaml");
        std::fs::write(
            &file,
            "version: \"1\"\nregions:\n  - id: mopti\n    name: Mopti\n    cercles:\n      - id: koro\n        name: Koro\n        communes:\n          - { id: bondo, name: Bondo }\n",
        )
        .unwrap();
        let mut diagnostics = Diagnostics::default();
        let places = Places::load(&file, &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        places
    }

    fn load(text: &str) -> (Calls, Diagnostics) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("calls.yaml");
        std::fs::write(&file, text).unwrap();
        let mut diagnostics = Diagnostics::default();
        let hours = Calls::load(&file, &places(), &mut diagnostics);
        (hours, diagnostics)
    }

    #[test]
    fn a_call_at_night_waits_for_the_morning_and_one_in_the_day_goes_now() {
        let hours = Calls::default();
        let evening = utc("2026-12-04T21:30:00Z");
        assert_eq!(
            hours.next_allowed("mopti/koro", evening),
            utc("2026-12-05T08:00:00Z")
        );
        let dawn = utc("2026-12-05T05:00:00Z");
        assert_eq!(
            hours.next_allowed("mopti/koro", dawn),
            utc("2026-12-05T08:00:00Z")
        );
        let noon = utc("2026-12-05T12:00:00Z");
        assert_eq!(hours.next_allowed("mopti/koro", noon), noon);
        // The end is excluded: at 20:00 the day's calls are over.
        assert_eq!(
            hours.next_allowed("", utc("2026-12-05T20:00:00Z")),
            utc("2026-12-06T08:00:00Z")
        );
    }

    #[test]
    fn the_nearest_place_listed_gives_the_hours_in_the_files_zone() {
        let (hours, diagnostics) = load(
            "timezone: Africa/Lagos\nhours: \"09:00-18:00\"\nplaces:\n  mopti/koro: \"07:00-19:00\"\n",
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(hours.window("mopti/koro/bondo").to_string(), "07:00-19:00");
        assert_eq!(hours.window("mopti").to_string(), "09:00-18:00");
        // 06:30 UTC is 07:30 in Lagos: inside Koro's hours, before Mopti's.
        let at = utc("2026-12-05T06:30:00Z");
        assert_eq!(hours.next_allowed("mopti/koro/bondo", at), at);
        assert_eq!(hours.next_allowed("mopti", at), utc("2026-12-05T08:00:00Z"));
    }

    #[test]
    fn wrong_hours_zones_and_places_are_errors_at_their_line() {
        let (hours, diagnostics) = load(
            "timezone: Africa/Bamakko\nhours: \"20:00-08:00\"\nplaces:\n  mopti/korro: \"07:00-19:00\"\n  mopti/koro: \"7h-19h\"\n",
        );
        let shown: Vec<String> = diagnostics.sorted().iter().map(|d| d.to_string()).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(shown[0].contains(":1:") && shown[0].contains("Africa/Bamakko"));
        assert!(shown[1].contains(":2:") && shown[1].contains("within one day"));
        assert!(shown[2].contains(":4:") && shown[2].contains("did you mean 'mopti/koro'"));
        assert!(shown[3].contains(":5:") && shown[3].contains("'7h-19h'"));
        assert_eq!(hours, Calls::default());
    }

    #[test]
    fn a_price_counts_each_started_minute_and_must_be_positive() {
        let (calls, diagnostics) = load("price_per_minute: { amount: 75, currency: XOF }\n");
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let price = calls.price().unwrap();
        // 20 s and 60 s are a minute each, 61 s two.
        assert_eq!(price.of_calls([20.0, 60.0, 61.0]), 300.0);
        let (calls, diagnostics) = load("price_per_minute: { amount: 0, currency: XOF }\n");
        assert_eq!(diagnostics.error_count(), 1);
        assert!(calls.price().is_none());
    }
}
