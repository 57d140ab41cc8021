//! Calendars as data: public holidays, religious feasts, seasons, weekly markets
//! and insecurity alerts, read from `workflows/calendars/*.yaml`.
//!
//! Nothing here is code that knows a date: the lunar feasts move every year and
//! are fixed by moon sighting, market days are local knowledge, alerts are raised
//! and lifted by coordinators. All of it is YAML that coordinators edit; rules read
//! it through the functions `palabre-rules` registers (`is_holiday(date)`,
//! `is_market_day(date, place)`, `alert(date, place)` ...). Every file of the
//! folder is merged into one [`Calendars`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::places::Places;
use crate::source_map::Located;
use crate::yaml;
use palabre_core::diagnostic::Diagnostics;

/// A day of the week, written in English, lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub fn of(date: NaiveDate) -> Weekday {
        match date.weekday() {
            chrono::Weekday::Mon => Weekday::Monday,
            chrono::Weekday::Tue => Weekday::Tuesday,
            chrono::Weekday::Wed => Weekday::Wednesday,
            chrono::Weekday::Thu => Weekday::Thursday,
            chrono::Weekday::Fri => Weekday::Friday,
            chrono::Weekday::Sat => Weekday::Saturday,
            chrono::Weekday::Sun => Weekday::Sunday,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads `YYYY-MM-DD` (the only date form rules use) without a format parser:
/// rules read dates on every decision.
pub fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0_u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

/// Writes `date` as `YYYY-MM-DD`.
pub fn format_iso_date(date: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

/// A holiday on the same day every year.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YearlyHoliday {
    /// Month and day, `MM-DD` (`09-22`).
    pub day: String,
    /// The holiday's name as people say it (`Fête de l'indépendance`).
    pub name: String,
}

/// A holiday on one given date: Easter Monday, and the feasts of the lunar calendar.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatedHoliday {
    /// The date, `YYYY-MM-DD`.
    pub date: NaiveDate,
    pub name: String,
    /// True while the date is a forecast that moon sighting may shift by a day;
    /// set it to false once the authorities have announced it.
    #[serde(default)]
    pub estimated: bool,
}

/// A stretch of days with a name (Ramadan, the rainy season), inclusive at both ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub name: String,
}

/// An insecurity alert on a place (and every place below it), inclusive at both ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// A place path from places.yaml.
    pub place: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Why, as participants may read it. Keep it neutral: it can be sent by SMS.
    pub reason: String,
}

/// One file of `workflows/calendars/`. Every section is optional; the files are merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// Public holidays on the same date every year.
    #[serde(default)]
    pub yearly: Vec<YearlyHoliday>,
    /// Holidays on a given date: Easter Monday and the religious feasts, whose dates
    /// follow the lunar calendar and must be entered each year.
    #[serde(default)]
    pub dated: Vec<DatedHoliday>,
    /// Named periods (Ramadan ...): not days off, but rules may treat them differently.
    #[serde(default)]
    pub periods: Vec<Period>,
    /// Weekly market days by place path. A market listed for a place holds for the
    /// places below it too (list the cercle's seat market at the cercle).
    #[serde(default)]
    pub markets: BTreeMap<String, Vec<Weekday>>,
    /// Insecurity alerts raised by coordinators.
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

/// The last day a calendar file says anything dated about, and what says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCovered {
    pub date: NaiveDate,
    /// The holiday or period that ends there (`Baptême du Prophète`).
    pub name: String,
    /// Where it is written in the file, as a path (`dated[9].date`, `periods[1].to`).
    pub path: String,
}

impl CalendarFile {
    /// The last date this file covers: after it, `holiday(date)` and `period(date)`
    /// answer nothing from this file. Yearly holidays never end, so they do not
    /// count; a dated holiday or feast covers up to its date, a period up to its
    /// last day. Markets and alerts are not a coverage of dates. `None` when the
    /// file never ends (nothing dated in it). Of two entries on the last date, the
    /// one written first.
    pub fn last_covered(&self) -> Option<LastCovered> {
        let dated = self.dated.iter().enumerate().map(|(i, h)| LastCovered {
            date: h.date,
            name: h.name.clone(),
            path: format!("dated[{i}].date"),
        });
        let periods = self.periods.iter().enumerate().map(|(i, p)| LastCovered {
            date: p.to,
            name: p.name.clone(),
            path: format!("periods[{i}].to"),
        });
        dated.chain(periods).fold(None, |last, entry| match last {
            Some(last) if last.date >= entry.date => Some(last),
            _ => Some(entry),
        })
    }
}

