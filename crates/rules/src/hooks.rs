//! The hooks: the questions the engine asks rules, what it gives them, and what
//! it accepts back.
//!
//! A hook is a Rhai function of one argument, a plain map (see [`meeting_input`]),
//! named after the hook (`meeting_schedule`) unless a workflow names another
//! function for it. What the function returns is checked here, on return, into a
//! typed decision: a wrong shape or type is a rule error that names the script,
//! never a panic, and the decision then falls back to the hook's built-in default
//! (written in [`HookSpec::default`] and implemented by [`Decision::default_value`]).

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Timelike, Utc,
};
use chrono_tz::Tz;
use rhai::{Array, Dynamic, Map};
use serde::Serialize;

use super::World;
use palabre_core::channel::Channel;
use palabre_core::offset::Offset;
use palabre_lang::calendars::{Weekday, format_iso_date};
use palabre_lang::contacts::Contact;
use palabre_lang::escalation::{Case, Ladder};
use palabre_lang::meeting::{MeetingWorkflow, RecipientGroup};
use palabre_lang::milestones::{Milestone, MilestoneStatus, Plan};

/// What the reference says about one hook.
#[derive(Debug, Clone, Copy)]
pub struct HookSpec {
    /// The function name rules define (`meeting_schedule`).
    pub name: &'static str,
    /// The key a workflow uses to name another function for it (`rules: { schedule: ... }`).
    pub slot: &'static str,
    /// When the engine asks.
    pub when: &'static str,
    /// What the input map holds beyond the common fields.
    pub input: &'static str,
    /// What the function may return.
    pub returns: &'static str,
    /// What holds when no script defines the hook, or a rule fails.
    pub default: &'static str,
}

/// Every hook, in the order of the reference.
pub const HOOKS: [HookSpec; 9] = [
    HookSpec {
        name: "meeting_schedule",
        slot: "schedule",
        when: "when a step of an occurrence is due, until a rule or a coordinator has changed that occurrence",
        input: "the common fields",
        returns: "`()` to hold the meeting; `#{ skip: \"reason\" }` to cancel it; \
                  `#{ move_to: \"YYYY-MM-DD HH:MM\", reason: \"...\" }` (or a date alone, same time) to move it, \
                  in the meeting's time zone and in the future. The reason goes to the ledger and, \
                  through the meeting-cancelled or meeting-moved notice, to every participant.",
        default: "hold the meeting",
    },
    HookSpec {
        name: "meeting_invitees",
        slot: "invitees",
        when: "when a step's recipients are resolved, and for change notices",
        input: "`participants`: the contacts the YAML groups reach (id, name, roles, place, language)",
        returns: "an array of extra groups: a contact id (`\"c-0042\"`), or `#{ role: \"mayor\", place: \"mopti/koro\" }` \
                  (place defaults to the meeting's). `()` adds nobody.",
        default: "nobody beyond the YAML groups",
    },
    HookSpec {
        name: "meeting_quorum",
        slot: "quorum",
        when: "when the confirmations of an occurrence are weighed",
        input: "`participants` with each one's `response` (`yes`, `no` or `none`); \
                `invited`, `yes`, `no` (counts)",
        returns: "`true`/`false`, or `#{ reached: bool, reason: \"...\" }`",
        default: "reached when more than half of the invited said yes",
    },
    HookSpec {
        name: "meeting_reminders",
        slot: "reminders",
        when: "when an occurrence is planned, and again when each extra reminder is due \
               (a reminder the rule no longer returns is dropped)",
        input: "the common fields",
        returns: "an array of extra reminders `#{ at: \"-3h\", template: \"meeting-reminder\", channels: [\"sms\"] }`; \
                  `at` is before the start, `channels` defaults to `[\"sms\", \"email\"]`. `()` adds none.",
        default: "no extra reminder",
    },
    HookSpec {
        name: "milestone_overdue",
        slot: "overdue",
        when: "when a milestone is past its due date and not done: at the due date, then every `overdue_every` of its plan",
        input: "`plan` (id, title, place), `place`, `now`, and `milestone`: id, title, due, start, status, \
                `days_late`, `check` (1 at the due date, then 2, 3 ...), `owner` (role, place, contacts), \
                `depends_on` and `dependants` (ids)",
        returns: "`#{ action: \"remind\", reason }` (the owner gets the overdue message), \
                  `#{ action: \"escalate\", to: #{ role, place }, reason }` (that group gets the escalation message), \
                  or `#{ action: \"wait\", reason }` (nothing is sent). The decision and its reason go to the ledger. \
                  At the first check the owners of the milestones that depend on it are told it slipped, whatever the decision.",
        default: "remind the owner",
    },
    HookSpec {
        name: "escalation_entry",
        slot: "entry",
        when: "when a dispute is opened",
        input: CASE_INPUT,
        returns: "`#{ level: \"prefet\", reason }` to open the case at that level (a level id of the ladder); `()` for the first level",
        default: "the first level",
    },
    HookSpec {
        name: "escalation_deadlines",
        slot: "deadlines",
        when: "whenever a case reaches a level (opened, climbed, reopened)",
        input: CASE_INPUT,
        returns: "`#{ acknowledge: \"2h\", resolve: \"1d\" }` (either may be left out) in working time; `()` keeps the level's",
        default: "the level's `acknowledge_within` and `resolve_within`",
    },
    HookSpec {
        name: "escalation_missed",
        slot: "missed",
        when: "when a level lets a deadline pass (`dispute.deadline` says which)",
        input: CASE_INPUT,
        returns: "`#{ climb: 1, reason }`: how many levels up the case goes (0 keeps it there and tells its responders again; past the top it stays at the top)",
        default: "climb one level",
    },
    HookSpec {
        name: "call_time",
        slot: "call_time",
        when: "before each call is placed, inside the callee's call hours (`calls.yaml`), at the callee's place",
        input: CALL_INPUT,
        returns: "`()` or `true` to call now; `false` to try again in 30 minutes; \
                  `#{ wait: \"45m\", reason: \"Friday prayer\" }` to try again after that long (at most `1d`). \
                  A call that waits is not an attempt; the reason goes to the ledger.",
        default: "call now",
    },
];

/// What the `call_time` hook receives.
pub const CALL_INPUT: &str = "`contact` (id, name, roles, place, language), `place` (the contact's), \
    the local `date` YYYY-MM-DD, `time` HH:MM and `weekday` in the zone of `calls.yaml`, \
    `workflow` (the id of what the call is about), `attempt` (1 for the first call, 2 for the first redial ...), `now`";

/// What the escalation hooks receive.
pub const CASE_INPUT: &str = "`ladder` (id, title, levels: the level ids in order), \
    `dispute` (the case: id, category, severity, place, level: the current level id, state, \
    opened, deadline: `acknowledge` or `resolve` for a missed deadline), `place` (the case's), `now`";

/// The common fields every meeting hook receives.
pub const COMMON_INPUT: &str = "`workflow` (id, title, place, venue, timezone), \
    `place` (path, name, level, region, cercle, commune), \
    `occurrence` (start in UTC RFC 3339, local `date` YYYY-MM-DD, local `time` HH:MM, `weekday`), \
    `now` (the engine clock, UTC RFC 3339)";

pub fn spec(name: &str) -> Option<&'static HookSpec> {
    HOOKS.iter().find(|h| h.name == name)
}

