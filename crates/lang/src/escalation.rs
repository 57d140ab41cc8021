//! Dispute escalation (`kind: escalation`): a ladder of levels, each with its
//! responders and deadlines in working time, and the cases that climb it.
//!
//! A case is opened at a place with a category, parties and a severity; its
//! description stays in the database (messages carry the case reference and the
//! category only, because phones are shared). At each level the responders must
//! acknowledge within one deadline and resolve within another, both counted in
//! working time: the ladder's working days and hours, less the holidays of
//! `workflows/calendars/`. A missed deadline climbs the ladder as the
//! `escalation_missed` rule decides. This module owns the model, its checks and
//! working time; the runtime owns the case actions and timers.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendars::{Calendars, Weekday};
use crate::meeting::RecipientGroup;
use crate::recurrence::resolve_local;
use palabre_core::channel::Channel;
use palabre_core::offset::Offset;

/// `kind: escalation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EscalationKind {
    /// A ladder disputes climb when deadlines are missed.
    Escalation,
}

fn default_time_zone() -> String {
    "Africa/Bamako".to_owned()
}

fn both_channels() -> Vec<Channel> {
    vec![Channel::Sms, Channel::Email]
}

fn weekdays() -> Vec<Weekday> {
    vec![
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ]
}

fn eight() -> String {
    "08:00".to_owned()
}

fn five_pm() -> String {
    "17:00".to_owned()
}

/// When deadlines run: working days and hours; holidays come from the calendars.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Working days. Default Monday to Friday.
    #[serde(default = "weekdays")]
    pub days: Vec<Weekday>,
    /// Start of the working day, `HH:MM`. Default `08:00`.
    #[serde(default = "eight")]
    pub from: String,
    /// End of the working day, `HH:MM`. Default `17:00`.
    #[serde(default = "five_pm")]
    pub to: String,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            days: weekdays(),
            from: eight(),
            to: five_pm(),
        }
    }
}

/// Where a level's responders are looked for, relative to the case's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The case's own place (and below). The default.
    #[default]
    Place,
    /// The cercle the case's place is in.
    Cercle,
    /// The region the case's place is in.
    Region,
}

/// One rung of the ladder.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Id, unique in the ladder (`maire`).
    pub id: String,
    /// The level as people read it (`Maire de la commune`).
    pub title: String,
    /// Who answers at this level. Groups without a place are looked for at `scope`.
    pub responders: Vec<RecipientGroup>,
    /// Where groups without a place are looked for: `place` (default), `cercle` or `region`.
    #[serde(default)]
    pub scope: Scope,
    /// Working time to acknowledge the case (`4h`; `1d` is one working day).
    pub acknowledge_within: Offset,
    /// Working time to resolve it.
    pub resolve_within: Offset,
}

/// A ladder: categories of disputes, working hours, levels from the closest to the highest.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationWorkflow {
    /// Always `escalation` for this kind.
    pub kind: EscalationKind,
    /// Unique id across all workflow files (`litiges-mopti`).
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Cases at this place or below belong to this ladder. Rules are looked up from the case's place.
    pub place: String,
    /// IANA time zone of the working hours. Default `Africa/Bamako`.
    #[serde(default = "default_time_zone")]
    pub timezone: String,
    #[serde(default)]
    pub working_hours: WorkingHours,
    /// The categories a case may have (`foncier`, `eau`, `violence` ...).
    pub categories: Vec<String>,
    /// Channels, in order of preference. Default `[sms, email]`.
    #[serde(default = "both_channels")]
    pub channels: Vec<Channel>,
    /// The levels, from the first responders to the last resort.
    pub levels: Vec<Level>,
}

