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
    /// `reason` names the field and the value.
    #[error("{reason}")]
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

/// How far before an instant, in local time, the search for the next slot starts:
/// during a fall-back hour, or just after a gap, a slot whose wall-clock time is
/// earlier can still fire later. Three hours covers every zone's shift.
const LOOK_BACK: TimeDelta = TimeDelta::hours(3);

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
        Ok(n) => Err(format!(
            "day of week {n} is out of range: days of the week go from 0 to 7 (0 and 7 are Sunday) or SUN to SAT"
        )),
        Err(_) => Err(format!(
            "'{text}' is not a day of the week: days of the week go from 0 to 7 (0 and 7 are Sunday) or SUN to SAT"
        )),
    }
}

/// Parses the day-of-week field: `*`, `?`, `DOW#N`, or a comma list of days,
/// ranges and steps. 0 and 7 (and `SUN`) are Sunday. In a range, 7 as the end closes
/// the week (`5-7` is Friday to Sunday); 7 as the start is Sunday (`7-3` is Sunday to
/// Wednesday), and `7-7` is Sunday alone.
fn parse_days_of_week(field: &str) -> Result<DaysOfWeek, RecurrenceError> {
    // A day that is no day names itself; other reasons are given with the field.
    let not_a_day = |reason: String| RecurrenceError::DayOfWeek {
        value: field.to_owned(),
        reason,
    };
    let fail = |reason: String| RecurrenceError::DayOfWeek {
        value: field.to_owned(),
        reason: format!("day of week '{field}': {reason}"),
    };
    if field == "*" || field == "?" {
        return Ok(DaysOfWeek::All);
    }
    if let Some((day, nth)) = field.split_once('#') {
        let weekday = parse_weekday(day).map_err(not_a_day)?;
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
                Some((a_text, b)) => {
                    let a = parse_weekday(a_text).map_err(not_a_day)?;
                    // In a range, 7 closes the week (`5-7` is Friday to Sunday).
                    let b = if b == "7" {
                        7
                    } else {
                        parse_weekday(b).map_err(not_a_day)?
                    };
                    // A range from 7 opens on Sunday (`7-3` is Sunday to Wednesday), except
                    // `7-7`, which is Sunday alone, not Sunday through the next Sunday.
                    let a = if a_text == "7" && b == 7 { 7 } else { a };
                    if b < a {
                        return Err(fail(format!("range '{range}' runs backwards")));
                    }
                    (a, b)
                }
                None => {
                    let d = parse_weekday(range).map_err(not_a_day)?;
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

/// A field of the cron line other than the day of the week (parsed by us), as
/// users read it: to say what the `cron` crate refused in words of our own.
struct Field {
    singular: &'static str,
    plural: &'static str,
    min: u32,
    max: u32,
    /// Names its values may have, the first for `min`.
    names: &'static [&'static str],
    /// How the names are written, for the message.
    named: &'static str,
    /// Whether `?` stands for any value.
    any: bool,
}

const SECOND: Field = Field {
    singular: "second",
    plural: "seconds",
    min: 0,
    max: 59,
    names: &[],
    named: "",
    any: false,
};
const MINUTE: Field = Field {
    singular: "minute",
    plural: "minutes",
    ..SECOND
};
const HOUR: Field = Field {
    singular: "hour",
    plural: "hours",
    max: 23,
    ..SECOND
};
const DAY_OF_MONTH: Field = Field {
    singular: "day of month",
    plural: "days of the month",
    min: 1,
    max: 31,
    any: true,
    ..SECOND
};
const MONTH: Field = Field {
    singular: "month",
    plural: "months",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    named: " or JAN to DEC",
    any: false,
};
const MONTH_NAMES: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];

impl Field {
    /// `hours go from 0 to 23`.
    fn span(&self) -> String {
        format!(
            "{} go from {} to {}{}",
            self.plural, self.min, self.max, self.named
        )
    }

    /// One value: a number in range or a name.
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Ok(n) = text.parse::<u32>() {
            return if (self.min..=self.max).contains(&n) {
                Ok(n)
            } else {
                Err(format!(
                    "{} {n} is out of range: {}",
                    self.singular,
                    self.span()
                ))
            };
        }
        let upper = text.to_ascii_uppercase();
        let named = self.names.iter().position(|n| *n == upper).or_else(|| {
            (!self.names.is_empty())
                .then(|| MONTH_NAMES.iter().position(|n| *n == upper))
                .flatten()
        });
        match named {
            Some(i) => Ok(self.min + u32::try_from(i).unwrap_or(0)),
            None if text.is_empty() => Err(format!(
                "the {} field has an empty value: {}",
                self.singular,
                self.span()
            )),
            None => Err(format!(
                "'{text}' is not a valid {}: {}",
                self.singular,
                self.span()
            )),
        }
    }

    /// What is wrong with `text` as this field, if we can say it.
    fn problem(&self, text: &str) -> Option<String> {
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step {
                match step.parse::<u32>() {
                    Ok(n) if (1..=self.max).contains(&n) => {}
                    _ => {
                        return Some(format!(
                            "{} step '/{step}' must be a number from 1 to {}",
                            self.singular, self.max
                        ));
                    }
                }
            }
            if range == "*" || (range == "?" && self.any) {
                continue;
            }
            let bounds = match range.split_once('-') {
                Some((from, to)) => (self.value(from), Some(self.value(to))),
                None => (self.value(range), None),
            };
            match bounds {
                (Err(problem), _) | (_, Some(Err(problem))) => return Some(problem),
                (Ok(from), Some(Ok(to))) if to < from => {
                    return Some(format!(
                        "{} range '{range}' runs backwards: write the smaller {} first",
                        self.singular, self.singular
                    ));
                }
                _ => {}
            }
        }
        None
    }
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