/// How many days before a calendar's last covered date `validate` and `status`
/// warn that it ends.
pub const CALENDAR_NOTICE_DAYS: i64 = 90;

/// Where one calendar file's dates end, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEnd {
    pub file: PathBuf,
    pub last: LastCovered,
    /// Where `last` is written.
    pub at: Located,
    /// The source line `at` points into.
    pub source_line: Option<String>,
    /// Whether the file has dated holidays and feasts, and periods: what to extend.
    pub has_dated: bool,
    pub has_periods: bool,
}

impl CalendarEnd {
    /// Days from `today` to the last covered date: 0 on it, negative once past.
    pub fn days_left(&self, today: NaiveDate) -> i64 {
        (self.last.date - today).num_days()
    }

    /// Whether the calendar ends within [`CALENDAR_NOTICE_DAYS`] of `today` (or has
    /// already ended).
    pub fn ends_soon(&self, today: NaiveDate) -> bool {
        self.days_left(today) <= CALENDAR_NOTICE_DAYS
    }
}

/// Every calendar file merged.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    yearly: BTreeMap<(u32, u32), String>,
    dated: BTreeMap<NaiveDate, String>,
    periods: Vec<Period>,
    markets: BTreeMap<String, Vec<Weekday>>,
    alerts: Vec<Alert>,
    /// The end of each file that has one, in the order the files were read.
    ends: Vec<CalendarEnd>,
    fingerprint: u64,
}

/// `MM-DD` to (month, day), accepting 02-29.
fn month_day(text: &str) -> Option<(u32, u32)> {
    let (month, day) = text.split_once('-')?;
    if month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (month, day) = (month.parse().ok()?, day.parse().ok()?);
    NaiveDate::from_ymd_opt(2024, month, day).map(|_| (month, day))
}

impl Calendars {
    /// Loads every `.yaml` file of `dir` (a missing folder is an empty calendar).
    pub fn load(dir: &Path, places: &Places, diagnostics: &mut Diagnostics) -> Calendars {
        let mut calendars = Calendars::default();
        if !dir.is_dir() {
            return calendars;
        }
        for file in crate::files::yaml_files(dir, diagnostics) {
            match yaml::parse_file::<CalendarFile>(&file) {
                Ok(parsed) => calendars.add(&file, &parsed, places, diagnostics),
                Err(d) => diagnostics.push(*d),
            }
        }
        calendars
    }

    fn add(
        &mut self,
        file: &Path,
        parsed: &yaml::Parsed<CalendarFile>,
        places: &Places,
        diagnostics: &mut Diagnostics,
    ) {
        let problem = |path: &str, message: String| {
            yaml::problem(file, &parsed.text, parsed.map.value(path), message)
        };
        self.fingerprint = palabre_core::fingerprint::fnv1a([
            &self.fingerprint.to_le_bytes(),
            parsed.text.as_bytes(),
        ]);
        let value = &parsed.value;
        if let Some(last) = value.last_covered() {
            let at = parsed.map.value(&last.path);
            self.ends.push(CalendarEnd {
                file: file.to_path_buf(),
                at,
                source_line: parsed
                    .text
                    .lines()
                    .nth(at.position.line.saturating_sub(1))
                    .map(str::to_owned),
                has_dated: !value.dated.is_empty(),
                has_periods: !value.periods.is_empty(),
                last,
            });
        }
        for (i, holiday) in value.yearly.iter().enumerate() {
            match month_day(&holiday.day) {
                Some(key) => {
                    self.yearly.insert(key, holiday.name.clone());
                }
                None => diagnostics.push(problem(
                    &format!("yearly[{i}].day"),
                    format!("'{}' is not a day of the year: write MM-DD", holiday.day),
                )),
            }
        }
        for holiday in &value.dated {
            self.dated.insert(holiday.date, holiday.name.clone());
        }
        for (i, period) in value.periods.iter().enumerate() {
            if period.to < period.from {
                diagnostics.push(problem(
                    &format!("periods[{i}].to"),
                    "the period ends before it starts".to_owned(),
                ));
            }
            self.periods.push(period.clone());
        }
        for (place, days) in &value.markets {
            if places.get(place).is_none() {
                diagnostics.push(yaml::problem(
                    file,
                    &parsed.text,
                    parsed.map.key(&format!("markets.{place}")),
                    places.unknown_message(place),
                ));
            }
            self.markets.insert(place.clone(), days.clone());
        }
        for (i, alert) in value.alerts.iter().enumerate() {
            if places.get(&alert.place).is_none() {
                diagnostics.push(problem(
                    &format!("alerts[{i}].place"),
                    places.unknown_message(&alert.place),
                ));
            }
            if alert.to < alert.from {
                diagnostics.push(problem(
                    &format!("alerts[{i}].to"),
                    "the alert ends before it starts".to_owned(),
                ));
            }
            self.alerts.push(alert.clone());
        }
    }