/// A ladder that passed validation.
#[derive(Debug)]
pub struct Ladder {
    pub definition: EscalationWorkflow,
    pub zone: Tz,
    pub day_start: NaiveTime,
    pub day_end: NaiveTime,
    pub file: PathBuf,
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Open,
    Acknowledged,
    Resolved,
}

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Acknowledged => "acknowledged",
            CaseState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<CaseState> {
        [
            CaseState::Open,
            CaseState::Acknowledged,
            CaseState::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: String,
    pub workflow: String,
    pub category: String,
    pub place: String,
    /// Contact ids of the parties.
    pub parties: Vec<String>,
    /// 1 (low) to 5 (grave).
    pub severity: i64,
    /// Stays in the database: never in a message.
    pub description: String,
    /// Index into the ladder's levels.
    pub level: usize,
    pub state: CaseState,
    pub opened: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Which deadline a case timer watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    Acknowledge,
    Resolve,
}

impl Deadline {
    /// The timer step: `<case>/L<level>-<arrival>/ack` or `.../resolve`, where
    /// `arrival` (epoch ms) tells a level reached twice (reopened, told again) apart.
    pub fn step(self, case: &str, level: usize, arrival: DateTime<Utc>) -> String {
        let which = match self {
            Deadline::Acknowledge => "ack",
            Deadline::Resolve => "resolve",
        };
        format!("{case}/L{level}-{}/{which}", arrival.timestamp_millis())
    }

    /// Case id, level and deadline of a timer step.
    pub fn parse(step: &str) -> Option<(&str, usize, Deadline)> {
        let (rest, which) = step.rsplit_once('/')?;
        let (case, level) = rest.rsplit_once('/')?;
        let level = level.strip_prefix('L')?.split_once('-')?.0.parse().ok()?;
        let deadline = match which {
            "ack" => Deadline::Acknowledge,
            "resolve" => Deadline::Resolve,
            _ => return None,
        };
        Some((case, level, deadline))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Deadline::Acknowledge => "acknowledge",
            Deadline::Resolve => "resolve",
        }
    }

    /// The ledger's words for this deadline missed at `level` (a level id), with
    /// the missed rule's `reason`: `acknowledge deadline missed at level chef: …`.
    /// Never sent to anyone.
    pub fn missed(self, level: &str, reason: &str) -> String {
        format!(
            "{} deadline missed at level {level}: {reason}",
            self.as_str()
        )
    }
}

/// Why a case reaches the level whose responders are told, as their message's
/// template reads it (`case.why`) and words it in their language. The ledger
/// keeps its own English detail, and who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A new case, at the first level or the one the entry rule chose.
    Opened,
    /// The level below let its acknowledgement deadline pass.
    MissedAcknowledgement,
    /// The level below let its resolution deadline pass.
    MissedResolution,
    /// Someone sent it up a level by hand, with a note.
    SentByHand,
    /// A resolved case opened again, with a note.
    Reopened,
}

impl Arrival {
    /// The word templates test (`{% if case.why == "opened" %}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Opened => "opened",
            Arrival::MissedAcknowledgement => "climbed_missed_acknowledgement",
            Arrival::MissedResolution => "climbed_missed_resolution",
            Arrival::SentByHand => "sent_by_hand",
            Arrival::Reopened => "reopened",
        }
    }

    /// The climb that follows `deadline` missed.
    pub fn missed(deadline: Deadline) -> Arrival {
        match deadline {
            Deadline::Acknowledge => Arrival::MissedAcknowledgement,
            Deadline::Resolve => Arrival::MissedResolution,
        }
    }
}

/// Days looked ahead for the next working hour before giving up (a ladder whose
/// working days are all holidays).
const MAX_DAYS: i64 = 3_660;

impl Ladder {
    pub fn level(&self, index: usize) -> Option<&Level> {
        self.definition.levels.get(index)
    }

    pub fn level_index(&self, id: &str) -> Option<usize> {
        self.definition.levels.iter().position(|l| l.id == id)
    }

    fn working_day_seconds(&self) -> i64 {
        (self.day_end - self.day_start).num_seconds().max(1)
    }

    /// `duration` as working seconds: whole days count as working days, the rest
    /// as working hours (`1d4h` is a working day and four working hours).
    pub fn working_seconds(&self, duration: Offset) -> i64 {
        let seconds = duration.seconds().max(0);
        (seconds / 86_400) * self.working_day_seconds() + seconds % 86_400
    }

