//! Recurrences: cron lines as people know them, in any IANA time zone, with an
//! explicit DST policy.
//!
//! Users write the standard 5-field form (`min hour day-of-month month
//! day-of-week`, 0 or 7 = Sunday) or a 6-field form with seconds first. The
//! `cron` crate underneath wants seconds first and numbers Sunday as 1; that
//! numbering never reaches users: we parse the day-of-week field ourselves and
//! hand the crate day *names*. Two more things people expect of cron are
//! restored here:
//!
//! - when both day-of-month and day-of-week are restricted, a day matches if
//!   *either* matches (Vixie cron), where the crate would require both;
//! - `DOW#N` means the N-th such weekday of the month (`TUE#1`: the first
//!   Tuesday), which monthly meetings need.
//!
//! Slots are computed in local wall-clock time, then placed on the time line:
//! a local time that does not exist (inside a spring-forward gap) fires at the
//! first instant after the gap; a local time that happens twice (fall-back)
//! fires once, at its first occurrence. Several slots that land on the same
//! instant fire once.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed recurrence in a time zone.
#[derive(Debug, Clone)]
pub struct Recurrence {
    expression: String,
    zone: Tz,
    /// One schedule, or two whose union is the recurrence (day-of-month OR day-of-week).
    schedules: Vec<cron::Schedule>,
}

/// Why a recurrence was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error(
        "a recurrence has 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; '{expression}' has {count}"
    )]
    FieldCount { expression: String, count: usize },
    #[error("day-of-week '{value}': {reason}")]
    DayOfWeek { value: String, reason: String },
    #[error("'{expression}': {reason}")]
    Cron { expression: String, reason: String },
    #[error("'{0}' never happens")]
    Never(String),
}

/// Why a time zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone '{name}': use an IANA name such as Africa/Bamako or Europe/Zurich")]
pub struct UnknownTimeZone {
    pub name: String,
}

/// Parses an IANA time zone name (`Africa/Bamako`).
pub fn parse_time_zone(name: &str) -> Result<Tz, UnknownTimeZone> {
    Tz::from_str(name).map_err(|_| UnknownTimeZone {
        name: name.to_owned(),
    })
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The day-of-week field, parsed with 0 or 7 = Sunday.
enum DaysOfWeek {
    All,
    /// Bit `d` set for weekday `d` (0 = Sunday).
    Set(u8),
    /// The `nth` (1–5) `weekday` of the month.
    Nth {
        weekday: usize,
        nth: u32,
    },
}

fn parse_weekday(text: &str) -> Result<usize, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = DAY_NAMES.iter().position(|n| *n == upper) {
        return Ok(i);
    }
    match text.parse::<usize>() {
        Ok(n @ 0..=6) => Ok(n),
        Ok(7) => Ok(0),
        _ => Err(format!(
            "'{text}' is not a day: use 0-7 (0 and 7 are Sunday) or SUN..SAT"
        )),
    }
}

fn parse_days_of_week(field: &str) -> Result<DaysOfWeek, RecurrenceError> {
    let fail = |reason: String| RecurrenceError::DayOfWeek {
        value: field.to_owned(),
        reason,
    };
    if field == "*" || field == "?" {
        return Ok(DaysOfWeek::All);
    }
    if let Some((day, nth)) = field.split_once('#') {
        let weekday = parse_weekday(day).map_err(fail)?;
        let nth = match nth.parse::<u32>() {
            Ok(n @ 1..=5) => n,
            _ => return Err(fail(format!("'#{nth}' must be #1 to #5"))),
        };
        return Ok(DaysOfWeek::Nth { weekday, nth });
    }
    let mut bits = 0u8;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => match s.parse::<usize>() {
                Ok(s) if s > 0 => (r, s),
                _ => return Err(fail(format!("step '/{s}' must be a positive number"))),
            },
            None => (item, 1),
        };
        let (start, end) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => {
                    let a = parse_weekday(a).map_err(fail)?;
                    // In a range, 7 closes the week (`5-7` is Friday to Sunday).
                    let b = if b == "7" {
                        7
                    } else {
                        parse_weekday(b).map_err(fail)?
                    };
                    if b < a {
                        return Err(fail(format!("range '{range}' runs backwards")));
                    }
                    (a, b)
                }
                None => {
                    let d = parse_weekday(range).map_err(fail)?;
                    // `5/2` means from Friday every second day, as in Vixie cron.
                    (d, if step > 1 { 6 } else { d })
                }
            },
        };
        for d in (start..=end).step_by(step) {
            bits |= 1 << (d % 7);
        }
    }
    Ok(if bits == 0x7f {
        DaysOfWeek::All
    } else {
        DaysOfWeek::Set(bits)
    })
}