/// Places a local wall-clock time of `zone` on the time line under the DST policy:
///
/// - a time that exists once is that instant;
/// - a time that happens twice (fall-back) is the first of its two instants;
/// - a time that does not exist (inside a spring-forward gap) is the first instant
///   after the gap, the instant the clocks jumped: the earliest instant whose local
///   time is later than `local`. Every time in the same gap gives that instant.
///
/// Shared with working hours (`escalation`), so both read a local time alike.
pub(crate) fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, later) => first.min(later).with_timezone(&Utc),
        LocalResult::None => first_instant_after_gap(zone, local),
    }
}

/// The first instant whose local time in `zone` is at or after `local`, which lies in
/// a gap: the instant the clocks jumped. Found by bisection to the second.
fn first_instant_after_gap(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let local_of = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).map(|t| t.with_timezone(&zone).naive_local())
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
                // The crate's own words are about its line, not the user's.
                reason: [
                    (&SECOND, second),
                    (&MINUTE, minute),
                    (&HOUR, hour),
                    (&DAY_OF_MONTH, day_of_month),
                    (&MONTH, month),
                ]
                .into_iter()
                .find_map(|(field, text)| field.problem(text))
                .unwrap_or_else(|| e.to_string()),
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
                        reason: format!("day of week '{day_of_week}': '#' needs day-of-month '*'"),
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
        #[cfg(test)]
        tests::SLOTS_LOOKED_AT.with(|n| n.set(n.get() + 1));
        let as_utc = Utc.from_utc_datetime(&cursor);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&as_utc).next())
            .min()
            .map(|t| t.naive_utc())
    }

    /// Places a local wall-clock time of this recurrence's zone on the time line under
    /// the DST policy of [`resolve_local`]: a time in a spring-forward gap is the first
    /// instant after the gap, a time that happens twice is its first occurrence.
    pub fn resolve_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        resolve_local(self.zone, local)
    }

    /// The first firing instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&self.zone).naive_local() - LOOK_BACK;
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

    /// Every firing instant in `[from, to)`, in order, at most `limit` of them:
    /// what repeated [`Recurrence::next_after`] gives, in one walk over the local
    /// slots (each slot is looked at once, so the cost grows with the slots in the
    /// window, not with their number times the look-back). The walk relies on
    /// [`resolve_local`] never placing a later wall-clock time earlier on the time
    /// line; two slots placed at the same instant (a gap's) fire once.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = Vec::new();
        let mut cursor = from.with_timezone(&self.zone).naive_local() - LOOK_BACK;
        while out.len() < limit {
            let Some(slot) = self.next_local_slot(cursor) else {
                break;
            };
            cursor = slot;
            let instant = self.resolve_local(slot);
            if instant >= to {
                break;
            }
            if instant >= from && out.last().is_none_or(|last| instant > *last) {
                out.push(instant);
            }
        }
        out
    }

    /// Whether `instant` is one of this recurrence's firing instants.
    pub fn is_occurrence(&self, instant: DateTime<Utc>) -> bool {
        self.between(instant, instant + TimeDelta::seconds(1), 1)
            .first()
            == Some(&instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::utc;
    use chrono::{Datelike, Weekday};

    fn zone(name: &str) -> Tz {
        parse_time_zone(name).unwrap()
    }

    thread_local! {
        /// How many local slots this thread's recurrences looked at.
        pub(super) static SLOTS_LOOKED_AT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// `between` as repeated `next_after`: the definition it must agree with.
    fn one_by_one(r: &Recurrence, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from - TimeDelta::seconds(1);
        while let Some(t) = r.next_after(cursor).filter(|t| *t < to) {
            out.push(t);
            cursor = t;
        }
        out
    }

    #[test]
    fn an_occurrence_is_a_firing_instant_and_nothing_else_is() {
        let r = Recurrence::parse("0 9 * * 1", zone("Africa/Bamako")).unwrap();
        assert!(r.is_occurrence(utc("2026-12-07T09:00:00Z")));
        assert!(!r.is_occurrence(utc("2026-12-07T09:00:01Z")));
        assert!(!r.is_occurrence(utc("2026-12-08T09:00:00Z")));
    }

    #[test]
    fn between_agrees_with_next_after_across_daylight_saving_changes() {
        // Paris springs forward on 2026-03-29 and falls back on 2026-10-25, at 02:00
        // and 03:00 local; New York on 2026-03-08 and 2026-11-01.
        for (expr, tz, from, to) in [
            (
                "*/10 * * * *",
                "Europe/Paris",
                "2026-03-28T22:00:00Z",
                "2026-03-29T04:00:00Z",
            ),
            (
                "*/10 * * * *",
                "Europe/Paris",
                "2026-10-24T22:00:00Z",
                "2026-10-25T04:00:00Z",
            ),
            (
                "30 2 * * *",
                "Europe/Paris",
                "2026-03-20T00:00:00Z",
                "2026-04-05T00:00:00Z",
            ),
            (
                "30 2 * * *",
                "Europe/Paris",
                "2026-10-20T00:00:00Z",
                "2026-11-05T00:00:00Z",
            ),
            (
                "15 1 * * *",
                "America/New_York",
                "2026-10-25T00:00:00Z",
                "2026-11-08T00:00:00Z",
            ),
            (
                "0 9 * * 1-5",
                "Africa/Bamako",
                "2026-11-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        ] {
            let r = Recurrence::parse(expr, zone(tz)).unwrap();
            let (from, to) = (utc(from), utc(to));
            assert_eq!(
                r.between(from, to, 100_000),
                one_by_one(&r, from, to),
                "{expr} in {tz}"
            );
        }
    }

    #[test]
    fn between_looks_at_each_slot_of_the_window_once() {
        // A day of an every-minute recurrence: 1,440 slots and the three hours looked
        // back at the start. Asking `next_after` for each would look back three hours
        // every time (some 260,000 slots).
        let r = Recurrence::parse("* * * * *", zone("Africa/Bamako")).unwrap();
        SLOTS_LOOKED_AT.with(|n| n.set(0));
        let day = r.between(
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-02T00:00:00Z"),
            100_000,
        );
        assert_eq!(day.len(), 1_440);
        let looked = SLOTS_LOOKED_AT.with(|n| n.get());
        assert!(looked <= 1_440 + 3 * 60 + 2, "{looked} slots looked at");
    }

    #[test]
    fn between_stops_at_the_limit() {
        let r = Recurrence::parse("* * * * *", zone("Africa/Bamako")).unwrap();
        let first = r.between(utc("2026-12-01T00:00:00Z"), utc("2026-12-02T00:00:00Z"), 3);
        assert_eq!(first.len(), 3);
        assert_eq!(first[2], utc("2026-12-01T00:02:00Z"));
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
            ("0 9 * * 8", "day of week 8 is out of range"),
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

    #[test]
    fn a_value_out_of_its_field_is_named_with_the_field_s_range() {
        let bamako = zone("Africa/Bamako");
        for (expr, said) in [
            (
                "0 25 8-14 * WED",
                "'0 25 8-14 * WED': hour 25 is out of range: hours go from 0 to 23",
            ),
            (
                "60 9 * * *",
                "minute 60 is out of range: minutes go from 0 to 59",
            ),
            (
                "0 9 0 * *",
                "day of month 0 is out of range: days of the month go from 1 to 31",
            ),
            (
                "0 9 1-32 * *",
                "day of month 32 is out of range: days of the month go from 1 to 31",
            ),
            (
                "0 9 1 13 *",
                "month 13 is out of range: months go from 1 to 12 or JAN to DEC",
            ),
            (
                "0 9 1 FOO *",
                "'FOO' is not a valid month: months go from 1 to 12 or JAN to DEC",
            ),
            (
                "0 9 * * 8",
                "day of week 8 is out of range: days of the week go from 0 to 7 (0 and 7 are Sunday) or SUN to SAT",
            ),
            (
                "0 9 * * 1,WEDS",
                "'WEDS' is not a day of the week: days of the week go from 0 to 7",
            ),
            (
                "61 0 9 * * *",
                "second 61 is out of range: seconds go from 0 to 59",
            ),
            (
                "0 9-h * * *",
                "'h' is not a valid hour: hours go from 0 to 23",
            ),
            ("0 20-8 * * *", "hour range '20-8' runs backwards"),
            (
                "*/0 9 * * *",
                "minute step '/0' must be a number from 1 to 59",
            ),
        ] {
            let err = Recurrence::parse(expr, bamako).unwrap_err().to_string();
            assert!(err.contains(said), "{expr}: {err}");
            assert!(!err.contains("must be less than"), "{expr}: {err}");
        }
        // Names and steps the crate takes stay accepted.
        for expr in [
            "0 9 1 jan,JUL *",
            "0 9 1 March *",
            "*/15 8-17 * * MON-FRI",
            "0 9 ? * 1",
        ] {
            assert!(Recurrence::parse(expr, bamako).is_ok(), "{expr}");
        }
    }

    // ---- DST unit tests (2026 transitions in Zurich) --------------------------

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn zurich_spring_forward_2026_fires_a_gap_slot_at_the_jump() {
        // 2026-03-29: Zurich jumps from 02:00 CET to 03:00 CEST at 01:00 UTC, so 02:30 never happens.
        assert_eq!(
            fires(
                "30 2 * * *",
                "Europe/Zurich",
                "2026-03-28T00:00:00Z",
                "2026-03-31T00:00:00Z"
            ),
            [
                "2026-03-28T01:30:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-30T00:30:00+00:00",
            ]
        );
        let r = Recurrence::parse("30 2 * * *", zone("Europe/Zurich")).unwrap();
        // Asking from just before, at, or after the jump.
        assert_eq!(
            r.next_after(utc("2026-03-29T00:59:59Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            r.next_after(utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-30T00:30:00Z"))
        );
    }

    #[test]
    fn zurich_fall_back_2026_fires_a_repeated_slot_once_at_the_first() {
        // 2026-10-25: 02:30 local happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        let r = Recurrence::parse("30 2 * * *", zone("Europe/Zurich")).unwrap();
        assert_eq!(
            r.between(utc("2026-10-24T00:00:00Z"), utc("2026-10-27T00:00:00Z"), 10),
            [
                utc("2026-10-24T00:30:00Z"),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-26T01:30:00Z"),
            ]
        );
        for asked in [
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:29:59Z",
            "2026-10-25T01:30:00Z",
        ] {
            assert_eq!(
                r.next_after(utc(asked)),
                Some(utc("2026-10-26T01:30:00Z")),
                "asked after {asked}"
            );
        }
    }

    #[test]
    fn resolve_local_follows_the_dst_policy() {
        for (tz, wall, expected) in [
            // Spring gaps: the first instant after the gap, the moment the clocks jumped.
            (
                "Europe/Zurich",
                "2026-03-29 02:30:00",
                "2026-03-29T01:00:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 02:00:00",
                "2026-03-29T01:00:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 02:59:59",
                "2026-03-29T01:00:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 01:59:59",
                "2026-03-29T00:59:59Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 03:00:00",
                "2026-03-29T01:00:00Z",
            ),
            (
                "America/New_York",
                "2026-03-08 02:30:00",
                "2026-03-08T07:00:00Z",
            ),
            // Fall-back overlaps: the first of the two instants.
            (
                "Europe/Zurich",
                "2026-10-25 02:30:00",
                "2026-10-25T00:30:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-10-25 02:00:00",
                "2026-10-25T00:00:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-10-25 03:00:00",
                "2026-10-25T02:00:00Z",
            ),
            (
                "America/New_York",
                "2026-11-01 01:30:00",
                "2026-11-01T05:30:00Z",
            ),
            (
                "America/New_York",
                "2026-11-01 02:00:00",
                "2026-11-01T07:00:00Z",
            ),
            // No DST at all.
            (
                "Africa/Bamako",
                "2026-03-29 02:30:00",
                "2026-03-29T02:30:00Z",
            ),
            ("UTC", "2026-10-25 02:30:00", "2026-10-25T02:30:00Z"),
        ] {
            let r = Recurrence::parse("@daily", zone(tz)).unwrap();
            assert_eq!(r.resolve_local(local(wall)), utc(expected), "{tz} {wall}");
        }
    }

    #[test]
    fn new_york_2026_transitions() {
        // 2026-03-08 02:00 EST -> 03:00 EDT at 07:00 UTC; 2026-11-01 02:00 EDT -> 01:00 EST at 06:00 UTC.
        assert_eq!(
            fires(
                "15 1-3 * * 0",
                "America/New_York",
                "2026-03-08T00:00:00Z",
                "2026-03-09T00:00:00Z"
            ),
            [
                "2026-03-08T06:15:00+00:00", // 01:15 EST
                "2026-03-08T07:00:00+00:00", // 02:15 does not exist: the jump
                "2026-03-08T07:15:00+00:00", // 03:15 EDT
            ]
        );
        assert_eq!(
            fires(
                "15 1-3 * * 0",
                "America/New_York",
                "2026-11-01T00:00:00Z",
                "2026-11-02T00:00:00Z"
            ),
            [
                "2026-11-01T05:15:00+00:00", // 01:15 EDT, not again at 06:15 (01:15 EST)
                "2026-11-01T07:15:00+00:00", // 02:15 EST
                "2026-11-01T08:15:00+00:00", // 03:15 EST
            ]
        );
    }

    // ---- Day-of-week parsing ---------------------------------------------------

    /// The weekdays (0 = Sunday) a day-of-week field selects, `None` for "every day".
    fn days_of(field: &str) -> Option<Vec<usize>> {
        match parse_days_of_week(field) {
            Ok(DaysOfWeek::All) => None,
            Ok(DaysOfWeek::Set(bits)) => Some((0..7).filter(|d| bits & (1 << d) != 0).collect()),
            Ok(DaysOfWeek::Nth { .. }) => panic!("{field}: unexpected #n"),
            Err(e) => panic!("{field}: {e}"),
        }
    }

    #[test]
    fn day_of_week_fields() {
        for (field, expected) in [
            ("0", Some(vec![0])),
            ("7", Some(vec![0])),
            ("sun", Some(vec![0])),
            ("SAT", Some(vec![6])),
            ("1-5", Some(vec![1, 2, 3, 4, 5])),
            ("MON-FRI", Some(vec![1, 2, 3, 4, 5])),
            ("5-7", Some(vec![0, 5, 6])),
            ("6-7", Some(vec![0, 6])),
            ("0,7", Some(vec![0])),
            ("1-5/2", Some(vec![1, 3, 5])),
            ("*/2", Some(vec![0, 2, 4, 6])),
            ("*/3", Some(vec![0, 3, 6])),
            ("5/2", Some(vec![5])),
            ("1/2", Some(vec![1, 3, 5])),
            ("MON,wed,5", Some(vec![1, 3, 5])),
            ("*", None),
            ("?", None),
            ("0-6", None),
            ("0-7", None),
            ("1-7", None),
        ] {
            assert_eq!(days_of(field), expected, "{field}");
        }
        for (field, nth_weekday, nth) in [("TUE#1", 2, 1), ("4#3", 4, 3), ("7#5", 0, 5)] {
            match parse_days_of_week(field) {
                Ok(DaysOfWeek::Nth { weekday, nth: n }) => {
                    assert_eq!((weekday, n), (nth_weekday, nth), "{field}");
                }
                _ => panic!("{field} is not an n-th weekday"),
            }
        }
        for bad in [
            "8", "MON#0", "1#x", "5-2", "*/0", "1/x", "FUNDAY", "1--2", "",
        ] {
            assert!(parse_days_of_week(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_sunday_to_sunday_range_is_sunday() {
        // Documented: 0 or 7 = Sunday, and 7 closes the week in a range.
        assert_eq!(days_of("7-7"), Some(vec![0]));
    }

    // ---- Properties ------------------------------------------------------------

    use chrono::{NaiveDate, Timelike};
    use proptest::prelude::*;

    /// A cron line and an oracle for it, written independently of the parser:
    /// whether a local wall-clock time is one of its slots.
    struct Line {
        expression: &'static str,
        matches: fn(NaiveDateTime) -> bool,
    }

    fn hms(t: NaiveDateTime) -> (u32, u32, u32) {
        (t.hour(), t.minute(), t.second())
    }

    /// Every line's slots have seconds 0 or 30 (the oracle scans those only).
    const LINES: &[Line] = &[
        Line {
            expression: "30 2 * * *",
            matches: |t| hms(t) == (2, 30, 0),
        },
        Line {
            expression: "*/15 * * * *",
            matches: |t| t.minute() % 15 == 0 && t.second() == 0,
        },
        Line {
            expression: "0 2 * 3,10,11 0",
            matches: |t| {
                hms(t) == (2, 0, 0)
                    && [3, 10, 11].contains(&t.month())
                    && t.weekday() == Weekday::Sun
            },
        },
        Line {
            expression: "15 1-3 * * 7",
            matches: |t| {
                t.minute() == 15
                    && t.second() == 0
                    && (1..=3).contains(&t.hour())
                    && t.weekday() == Weekday::Sun
            },
        },
        Line {
            expression: "30 30 2 * * SUN",
            matches: |t| hms(t) == (2, 30, 30) && t.weekday() == Weekday::Sun,
        },
        Line {
            expression: "30 59 1 * * 0",
            matches: |t| hms(t) == (1, 59, 30) && t.weekday() == Weekday::Sun,
        },
        Line {
            expression: "0 9 1 * MON",
            matches: |t| hms(t) == (9, 0, 0) && (t.day() == 1 || t.weekday() == Weekday::Mon),
        },
        Line {
            expression: "0 9 * * TUE#1",
            matches: |t| hms(t) == (9, 0, 0) && t.weekday() == Weekday::Tue && t.day() <= 7,
        },
        Line {
            expression: "0 0 * * 5-7",
            matches: |t| {
                hms(t) == (0, 0, 0)
                    && matches!(t.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun)
            },
        },
        Line {
            expression: "@hourly",
            matches: |t| t.minute() == 0 && t.second() == 0,
        },
    ];

    const ZONES: [&str; 4] = ["Europe/Zurich", "America/New_York", "Africa/Bamako", "UTC"];

    fn has_dst(tz: &str) -> bool {
        matches!(tz, "Europe/Zurich" | "America/New_York")
    }

    fn last_sunday(year: i32, month: u32) -> NaiveDate {
        let (y, m) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let mut day = NaiveDate::from_ymd_opt(y, m, 1)
            .unwrap()
            .pred_opt()
            .unwrap();
        while day.weekday() != Weekday::Sun {
            day = day.pred_opt().unwrap();
        }
        day
    }

    fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
        NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n as u8).unwrap()
    }

    /// The spring and fall DST changes of `tz` in `year` (2007 and later), as UTC instants.
    /// Zones without DST get the European instants, just as places to look at.
    fn transitions(tz: &str, year: i32) -> [DateTime<Utc>; 2] {
        let at = |day: NaiveDate, hour: u32| day.and_hms_opt(hour, 0, 0).unwrap().and_utc();
        if tz == "America/New_York" {
            [
                at(nth_sunday(year, 3, 2), 7),
                at(nth_sunday(year, 11, 1), 6),
            ]
        } else {
            [at(last_sunday(year, 3), 1), at(last_sunday(year, 10), 1)]
        }
    }

    #[test]
    fn the_test_transitions_are_real() {
        for tz in ["Europe/Zurich", "America/New_York"] {
            let z = zone(tz);
            let offset = |t: DateTime<Utc>| t.with_timezone(&z).naive_local() - t.naive_utc();
            for year in 2008..2040 {
                let [spring, fall] = transitions(tz, year);
                let second = TimeDelta::seconds(1);
                assert_eq!(
                    offset(spring) - offset(spring - second),
                    TimeDelta::hours(1),
                    "{tz} {spring}"
                );
                assert_eq!(
                    offset(fall) - offset(fall - second),
                    TimeDelta::hours(-1),
                    "{tz} {fall}"
                );
            }
        }
    }

    fn local_at(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&tz).naive_local()
    }

    /// Whether `t` is a firing instant of `line` under the documented policy, and why not.
    /// A slot that exists fires at its first (or only) instant; the first instant after a
    /// spring-forward gap fires if the gap swallowed any slot.
    fn firing(line: &Line, tz: Tz, t: DateTime<Utc>) -> Result<(), String> {
        let second = TimeDelta::seconds(1);
        let wall = local_at(tz, t);
        if (line.matches)(wall) {
            let first = tz
                .from_local_datetime(&wall)
                .earliest()
                .map(|x| x.with_timezone(&Utc));
            return if first == Some(t) {
                Ok(())
            } else {
                Err(format!(
                    "{t} is local {wall}, whose first instant is {first:?}"
                ))
            };
        }
        let before = local_at(tz, t - second);
        if wall - before <= second {
            return Err(format!(
                "{t} is local {wall}, not a slot and not after a gap"
            ));
        }
        let mut slot = before + second;
        while slot < wall {
            if (line.matches)(slot) {
                return Ok(());
            }
            slot += second;
        }
        Err(format!(
            "{t} ends the gap {before}..{wall}, which holds no slot"
        ))
    }

    /// Every firing instant in `[from, to)` by brute force over the seconds 0 and 30 of each minute.
    fn oracle(line: &Line, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut minute = from.timestamp().div_euclid(60) * 60;
        while minute < to.timestamp() {
            for s in [0, 30] {
                let t = DateTime::from_timestamp(minute + s, 0).unwrap();
                if from <= t && t < to && firing(line, tz, t).is_ok() {
                    out.push(t);
                }
            }
            minute += 60;
        }
        out
    }

    /// A line, a zone (mostly one with DST) and a start: uniform over 2000-2040 (a
    /// quarter of the cases), or `near` seconds from a spring or fall DST change.
    fn case(near: std::ops::Range<i64>) -> impl Strategy<Value = (usize, usize, DateTime<Utc>)> {
        (
            0..LINES.len(),
            prop_oneof![3 => Just(0usize), 3 => Just(1), 1 => Just(2), 1 => Just(3)],
            2008i32..2038,
            prop_oneof![1 => Just(0u8), 3 => 1u8..3],
            near,
            946_684_800i64..2_208_988_800,
        )
            .prop_map(|(line, z, year, which, near, uniform)| {
                let start = match which {
                    0 => DateTime::from_timestamp(uniform, 0).unwrap(),
                    w => transitions(ZONES[z], year)[usize::from(w - 1)] + TimeDelta::seconds(near),
                };
                (line, z, start)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Occurrences are strictly after the start and strictly increasing; each is a
        /// slot at its first instant or the end of a gap that swallowed a slot; and
        /// asking from anywhere between two occurrences (or one second before one)
        /// gives the same next occurrence.
        #[test]
        fn occurrences_follow_the_fields_and_the_dst_policy(
            (l, z, start) in case(-3 * 3_600..3_600),
            per_mille in proptest::collection::vec(0i64..1_000, 12),
        ) {
            let line = &LINES[l];
            let tz = zone(ZONES[z]);
            let r = Recurrence::parse(line.expression, tz).unwrap();
            let mut previous = start;
            for per_mille in per_mille {
                let next = r.next_after(previous);
                prop_assert!(next.is_some(), "{} never fires after {previous}", line.expression);
                let next = next.unwrap();
                prop_assert!(next > previous, "{}: {next} is not after {previous}", line.expression);
                if let Err(why) = firing(line, tz, next) {
                    return Err(TestCaseError::fail(format!("{} in {}: {why}", line.expression, ZONES[z])));
                }
                if !has_dst(ZONES[z]) {
                    prop_assert!((line.matches)(local_at(tz, next)), "{next} in {}", ZONES[z]);
                }
                prop_assert_eq!(r.next_after(next - TimeDelta::seconds(1)), Some(next));
                let gap = (next - previous).num_seconds();
                let between = previous + TimeDelta::seconds(gap * per_mille / 1_000);
                prop_assert_eq!(r.next_after(between), Some(next), "asked after {}", between);
                previous = next;
            }
        }

        /// Over a day and a half (across the DST change, when there is one), the firings
        /// are exactly those a brute-force scan finds.
        #[test]
        fn between_finds_every_firing_and_nothing_else((l, z, start) in case(-30 * 3_600..-3_600)) {
            let line = &LINES[l];
            let tz = zone(ZONES[z]);
            let r = Recurrence::parse(line.expression, tz).unwrap();
            let end = start + TimeDelta::hours(36);
            let got = r.between(start, end, 10_000);
            let expected = oracle(line, tz, start, end);
            prop_assert_eq!(got, expected, "{} in {}", line.expression, ZONES[z]);
        }
    }
}
