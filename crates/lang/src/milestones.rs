//! Redeployment milestones: a plan per place, with owners, due dates,
//! dependencies and reminders (`kind: milestones`).
//!
//! A plan is YAML: what must be done, by whom, by when, after what. Its status
//! (planned, in progress, done, blocked, cancelled) lives in the store, changed by
//! `palabre milestone set` or the API, each change in the ledger with its note.
//! This module owns the model, its checks (unknown or cyclic dependencies, with
//! positions), and the timeline: when each reminder and each overdue check falls.
//! The runtime plans those as timers and fires them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meeting::RecipientGroup;
use palabre_core::channel::Channel;
use palabre_core::offset::Offset;

/// `kind: milestones`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MilestonesKind {
    /// A plan of milestones with owners and due dates.
    Milestones,
}

fn default_time_zone() -> String {
    "Africa/Bamako".to_owned()
}

fn nine() -> String {
    "09:00".to_owned()
}

fn default_reminders() -> Vec<Offset> {
    vec![
        Offset::from_seconds(-7 * 86_400),
        Offset::from_seconds(-86_400),
    ]
}

fn both_channels() -> Vec<Channel> {
    vec![Channel::Sms, Channel::Email]
}

fn a_week() -> Offset {
    Offset::from_seconds(7 * 86_400)
}

/// A redeployment plan: milestones for one place, each with an owner and a due date.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestonePlan {
    /// Always `milestones` for this kind.
    pub kind: MilestonesKind,
    /// Unique id of this plan across all workflow files (`redeploiement-koro`).
    pub id: String,
    /// The plan's name as people read it.
    pub title: String,
    /// Free notes for coordinators; never sent.
    #[serde(default)]
    pub description: Option<String>,
    /// The place the plan is for, a path from places.yaml. Rules are looked up from here.
    pub place: String,
    /// IANA time zone of the dates. Default `Africa/Bamako`.
    #[serde(default = "default_time_zone")]
    pub timezone: String,
    /// Local time of day reminders and overdue checks go out, `HH:MM`. Default `09:00`.
    #[serde(default = "nine")]
    pub send_at: String,
    /// Reminders to the owner before each due date, unless a milestone has its own. Default `[-7d, -1d]`.
    #[serde(default = "default_reminders")]
    pub reminders: Vec<Offset>,
    /// Channels, in order of preference. Default `[sms, email]`.
    #[serde(default = "both_channels")]
    pub channels: Vec<Channel>,
    /// Once a milestone is overdue, how often the `milestone_overdue` rule is asked
    /// what to do (remind, escalate or wait). Default `7d`.
    #[serde(default = "a_week")]
    pub overdue_every: Offset,
    /// Whether a milestone's owner may mark it done by SMS, quoting the reference
    /// its reminders carry (`FAIT 5127`). Default `false`: only coordinators do.
    #[serde(default)]
    pub done_by_sms: bool,
    /// The milestones, in any order.
    pub milestones: Vec<Milestone>,
}

/// One milestone of a plan.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    /// Id, unique in the plan (`ecole-reouverte`).
    pub id: String,
    /// What is to be done, as the owner reads it.
    pub title: String,
    /// Who answers for it: a role at a place (the plan's place by default), or contacts.
    pub owner: RecipientGroup,
    /// When work starts, `YYYY-MM-DD`.
    #[serde(default)]
    pub start: Option<NaiveDate>,
    /// When it is due, `YYYY-MM-DD`.
    pub due: NaiveDate,
    /// Ids of milestones that must be done first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Reminders before the due date, instead of the plan's.
    #[serde(default)]
    pub reminders: Option<Vec<Offset>>,
}

/// Where a milestone stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    Planned,
    InProgress,
    Done,
    Blocked,
    Cancelled,
}