fn day_names(bits: u8) -> String {
    (0..7)
        .filter(|d| bits & (1 << d) != 0)
        .map(|d| DAY_NAMES[d])
        .collect::<Vec<_>>()
        .join(",")
}

fn expand_macro(expression: &str) -> &str {
    match expression {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    }
}

impl Recurrence {
    /// Parses a 5-field or 6-field cron line (or `@daily`, `@weekly`, ...) in `zone`.
    pub fn parse(expression: &str, zone: Tz) -> Result<Recurrence, RecurrenceError> {
        let fields: Vec<&str> = expand_macro(expression.trim()).split_whitespace().collect();
        let (second, minute, hour, day_of_month, month, day_of_week) = match fields.as_slice() {
            [mi, h, dom, mo, dow] => ("0", *mi, *h, *dom, *mo, *dow),
            [s, mi, h, dom, mo, dow] => (*s, *mi, *h, *dom, *mo, *dow),
            _ => {
                return Err(RecurrenceError::FieldCount {
                    expression: expression.to_owned(),
                    count: fields.len(),
                });
            }
        };
        let restricted_day_of_month = !matches!(day_of_month, "*" | "?");
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, RecurrenceError> {
            let line = format!("{second} {minute} {hour} {dom} {month} {dow}");
            cron::Schedule::from_str(&line).map_err(|e| RecurrenceError::Cron {
                expression: expression.to_owned(),
                reason: e.to_string(),
            })
        };
        let schedules = match parse_days_of_week(day_of_week)? {
            DaysOfWeek::All => vec![build(day_of_month, "*")?],
            DaysOfWeek::Set(bits) if restricted_day_of_month => {
                vec![build(day_of_month, "*")?, build("*", &day_names(bits))?]
            }
            DaysOfWeek::Set(bits) => vec![build("*", &day_names(bits))?],
            DaysOfWeek::Nth { weekday, nth } => {
                if restricted_day_of_month {
                    return Err(RecurrenceError::DayOfWeek {
                        value: day_of_week.to_owned(),
                        reason: "'#' needs day-of-month '*'".to_owned(),
                    });
                }
                let first = (nth - 1) * 7 + 1;
                let days = format!("{first}-{}", (first + 6).min(31));
                vec![build(&days, DAY_NAMES[weekday])?]
            }
        };
        let recurrence = Recurrence {
            expression: expression.to_owned(),
            zone,
            schedules,
        };
        if recurrence.next_after(DateTime::<Utc>::UNIX_EPOCH).is_none() {
            return Err(RecurrenceError::Never(expression.to_owned()));
        }
        Ok(recurrence)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The next local wall-clock slot strictly after `cursor`, over all schedules.
    fn next_local_slot(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&cursor);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&as_utc).next())
            .min()
            .map(|t| t.naive_utc())
    }

    /// Places a local wall-clock time on the time line under the DST policy.
    pub fn resolve_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, later) => first.min(later).with_timezone(&Utc),
            LocalResult::None => self.first_instant_after_gap(local),
        }
    }

    /// The first instant whose local time is at or after `local`, which lies in a gap:
    /// the instant the clocks jumped. Found by bisection to the second.
    fn first_instant_after_gap(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let local_of = |seconds: i64| {
            DateTime::from_timestamp(seconds, 0).map(|t| t.with_timezone(&self.zone).naive_local())
        };
        let target = local.and_utc().timestamp();
        let mut low = target - 15 * 3_600; // local(low) < local
        let mut high = target + 15 * 3_600; // local(high) >= local
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if local_of(middle).is_none_or(|m| m >= local) {
                high = middle;
            } else {
                low = middle;
            }
        }
        DateTime::from_timestamp(high, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The first firing instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start a little before `after` in local time: during a fall-back hour, or just
        // after a gap, a slot whose wall-clock time is earlier can still fire later.
        let mut cursor = after.with_timezone(&self.zone).naive_local() - TimeDelta::hours(3);
        // A slot every second over the look-back window is the worst case.
        for _ in 0..(4 * 3_600 + 8) {
            let slot = self.next_local_slot(cursor)?;
            let instant = self.resolve_local(slot);
            if instant > after {
                return Some(instant);
            }
            cursor = slot;
        }
        None
    }

    /// Every firing instant in `[from, to)`, in order, at most `limit` of them.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from - TimeDelta::seconds(1);
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t < to => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Weekday};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn zone(name: &str) -> Tz {
        parse_time_zone(name).unwrap()
    }

    fn fires(expr: &str, tz: &str, from: &str, to: &str) -> Vec<String> {
        Recurrence::parse(expr, zone(tz))
            .unwrap()
            .between(utc(from), utc(to), 1000)
            .into_iter()
            .map(|t| t.to_rfc3339())
            .collect()
    }

    #[test]
    fn zero_and_seven_are_sunday_and_one_to_five_are_weekdays() {
        // 2026-11-22 is a Sunday.
        let sundays = fires(
            "0 9 * * 0",
            "Africa/Bamako",
            "2026-11-16T00:00:00Z",
            "2026-11-30T00:00:00Z",
        );
        assert_eq!(
            sundays,
            ["2026-11-22T09:00:00+00:00", "2026-11-29T09:00:00+00:00"]
        );
        assert_eq!(
            fires(
                "0 9 * * 7",
                "Africa/Bamako",
                "2026-11-16T00:00:00Z",
                "2026-11-30T00:00:00Z"
            ),
            sundays
        );
        let weekdays: Vec<Weekday> = Recurrence::parse("30 8 * * 1-5", zone("Africa/Bamako"))
            .unwrap()
            .between(
                utc("2026-11-16T00:00:00Z"),
                utc("2026-11-23T00:00:00Z"),
                100,
            )
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(
            weekdays,
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        // A range ending at 7 closes the week: Friday, Saturday, Sunday.
        let weekend: Vec<Weekday> = Recurrence::parse("0 12 * * 5-7", zone("UTC"))
            .unwrap()
            .between(
                utc("2026-11-16T00:00:00Z"),
                utc("2026-11-23T00:00:00Z"),
                100,
            )
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(weekend, [Weekday::Fri, Weekday::Sat, Weekday::Sun]);
    }

    #[test]
    fn six_fields_put_seconds_first() {
        assert_eq!(
            fires(
                "30 0 9 * * MON",
                "Africa/Bamako",
                "2026-11-16T00:00:00Z",
                "2026-11-17T00:00:00Z"
            ),
            ["2026-11-16T09:00:30+00:00"]
        );
    }

    #[test]
    fn nth_weekday_of_the_month() {
        // First Tuesdays: 2026-12-01, 2027-01-05.
        assert_eq!(
            fires(
                "0 9 * * TUE#1",
                "Africa/Bamako",
                "2026-11-24T00:00:00Z",
                "2027-01-31T00:00:00Z"
            ),
            ["2026-12-01T09:00:00+00:00", "2027-01-05T09:00:00+00:00"]
        );
        assert_eq!(
            fires(
                "0 9 * * 4#3",
                "Africa/Bamako",
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z"
            ),
            ["2026-12-17T09:00:00+00:00"]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_in_vixie_cron() {
        // The 1st of the month OR any Monday, in December 2026 (Mondays: 7, 14, 21, 28).
        let got = fires(
            "0 9 1 * MON",
            "UTC",
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-12-01T09:00:00+00:00",
                "2026-12-07T09:00:00+00:00",
                "2026-12-14T09:00:00+00:00",
                "2026-12-21T09:00:00+00:00",
                "2026-12-28T09:00:00+00:00",
            ]
        );
    }

    #[test]
    fn zurich_local_time_follows_summer_and_winter_offsets() {
        // 09:00 in Geneva is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_eq!(
            fires(
                "0 9 * * *",
                "Europe/Zurich",
                "2027-01-15T00:00:00Z",
                "2027-01-16T00:00:00Z"
            ),
            ["2027-01-15T08:00:00+00:00"]
        );
        assert_eq!(
            fires(
                "0 9 * * *",
                "Europe/Zurich",
                "2027-07-15T00:00:00Z",
                "2027-07-16T00:00:00Z"
            ),
            ["2027-07-15T07:00:00+00:00"]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_at_the_first_instant_after_it() {
        // Zurich jumps from 02:00 to 03:00 local (01:00 UTC) on 2027-03-28.
        assert_eq!(
            fires(
                "30 2 * * *",
                "Europe/Zurich",
                "2027-03-27T00:00:00Z",
                "2027-03-30T00:00:00Z"
            ),
            [
                "2027-03-27T01:30:00+00:00",
                "2027-03-28T01:00:00+00:00",
                "2027-03-29T00:30:00+00:00",
            ]
        );
        // Every quarter hour through the gap: the four missing slots fire once, together.
        let quarter = fires(
            "*/15 * * * *",
            "Europe/Zurich",
            "2027-03-28T00:30:00Z",
            "2027-03-28T01:31:00Z",
        );
        assert_eq!(
            quarter,
            [
                "2027-03-28T00:30:00+00:00",
                "2027-03-28T00:45:00+00:00",
                "2027-03-28T01:00:00+00:00",
                "2027-03-28T01:15:00+00:00",
                "2027-03-28T01:30:00+00:00",
            ]
        );
    }

    #[test]
    fn a_time_that_happens_twice_fires_once_at_the_first() {
        // Zurich falls back from 03:00 to 02:00 local on 2026-10-25: 02:30 happens at 00:30 and 01:30 UTC.
        assert_eq!(
            fires(
                "30 2 * * *",
                "Europe/Zurich",
                "2026-10-24T12:00:00Z",
                "2026-10-26T12:00:00Z"
            ),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        // Asking from inside the repeated hour does not fire the slot a second time.
        let r = Recurrence::parse("30 2 * * *", zone("Europe/Zurich")).unwrap();
        assert_eq!(
            r.next_after(utc("2026-10-25T01:10:00Z"))
                .map(|t| t.to_rfc3339()),
            Some("2026-10-26T01:30:00+00:00".to_owned())
        );
    }

    #[test]
    fn bamako_has_no_dst_and_is_utc() {
        let all = fires(
            "0 9 * * *",
            "Africa/Bamako",
            "2026-03-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        );
        assert!(all.iter().all(|t| t.ends_with("T09:00:00+00:00")));
        assert_eq!(all.len(), 275);
    }

    #[test]
    fn refuses_bad_lines_with_the_field_named() {
        let bamako = zone("Africa/Bamako");
        for (expr, needle) in [
            ("* * *", "5 fields"),
            ("0 9 * * 8", "day-of-week"),
            ("0 9 * * MON#6", "#1 to #5"),
            ("0 9 1 * MON#1", "day-of-month '*'"),
            ("0 9 * * 5-2", "backwards"),
            ("0 25 * * *", "0 25 * * *"),
            ("0 9 30 2 *", "never happens"),
            ("0 9 L * *", "0 9 L * *"),
        ] {
            let err = Recurrence::parse(expr, bamako).unwrap_err().to_string();
            assert!(err.contains(needle), "{expr}: {err}");
        }
        assert!(parse_time_zone("Africa/Bamak").is_err());
        assert!(parse_time_zone("Europe/Zurich").is_ok());
    }
}