/// A decision a hook returns, checked on return.
pub trait Decision: Sized + Serialize {
    /// The hook this decision answers.
    const HOOK: &'static HookSpec;
    /// Whether the default depends on the input (else, with no script to ask, the
    /// input is not even built).
    const DEFAULT_READS_INPUT: bool = false;
    /// The built-in default, as a script would return it (what `parent()` gives at the top).
    fn default_value(input: &Map) -> Dynamic;
    /// The built-in default as a decision.
    fn fallback(input: &Map) -> Self;
    /// Checks a returned value.
    fn parse(value: Dynamic, world: &World) -> Result<Self, String>;
}

fn type_name(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "()"
    } else if value.is_string() {
        "a string"
    } else if value.is_int() {
        "an integer"
    } else if value.is_float() {
        "a number"
    } else if value.is_bool() {
        "a boolean"
    } else if value.is_array() {
        "an array"
    } else if value.is_map() {
        "a map"
    } else {
        "a value of another type"
    }
}

fn wrong(expected: &str, value: &Dynamic) -> String {
    format!("expected {expected}, got {}", type_name(value))
}

fn take_map(value: Dynamic, expected: &str) -> Result<Map, String> {
    let shown = wrong(expected, &value);
    value.try_cast::<Map>().ok_or(shown)
}

fn take_array(value: Dynamic, expected: &str) -> Result<Array, String> {
    let shown = wrong(expected, &value);
    value.try_cast::<Array>().ok_or(shown)
}

fn string_field(map: &Map, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .into_string()
            .map(Some)
            .map_err(|_| format!("'{key}': {}", wrong("a string", v))),
    }
}

/// A positive duration (`"4h"`, `"2d"`) at `key`, if there is one.
fn duration_field(map: &Map, key: &str) -> Result<Option<Offset>, String> {
    string_field(map, key)?
        .map(|text| {
            let at: Offset = text.parse().map_err(|e| format!("'{key}': {e}"))?;
            if at.seconds() <= 0 {
                return Err(format!("'{key}': {at} is not a positive duration"));
            }
            Ok(at)
        })
        .transpose()
}

fn refuse_unknown_keys(map: &Map, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown key '{key}'{}; expected {}",
            palabre_core::suggest::did_you_mean(key, known.iter().copied()),
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// `meeting_schedule`: hold, skip or move one occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleDecision {
    Hold,
    Skip {
        reason: String,
    },
    Move {
        /// Local date in the meeting's zone.
        date: NaiveDate,
        /// Local time; the occurrence's own time when the rule gave a date alone.
        time: Option<NaiveTime>,
        reason: String,
    },
}

impl ScheduleDecision {
    /// A move's local date and time: `YYYY-MM-DD HH:MM`, or a date alone.
    fn parse_local(text: &str) -> Option<(NaiveDate, Option<NaiveTime>)> {
        let text = text.trim();
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
            .map(|t| (t.date(), Some(t.time())))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .map(|d| (d, None))
            })
    }
}

impl Decision for ScheduleDecision {
    const HOOK: &'static HookSpec = &HOOKS[0];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::UNIT
    }

    fn fallback(_: &Map) -> Self {
        ScheduleDecision::Hold
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        const EXPECTED: &str = "() to hold, #{ skip: \"reason\" } or #{ move_to: \"YYYY-MM-DD HH:MM\", reason: \"...\" }";
        if value.is_unit() {
            return Ok(ScheduleDecision::Hold);
        }
        let map = take_map(value, EXPECTED)?;
        refuse_unknown_keys(&map, &["skip", "move_to", "reason"])?;
        let skip = string_field(&map, "skip")?;
        let move_to = string_field(&map, "move_to")?;
        let reason = string_field(&map, "reason")?;
        match (skip, move_to) {
            (None, None) if map.is_empty() => Ok(ScheduleDecision::Hold),
            (None, None) => Err(format!("expected {EXPECTED}")),
            (Some(_), Some(_)) => Err("'skip' and 'move_to' cannot both be given".to_owned()),
            (Some(skip), None) => {
                let reason = reason.unwrap_or(skip);
                if reason.trim().is_empty() {
                    return Err("'skip' needs a reason people can read".to_owned());
                }
                Ok(ScheduleDecision::Skip { reason })
            }
            (None, Some(to)) => {
                let (date, time) = ScheduleDecision::parse_local(&to).ok_or_else(|| {
                    format!("'move_to': '{to}' is not YYYY-MM-DD HH:MM or YYYY-MM-DD")
                })?;
                let reason = reason
                    .filter(|r| !r.trim().is_empty())
                    .ok_or("'move_to' needs a 'reason' people can read")?;
                Ok(ScheduleDecision::Move { date, time, reason })
            }
        }
    }
}

/// `meeting_invitees`: groups invited beyond the YAML ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteesDecision(pub Vec<RecipientGroup>);

impl Decision for InviteesDecision {
    const HOOK: &'static HookSpec = &HOOKS[1];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::from_array(Array::new())
    }

    fn fallback(_: &Map) -> Self {
        InviteesDecision(Vec::new())
    }

    fn parse(value: Dynamic, world: &World) -> Result<Self, String> {
        if value.is_unit() {
            return Ok(InviteesDecision(Vec::new()));
        }
        let items = take_array(value, "an array of contact ids and #{ role, place } maps")?;
        let mut groups = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let group = if item.is_string() {
                RecipientGroup {
                    role: None,
                    place: None,
                    contacts: vec![item.into_string().unwrap_or_default()],
                }
            } else {
                let map = take_map(item, "a contact id or a #{ role, place } map")
                    .map_err(|e| format!("item {i}: {e}"))?;
                refuse_unknown_keys(&map, &["role", "place", "contact"])
                    .map_err(|e| format!("item {i}: {e}"))?;
                let field = |key| string_field(&map, key).map_err(|e| format!("item {i}: {e}"));
                let (role, place, contact) = (field("role")?, field("place")?, field("contact")?);
                if role.is_none() && contact.is_none() {
                    return Err(format!("item {i}: give a 'role' or a 'contact'"));
                }
                RecipientGroup {
                    role,
                    place,
                    contacts: contact.into_iter().collect(),
                }
            };
            if let Some(role) = &group.role
                && !world.roles.contains(role)
            {
                return Err(format!(
                    "item {i}: unknown role '{role}'{}",
                    palabre_core::suggest::did_you_mean(
                        role,
                        world.roles.iter().map(String::as_str)
                    )
                ));
            }
            if let Some(place) = &group.place
                && world.places.get(place).is_none()
            {
                return Err(format!("item {i}: {}", world.places.unknown_message(place)));
            }
            groups.push(group);
        }
        Ok(InviteesDecision(groups))
    }
}

/// `meeting_quorum`: whether the confirmations make a quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumDecision {
    pub reached: bool,
    pub reason: String,
}

fn count(input: &Map, key: &str) -> i64 {
    input.get(key).and_then(|v| v.as_int().ok()).unwrap_or(0)
}

impl Decision for QuorumDecision {
    const HOOK: &'static HookSpec = &HOOKS[2];
    const DEFAULT_READS_INPUT: bool = true;

    fn default_value(input: &Map) -> Dynamic {
        let decision = QuorumDecision::fallback(input);
        let mut map = Map::new();
        map.insert("reached".into(), Dynamic::from_bool(decision.reached));
        map.insert("reason".into(), Dynamic::from(decision.reason));
        Dynamic::from_map(map)
    }