impl MilestoneStatus {
    pub const ALL: [MilestoneStatus; 5] = [
        MilestoneStatus::Planned,
        MilestoneStatus::InProgress,
        MilestoneStatus::Done,
        MilestoneStatus::Blocked,
        MilestoneStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MilestoneStatus::Planned => "planned",
            MilestoneStatus::InProgress => "in_progress",
            MilestoneStatus::Done => "done",
            MilestoneStatus::Blocked => "blocked",
            MilestoneStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<MilestoneStatus> {
        MilestoneStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text.replace('-', "_"))
    }

    /// Done or cancelled: nothing more is sent about it.
    pub fn is_closed(self) -> bool {
        matches!(self, MilestoneStatus::Done | MilestoneStatus::Cancelled)
    }
}

impl fmt::Display for MilestoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A milestone's recorded status, with the note of its last change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MilestoneState {
    pub plan: String,
    pub milestone: String,
    pub status: MilestoneStatus,
    pub note: String,
    pub changed: DateTime<Utc>,
}

/// Every recorded status, by (plan, milestone); a milestone never set is planned.
#[derive(Debug, Clone, Default)]
pub struct Statuses {
    by_milestone: BTreeMap<(String, String), MilestoneState>,
}

impl Statuses {
    pub fn new(states: impl IntoIterator<Item = MilestoneState>) -> Statuses {
        Statuses {
            by_milestone: states
                .into_iter()
                .map(|s| ((s.plan.clone(), s.milestone.clone()), s))
                .collect(),
        }
    }

    pub fn get(&self, plan: &str, milestone: &str) -> Option<&MilestoneState> {
        self.by_milestone
            .get(&(plan.to_owned(), milestone.to_owned()))
    }

    pub fn status(&self, plan: &str, milestone: &str) -> MilestoneStatus {
        self.get(plan, milestone)
            .map_or(MilestoneStatus::Planned, |s| s.status)
    }
}

/// What a milestone timer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilestoneStep {
    /// A reminder before the due date (the offset, negative).
    Reminder(Offset),
    /// The n-th overdue check (1 at the due date, then every `overdue_every`).
    Overdue(u32),
}

impl MilestoneStep {
    /// The timer step id: `<milestone>/reminder-7d`, `<milestone>/overdue-2`.
    pub fn id(self, milestone: &str) -> String {
        match self {
            MilestoneStep::Reminder(at) => format!("{milestone}/reminder{at}"),
            MilestoneStep::Overdue(n) => format!("{milestone}/overdue-{n}"),
        }
    }

    /// The milestone id and step of a timer step id.
    pub fn parse(step: &str) -> Option<(&str, MilestoneStep)> {
        let (milestone, what) = step.split_once('/')?;
        if let Some(n) = what.strip_prefix("overdue-") {
            return Some((milestone, MilestoneStep::Overdue(n.parse().ok()?)));
        }
        let at = what.strip_prefix("reminder")?.parse().ok()?;
        Some((milestone, MilestoneStep::Reminder(at)))
    }
}

/// A plan that passed validation.
#[derive(Debug)]
pub struct Plan {
    pub definition: MilestonePlan,
    pub zone: Tz,
    pub send_at: NaiveTime,
    pub file: PathBuf,
}

/// One timer of a plan: a step of a milestone, due at `due`.
#[derive(Debug, Clone)]
pub struct MilestoneFire<'p> {
    pub plan: &'p Plan,
    pub milestone: &'p Milestone,
    pub step: MilestoneStep,
    /// The milestone's due instant: the key of its timers.
    pub due_at: DateTime<Utc>,
    pub due: DateTime<Utc>,
}

/// The most overdue checks one milestone gets in one planning window.
const MAX_CHECKS_PER_WINDOW: i64 = 1_000;

impl Plan {
    pub fn milestone(&self, id: &str) -> Option<&Milestone> {
        self.definition.milestones.iter().find(|m| m.id == id)
    }

    /// The short reference a milestone's messages carry and its owner quotes
    /// (`FAIT 5127`): one per milestone, even for milestones due the same day.
    pub fn reference(&self, milestone: &Milestone) -> String {
        crate::occurrence::occurrence_reference(
            &format!("{}/{}", self.definition.id, milestone.id),
            self.instant(milestone.due),
        )
    }