    /// The instant `duration` of working time after `start`: only working hours of
    /// working days that are not holidays count.
    ///
    /// A day's opening and closing are local times placed on the time line as
    /// recurrences place their slots ([`resolve_local`]): a time inside a
    /// spring-forward gap is the first instant after the gap (the instant the clocks
    /// jumped), a time that happens twice is its first occurrence. So a day whose
    /// opening or closing falls in a gap keeps the working hours that do exist: when
    /// the clocks jump from 02:00 to 03:00, an opening at 02:30 opens at the jump (03:00
    /// new time) and a closing at 02:30 closes at the jump (02:00 old time). A day whose
    /// working hours lie wholly inside the gap has none.
    pub fn add_working_time(
        &self,
        start: DateTime<Utc>,
        duration: Offset,
        calendars: &Calendars,
    ) -> DateTime<Utc> {
        let mut remaining = self.working_seconds(duration);
        let local_start = start.with_timezone(&self.zone);
        let mut date = local_start.date_naive();
        for _ in 0..MAX_DAYS {
            let working = self
                .definition
                .working_hours
                .days
                .contains(&Weekday::of(date))
                && calendars.holiday(date).is_none();
            if working {
                let open = resolve_local(self.zone, date.and_time(self.day_start));
                let close = resolve_local(self.zone, date.and_time(self.day_end));
                let begin = open.max(start);
                if begin < close {
                    let available = (close - begin).num_seconds();
                    if remaining <= available {
                        return begin + TimeDelta::seconds(remaining);
                    }
                    remaining -= available;
                }
            }
            date = date.succ_opt().unwrap_or(date);
        }
        start + TimeDelta::days(MAX_DAYS)
    }

