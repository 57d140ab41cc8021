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
                let at = |time: NaiveTime| {
                    date.and_time(time)
                        .and_local_timezone(self.zone)
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                };
                if let (Some(open), Some(close)) = (at(self.day_start), at(self.day_end)) {
                    let begin = open.max(start);
                    if begin < close {
                        let available = (close - begin).num_seconds();
                        if remaining <= available {
                            return begin + TimeDelta::seconds(remaining);
                        }
                        remaining -= available;
                    }
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

    #[test]
    fn deadline_steps_round_trip() {
        for deadline in [Deadline::Acknowledge, Deadline::Resolve] {
            let step = deadline.step("LT-0007", 2, DateTime::UNIX_EPOCH);
            assert_eq!(Deadline::parse(&step), Some(("LT-0007", 2, deadline)));
        }
        assert_eq!(Deadline::parse("logement/overdue-1"), None);
    }
}