    /// The instant a date's messages go out: `send_at` local time on that date,
    /// with the recurrences' policy where the clocks change (a time that happens
    /// twice is its first instant, one in a gap the instant of the jump).
    pub fn instant(&self, date: NaiveDate) -> DateTime<Utc> {
        crate::recurrence::resolve_local(self.zone, date.and_time(self.send_at))
    }

    pub fn reminders_of<'m>(&'m self, milestone: &'m Milestone) -> &'m [Offset] {
        milestone
            .reminders
            .as_deref()
            .unwrap_or(&self.definition.reminders)
    }

    /// Milestones that depend on `id`.
    pub fn dependants(&self, id: &str) -> impl Iterator<Item = &Milestone> {
        self.definition
            .milestones
            .iter()
            .filter(move |m| m.depends_on.iter().any(|d| d == id))
    }

    /// Every timer due in `[from, to)` for milestones not done or cancelled.
    pub fn fires_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        statuses: &Statuses,
    ) -> Vec<MilestoneFire<'_>> {
        let every = self.definition.overdue_every.as_delta();
        let mut fires = Vec::new();
        for milestone in &self.definition.milestones {
            if statuses
                .status(&self.definition.id, &milestone.id)
                .is_closed()
            {
                continue;
            }
            let due_at = self.instant(milestone.due);
            let fire = |step, due| MilestoneFire {
                plan: self,
                milestone,
                step,
                due_at,
                due,
            };
            for at in self.reminders_of(milestone) {
                let due = due_at + at.as_delta();
                if from <= due && due < to {
                    fires.push(fire(MilestoneStep::Reminder(*at), due));
                }
            }
            // Overdue checks at due_at + k * every, k = 0, 1, ...
            let first = if from <= due_at {
                0
            } else {
                let (late, step) = ((from - due_at).num_seconds(), every.num_seconds().max(1));
                (late + step - 1) / step
            };
            for k in first..first + MAX_CHECKS_PER_WINDOW {
                let due = due_at + every * i32::try_from(k).unwrap_or(i32::MAX);
                if due >= to {
                    break;
                }
                if due >= from {
                    let n = u32::try_from(k + 1).unwrap_or(u32::MAX);
                    fires.push(fire(MilestoneStep::Overdue(n), due));
                }
            }
        }
        fires.sort_by_key(|f| f.due);
        fires
    }

    /// Whole days `milestone` is late at `now` (0 when not yet due).
    pub fn days_late(&self, milestone: &Milestone, now: DateTime<Utc>) -> i64 {
        (now - self.instant(milestone.due))
            .max(TimeDelta::zero())
            .num_days()
    }
}

/// One line of `palabre milestones`: a milestone with where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineRow {
    pub plan: String,
    pub place: String,
    pub id: String,
    pub title: String,
    /// `role@place`, or the contact ids.
    pub owner: String,
    pub start: Option<NaiveDate>,
    pub due: NaiveDate,
    pub status: MilestoneStatus,
    /// The note of the last status change.
    pub note: String,
    /// Days past due while not done or cancelled; 0 otherwise.
    pub days_late: i64,
    /// Milestones it waits for that are not done.
    pub blocked_by: Vec<String>,
    /// Milestones that wait for it.
    pub blocks: Vec<String>,
}