    fn fallback(input: &Map) -> Self {
        let (invited, yes) = (count(input, "invited"), count(input, "yes"));
        QuorumDecision {
            reached: invited > 0 && yes * 2 > invited,
            reason: format!("{yes} of {invited} invited confirmed; more than half needed"),
        }
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        if let Ok(reached) = value.as_bool() {
            return Ok(QuorumDecision {
                reached,
                reason: String::new(),
            });
        }
        let map = take_map(value, "true, false or #{ reached: bool, reason: \"...\" }")?;
        refuse_unknown_keys(&map, &["reached", "reason"])?;
        let reached = map
            .get("reached")
            .ok_or("'reached' is missing")?
            .as_bool()
            .map_err(|t| format!("'reached': expected a boolean, got {t}"))?;
        Ok(QuorumDecision {
            reached,
            reason: string_field(&map, "reason")?.unwrap_or_default(),
        })
    }
}

/// `milestone_overdue`: what to do about an overdue milestone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OverdueDecision {
    Remind { reason: String },
    Escalate { to: RecipientGroup, reason: String },
    Wait { reason: String },
}

impl Decision for OverdueDecision {
    const HOOK: &'static HookSpec = &HOOKS[4];

    fn default_value(_: &Map) -> Dynamic {
        let mut map = Map::new();
        map.insert("action".into(), text("remind"));
        map.insert("reason".into(), text("the owner is reminded"));
        Dynamic::from_map(map)
    }

    fn fallback(_: &Map) -> Self {
        OverdueDecision::Remind {
            reason: "the owner is reminded".to_owned(),
        }
    }

    fn parse(value: Dynamic, world: &World) -> Result<Self, String> {
        const EXPECTED: &str = "#{ action: \"remind\" | \"escalate\" | \"wait\", reason: \"...\" }";
        let map = take_map(value, EXPECTED)?;
        refuse_unknown_keys(&map, &["action", "to", "reason"])?;
        let reason = string_field(&map, "reason")?.unwrap_or_default();
        match string_field(&map, "action")?.as_deref() {
            Some("remind") => Ok(OverdueDecision::Remind { reason }),
            Some("wait") => Ok(OverdueDecision::Wait { reason }),
            Some("escalate") => {
                let to = map
                    .get("to")
                    .cloned()
                    .ok_or("'escalate' needs 'to': #{ role, place }")?;
                let groups = InviteesDecision::parse(Dynamic::from_array(vec![to]), world)
                    .map_err(|e| format!("'to': {}", e.trim_start_matches("item 0: ")))?;
                let to = groups.0.into_iter().next().ok_or("'to' is empty")?;
                Ok(OverdueDecision::Escalate { to, reason })
            }
            Some(other) => Err(format!("unknown action '{other}': expected {EXPECTED}")),
            None => Err(format!("'action' is missing: expected {EXPECTED}")),
        }
    }
}

/// `escalation_entry`: the level a new case starts at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryDecision {
    /// A level id; `None` for the first level.
    pub level: Option<String>,
    pub reason: String,
}

impl Decision for EntryDecision {
    const HOOK: &'static HookSpec = &HOOKS[5];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::UNIT
    }

    fn fallback(_: &Map) -> Self {
        EntryDecision {
            level: None,
            reason: String::new(),
        }
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        if value.is_unit() {
            return Ok(EntryDecision::fallback(&Map::new()));
        }
        let map = take_map(value, "() or #{ level: \"...\", reason: \"...\" }")?;
        refuse_unknown_keys(&map, &["level", "reason"])?;
        Ok(EntryDecision {
            level: string_field(&map, "level")?,
            reason: string_field(&map, "reason")?.unwrap_or_default(),
        })
    }
}

/// `escalation_deadlines`: the deadlines of the level a case reaches, when not the level's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadlinesDecision {
    pub acknowledge: Option<Offset>,
    pub resolve: Option<Offset>,
}

impl Decision for DeadlinesDecision {
    const HOOK: &'static HookSpec = &HOOKS[6];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::UNIT
    }

    fn fallback(_: &Map) -> Self {
        DeadlinesDecision {
            acknowledge: None,
            resolve: None,
        }
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        if value.is_unit() {
            return Ok(DeadlinesDecision::fallback(&Map::new()));
        }
        let map = take_map(value, "() or #{ acknowledge: \"4h\", resolve: \"2d\" }")?;
        refuse_unknown_keys(&map, &["acknowledge", "resolve"])?;
        Ok(DeadlinesDecision {
            acknowledge: duration_field(&map, "acknowledge")?,
            resolve: duration_field(&map, "resolve")?,
        })
    }
}

/// `escalation_missed`: how far a case climbs when a deadline passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissedDecision {
    pub climb: u32,
    pub reason: String,
}

impl Decision for MissedDecision {
    const HOOK: &'static HookSpec = &HOOKS[7];

    fn default_value(_: &Map) -> Dynamic {
        let mut map = Map::new();
        map.insert("climb".into(), Dynamic::from_int(1));
        map.insert("reason".into(), text("deadline missed"));
        Dynamic::from_map(map)
    }

    fn fallback(_: &Map) -> Self {
        MissedDecision {
            climb: 1,
            reason: "deadline missed".to_owned(),
        }
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        let map = take_map(value, "#{ climb: 1, reason: \"...\" }")?;
        refuse_unknown_keys(&map, &["climb", "reason"])?;
        let climb = map
            .get("climb")
            .ok_or("'climb' is missing")?
            .as_int()
            .map_err(|t| format!("'climb': expected an integer, got {t}"))?;
        let climb = u32::try_from(climb).map_err(|_| format!("'climb' is {climb}: 0 or more"))?;
        Ok(MissedDecision {
            climb,
            reason: string_field(&map, "reason")?.unwrap_or_default(),
        })
    }
}

/// `call_time`: whether a call is placed now, or how long it waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallTimeDecision {
    /// `None` to call now.
    pub wait: Option<Offset>,
    pub reason: String,
}

/// How long a call waits when a rule answers `false`.
const CALL_WAIT: i64 = 30 * 60;

impl Decision for CallTimeDecision {
    const HOOK: &'static HookSpec = &HOOKS[8];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::UNIT
    }

    fn fallback(_: &Map) -> Self {
        CallTimeDecision {
            wait: None,
            reason: String::new(),
        }
    }

    fn parse(value: Dynamic, _: &World) -> Result<Self, String> {
        if value.is_unit() {
            return Ok(CallTimeDecision::fallback(&Map::new()));
        }
        if let Ok(now) = value.as_bool() {
            return Ok(CallTimeDecision {
                wait: (!now).then(|| Offset::from_seconds(CALL_WAIT)),
                reason: String::new(),
            });
        }
        let map = take_map(
            value,
            "(), true, false or #{ wait: \"45m\", reason: \"...\" }",
        )?;
        refuse_unknown_keys(&map, &["wait", "reason"])?;
        let wait = duration_field(&map, "wait")?.ok_or("'wait' is missing")?;
        if wait.seconds() > 24 * 3600 {
            return Err(format!("'wait' is {wait}: at most 1d"));
        }
        Ok(CallTimeDecision {
            wait: Some(wait),
            reason: string_field(&map, "reason")?.unwrap_or_default(),
        })
    }
}

/// One reminder a rule adds to an occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraReminder {
    pub at: Offset,
    pub template: String,
    pub channels: Vec<Channel>,
}

impl ExtraReminder {
    /// The id of the step it becomes: `rule-reminder-3h`.
    pub fn step_id(&self) -> String {
        format!("rule-reminder{}", self.at)
    }
}

/// `meeting_reminders`: reminders added to an occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemindersDecision(pub Vec<ExtraReminder>);

impl Decision for RemindersDecision {
    const HOOK: &'static HookSpec = &HOOKS[3];

    fn default_value(_: &Map) -> Dynamic {
        Dynamic::from_array(Array::new())
    }

