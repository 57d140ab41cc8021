//! Rule tests written by administrators: YAML cases beside the scripts, each an
//! input and the decision expected, run by `palabre test`.
//!
//! A case file is named after the script it exercises (`mopti.test.yaml` beside
//! `mopti.rhai`) and asks its hooks at that place unless a case names another
//! one. The expected decision is written the way a rule returns it, and goes
//! through the same check, so a case cannot expect something no rule could say.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hooks::{self, Decision, MeetingFacts};
use super::{
    CallTimeDecision, DeadlinesDecision, EntryDecision, InviteesDecision, MissedDecision, NATIONAL,
    OverdueDecision, QuorumDecision, RemindersDecision, Rules, ScheduleDecision,
};
use palabre_core::channel::Channel;
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};
use palabre_lang::contacts::Contact;
use palabre_lang::recurrence::parse_time_zone;
use palabre_lang::yaml;

/// The suffix of case files.
pub const CASES_SUFFIX: &str = ".test.yaml";

fn nine() -> String {
    "09:00".to_owned()
}

fn french() -> String {
    "fra".to_owned()
}

fn no_response() -> String {
    "none".to_owned()
}

/// A participant of a case.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseParticipant {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub place: String,
    #[serde(default = "french")]
    pub language: String,
    /// `yes`, `no` or `none` (for the quorum hook).
    #[serde(default = "no_response")]
    pub response: String,
}

/// One rule test.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleCase {
    /// What the case checks, as the report names it.
    pub name: String,
    /// The hook asked: `meeting_schedule`, `meeting_invitees`, `meeting_quorum`,
    /// `meeting_reminders`, `milestone_overdue`, `escalation_entry`,
    /// `escalation_deadlines`, `escalation_missed`.
    pub hook: String,
    /// Ask this function instead of the hook's own name (as a workflow's `rules:` may).
    #[serde(default)]
    pub function: Option<String>,
    /// Where the hook is asked; default: the place the file is named after.
    #[serde(default)]
    pub place: Option<String>,
    /// The occurrence's local date.
    pub date: NaiveDate,
    /// The occurrence's local time, `HH:MM`. Default `09:00`.
    #[serde(default = "nine")]
    pub time: String,
    /// Default `Africa/Bamako`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The engine's clock; default: seven days before the occurrence.
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    /// The participants (invitees and quorum hooks); also the directory
    /// `contacts_with_role` reads.
    #[serde(default)]
    pub participants: Vec<CaseParticipant>,
    /// Fields merged into the hook's input over the common ones, maps key by key:
    /// what the milestone and escalation hooks read (`milestone: { days_late: 20 }`,
    /// `dispute: { category: violence, severity: 4 }`).
    #[serde(default)]
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The decision expected, written as a rule returns it (`~` holds a meeting).
    #[serde(default)]
    pub expect: serde_json::Value,
    /// Expect a rule error containing this text instead of a decision.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// A case file: a list of cases.
pub type CaseFile = Vec<RuleCase>;

/// Why a case failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    pub expected: String,
    pub got: String,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    /// `None` when the case passed.
    pub failure: Option<CaseFailure>,
}

/// Every case file at or below `path` (a file or a folder).
fn case_files(path: &Path, diagnostics: &mut Diagnostics) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    palabre_lang::files::yaml_files(path, diagnostics)
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(CASES_SUFFIX))
        .collect()
}

/// The place a case file is named after (`rules/mopti/koro.test.yaml` → `mopti/koro`).
fn place_of_file(rules: &Rules, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(&rules.root).ok()?;
    let text = relative.to_string_lossy().replace('\\', "/");
    let place = text.strip_suffix(CASES_SUFFIX)?;
    (place != NATIONAL).then(|| place.to_owned())
}

/// Runs every case at or below `path`; problems reading the files go to `diagnostics`.
pub fn run_cases(rules: &Rules, path: &Path, diagnostics: &mut Diagnostics) -> Vec<CaseReport> {
    let mut reports = Vec::new();
    for file in case_files(path, diagnostics) {
        let parsed = match yaml::parse_file::<CaseFile>(&file) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                continue;
            }
        };
        let default_place = place_of_file(rules, &file);
        for (i, case) in parsed.value.iter().enumerate() {
            let located = parsed.map.value(&format!("[{i}]"));
            let failure = match run_case(rules, case, default_place.as_deref()) {
                Ok(outcome) => outcome,
                Err(problem) => {
                    let at = parsed.map.value(&format!("[{i}].{}", problem.field));
                    diagnostics.push(yaml::problem(
                        &file,
                        &parsed.text,
                        at,
                        problem.message.clone(),
                    ));
                    Some(CaseFailure {
                        expected: "a valid case".to_owned(),
                        got: problem.message,
                    })
                }
            };
            reports.push(CaseReport {
                file: file.clone(),
                line: located.position.line,
                name: case.name.clone(),
                failure,
            });
        }
    }
    if reports.is_empty() && !diagnostics.has_errors() && !path.exists() {
        diagnostics.push(Diagnostic::error(
            path,
            Position::START,
            "no such file or folder",
        ));
    }
    reports
}