impl Plan {
    /// The plan's milestones as timeline rows at `now`, by due date.
    pub fn timeline(&self, statuses: &Statuses, now: DateTime<Utc>) -> Vec<TimelineRow> {
        let def = &self.definition;
        let mut rows: Vec<TimelineRow> = def
            .milestones
            .iter()
            .map(|m| {
                let state = statuses.get(&def.id, &m.id);
                let status = state.map_or(MilestoneStatus::Planned, |s| s.status);
                let owner = match &m.owner.role {
                    Some(role) => {
                        format!("{role}@{}", m.owner.place.as_deref().unwrap_or(&def.place))
                    }
                    None => m.owner.contacts.join(", "),
                };
                TimelineRow {
                    plan: def.id.clone(),
                    place: def.place.clone(),
                    id: m.id.clone(),
                    title: m.title.clone(),
                    owner,
                    start: m.start,
                    due: m.due,
                    status,
                    note: state.map(|s| s.note.clone()).unwrap_or_default(),
                    days_late: if status.is_closed() {
                        0
                    } else {
                        self.days_late(m, now)
                    },
                    blocked_by: m
                        .depends_on
                        .iter()
                        .filter(|d| statuses.status(&def.id, d) != MilestoneStatus::Done)
                        .cloned()
                        .collect(),
                    blocks: self.dependants(&m.id).map(|d| d.id.clone()).collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
        rows
    }
}

/// The first dependency cycle among `milestones`, as the ids along it.
pub fn find_cycle(milestones: &[Milestone]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, &Milestone> = milestones.iter().map(|m| (m.id.as_str(), m)).collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'m>(
        id: &'m str,
        index: &BTreeMap<&'m str, &'m Milestone>,
        state: &mut BTreeMap<&'m str, u8>,
        path: &mut Vec<&'m str>,
    ) -> Option<Vec<String>> {
        match state.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[start..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(id.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(id, 1);
        path.push(id);
        if let Some(milestone) = index.get(id) {
            for dep in &milestone.depends_on {
                if index.contains_key(dep.as_str())
                    && let Some(cycle) = visit(dep, index, state, path)
                {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        state.insert(id, 2);
        None
    }
    for milestone in milestones {
        if let Some(cycle) = visit(&milestone.id, &index, &mut state, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milestone(id: &str, deps: &[&str]) -> Milestone {
        Milestone {
            id: id.into(),
            title: id.into(),
            owner: RecipientGroup {
                role: Some("mayor".into()),
                place: None,
                contacts: Vec::new(),
            },
            start: None,
            due: "2027-01-15".parse().expect("date"),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            reminders: None,
        }
    }

    #[test]
    fn cycles_are_found() {
        let ok = [
            milestone("a", &[]),
            milestone("b", &["a"]),
            milestone("c", &["a", "b"]),
        ];
        assert_eq!(find_cycle(&ok), None);
        let looped = [
            milestone("a", &["c"]),
            milestone("b", &["a"]),
            milestone("c", &["b"]),
        ];
        assert_eq!(
            find_cycle(&looped),
            Some(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        assert_eq!(
            find_cycle(&[milestone("a", &["a"])]),
            Some(vec!["a".into(), "a".into()])
        );
    }

    #[test]
    fn step_ids_round_trip() {
        for step in [
            MilestoneStep::Reminder("-7d".parse().expect("offset")),
            MilestoneStep::Overdue(3),
        ] {
            let id = step.id("ecole");
            assert_eq!(MilestoneStep::parse(&id), Some(("ecole", step)), "{id}");
        }
        assert_eq!(MilestoneStep::parse("invitation"), None);
    }

    /// `send_at` in a DST gap goes out when the clocks jump, not hours off (it
    /// was read as UTC).
    #[test]
    fn a_send_time_in_a_dst_gap_goes_out_at_the_jump() {
        let definition: MilestonePlan = serde_saphyr::from_str(
            "kind: milestones\nid: p\ntitle: P\nplace: mopti\ntimezone: Europe/Zurich\n\
             send_at: \"02:30\"\nmilestones: []\n",
        )
        .expect("a plan");
        let plan = Plan {
            definition,
            zone: chrono_tz::Europe::Zurich,
            send_at: NaiveTime::from_hms_opt(2, 30, 0).expect("a time"),
            file: PathBuf::from("p.yaml"),
        };
        let on = |d: &str| plan.instant(d.parse().expect("a date")).to_rfc3339();
        assert_eq!(on("2026-03-29"), "2026-03-29T01:00:00+00:00", "the jump");
        assert_eq!(on("2026-03-30"), "2026-03-30T00:30:00+00:00", "summer time");
        assert_eq!(
            on("2026-10-25"),
            "2026-10-25T00:30:00+00:00",
            "the first of two"
        );
    }
}