    fn fallback(_: &Map) -> Self {
        RemindersDecision(Vec::new())
    }

    fn parse(value: Dynamic, world: &World) -> Result<Self, String> {
        if value.is_unit() {
            return Ok(RemindersDecision(Vec::new()));
        }
        let items = take_array(value, "an array of #{ at, template, channels } maps")?;
        let mut reminders: Vec<ExtraReminder> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let at_item = |e: String| format!("item {i}: {e}");
            let map = take_map(item, "a #{ at, template, channels } map").map_err(at_item)?;
            refuse_unknown_keys(&map, &["at", "template", "channels"]).map_err(at_item)?;
            let at_text = string_field(&map, "at")
                .map_err(at_item)?
                .ok_or_else(|| at_item("'at' is missing".to_owned()))?;
            let at: Offset = at_text.parse().map_err(|e| at_item(format!("'at': {e}")))?;
            if !at.is_negative() {
                return Err(at_item(format!(
                    "'at' is {at}: a reminder comes before the meeting (like -3h)"
                )));
            }
            let template = string_field(&map, "template")
                .map_err(at_item)?
                .unwrap_or_else(|| "meeting-reminder".to_owned());
            if !world.templates.contains(&template) {
                return Err(at_item(format!(
                    "unknown template '{template}'{}",
                    palabre_core::suggest::did_you_mean(
                        &template,
                        world.templates.iter().map(String::as_str)
                    )
                )));
            }
            let channels = match map.get("channels") {
                // Calls only where a workflow asks for them.
                None => vec![Channel::Sms, Channel::Email],
                Some(list) => take_array(list.clone(), "an array of channel names")
                    .map_err(|e| at_item(format!("'channels': {e}")))?
                    .into_iter()
                    .map(|c| {
                        let name = c.into_string().unwrap_or_default();
                        Channel::parse(&name).ok_or_else(|| {
                            at_item(format!(
                                "'channels': unknown channel '{name}' (sms or email)"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            if channels.is_empty() {
                return Err(at_item(
                    "'channels' is empty: list sms, email or both (or leave it out for both)"
                        .to_owned(),
                ));
            }
            let reminder = ExtraReminder {
                at,
                template,
                channels,
            };
            if !reminders.iter().any(|r| r.at == reminder.at) {
                reminders.push(reminder);
            }
        }
        Ok(RemindersDecision(reminders))
    }
}

fn text(value: impl Into<String>) -> Dynamic {
    Dynamic::from(value.into())
}

/// A contact as rules see it: no phone, no email.
pub fn contact_facts(contact: &Contact) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), text(&contact.id));
    map.insert("name".into(), text(&contact.name));
    map.insert(
        "roles".into(),
        Dynamic::from_array(contact.roles.iter().map(text).collect()),
    );
    map.insert("place".into(), text(&contact.place));
    map.insert("language".into(), text(&contact.language));
    map
}

/// What a meeting hook is told about the meeting itself, built once per meeting
/// (the strings are shared, not copied, into every input).
#[derive(Debug, Clone)]
pub struct MeetingFacts {
    place: String,
    zone: Tz,
    workflow: Dynamic,
}

impl MeetingFacts {
    pub fn new(id: &str, title: &str, place: &str, venue: &str, zone: Tz) -> MeetingFacts {
        let mut workflow = Map::new();
        workflow.insert("id".into(), text(id));
        workflow.insert("title".into(), text(title));
        workflow.insert("place".into(), text(place));
        workflow.insert("venue".into(), text(venue));
        workflow.insert("timezone".into(), text(zone.name()));
        MeetingFacts {
            place: place.to_owned(),
            zone,
            workflow: Dynamic::from_map(workflow),
        }
    }

    pub fn of(meeting: &MeetingWorkflow, zone: Tz) -> MeetingFacts {
        MeetingFacts::new(
            &meeting.id,
            &meeting.title,
            &meeting.place,
            &meeting.venue,
            zone,
        )
    }
}

/// The names of the days of the week, shared by every input.
static WEEKDAYS: std::sync::LazyLock<[Dynamic; 7]> = std::sync::LazyLock::new(|| {
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
    .map(|d| text(d.as_str()))
});

/// The common input of every meeting hook, for the occurrence starting at `start`.
pub fn meeting_input(
    world: &World,
    meeting: &MeetingFacts,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Map {
    let local = start.with_timezone(&meeting.zone);
    let date = local.date_naive();
    let mut occurrence = Map::new();
    occurrence.insert(
        "start".into(),
        text(start.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    occurrence.insert("date".into(), text(format_iso_date(date)));
    occurrence.insert(
        "time".into(),
        text(format!("{:02}:{:02}", local.hour(), local.minute())),
    );
    occurrence.insert(
        "weekday".into(),
        WEEKDAYS[date.weekday().num_days_from_monday() as usize].clone(),
    );
    let mut input = Map::new();
    input.insert("workflow".into(), meeting.workflow.clone());
    input.insert("place".into(), world.place_facts(&meeting.place));
    input.insert("occurrence".into(), Dynamic::from_map(occurrence));
    input.insert(
        "now".into(),
        text(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    input
}

/// Adds `participants` (as rules see contacts) to a hook's input.
pub fn with_participants<'c>(
    mut input: Map,
    participants: impl IntoIterator<Item = &'c Contact>,
) -> Map {
    let list: Array = participants
        .into_iter()
        .map(|c| Dynamic::from_map(contact_facts(c)))
        .collect();
    input.insert("participants".into(), Dynamic::from_array(list));
    input
}

/// Adds `participants` with each one's `response` (`yes`, `no`, `none`) and the
/// counts `invited`, `yes`, `no`: the input of the quorum hook.
pub fn with_responses<'c>(
    mut input: Map,
    responses: impl IntoIterator<Item = (&'c Contact, &'c str)>,
) -> Map {
    let (mut invited, mut yes, mut no) = (0_i64, 0_i64, 0_i64);
    let list: Array = responses
        .into_iter()
        .map(|(contact, response)| {
            invited += 1;
            match response {
                "yes" => yes += 1,
                "no" => no += 1,
                _ => {}
            }
            let mut facts = contact_facts(contact);
            facts.insert("response".into(), text(response));
            Dynamic::from_map(facts)
        })
        .collect();
    input.insert("participants".into(), Dynamic::from_array(list));
    input.insert("invited".into(), Dynamic::from_int(invited));
    input.insert("yes".into(), Dynamic::from_int(yes));
    input.insert("no".into(), Dynamic::from_int(no));
    input
}

/// The input of `call_time` for a call to `contact` about `workflow` at `now`
/// (its `attempt`-th), with the local time in `zone`.
pub fn call_input(
    world: &World,
    contact: &Contact,
    workflow: &str,
    attempt: i64,
    zone: Tz,
    now: DateTime<Utc>,
) -> Map {
    let local = now.with_timezone(&zone);
    let date = local.date_naive();
    let mut input = Map::new();
    input.insert("contact".into(), Dynamic::from_map(contact_facts(contact)));
    input.insert("place".into(), world.place_facts(&contact.place));
    input.insert("date".into(), text(format_iso_date(date)));
    input.insert(
        "time".into(),
        text(format!("{:02}:{:02}", local.hour(), local.minute())),
    );
    input.insert(
        "weekday".into(),
        WEEKDAYS[date.weekday().num_days_from_monday() as usize].clone(),
    );
    input.insert("workflow".into(), text(workflow));
    input.insert("attempt".into(), Dynamic::from_int(attempt));
    input.insert(
        "now".into(),
        text(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    input
}

/// The input of `milestone_overdue` for the `check`-th look at an overdue milestone.
pub fn milestone_input(
    world: &World,
    plan: &Plan,
    milestone: &Milestone,
    status: MilestoneStatus,
    check: u32,
    now: DateTime<Utc>,
) -> Map {
    let def = &plan.definition;
    let mut plan_facts = Map::new();
    plan_facts.insert("id".into(), text(&def.id));
    plan_facts.insert("title".into(), text(&def.title));
    plan_facts.insert("place".into(), text(&def.place));
    let mut owner = Map::new();
    owner.insert(
        "role".into(),
        milestone.owner.role.as_deref().map_or(Dynamic::UNIT, text),
    );
    owner.insert(
        "place".into(),
        text(milestone.owner.place.as_deref().unwrap_or(&def.place)),
    );
    owner.insert(
        "contacts".into(),
        Dynamic::from_array(milestone.owner.contacts.iter().map(text).collect()),
    );
    let ids = |list: Vec<&str>| Dynamic::from_array(list.into_iter().map(text).collect());
    let mut facts = Map::new();
    facts.insert("id".into(), text(&milestone.id));
    facts.insert("title".into(), text(&milestone.title));
    facts.insert("due".into(), text(format_iso_date(milestone.due)));
    facts.insert(
        "start".into(),
        milestone
            .start
            .map_or(Dynamic::UNIT, |d| text(format_iso_date(d))),
    );
    facts.insert("status".into(), text(status.as_str()));
    facts.insert(
        "days_late".into(),
        Dynamic::from_int(plan.days_late(milestone, now)),
    );
    facts.insert("check".into(), Dynamic::from_int(i64::from(check)));
    facts.insert("owner".into(), Dynamic::from_map(owner));
    facts.insert(
        "depends_on".into(),
        ids(milestone.depends_on.iter().map(String::as_str).collect()),
    );
    facts.insert(
        "dependants".into(),
        ids(plan
            .dependants(&milestone.id)
            .map(|m| m.id.as_str())
            .collect()),
    );
    let mut input = Map::new();
    input.insert("plan".into(), Dynamic::from_map(plan_facts));
    input.insert("place".into(), world.place_facts(&def.place));
    input.insert("milestone".into(), Dynamic::from_map(facts));
    input.insert(
        "now".into(),
        text(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    input
}

/// The input of the escalation hooks for `case` on `ladder` (`deadline`: the one
/// missed, for `escalation_missed`).
pub fn case_input(
    world: &World,
    ladder: &Ladder,
    case: &Case,
    deadline: Option<&str>,
    now: DateTime<Utc>,
) -> Map {
    let def = &ladder.definition;
    let mut ladder_facts = Map::new();
    ladder_facts.insert("id".into(), text(&def.id));
    ladder_facts.insert("title".into(), text(&def.title));
    ladder_facts.insert(
        "levels".into(),
        Dynamic::from_array(def.levels.iter().map(|l| text(&l.id)).collect()),
    );
    let mut facts = Map::new();
    facts.insert("id".into(), text(&case.id));
    facts.insert("category".into(), text(&case.category));
    facts.insert("severity".into(), Dynamic::from_int(case.severity));
    facts.insert("place".into(), text(&case.place));
    facts.insert(
        "level".into(),
        ladder
            .level(case.level)
            .map_or(Dynamic::UNIT, |l| text(&l.id)),
    );
    facts.insert("state".into(), text(case.state.as_str()));
    facts.insert(
        "opened".into(),
        text(case.opened.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    facts.insert("deadline".into(), deadline.map_or(Dynamic::UNIT, text));
    let mut input = Map::new();
    input.insert("ladder".into(), Dynamic::from_map(ladder_facts));
    // `case` is a Rhai keyword: scripts read `input.dispute`.
    input.insert("dispute".into(), Dynamic::from_map(facts));
    input.insert("place".into(), world.place_facts(&case.place));
    input.insert(
        "now".into(),
        text(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    input
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fmt::Debug;

    use super::*;
    use palabre_core::diagnostic::Diagnostics;
    use palabre_lang::calendars::Calendars;
    use palabre_lang::places::Places;
    use rhai::Engine;

    const PLACES: &str = "\
version: \"test\"
regions:
  - id: mopti
    name: Mopti
    cercles:
      - id: koro
        name: Koro
        communes:
          - { id: koro, name: Koro }
          - { id: bondo, name: Bondo }
";

    /// Mopti with Koro and two communes; four roles; two templates.
    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("places.yaml");
        std::fs::write(&file, PLACES).unwrap();
        let mut diagnostics = Diagnostics::default();
        let places = Places::load(&file, &mut diagnostics);
        assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
        let set = |names: &[&str]| {
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>()
        };
        World::new(
            places,
            Calendars::default(),
            set(&["leader", "mayor", "prefect", "sub-prefect"]),
            set(&["meeting-reminder", "meeting-invitation"]),
        )
    }

    /// What a script returning `source` hands the hook.
    fn eval(engine: &Engine, source: &str) -> Dynamic {
        engine
            .eval_expression::<Dynamic>(source)
            .unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn accepts<D: Decision + PartialEq + Debug>(valid: Vec<(&str, D)>) {
        let (engine, world) = (Engine::new(), world());
        for (source, expected) in valid {
            assert_eq!(
                D::parse(eval(&engine, source), &world),
                Ok(expected),
                "{} returning {source}",
                D::HOOK.name
            );
        }
    }

    /// Each returned value is refused with an error holding every fragment given.
    fn refuses<D: Decision + Debug>(invalid: &[(&str, &[&str])]) {
        let (engine, world) = (Engine::new(), world());
        for (source, fragments) in invalid {
            match D::parse(eval(&engine, source), &world) {
                Ok(decision) => panic!(
                    "{} returning {source}: accepted as {decision:?}",
                    D::HOOK.name
                ),
                Err(error) => {
                    for fragment in *fragments {
                        assert!(
                            error.contains(fragment),
                            "{} returning {source}: {error:?} does not say {fragment:?}",
                            D::HOOK.name
                        );
                    }
                }
            }
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn group(role: Option<&str>, place: Option<&str>, contacts: &[&str]) -> RecipientGroup {
        RecipientGroup {
            role: role.map(str::to_owned),
            place: place.map(str::to_owned),
            contacts: contacts.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn offset(text: &str) -> Offset {
        text.parse().unwrap()
    }

    #[test]
    fn schedule_decisions() {
        let skip = |reason: &str| ScheduleDecision::Skip {
            reason: reason.to_owned(),
        };
        let to = |date: NaiveDate, time: Option<NaiveTime>| ScheduleDecision::Move {
            date,
            time,
            reason: "market day".to_owned(),
        };
        accepts(vec![
            ("()", ScheduleDecision::Hold),
            ("#{}", ScheduleDecision::Hold),
            ("#{ skip: \"flood\" }", skip("flood")),
            (
                "#{ skip: \"yes\", reason: \"road closed\" }",
                skip("road closed"),
            ),
            ("#{ skip: \"flood\", reason: () }", skip("flood")),
            (
                "#{ move_to: \"2025-03-12 15:00\", reason: \"market day\" }",
                to(date(2025, 3, 12), Some(time(15, 0))),
            ),
            (
                "#{ move_to: \"2025-03-12T15:00\", reason: \"market day\" }",
                to(date(2025, 3, 12), Some(time(15, 0))),
            ),
            (
                "#{ move_to: \" 2025-03-12 \", reason: \"market day\" }",
                to(date(2025, 3, 12), None),
            ),
            (
                "#{ move_to: \"2025-03-12\", skip: (), reason: \"market day\" }",
                to(date(2025, 3, 12), None),
            ),
        ]);
        refuses::<ScheduleDecision>(&[
            ("\"skip\"", &["expected () to hold", "got a string"]),
            ("true", &["got a boolean"]),
            ("42", &["got an integer"]),
            ("[]", &["got an array"]),
            (
                "#{ skp: \"flood\" }",
                &["unknown key 'skp'", "(did you mean 'skip'?)"],
            ),
            (
                "#{ moveto: \"2025-03-12\", reason: \"x\" }",
                &["unknown key 'moveto'", "(did you mean 'move_to'?)"],
            ),
            ("#{ reason: \"flood\" }", &["expected () to hold"]),
            (
                "#{ skip: \"flood\", move_to: \"2025-03-12\", reason: \"x\" }",
                &["cannot both be given"],
            ),
            ("#{ skip: \"  \" }", &["'skip' needs a reason"]),
            (
                "#{ skip: 1 }",
                &["'skip': expected a string, got an integer"],
            ),
            (
                "#{ move_to: \"12/03/2025 15:00\", reason: \"x\" }",
                &["'move_to': '12/03/2025 15:00' is not YYYY-MM-DD HH:MM or YYYY-MM-DD"],
            ),
            (
                "#{ move_to: \"2025-03-12 25:00\", reason: \"x\" }",
                &["is not YYYY-MM-DD"],
            ),
            (
                "#{ move_to: \"2025-02-30\", reason: \"x\" }",
                &["is not YYYY-MM-DD"],
            ),
            (
                "#{ move_to: \"2025-03-12 15:00:30\", reason: \"x\" }",
                &["is not YYYY-MM-DD"],
            ),
            (
                "#{ move_to: \"next monday\", reason: \"x\" }",
                &["is not YYYY-MM-DD"],
            ),
            (
                "#{ move_to: \"2025-03-12 15:00\" }",
                &["'move_to' needs a 'reason'"],
            ),
            (
                "#{ move_to: \"2025-03-12 15:00\", reason: \" \" }",
                &["needs a 'reason'"],
            ),
            (
                "#{ move_to: 20250312, reason: \"x\" }",
                &["'move_to': expected a string, got an integer"],
            ),
        ]);
    }

    #[test]
    fn invitees_decisions() {
        accepts(vec![
            ("()", InviteesDecision(vec![])),
            ("[]", InviteesDecision(vec![])),
            (
                "[\"c-0042\"]",
                InviteesDecision(vec![group(None, None, &["c-0042"])]),
            ),
            (
                "[#{ role: \"mayor\" }]",
                InviteesDecision(vec![group(Some("mayor"), None, &[])]),
            ),
            (
                "[#{ role: \"mayor\", place: \"mopti/koro\" }]",
                InviteesDecision(vec![group(Some("mayor"), Some("mopti/koro"), &[])]),
            ),
            (
                "[#{ role: \"mayor\", place: () }]",
                InviteesDecision(vec![group(Some("mayor"), None, &[])]),
            ),
            (
                "[#{ contact: \"c-1\" }]",
                InviteesDecision(vec![group(None, None, &["c-1"])]),
            ),
            (
                "[#{ role: \"leader\", contact: \"c-1\" }]",
                InviteesDecision(vec![group(Some("leader"), None, &["c-1"])]),
            ),
            (
                "[\"c-1\", #{ role: \"leader\", place: \"mopti\" }]",
                InviteesDecision(vec![
                    group(None, None, &["c-1"]),
                    group(Some("leader"), Some("mopti"), &[]),
                ]),
            ),
        ]);
        refuses::<InviteesDecision>(&[
            (
                "\"c-1\"",
                &["expected an array of contact ids", "got a string"],
            ),
            ("#{ role: \"mayor\" }", &["got a map"]),
            (
                "[1]",
                &["item 0: expected a contact id or a #{ role, place } map, got an integer"],
            ),
            (
                "[\"c-1\", #{ rol: \"mayor\" }]",
                &["item 1: unknown key 'rol'", "(did you mean 'role'?)"],
            ),
            (
                "[#{ place: \"mopti\" }]",
                &["item 0: give a 'role' or a 'contact'"],
            ),
            ("[#{}]", &["item 0: give a 'role' or a 'contact'"]),
            (
                "[#{ role: \"mayr\" }]",
                &["item 0: unknown role 'mayr'", "(did you mean 'mayor'?)"],
            ),
            ("[#{ role: \"chief\" }]", &["item 0: unknown role 'chief'"]),
            (
                "[#{ role: \"mayor\", place: \"mopti/korro\" }]",
                &[
                    "item 0: unknown place 'mopti/korro'",
                    "(did you mean 'mopti/koro'?)",
                ],
            ),
            (
                "[#{ contact: \"c-1\", place: \"bamako\" }]",
                &["unknown place 'bamako'"],
            ),
            (
                "[#{ role: 3 }]",
                &["item 0: 'role': expected a string, got an integer"],
            ),
        ]);
    }

    #[test]
    fn quorum_decisions() {
        let quorum = |reached: bool, reason: &str| QuorumDecision {
            reached,
            reason: reason.to_owned(),
        };
        accepts(vec![
            ("true", quorum(true, "")),
            ("false", quorum(false, "")),
            (
                "#{ reached: true, reason: \"7 of 10\" }",
                quorum(true, "7 of 10"),
            ),
            ("#{ reached: false }", quorum(false, "")),
            ("#{ reached: true, reason: () }", quorum(true, "")),
        ]);
        refuses::<QuorumDecision>(&[
            ("()", &["expected true, false or", "got ()"]),
            ("1", &["got an integer"]),
            ("\"yes\"", &["got a string"]),
            ("#{ reason: \"x\" }", &["'reached' is missing"]),
            ("#{ reached: \"yes\" }", &["'reached': expected a boolean"]),
            ("#{ reached: 1 }", &["'reached': expected a boolean"]),
            (
                "#{ reachd: true }",
                &["unknown key 'reachd'", "(did you mean 'reached'?)"],
            ),
            (
                "#{ reached: true, reason: 5 }",
                &["'reason': expected a string, got an integer"],
            ),
        ]);
    }

    #[test]
    fn quorum_fallback_needs_more_than_half() {
        // (invited, yes, reached)
        let table = [
            (0, 0, false),
            (1, 0, false),
            (1, 1, true),
            (2, 1, false),
            (3, 2, true),
            (4, 2, false),
            (4, 3, true),
            (10, 5, false),
            (10, 6, true),
        ];
        for (invited, yes, reached) in table {
            let mut input = Map::new();
            input.insert("invited".into(), Dynamic::from_int(invited));
            input.insert("yes".into(), Dynamic::from_int(yes));
            input.insert("no".into(), Dynamic::from_int(invited - yes));
            assert_eq!(
                QuorumDecision::fallback(&input),
                QuorumDecision {
                    reached,
                    reason: format!("{yes} of {invited} invited confirmed; more than half needed"),
                },
                "{yes} of {invited}"
            );
        }
        // Counts missing or not integers count as 0.
        let mut odd = Map::new();
        odd.insert("invited".into(), Dynamic::from("3"));
        odd.insert("yes".into(), Dynamic::from_int(2));
        assert!(!QuorumDecision::fallback(&odd).reached);
        assert!(!QuorumDecision::fallback(&Map::new()).reached);
    }

    #[test]
    fn reminders_decisions() {
        let reminder = |at: &str, template: &str, channels: &[Channel]| ExtraReminder {
            at: offset(at),
            template: template.to_owned(),
            channels: channels.to_vec(),
        };
        let both = [Channel::Sms, Channel::Email];
        accepts(vec![
            ("()", RemindersDecision(vec![])),
            ("[]", RemindersDecision(vec![])),
            (
                "[#{ at: \"-3h\" }]",
                RemindersDecision(vec![reminder("-3h", "meeting-reminder", &both)]),
            ),
            (
                "[#{ at: \"-1d\", template: \"meeting-invitation\", channels: [\"email\"] }]",
                RemindersDecision(vec![reminder(
                    "-1d",
                    "meeting-invitation",
                    &[Channel::Email],
                )]),
            ),
            (
                "[#{ at: \"-30m\", template: (), channels: [\"email\", \"sms\"] }]",
                RemindersDecision(vec![reminder(
                    "-30m",
                    "meeting-reminder",
                    &[Channel::Email, Channel::Sms],
                )]),
            ),
            // the same instant twice, however written: the first is kept
            (
                "[#{ at: \"-180m\" }, #{ at: \"-3h\", channels: [\"sms\"] }, #{ at: \"-1d\" }]",
                RemindersDecision(vec![
                    reminder("-3h", "meeting-reminder", &both),
                    reminder("-1d", "meeting-reminder", &both),
                ]),
            ),
        ]);
        refuses::<RemindersDecision>(&[
            (
                "#{ at: \"-3h\" }",
                &[
                    "expected an array of #{ at, template, channels } maps",
                    "got a map",
                ],
            ),
            ("\"-3h\"", &["got a string"]),
            (
                "[\"-3h\"]",
                &["item 0: expected a #{ at, template, channels } map, got a string"],
            ),
            (
                "[#{ template: \"meeting-reminder\" }]",
                &["item 0: 'at' is missing"],
            ),
            ("[#{ at: () }]", &["item 0: 'at' is missing"]),
            (
                "[#{ at: \"3h\" }]",
                &["item 0: 'at' is +3h", "a reminder comes before the meeting"],
            ),
            (
                "[#{ at: \"+1d\" }]",
                &["a reminder comes before the meeting"],
            ),
            (
                "[#{ at: \"0\" }]",
                &["'at' is 0", "a reminder comes before the meeting"],
            ),
            (
                "[#{ at: \"-3x\" }]",
                &["item 0: 'at': '-3x' is not an offset"],
            ),
            (
                "[#{ at: \"-3\" }]",
                &["item 0: 'at': '-3' is not an offset"],
            ),
            ("[#{ at: \"\" }]", &["item 0: 'at': empty offset"]),
            (
                "[#{ at: \"-400d\" }]",
                &["item 0: 'at': offset '-400d' is too large"],
            ),
            (
                "[#{ at: -3 }]",
                &["item 0: 'at': expected a string, got an integer"],
            ),
            (
                "[#{ at: \"-3h\", template: \"meeting-remider\" }]",
                &[
                    "item 0: unknown template 'meeting-remider'",
                    "(did you mean 'meeting-reminder'?)",
                ],
            ),
            (
                "[#{ at: \"-3h\", channels: [\"fax\"] }]",
                &["item 0: 'channels': unknown channel 'fax' (sms or email)"],
            ),
            (
                "[#{ at: \"-3h\", channels: [\"SMS\"] }]",
                &["unknown channel 'SMS'"],
            ),
            (
                "[#{ at: \"-3h\", channels: [1] }]",
                &["'channels': unknown channel"],
            ),
            (
                "[#{ at: \"-3h\", channels: \"sms\" }]",
                &["item 0: 'channels': expected an array of channel names, got a string"],
            ),
            (
                "[#{ at: \"-3h\", chanels: [\"sms\"] }]",
                &[
                    "item 0: unknown key 'chanels'",
                    "(did you mean 'channels'?)",
                ],
            ),
            (
                "[#{ at: \"-3h\" }, #{ at: \"2h\" }]",
                &["item 1: 'at' is +2h"],
            ),
        ]);
    }

    #[test]
    fn reminders_refuse_an_empty_channel_list() {
        refuses::<RemindersDecision>(&[("[#{ at: \"-3h\", channels: [] }]", &["channels"])]);
    }

    #[test]
    fn overdue_decisions() {
        let reason = |r: &str| r.to_owned();
        accepts(vec![
            (
                "#{ action: \"remind\" }",
                OverdueDecision::Remind { reason: reason("") },
            ),
            (
                "#{ action: \"remind\", reason: \"late\" }",
                OverdueDecision::Remind {
                    reason: reason("late"),
                },
            ),
            (
                "#{ action: \"wait\", reason: \"rainy season\" }",
                OverdueDecision::Wait {
                    reason: reason("rainy season"),
                },
            ),
            (
                "#{ action: \"escalate\", to: #{ role: \"prefect\", place: \"mopti/koro\" }, reason: \"3 weeks late\" }",
                OverdueDecision::Escalate {
                    to: group(Some("prefect"), Some("mopti/koro"), &[]),
                    reason: reason("3 weeks late"),
                },
            ),
            (
                "#{ action: \"escalate\", to: #{ role: \"prefect\" } }",
                OverdueDecision::Escalate {
                    to: group(Some("prefect"), None, &[]),
                    reason: reason(""),
                },
            ),
            (
                "#{ action: \"escalate\", to: \"c-7\" }",
                OverdueDecision::Escalate {
                    to: group(None, None, &["c-7"]),
                    reason: reason(""),
                },
            ),
            (
                "#{ action: \"escalate\", to: #{ contact: \"c-7\" } }",
                OverdueDecision::Escalate {
                    to: group(None, None, &["c-7"]),
                    reason: reason(""),
                },
            ),
        ]);
        refuses::<OverdueDecision>(&[
            (
                "()",
                &[
                    "expected #{ action: \"remind\" | \"escalate\" | \"wait\"",
                    "got ()",
                ],
            ),
            ("\"remind\"", &["got a string"]),
            ("#{}", &["'action' is missing"]),
            ("#{ reason: \"x\" }", &["'action' is missing"]),
            ("#{ action: \"ping\" }", &["unknown action 'ping'"]),
            ("#{ action: \"Remind\" }", &["unknown action 'Remind'"]),
            (
                "#{ action: 1 }",
                &["'action': expected a string, got an integer"],
            ),
            (
                "#{ acton: \"remind\" }",
                &["unknown key 'acton'", "(did you mean 'action'?)"],
            ),
            ("#{ action: \"escalate\" }", &["'escalate' needs 'to'"]),
            (
                "#{ action: \"escalate\", to: #{ role: \"prefet\" } }",
                &["'to': unknown role 'prefet' (did you mean 'prefect'?)"],
            ),
            (
                "#{ action: \"escalate\", to: #{ role: \"prefect\", place: \"mopti/kor\" } }",
                &["'to': unknown place 'mopti/kor'"],
            ),
            (
                "#{ action: \"escalate\", to: #{ place: \"mopti\" } }",
                &["'to': give a 'role' or a 'contact'"],
            ),
            (
                "#{ action: \"escalate\", to: #{ rol: \"prefect\" } }",
                &["'to': unknown key 'rol'", "(did you mean 'role'?)"],
            ),
            (
                "#{ action: \"escalate\", to: 5 }",
                &["'to': expected a contact id", "got an integer"],
            ),
            (
                "#{ action: \"escalate\", to: [] }",
                &["'to': expected a contact id", "got an array"],
            ),
            (
                "#{ action: \"wait\", reason: 3 }",
                &["'reason': expected a string"],
            ),
        ]);
    }

    #[test]
    fn entry_decisions() {
        let entry = |level: Option<&str>, reason: &str| EntryDecision {
            level: level.map(str::to_owned),
            reason: reason.to_owned(),
        };
        accepts(vec![
            ("()", entry(None, "")),
            ("#{}", entry(None, "")),
            (
                "#{ level: \"prefet\", reason: \"severity 3\" }",
                entry(Some("prefet"), "severity 3"),
            ),
            ("#{ level: \"prefet\" }", entry(Some("prefet"), "")),
            ("#{ level: (), reason: \"minor\" }", entry(None, "minor")),
        ]);
        refuses::<EntryDecision>(&[
            ("\"prefet\"", &["expected () or #{ level: ", "got a string"]),
            ("[]", &["got an array"]),
            ("1", &["got an integer"]),
            (
                "#{ levl: \"prefet\" }",
                &["unknown key 'levl'", "(did you mean 'level'?)"],
            ),
            (
                "#{ level: 2 }",
                &["'level': expected a string, got an integer"],
            ),
            (
                "#{ level: \"prefet\", reason: true }",
                &["'reason': expected a string, got a boolean"],
            ),
        ]);
    }

    #[test]
    fn deadlines_decisions() {
        let deadlines = |acknowledge: Option<&str>, resolve: Option<&str>| DeadlinesDecision {
            acknowledge: acknowledge.map(offset),
            resolve: resolve.map(offset),
        };
        accepts(vec![
            ("()", deadlines(None, None)),
            ("#{}", deadlines(None, None)),
            ("#{ acknowledge: \"2h\" }", deadlines(Some("2h"), None)),
            ("#{ resolve: \"1d\" }", deadlines(None, Some("1d"))),
            (
                "#{ acknowledge: \"+4h\", resolve: \"1d12h\" }",
                deadlines(Some("4h"), Some("36h")),
            ),
            (
                "#{ acknowledge: (), resolve: \"2d\" }",
                deadlines(None, Some("2d")),
            ),
        ]);
        refuses::<DeadlinesDecision>(&[
            (
                "\"2h\"",
                &[
                    "expected () or #{ acknowledge: \"4h\", resolve: \"2d\" }",
                    "got a string",
                ],
            ),
            ("[\"2h\"]", &["got an array"]),
            (
                "#{ acknowledge: \"-2h\" }",
                &["'acknowledge': -2h is not a positive duration"],
            ),
            (
                "#{ resolve: \"0\" }",
                &["'resolve': 0 is not a positive duration"],
            ),
            (
                "#{ resolve: \"2 days\" }",
                &["'resolve': '2 days' is not an offset"],
            ),
            (
                "#{ resolve: \"12h1d\" }",
                &["'resolve': '12h1d' is not an offset"],
            ),
            ("#{ resolve: \"\" }", &["'resolve': empty offset"]),
            (
                "#{ acknowledge: 2 }",
                &["'acknowledge': expected a string, got an integer"],
            ),
            (
                "#{ acknowlege: \"2h\" }",
                &["unknown key 'acknowlege'", "(did you mean 'acknowledge'?)"],
            ),
            (
                "#{ acknowledge: \"2h\", escalate: true }",
                &["unknown key 'escalate'"],
            ),
        ]);
    }

    #[test]
    fn missed_decisions() {
        let missed = |climb: u32, reason: &str| MissedDecision {
            climb,
            reason: reason.to_owned(),
        };
        accepts(vec![
            ("#{ climb: 1 }", missed(1, "")),
            ("#{ climb: 0, reason: \"stay\" }", missed(0, "stay")),
            (
                "#{ climb: 3, reason: \"severity 3\" }",
                missed(3, "severity 3"),
            ),
        ]);
        refuses::<MissedDecision>(&[
            ("()", &["expected #{ climb: 1, reason: \"...\" }", "got ()"]),
            ("1", &["got an integer"]),
            ("#{}", &["'climb' is missing"]),
            ("#{ reason: \"x\" }", &["'climb' is missing"]),
            ("#{ climb: -1 }", &["'climb' is -1: 0 or more"]),
            ("#{ climb: 5000000000 }", &["'climb' is 5000000000"]),
            ("#{ climb: \"1\" }", &["'climb': expected an integer"]),
            ("#{ climb: 1.0 }", &["'climb': expected an integer"]),
            ("#{ climb: () }", &["'climb': expected an integer"]),
            (
                "#{ clime: 1 }",
                &["unknown key 'clime'", "(did you mean 'climb'?)"],
            ),
            (
                "#{ climb: 1, reason: 2 }",
                &["'reason': expected a string, got an integer"],
            ),
        ]);
    }

    /// The default a script's `parent()` gets at the top is the fallback itself.
    fn default_is_fallback<D: Decision + PartialEq + Debug>(input: &Map) {
        assert_eq!(
            D::parse(D::default_value(input), &world()),
            Ok(D::fallback(input)),
            "{}",
            D::HOOK.name
        );
    }

    #[test]
    fn every_default_value_parses_to_its_fallback() {
        let mut inputs = vec![Map::new()];
        for (invited, yes) in [(4, 3), (4, 2)] {
            let mut input = Map::new();
            input.insert("invited".into(), Dynamic::from_int(invited));
            input.insert("yes".into(), Dynamic::from_int(yes));
            inputs.push(input);
        }
        for input in &inputs {
            default_is_fallback::<ScheduleDecision>(input);
            default_is_fallback::<InviteesDecision>(input);
            default_is_fallback::<QuorumDecision>(input);
            default_is_fallback::<RemindersDecision>(input);
            default_is_fallback::<OverdueDecision>(input);
            default_is_fallback::<EntryDecision>(input);
            default_is_fallback::<DeadlinesDecision>(input);
            default_is_fallback::<MissedDecision>(input);
        }
        // The fallbacks the reference describes.
        let none = Map::new();
        assert_eq!(ScheduleDecision::fallback(&none), ScheduleDecision::Hold);
        assert_eq!(InviteesDecision::fallback(&none), InviteesDecision(vec![]));
        assert_eq!(
            RemindersDecision::fallback(&none),
            RemindersDecision(vec![])
        );
        assert!(matches!(
            OverdueDecision::fallback(&none),
            OverdueDecision::Remind { .. }
        ));
        assert_eq!(EntryDecision::fallback(&none).level, None);
        assert_eq!(
            DeadlinesDecision::fallback(&none),
            DeadlinesDecision {
                acknowledge: None,
                resolve: None
            }
        );
        assert_eq!(MissedDecision::fallback(&none).climb, 1);
        assert!(QuorumDecision::fallback(&inputs[1]).reached);
        assert!(!QuorumDecision::fallback(&inputs[2]).reached);
    }

    #[test]
    fn every_decision_names_its_hook() {
        let names = [
            ScheduleDecision::HOOK.name,
            InviteesDecision::HOOK.name,
            QuorumDecision::HOOK.name,
            RemindersDecision::HOOK.name,
            OverdueDecision::HOOK.name,
            EntryDecision::HOOK.name,
            DeadlinesDecision::HOOK.name,
            MissedDecision::HOOK.name,
        ];
        assert_eq!(
            names,
            [
                "meeting_schedule",
                "meeting_invitees",
                "meeting_quorum",
                "meeting_reminders",
                "milestone_overdue",
                "escalation_entry",
                "escalation_deadlines",
                "escalation_missed",
            ]
        );
        for name in names {
            assert_eq!(spec(name).map(|s| s.name), Some(name));
        }
        assert!(spec("meeting_agenda").is_none());
    }
}