    /// Where each calendar file's dates end (files that never end are not listed).
    pub fn ends(&self) -> &[CalendarEnd] {
        &self.ends
    }

    /// The calendars that end within [`CALENDAR_NOTICE_DAYS`] of `today`, or ended.
    pub fn ending_soon(&self, today: NaiveDate) -> impl Iterator<Item = &CalendarEnd> {
        self.ends.iter().filter(move |end| end.ends_soon(today))
    }

    /// Changes whenever any calendar file's text does.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The name of the holiday or feast on `date`, if any.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        self.dated
            .get(&date)
            .or_else(|| self.yearly.get(&(date.month(), date.day())))
            .map(String::as_str)
    }

    /// The name of the period `date` falls in, if any.
    pub fn period(&self, date: NaiveDate) -> Option<&str> {
        self.periods
            .iter()
            .find(|p| p.from <= date && date <= p.to)
            .map(|p| p.name.as_str())
    }

    /// Whether `date` is a weekly market day at `place` or at a place above it.
    pub fn is_market_day(&self, date: NaiveDate, place: &str) -> bool {
        let weekday = Weekday::of(date);
        Places::upwards(place).any(|at| {
            self.markets
                .get(at)
                .is_some_and(|days| days.contains(&weekday))
        })
    }

    /// The reason of an alert covering `place` on `date`, if any.
    pub fn alert(&self, date: NaiveDate, place: &str) -> Option<&str> {
        self.alerts
            .iter()
            .find(|a| a.from <= date && date <= a.to && Places::contains(&a.place, place))
            .map(|a| a.reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("test date")
    }

    #[test]
    fn lookups() {
        let mut calendars = Calendars::default();
        calendars.yearly.insert((9, 22), "Indépendance".into());
        calendars.dated.insert(date("2026-05-27"), "Tabaski".into());
        calendars
            .markets
            .insert("mopti/djenne".into(), vec![Weekday::Monday]);
        calendars.alerts.push(Alert {
            place: "mopti/koro".into(),
            from: date("2026-12-01"),
            to: date("2026-12-03"),
            reason: "alerte".into(),
        });
        assert_eq!(calendars.holiday(date("2027-09-22")), Some("Indépendance"));
        assert_eq!(calendars.holiday(date("2026-05-27")), Some("Tabaski"));
        assert_eq!(calendars.holiday(date("2027-05-27")), None);
        assert!(calendars.is_market_day(date("2026-12-07"), "mopti/djenne/djenne"));
        assert!(!calendars.is_market_day(date("2026-12-08"), "mopti/djenne/djenne"));
        assert!(!calendars.is_market_day(date("2026-12-07"), "mopti"));
        assert!(!calendars.is_market_day(date("2026-12-07"), "mopti/djennekoro"));
        assert_eq!(
            calendars.alert(date("2026-12-03"), "mopti/koro/bondo"),
            Some("alerte")
        );
        assert_eq!(
            calendars.alert(date("2026-12-04"), "mopti/koro/bondo"),
            None
        );
        assert_eq!(calendars.alert(date("2026-12-02"), "mopti/djenne"), None);
    }

    #[test]
    fn iso_dates() {
        assert_eq!(parse_iso_date("2026-02-28"), Some(date("2026-02-28")));
        assert_eq!(parse_iso_date("2026-02-29"), None);
        assert_eq!(parse_iso_date("2026-2-28"), None);
        assert_eq!(parse_iso_date("2026-0a-28"), None);
        assert_eq!(parse_iso_date("tomorrow"), None);
        assert_eq!(format_iso_date(date("0900-01-05")), "0900-01-05");
    }

    fn file(yaml: &str) -> CalendarFile {
        yaml::parse_text::<CalendarFile>(Path::new("c.yaml"), yaml.to_owned())
            .expect("test calendar")
            .value
    }

    #[test]
    fn yearly_holidays_never_end() {
        let only_yearly = file("yearly:\n  - { day: \"09-22\", name: \"Indépendance\" }\n");
        assert_eq!(only_yearly.last_covered(), None);
        let markets_and_alerts = file(
            "markets:\n  mopti/djenne: [monday]\n\
             alerts:\n  - { place: mopti, from: 2026-01-01, to: 2026-01-02, reason: x }\n",
        );
        assert_eq!(
            markets_and_alerts.last_covered(),
            None,
            "not dated coverage"
        );
        assert_eq!(CalendarFile::default().last_covered(), None);
    }

    #[test]
    fn dated_holidays_end_on_their_last_date_periods_on_their_last_day() {
        let dated = file(
            "yearly:\n  - { day: \"12-25\", name: \"Noël\" }\n\
             dated:\n  - { date: 2027-08-22, name: \"Baptême\" }\n  - { date: 2027-03-10, name: \"Korité\" }\n",
        );
        assert_eq!(
            dated.last_covered(),
            Some(LastCovered {
                date: date("2027-08-22"),
                name: "Baptême".into(),
                path: "dated[0].date".into(),
            }),
            "the latest date, wherever it is written; yearly ones do not extend it"
        );
        let periods = file(
            "periods:\n  - { from: 2027-02-08, to: 2027-03-09, name: Ramadan }\n  - { from: 2026-06-01, to: 2026-09-30, name: Hivernage }\n",
        );
        assert_eq!(
            periods.last_covered().map(|l| (l.date, l.path)),
            Some((date("2027-03-09"), "periods[0].to".into()))
        );
        let both = file(
            "dated:\n  - { date: 2027-03-09, name: Fête }\n\
             periods:\n  - { from: 2027-02-08, to: 2027-03-09, name: Ramadan }\n  - { from: 2027-03-01, to: 2027-12-31, name: Saison }\n",
        );
        assert_eq!(
            both.last_covered().map(|l| (l.date, l.name)),
            Some((date("2027-12-31"), "Saison".into())),
            "the later of dated holidays and periods"
        );
        let tie = file(
            "dated:\n  - { date: 2027-03-09, name: Fête }\n\
             periods:\n  - { from: 2027-02-08, to: 2027-03-09, name: Ramadan }\n",
        );
        assert_eq!(
            tie.last_covered().map(|l| l.path),
            Some("dated[0].date".into()),
            "on a tie, the first written"
        );
    }

    #[test]
    fn a_calendar_ends_soon_within_ninety_days_of_today() {
        let text = "# holidays\ndated:\n  - { date: 2027-01-01, name: \"An\" }\n  - { date: 2027-12-31, name: \"Fin\" }\n";
        let parsed = yaml::parse_text::<CalendarFile>(Path::new("h.yaml"), text.to_owned())
            .expect("test calendar");
        let mut calendars = Calendars::default();
        let mut diagnostics = Diagnostics::default();
        calendars.add(
            Path::new("h.yaml"),
            &parsed,
            &Places::default(),
            &mut diagnostics,
        );
        assert!(diagnostics.is_empty());
        let [end] = calendars.ends() else {
            panic!("one end: {:?}", calendars.ends());
        };
        assert_eq!(end.file, Path::new("h.yaml"));
        assert_eq!(end.last.date, date("2027-12-31"));
        assert_eq!(
            (end.at.position.line, end.at.position.column),
            (4, 13),
            "the date of the last entry"
        );
        assert_eq!(
            end.source_line.as_deref(),
            Some("  - { date: 2027-12-31, name: \"Fin\" }")
        );
        assert!((end.has_dated, end.has_periods) == (true, false));
        for (today, days_left, soon) in [
            ("2027-10-01", 91, false),
            ("2027-10-02", 90, true),
            ("2027-12-31", 0, true),
            ("2028-01-10", -10, true),
            ("2026-12-01", 395, false),
        ] {
            assert_eq!(end.days_left(date(today)), days_left, "{today}");
            assert_eq!(end.ends_soon(date(today)), soon, "{today}");
            assert_eq!(
                calendars.ending_soon(date(today)).count(),
                usize::from(soon)
            );
        }
    }

    #[test]
    fn month_days() {
        assert_eq!(month_day("02-29"), Some((2, 29)));
        assert_eq!(month_day("13-01"), None);
        assert_eq!(month_day("1-01"), None);
        assert_eq!(month_day("xx"), None);
    }
}