/// A mistake in the case itself (not in the rule), with the field it is in.
struct CaseProblem {
    field: &'static str,
    message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> CaseProblem {
    CaseProblem {
        field,
        message: message.into(),
    }
}

fn run_case(
    rules: &Rules,
    case: &RuleCase,
    default_place: Option<&str>,
) -> Result<Option<CaseFailure>, CaseProblem> {
    let place = case
        .place
        .as_deref()
        .or(default_place)
        .ok_or_else(|| problem("name", "national cases must name a 'place'"))?;
    if rules.world.places.get(place).is_none() {
        return Err(problem("place", rules.world.places.unknown_message(place)));
    }
    let zone = parse_time_zone(case.timezone.as_deref().unwrap_or("Africa/Bamako"))
        .map_err(|e| problem("timezone", e.to_string()))?;
    let time = NaiveTime::parse_from_str(&case.time, "%H:%M")
        .map_err(|_| problem("time", format!("'{}' is not HH:MM", case.time)))?;
    let start = case
        .date
        .and_time(time)
        .and_local_timezone(zone)
        .earliest()
        .ok_or_else(|| problem("time", "this local time does not exist in the time zone"))?
        .with_timezone(&Utc);
    let now = case.now.unwrap_or(start - TimeDelta::days(7));
    let contacts: Vec<Contact> = case
        .participants
        .iter()
        .map(|p| Contact {
            id: p.id.clone(),
            name: p.name.clone(),
            roles: p.roles.clone(),
            place: if p.place.is_empty() {
                place.to_owned()
            } else {
                p.place.clone()
            },
            phone: None,
            email: None,
            language: p.language.clone(),
            channels: Channel::ALL.to_vec(),
        })
        .collect();
    let directory = Arc::new(contacts.clone());
    let facts = MeetingFacts::new("rule-test", &case.name, place, "", zone);
    let mut input = hooks::meeting_input(&rules.world, &facts, start, now);
    for (key, value) in &case.input {
        let value = rhai::serde::to_dynamic(value)
            .map_err(|e| problem("input", format!("cannot read '{key}': {e}")))?;
        merge(&mut input, key, value);
    }
    let function = case.function.as_deref();
    match case.hook.as_str() {
        "meeting_schedule" => {
            check::<ScheduleDecision>(rules, case, place, function, input, &directory)
        }
        "meeting_invitees" => {
            let input = hooks::with_participants(input, &contacts);
            check::<InviteesDecision>(rules, case, place, function, input, &directory)
        }
        "meeting_quorum" => {
            let responses = contacts
                .iter()
                .zip(&case.participants)
                .map(|(c, p)| (c, p.response.as_str()));
            let input = hooks::with_responses(input, responses);
            check::<QuorumDecision>(rules, case, place, function, input, &directory)
        }
        "meeting_reminders" => {
            check::<RemindersDecision>(rules, case, place, function, input, &directory)
        }
        "milestone_overdue" => {
            check::<OverdueDecision>(rules, case, place, function, input, &directory)
        }
        "escalation_entry" => {
            check::<EntryDecision>(rules, case, place, function, input, &directory)
        }
        "escalation_deadlines" => {
            check::<DeadlinesDecision>(rules, case, place, function, input, &directory)
        }
        "escalation_missed" => {
            check::<MissedDecision>(rules, case, place, function, input, &directory)
        }
        "call_time" => check::<CallTimeDecision>(rules, case, place, function, input, &directory),
        other => Err(problem(
            "hook",
            format!(
                "unknown hook '{other}'{}",
                palabre_core::suggest::did_you_mean(other, super::HOOKS.iter().map(|h| h.name))
            ),
        )),
    }
}

/// Puts `value` at `key` in `map`; two maps are merged key by key, all the way down.
fn merge(map: &mut rhai::Map, key: &str, value: rhai::Dynamic) {
    let existing = map.get_mut(key).filter(|v| v.is_map());
    match (existing, value.is_map()) {
        (Some(existing), true) => {
            if let (Some(mut inner), Some(new)) = (
                existing.write_lock::<rhai::Map>(),
                value.try_cast::<rhai::Map>(),
            ) {
                for (k, v) in new {
                    merge(&mut inner, &k, v);
                }
            }
        }
        _ => {
            map.insert(key.into(), value);
        }
    }
}

fn shown<D: Serialize>(decision: &D, by: Option<&str>) -> String {
    let json = serde_json::to_string(decision).unwrap_or_default();
    match by {
        Some(script) => format!("{json} (answered by {script})"),
        None => format!("{json} (the built-in default)"),
    }
}

fn check<D: Decision + PartialEq>(
    rules: &Rules,
    case: &RuleCase,
    place: &str,
    function: Option<&str>,
    input: rhai::Map,
    directory: &Arc<Vec<Contact>>,
) -> Result<Option<CaseFailure>, CaseProblem> {
    let answer = rules.ask::<D>(place, function, input, directory);
    if let Some(wanted) = &case.expect_error {
        return Ok(match &answer.failure {
            Some(error) if error.to_string().contains(wanted.as_str()) => None,
            Some(error) => Some(CaseFailure {
                expected: format!("a rule error containing '{wanted}'"),
                got: error.to_string(),
            }),
            None => Some(CaseFailure {
                expected: format!("a rule error containing '{wanted}'"),
                got: shown(&answer.decision, answer.by.as_deref()),
            }),
        });
    }
    let value = rhai::serde::to_dynamic(&case.expect)
        .map_err(|e| problem("expect", format!("cannot read the expected value: {e}")))?;
    let expected = D::parse(value, &rules.world)
        .map_err(|e| problem("expect", format!("no rule could return this: {e}")))?;
    if let Some(error) = answer.failure {
        return Ok(Some(CaseFailure {
            expected: shown(&expected, None).replace(" (the built-in default)", ""),
            got: format!("rule error: {error}"),
        }));
    }
    Ok((answer.decision != expected).then(|| CaseFailure {
        expected: serde_json::to_string(&expected).unwrap_or_default(),
        got: shown(&answer.decision, answer.by.as_deref()),
    }))
}