    /// The place a level's groups without a place are looked for, for a case at `place`.
    pub fn scope_place(level: &Level, place: &str) -> String {
        let depth = match level.scope {
            Scope::Place => return place.to_owned(),
            Scope::Cercle => 2,
            Scope::Region => 1,
        };
        place.split('/').take(depth).collect::<Vec<_>>().join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::utc;

    #[test]
    fn deadline_steps_round_trip() {
        for deadline in [Deadline::Acknowledge, Deadline::Resolve] {
            let step = deadline.step("LT-0007", 2, DateTime::UNIX_EPOCH);
            assert_eq!(Deadline::parse(&step), Some(("LT-0007", 2, deadline)));
        }
        assert_eq!(Deadline::parse("logement/overdue-1"), None);
    }

    #[test]
    fn missed_deadline_words_and_arrivals() {
        assert_eq!(
            Deadline::missed(Deadline::Acknowledge, "chef", "délai dépassé"),
            "acknowledge deadline missed at level chef: délai dépassé"
        );
        assert_eq!(
            Arrival::missed(Deadline::Resolve).as_str(),
            "climbed_missed_resolution"
        );
    }

    // ---- Working time ------------------------------------------------------------

    use std::sync::OnceLock;

    use chrono::{NaiveDate, TimeZone};
    use palabre_core::diagnostic::Diagnostics;
    use proptest::prelude::*;

    use crate::places::Places;
    use crate::recurrence::parse_time_zone;

    /// Yearly and dated holidays over 2026-2027, with a fortnight off around the new year
    /// (Saturday 2026-12-19 to Sunday 2027-01-03 has no working weekday).
    const HOLIDAYS: &str = r#"
yearly:
  - { day: "01-01", name: "Nouvel an" }
  - { day: "01-20", name: "Fête de l'armée" }
  - { day: "05-01", name: "Fête du travail" }
  - { day: "09-22", name: "Indépendance" }
  - { day: "12-25", name: "Noël" }
dated:
  - { date: 2026-03-20, name: "Korité", estimated: true }
  - { date: 2026-04-06, name: "Lundi de Pâques" }
  - { date: 2026-05-27, name: "Tabaski" }
  - { date: 2026-12-21, name: "Fermeture" }
  - { date: 2026-12-22, name: "Fermeture" }
  - { date: 2026-12-23, name: "Fermeture" }
  - { date: 2026-12-24, name: "Fermeture" }
  - { date: 2026-12-28, name: "Fermeture" }
  - { date: 2026-12-29, name: "Fermeture" }
  - { date: 2026-12-30, name: "Fermeture" }
  - { date: 2026-12-31, name: "Fermeture" }
  - { date: 2027-03-10, name: "Korité", estimated: true }
  - { date: 2027-03-29, name: "Lundi de Pâques" }
"#;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn calendars() -> &'static Calendars {
        static CALENDARS: OnceLock<Calendars> = OnceLock::new();
        CALENDARS.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("holidays.yaml"), HOLIDAYS).unwrap();
            let mut diagnostics = Diagnostics::default();
            let calendars = Calendars::load(dir.path(), &Places::default(), &mut diagnostics);
            assert!(!diagnostics.has_errors(), "{diagnostics:?}");
            assert_eq!(calendars.holiday(date("2027-09-22")), Some("Indépendance"));
            assert_eq!(calendars.holiday(date("2026-12-30")), Some("Fermeture"));
            calendars
        })
    }

    const MON_FRI: &[Weekday] = &[
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    const ALL_DAYS: &[Weekday] = &[
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// A ladder as `palabre-plan` builds it after validation (`from` < `to`, days not empty).
    fn ladder(zone: &str, days: &[Weekday], from: &str, to: &str) -> Ladder {
        let time = |text: &str| NaiveTime::parse_from_str(text, "%H:%M").unwrap();
        Ladder {
            definition: EscalationWorkflow {
                kind: EscalationKind::Escalation,
                id: "litiges".to_owned(),
                title: "Litiges".to_owned(),
                description: None,
                place: "mopti".to_owned(),
                timezone: zone.to_owned(),
                working_hours: WorkingHours {
                    days: days.to_vec(),
                    from: from.to_owned(),
                    to: to.to_owned(),
                },
                categories: vec!["foncier".to_owned()],
                channels: both_channels(),
                levels: Vec::new(),
            },
            zone: parse_time_zone(zone).unwrap(),
            day_start: time(from),
            day_end: time(to),
            file: PathBuf::from("workflows/litiges.yaml"),
        }
    }

    /// The ladders the properties run on: with and without DST, with working hours
    /// across the DST changes (01:30-03:30 in Zurich, all day in New York), and with an
    /// opening or a closing that the spring-forward gap swallows.
    fn ladders() -> &'static [Ladder] {
        static LADDERS: OnceLock<Vec<Ladder>> = OnceLock::new();
        LADDERS.get_or_init(|| {
            vec![
                ladder("Africa/Bamako", MON_FRI, "08:00", "17:00"),
                ladder(
                    "UTC",
                    &[
                        Weekday::Monday,
                        Weekday::Tuesday,
                        Weekday::Wednesday,
                        Weekday::Thursday,
                        Weekday::Friday,
                        Weekday::Saturday,
                    ],
                    "07:30",
                    "12:30",
                ),
                ladder("Europe/Zurich", MON_FRI, "08:00", "17:00"),
                ladder(
                    "America/New_York",
                    &[Weekday::Sunday, Weekday::Tuesday, Weekday::Thursday],
                    "09:15",
                    "18:45",
                ),
                ladder("Europe/Zurich", ALL_DAYS, "01:30", "03:30"),
                ladder("America/New_York", ALL_DAYS, "00:00", "23:59"),
                // Opening, then closing, inside the spring-forward gap.
                ladder("Europe/Zurich", ALL_DAYS, "02:30", "04:00"),
                ladder("America/New_York", ALL_DAYS, "00:30", "02:30"),
            ]
        })
    }

    /// The working hours of `date` as instants, if it is a working day and not a holiday.
    /// Written apart from `resolve_local`: a local time that happens twice is its first
    /// instant; one inside a gap is the first instant of the first local time after it
    /// that exists (found second by second), the instant the clocks jumped.
    fn interval(l: &Ladder, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let days = &l.definition.working_hours.days;
        if !days.contains(&Weekday::of(date)) || calendars().holiday(date).is_some() {
            return None;
        }
        let at = |time: NaiveTime| {
            let mut local = date.and_time(time);
            loop {
                if let Some(t) = l.zone.from_local_datetime(&local).earliest() {
                    return t.with_timezone(&Utc);
                }
                local += TimeDelta::seconds(1);
            }
        };
        Some((at(l.day_start), at(l.day_end)))
    }

    /// The working intervals of the local dates from one before `from` to 40 after `to`.
    fn intervals(
        l: &Ladder,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let first = from.with_timezone(&l.zone).date_naive().pred_opt().unwrap();
        let last = to.with_timezone(&l.zone).date_naive() + TimeDelta::days(40);
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter_map(|d| interval(l, d))
            .collect()
    }

    /// Working seconds between `from` and `to`, counted interval by interval.
    fn measure(l: &Ladder, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        intervals(l, from, to)
            .into_iter()
            .map(|(open, close)| (close.min(to) - open.max(from)).num_seconds().max(0))
            .sum()
    }

    /// `t` if it is inside working hours (opening included, closing excluded), else
    /// the next opening.
    fn next_working_instant(l: &Ladder, t: DateTime<Utc>) -> DateTime<Utc> {
        let windows = intervals(l, t, t);
        if windows.iter().any(|&(open, close)| open <= t && t < close) {
            return t;
        }
        windows
            .into_iter()
            .map(|(open, _)| open)
            .filter(|open| *open > t)
            .min()
            .unwrap()
    }

    fn is_closing(l: &Ladder, t: DateTime<Utc>) -> bool {
        intervals(l, t, t).iter().any(|&(_, close)| close == t)
    }

    /// An offset worth exactly `seconds` of working time: whole working days as `d`,
    /// the rest as hours.
    fn working(l: &Ladder, seconds: i64) -> Offset {
        let day = l.working_day_seconds();
        Offset::from_seconds(seconds / day * 86_400 + seconds % day)
    }

    fn add(l: &Ladder, start: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        l.add_working_time(start, working(l, seconds), calendars())
    }

    /// Instants over 2026-2027, often on whole minutes or half hours (where working
    /// days open and close), a quarter of them within two days of a DST change.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let uniform = 1_767_225_600i64..1_830_297_600;
        let dst_change = (
            prop::sample::select(vec![
                "2026-03-29T01:00:00Z",
                "2026-10-25T01:00:00Z",
                "2027-03-28T01:00:00Z",
                "2027-10-31T01:00:00Z",
                "2026-03-08T07:00:00Z",
                "2026-11-01T06:00:00Z",
                "2027-03-14T07:00:00Z",
                "2027-11-07T06:00:00Z",
            ]),
            -2 * 86_400i64..2 * 86_400,
        )
            .prop_map(|(at, delta)| utc(at).timestamp() + delta);
        (
            prop_oneof![3 => uniform, 1 => dst_change],
            prop::sample::select(vec![1i64, 60, 1_800]),
        )
            .prop_map(|(seconds, round)| {
                DateTime::from_timestamp(seconds - seconds.rem_euclid(round), 0).unwrap()
            })
    }

    /// Working seconds: zero, a little, or up to a few months of working days.
    fn working_seconds() -> impl Strategy<Value = i64> {
        (
            prop_oneof![1 => Just(0i64), 2 => 1i64..7_200, 3 => 0i64..1_000_000],
            prop::sample::select(vec![1i64, 60, 1_800]),
        )
            .prop_map(|(seconds, round)| seconds - seconds % round)
    }

    fn which() -> impl Strategy<Value = usize> {
        0..ladders().len()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The deadline is not before the start, lies in the working hours of a working
        /// day that is not a holiday, and exactly the duration of working time separates
        /// it from the start. With a positive duration it is after that day's opening
        /// (so it is the first instant with that much working time: it may be a closing
        /// time, never the next morning); with zero it is before the closing.
        #[test]
        fn the_deadline_is_in_working_hours_after_exactly_the_working_time(
            which in which(),
            start in instant(),
            seconds in working_seconds(),
        ) {
            let l = &ladders()[which];
            prop_assert_eq!(l.working_seconds(working(l, seconds)), seconds);
            let end = add(l, start, seconds);
            prop_assert!(end >= start, "{end} is before {start}");
            let day = end.with_timezone(&l.zone).date_naive();
            prop_assert!(
                l.definition.working_hours.days.contains(&Weekday::of(day)),
                "{end} is on a {}, not a working day", Weekday::of(day)
            );
            prop_assert!(calendars().holiday(day).is_none(), "{end} is on a holiday");
            let (open, close) = interval(l, day).unwrap();
            prop_assert!(open <= end && end <= close, "{end} is outside {open}..{close}");
            if seconds > 0 {
                prop_assert!(open < end, "{end} is an opening");
            } else {
                prop_assert!(end < close, "{end} is a closing");
            }
            prop_assert_eq!(measure(l, start, end), seconds);
        }

        /// Zero working time (or a negative one, counted as zero) gives the start when
        /// it is in working hours (opening included, closing excluded), else the next opening.
        #[test]
        fn adding_zero_gives_the_start_or_the_next_opening(which in which(), start in instant(), minus in 1i64..200_000) {
            let l = &ladders()[which];
            let end = l.add_working_time(start, Offset::ZERO, calendars());
            prop_assert_eq!(end, next_working_instant(l, start));
            prop_assert_eq!(l.add_working_time(start, Offset::from_seconds(-minus), calendars()), end);
        }

        /// More working time, or a later start, never gives an earlier deadline.
        #[test]
        fn deadlines_are_monotonic_in_working_time_and_start(
            which in which(),
            starts in (instant(), instant()),
            durations in (working_seconds(), working_seconds()),
        ) {
            let l = &ladders()[which];
            let (s1, s2) = (starts.0.min(starts.1), starts.0.max(starts.1));
            let (d1, d2) = (durations.0.min(durations.1), durations.0.max(durations.1));
            prop_assert!(add(l, s1, d1) <= add(l, s1, d2), "d1={d1} d2={d2} from {s1}");
            prop_assert!(add(l, s1, d1) <= add(l, s2, d1), "from {s1} and {s2}, {d1}s");
        }

        /// Raw offsets are monotonic below a day and in whole days; across that line they
        /// are not, by design (see `a_day_is_a_working_day_but_hours_are_hours`).
        #[test]
        fn offsets_are_monotonic_below_a_day_and_in_whole_days(
            which in which(),
            start in instant(),
            hours in (0i64..86_400, 0i64..86_400),
            days in (0i64..60, 0i64..60),
        ) {
            let l = &ladders()[which];
            let at = |seconds: i64| l.add_working_time(start, Offset::from_seconds(seconds), calendars());
            let (h1, h2) = (hours.0.min(hours.1), hours.0.max(hours.1));
            prop_assert!(at(h1) <= at(h2));
            let (d1, d2) = (days.0.min(days.1), days.0.max(days.1));
            prop_assert!(at(d1 * 86_400) <= at(d2 * 86_400));
        }

        /// Working time adds up: a then b from the deadline is a + b, for b > 0. For b = 0
        /// it does not exactly: a deadline that falls on a closing time is not a working
        /// instant, so adding zero to it moves to the next opening, while a + 0 stays at
        /// the closing.
        #[test]
        fn working_time_adds_up(
            which in which(),
            start in instant(),
            a in working_seconds(),
            b in working_seconds(),
        ) {
            let l = &ladders()[which];
            let first = add(l, start, a);
            let chained = add(l, first, b);
            if b > 0 {
                prop_assert_eq!(chained, add(l, start, a + b));
            } else {
                prop_assert_eq!(chained, next_working_instant(l, first));
                if !is_closing(l, first) {
                    prop_assert_eq!(chained, first);
                }
            }
        }
    }

    #[test]
    fn working_seconds_count_days_as_working_days() {
        let bamako = &ladders()[0]; // 08:00-17:00: a working day is 9 hours
        let night = &ladders()[4]; // 01:30-03:30: 2 hours
        for (offset, nine_hours, two_hours) in [
            ("0", 0, 0),
            ("1s", 1, 1),
            ("90m", 5_400, 5_400),
            ("4h", 14_400, 14_400),
            ("23h59m", 86_340, 86_340),
            ("1d", 32_400, 7_200),
            ("1d4h", 46_800, 21_600),
            ("2d", 64_800, 14_400),
            ("1w", 226_800, 50_400),
            ("-2h", 0, 0),
        ] {
            let offset: Offset = offset.parse().unwrap();
            assert_eq!(bamako.working_seconds(offset), nine_hours, "{offset:?}");
            assert_eq!(night.working_seconds(offset), two_hours, "{offset:?}");
        }
    }

    #[test]
    fn a_day_is_a_working_day_but_hours_are_hours() {
        // `23h` is 23 working hours (two and a half working days), `1d` one working day:
        // the longer offset gives the earlier deadline. This is the documented reading.
        let l = &ladders()[0];
        let monday = utc("2026-11-16T08:00:00Z");
        let at = |text: &str| l.add_working_time(monday, text.parse().unwrap(), calendars());
        assert_eq!(at("1d"), utc("2026-11-16T17:00:00Z"));
        assert_eq!(at("23h"), utc("2026-11-18T13:00:00Z"));
        // `1w` is seven working days, not a calendar week.
        assert_eq!(at("1w"), utc("2026-11-24T17:00:00Z"));
    }

    #[test]
    fn working_time_examples() {
        let [bamako, _, zurich, _, night, new_york, ..] = ladders() else {
            unreachable!()
        };
        for (l, start, offset, expected) in [
            // Before the opening, at it, inside, at the closing, on a weekend.
            (bamako, "2026-11-16T07:00:00Z", "0", "2026-11-16T08:00:00Z"),
            (bamako, "2026-11-16T08:00:00Z", "0", "2026-11-16T08:00:00Z"),
            (bamako, "2026-11-16T16:59:59Z", "0", "2026-11-16T16:59:59Z"),
            (bamako, "2026-11-16T17:00:00Z", "0", "2026-11-17T08:00:00Z"),
            (bamako, "2026-11-21T10:00:00Z", "0", "2026-11-23T08:00:00Z"),
            (
                bamako,
                "2026-11-16T10:00:00Z",
                "-2h",
                "2026-11-16T10:00:00Z",
            ),
            // A full day ends at the closing, not the next morning; one second more does.
            (bamako, "2026-11-16T07:00:00Z", "9h", "2026-11-16T17:00:00Z"),
            (
                bamako,
                "2026-11-16T08:00:00Z",
                "9h1s",
                "2026-11-17T08:00:01Z",
            ),
            // Over a weekend, a holiday (Tuesday 2026-09-22), and the closed fortnight.
            (bamako, "2026-11-20T16:00:00Z", "2h", "2026-11-23T09:00:00Z"),
            (bamako, "2026-09-21T16:00:00Z", "2h", "2026-09-23T09:00:00Z"),
            (bamako, "2026-12-18T12:00:00Z", "1d", "2027-01-04T12:00:00Z"),
            // Zurich: 08:00 is 07:00 UTC in winter and 06:00 UTC in summer.
            (zurich, "2026-11-16T05:00:00Z", "4h", "2026-11-16T11:00:00Z"),
            (zurich, "2026-07-13T05:00:00Z", "0", "2026-07-13T06:00:00Z"),
            // 01:30-03:30 Zurich: one real hour on 2026-03-29, three on 2026-10-25.
            (night, "2026-03-29T00:00:00Z", "1h", "2026-03-29T01:30:00Z"),
            (night, "2026-03-29T00:00:00Z", "90m", "2026-03-30T00:00:00Z"),
            (
                night,
                "2026-10-24T23:00:00Z",
                "2h30m",
                "2026-10-25T02:00:00Z",
            ),
            // New York 00:00-23:59 (`1d` is 23h59m): 2026-03-08 has 22h59m of it,
            // 2026-11-01 24h59m (`1d1h`).
            (
                new_york,
                "2026-03-08T05:00:00Z",
                "22h59m",
                "2026-03-09T03:59:00Z",
            ),
            (
                new_york,
                "2026-03-08T05:00:00Z",
                "22h59m1s",
                "2026-03-09T04:00:01Z",
            ),
            (
                new_york,
                "2026-11-01T04:00:00Z",
                "1d1h",
                "2026-11-02T04:59:00Z",
            ),
            (
                new_york,
                "2026-11-01T04:00:00Z",
                "1d1h1s",
                "2026-11-02T05:00:01Z",
            ),
        ] {
            let got = l.add_working_time(utc(start), offset.parse().unwrap(), calendars());
            assert_eq!(
                got,
                utc(expected),
                "{} {start} + {offset}",
                l.definition.timezone
            );
        }
    }

    #[test]
    fn a_working_day_whose_opening_is_in_a_dst_gap_still_counts() {
        // 02:30-04:00 every day in Zurich. On 2026-03-29 the clocks jump from 02:00 to
        // 03:00 (01:00 UTC), so 02:30 does not exist; 03:00-04:00 CEST (01:00-02:00 UTC)
        // is still working time. Following the DST policy of recurrences (a local time in
        // a gap means the first instant after it), the day opens at 01:00 UTC.
        let l = ladder("Europe/Zurich", ALL_DAYS, "02:30", "04:00");
        let start = utc("2026-03-29T00:00:00Z");
        assert_eq!(
            l.add_working_time(start, "30m".parse().unwrap(), calendars()),
            utc("2026-03-29T01:30:00Z")
        );
        assert_eq!(
            l.add_working_time(utc("2026-03-29T01:15:00Z"), Offset::ZERO, calendars()),
            utc("2026-03-29T01:15:00Z")
        );
    }

    #[test]
    fn a_working_day_whose_closing_is_in_a_dst_gap_still_counts() {
        // 00:30-02:30 every day in Zurich. On 2026-03-29, 02:30 does not exist, but
        // 00:30-02:00 CET (23:30-01:00 UTC) is still working time.
        let l = ladder("Europe/Zurich", ALL_DAYS, "00:30", "02:30");
        assert_eq!(
            l.add_working_time(
                utc("2026-03-28T23:00:00Z"),
                "30m".parse().unwrap(),
                calendars()
            ),
            utc("2026-03-29T00:00:00Z")
        );
    }
}
