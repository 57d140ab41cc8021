//! Loading and validating a workflows folder into typed, checked definitions.
//!
//! A workflows folder holds `places.yaml` (the map), `roles.yaml` (the roles
//! contacts can hold), `templates/*.yaml` (message texts) and, anywhere else
//! below it, workflow files. [`Definitions::load`] reads all of it and checks
//! everything that can be checked without the contact directory: syntax, types,
//! unknown fields, duplicate keys and ids, places, time zones, recurrences,
//! offsets, templates (they must render against a sample), roles. Every problem
//! of the run is collected, not only the first. [`Definitions::check_directory`]
//! adds the checks that need the directory (contact ids exist, groups are not
//! empty).
//!
//! A meeting whose recurrence is so frequent that one occurrence's steps overlap
//! more than [`MAX_OCCURRENCES_PER_WINDOW`] other occurrences cannot be planned
//! and is refused; [`Definitions::crowded_meetings`] warns about those that need
//! more than one planning pass to fill the horizon.
//!
//! [`Definitions::calendars_ending`] tells which calendars' dates end within 90
//! days (`CALENDAR_NOTICE_DAYS`) of a day the caller gives (this crate reads no
//! clock): after their last date, the rules and working time know no holiday.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::memo::ReminderMemo;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use palabre_core::channel::Channel;
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};
use palabre_core::rule_function::RuleFunction;
use palabre_core::suggest::did_you_mean;
use palabre_lang::calendars::{CalendarEnd, Calendars, format_iso_date};
use palabre_lang::calls::Calls;
use palabre_lang::contacts::Contact;
use palabre_lang::escalation::{EscalationWorkflow, Ladder};
use palabre_lang::files::yaml_files;
use palabre_lang::meeting::{KINDS, KindProbe, MeetingWorkflow, RecipientGroup, RolesFile};
use palabre_lang::milestones::{MilestonePlan, Plan, find_cycle};
use palabre_lang::places::{Places, is_slug};
use palabre_lang::recurrence::{Recurrence, parse_time_zone};
use palabre_lang::reply_words::Replies;
use palabre_lang::retention::Retention;
use palabre_lang::source_map::SourceMap;
use palabre_lang::templates::{MessageContext, Templates};
use palabre_lang::voice::{AUDIO_DIR, Audio, Keypad};
use palabre_lang::yaml;
use palabre_rules::{
    Decision, HOOKS, Limits, MeetingFacts, RULES_DIR, RemindersDecision, Rules, World,
};

/// Files and folders of a workflows folder that are not workflows.
const PLACES_FILE: &str = "places.yaml";
const ROLES_FILE: &str = "roles.yaml";
const TEMPLATES_DIR: &str = "templates";
const CALENDARS_DIR: &str = "calendars";
const REPLIES_FILE: &str = "replies.yaml";
const RETENTION_FILE: &str = "retention.yaml";
const CALLS_FILE: &str = "calls.yaml";

/// The template sent to a level's responders when a case reaches them.
pub const CASE_TEMPLATE: &str = "case-assigned";

/// The templates milestone plans send.
pub const MILESTONE_TEMPLATES: [&str; 4] = [
    "milestone-reminder",
    "milestone-overdue",
    "milestone-escalated",
    "milestone-slipped",
];

/// The most occurrences of one workflow one planning window holds; a recurrence
/// every second over a year is a mistake, not a plan.
pub const MAX_OCCURRENCES_PER_WINDOW: usize = 20_000;

/// How long before a meeting a rule's extra reminder may come.
pub const MAX_RULE_REMINDER_LEAD: TimeDelta = TimeDelta::days(30);

/// How far from its start an occurrence's steps may fall: the workflow's own
/// steps, and, when it has a `meeting_reminders` rule, the reminders the rule may
/// add (up to [`MAX_RULE_REMINDER_LEAD`] before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReach {
    /// The earliest offset from the start (negative: before it).
    pub earliest: TimeDelta,
    /// The latest offset from the start.
    pub latest: TimeDelta,
    /// Whether a `meeting_reminders` rule along the place may add steps.
    pub rule_reminders: bool,
}

impl StepReach {
    /// The reach of `definition`'s steps, and of its rule's when `rule_reminders`.
    pub fn of(definition: &MeetingWorkflow, rule_reminders: bool) -> StepReach {
        let offsets = || definition.steps.iter().map(|s| s.at.as_delta());
        let rule_lead = if rule_reminders {
            -MAX_RULE_REMINDER_LEAD
        } else {
            TimeDelta::zero()
        };
        StepReach {
            earliest: offsets().min().unwrap_or_default().min(rule_lead),
            latest: offsets().max().unwrap_or_default(),
            rule_reminders,
        }
    }
}

/// How many occurrences `recurrence` has in a stretch of `length`, counted up to
/// `limit` (a fixed stretch: the recurrence's density, not a date's).
fn occurrences_in(recurrence: &Recurrence, length: TimeDelta, limit: usize) -> usize {
    let from = DateTime::<Utc>::UNIX_EPOCH;
    recurrence.between(from, from + length, limit).len()
}

/// What a step sending `template` is, when that is something sent before the
/// meeting (an invitation, a reminder): a positive offset would send it late.
fn sent_before_the_start(template: &str) -> Option<&'static str> {
    if template.contains("invitation") {
        Some("an invitation")
    } else if template.contains("reminder") {
        Some("a reminder")
    } else {
        None
    }
}

/// A duration in days, hours or minutes, whichever reads best.
fn span_text(span: TimeDelta) -> String {
    match span {
        s if s.num_days() >= 2 => format!("{} days", s.num_days()),
        s if s.num_hours() >= 2 => format!("{} hours", s.num_hours()),
        s => format!("{} minutes", s.num_minutes().max(1)),
    }
}

/// A meeting workflow that passed validation, with what it was compiled to.
#[derive(Debug)]
pub struct Meeting {
    pub definition: MeetingWorkflow,
    pub recurrence: Recurrence,
    /// How far from a start its steps may fall.
    pub reach: StepReach,
    /// What its rules are told about it, built once.
    pub facts: MeetingFacts,
    pub file: PathBuf,
    text: String,
    map: SourceMap,
}

impl Meeting {
    fn problem(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        yaml::problem(&self.file, &self.text, self.map.value(path), message)
    }
}

/// Everything loaded from a workflows folder.
#[derive(Debug, Default)]
pub struct Definitions {
    pub root: PathBuf,
    pub places: Places,
    pub roles: BTreeSet<String>,
    pub templates: Templates,
    /// The compiled rule scripts, with the calendars they read.
    pub rules: Rules,
    pub meetings: Vec<Meeting>,
    /// Milestone plans (`kind: milestones`).
    pub plans: Vec<Plan>,
    /// Escalation ladders (`kind: escalation`).
    pub ladders: Vec<Ladder>,
    /// The words SMS replies are read with.
    pub replies: Replies,
    /// What the reminders rules decided for this snapshot so far.
    pub reminders: ReminderMemo,
    /// How long texts that can identify people are kept (`retention.yaml`).
    pub retention: Retention,
    /// The recordings calls are assembled from (`audio/<language>/<clip>.wav`).
    pub audio: Audio,
    /// When leaders may be called (`calls.yaml`).
    pub calls: Calls,
}

/// A milestone plan that passed validation, with what locates its problems.
struct LoadedPlan {
    plan: Plan,
    text: String,
    map: SourceMap,
}

/// An escalation ladder that passed validation, with what locates its problems.
struct LoadedLadder {
    ladder: Ladder,
    text: String,
    map: SourceMap,
}

/// One workflow file, loaded.
enum Loaded {
    Meeting(Meeting),
    Milestones(LoadedPlan),
    Escalation(LoadedLadder),
}

impl Loaded {
    fn id(&self) -> &str {
        match self {
            Loaded::Meeting(m) => &m.definition.id,
            Loaded::Milestones(p) => &p.plan.definition.id,
            Loaded::Escalation(l) => &l.ladder.definition.id,
        }
    }

    fn problem(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        match self {
            Loaded::Meeting(m) => m.problem(path, message),
            Loaded::Milestones(p) => {
                yaml::problem(&p.plan.file, &p.text, p.map.value(path), message)
            }
            Loaded::Escalation(l) => {
                yaml::problem(&l.ladder.file, &l.text, l.map.value(path), message)
            }
        }
    }
}

/// What every kind of workflow has: a kind, an id, a title, a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowSummary<'d> {
    /// `meeting`, `milestones` or `escalation`.
    pub kind: &'static str,
    pub id: &'d str,
    pub title: &'d str,
    pub place: &'d str,
}

impl Definitions {
    /// Loads the workflows folder `root`. With `only`, just those workflow files are
    /// checked (places, roles, templates, calendars and rules always come from
    /// `root`). `extensions` add their functions to the rule language.
    pub fn load(
        root: &Path,
        only: Option<&[PathBuf]>,
        extensions: &[RuleFunction],
    ) -> (Definitions, Diagnostics) {
        let mut diagnostics = Diagnostics::default();
        let places = Places::load(&root.join(PLACES_FILE), &mut diagnostics);
        let roles = load_roles(&root.join(ROLES_FILE), &mut diagnostics);
        let templates_dir = root.join(TEMPLATES_DIR);
        let templates = if templates_dir.is_dir() {
            Templates::load(&templates_dir, &mut diagnostics)
        } else {
            diagnostics.push(Diagnostic::error(
                &templates_dir,
                Position::START,
                "templates folder is missing",
            ));
            Templates::default()
        };
        let calendars = Calendars::load(&root.join(CALENDARS_DIR), &places, &mut diagnostics);
        let world = World::new(
            places.clone(),
            calendars,
            roles.clone(),
            templates.names().map(str::to_owned).collect(),
        );
        let rules = Rules::load(root, world, extensions, Limits::default(), &mut diagnostics);
        let calls = Calls::load(&root.join(CALLS_FILE), &places, &mut diagnostics);
        let mut definitions = Definitions {
            root: root.to_path_buf(),
            places,
            roles,
            templates,
            rules,
            meetings: Vec::new(),
            plans: Vec::new(),
            ladders: Vec::new(),
            replies: Replies::load(&root.join(REPLIES_FILE), &mut diagnostics),
            reminders: ReminderMemo::default(),
            retention: Retention::load(&root.join(RETENTION_FILE), &mut diagnostics),
            audio: Audio::load(&root.join(AUDIO_DIR), &mut diagnostics),
            calls,
        };
        check_voice_clips(
            root,
            &definitions.templates,
            &definitions.audio,
            &mut diagnostics,
        );
        check_reply_instructions(
            &root.join(TEMPLATES_DIR),
            &definitions.templates,
            &definitions.replies,
            &mut diagnostics,
        );
        let files = match only {
            Some(files) => files.to_vec(),
            None => yaml_files(root, &mut diagnostics)
                .into_iter()
                .filter(|f| is_workflow_file(root, f))
                .collect(),
        };
        let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in files {
            if let Some(loaded) = definitions.load_workflow(&file, &mut diagnostics) {
                let id = loaded.id().to_owned();
                if let Some(first) = ids.get(&id) {
                    diagnostics.push(loaded.problem(
                        "id",
                        format!("workflow id '{id}' is already used by {}", first.display()),
                    ));
                    continue;
                }
                ids.insert(id, file);
                definitions.add(loaded);
            }
        }
        (definitions, diagnostics)
    }

    /// Loads one more workflow file against the places, roles and templates already
    /// loaded (e.g. a generated demo meeting). Its problems are returned.
    pub fn add_workflow_file(&mut self, file: &Path) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        if let Some(loaded) = self.load_workflow(file, &mut diagnostics) {
            let id = loaded.id();
            if self.workflow_ids().any(|known| known == id) {
                diagnostics
                    .push(loaded.problem("id", format!("workflow id '{id}' is already used")));
            } else {
                self.add(loaded);
            }
        }
        diagnostics
    }

    fn add(&mut self, loaded: Loaded) {
        match loaded {
            Loaded::Meeting(meeting) => self.meetings.push(meeting),
            Loaded::Milestones(plan) => self.plans.push(plan.plan),
            Loaded::Escalation(ladder) => self.ladders.push(ladder.ladder),
        }
    }

    /// Every workflow, of every kind, as far as all kinds are alike.
    pub fn workflows(&self) -> impl Iterator<Item = WorkflowSummary<'_>> {
        fn summary<'d>(
            kind: &'static str,
            id: &'d str,
            title: &'d str,
            place: &'d str,
        ) -> WorkflowSummary<'d> {
            WorkflowSummary {
                kind,
                id,
                title,
                place,
            }
        }
        self.meetings
            .iter()
            .map(|m| {
                let d = &m.definition;
                summary("meeting", &d.id, &d.title, &d.place)
            })
            .chain(self.plans.iter().map(|p| {
                let d = &p.definition;
                summary("milestones", &d.id, &d.title, &d.place)
            }))
            .chain(self.ladders.iter().map(|l| {
                let d = &l.definition;
                summary("escalation", &d.id, &d.title, &d.place)
            }))
    }

    /// The ids of every workflow, of every kind.
    pub fn workflow_ids(&self) -> impl Iterator<Item = &str> {
        self.workflows().map(|w| w.id)
    }

    /// The workflow with this id, of whatever kind.
    pub fn workflow(&self, id: &str) -> Option<WorkflowSummary<'_>> {
        self.workflows().find(|w| w.id == id)
    }

    pub fn meeting(&self, id: &str) -> Option<&Meeting> {
        self.meetings.iter().find(|m| m.definition.id == id)
    }

    /// What the keys of a call about `workflow` answer: by its kind.
    pub fn keypad(&self, workflow: &str) -> Keypad {
        if self.meeting(workflow).is_some() {
            Keypad::Attendance
        } else if self.ladder(workflow).is_some() {
            Keypad::Dispute
        } else if self
            .plan(workflow)
            .is_some_and(|plan| plan.definition.done_by_sms)
        {
            Keypad::Milestone
        } else {
            Keypad::ListenOnly
        }
    }

    pub fn ladder(&self, id: &str) -> Option<&Ladder> {
        self.ladders.iter().find(|l| l.definition.id == id)
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.definition.id == id)
    }

    fn load_workflow(&self, file: &Path, diagnostics: &mut Diagnostics) -> Option<Loaded> {
        let text = match std::fs::read(file)
            .map_err(|e| {
                Box::new(Diagnostic::error(
                    file,
                    Position::START,
                    format!("cannot read file: {e}"),
                ))
            })
            .and_then(|bytes| yaml::decode(file, bytes))
        {
            Ok(text) => text,
            Err(d) => {
                diagnostics.push(*d);
                return None;
            }
        };
        let probe = match yaml::parse_text::<KindProbe>(file, text.clone()) {
            Ok(probe) => probe,
            Err(d) => {
                diagnostics.push(*d);
                return None;
            }
        };
        match probe.value.kind.as_deref() {
            Some("meeting") => self
                .load_meeting(file, text, diagnostics)
                .map(Loaded::Meeting),
            Some("milestones") => self
                .load_milestones(file, text, diagnostics)
                .map(Loaded::Milestones),
            Some("escalation") => self
                .load_escalation(file, text, diagnostics)
                .map(Loaded::Escalation),
            other => {
                let message = match other {
                    None => format!("missing 'kind': one of {}", KINDS.join(", ")),
                    Some(kind) => format!(
                        "unknown kind '{kind}'{}: one of {}",
                        did_you_mean(kind, KINDS),
                        KINDS.join(", ")
                    ),
                };
                diagnostics.push(yaml::problem(
                    file,
                    &probe.text,
                    probe.map.value("kind"),
                    message,
                ));
                None
            }
        }
    }

    fn load_meeting(
        &self,
        file: &Path,
        text: String,
        diagnostics: &mut Diagnostics,
    ) -> Option<Meeting> {
        let parsed = match yaml::parse_text::<MeetingWorkflow>(file, text) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                return None;
            }
        };
        let before = diagnostics.error_count();
        let definition = &parsed.value;
        let problem = |path: &str, message: String| {
            yaml::problem(file, &parsed.text, parsed.map.value(path), message)
        };
        if !is_slug(&definition.id) {
            diagnostics.push(problem(
                "id",
                format!(
                    "id '{}' must be lower-case letters, digits and dashes",
                    definition.id
                ),
            ));
        }
        if self.places.get(&definition.place).is_none() {
            diagnostics.push(problem(
                "place",
                self.places.unknown_message(&definition.place),
            ));
        }
        let zone = parse_time_zone(&definition.timezone)
            .map_err(|e| diagnostics.push(problem("timezone", e.to_string())))
            .ok();
        // The recurrence is checked even when the zone is wrong, so both are reported.
        let recurrence =
            Recurrence::parse(&definition.recurrence, zone.unwrap_or(chrono_tz::Tz::UTC))
                .map_err(|e| diagnostics.push(problem("recurrence", e.to_string())))
                .ok()
                .filter(|_| zone.is_some());
        if definition.duration.seconds() <= 0 {
            diagnostics.push(problem("duration", "duration must be positive".to_owned()));
        }
        if definition.misfire_grace.is_negative() {
            diagnostics.push(problem(
                "misfire_grace",
                "misfire_grace cannot be negative".to_owned(),
            ));
        }
        if definition.recipients.is_empty() {
            diagnostics.push(problem(
                "recipients",
                "recipients is empty: nobody would be invited".to_owned(),
            ));
        }
        self.check_groups(&definition.recipients, "recipients", &problem, diagnostics);
        if definition.steps.is_empty() {
            diagnostics.push(problem(
                "steps",
                "steps is empty: nothing would be sent".to_owned(),
            ));
        }
        let mut step_ids = BTreeSet::new();
        for (i, step) in definition.steps.iter().enumerate() {
            let at = |field: &str| format!("steps[{i}].{field}");
            if !is_slug(&step.id) {
                diagnostics.push(problem(
                    &at("id"),
                    format!(
                        "step id '{}' must be lower-case letters, digits and dashes",
                        step.id
                    ),
                ));
            } else if !step_ids.insert(step.id.as_str()) {
                diagnostics.push(problem(
                    &at("id"),
                    format!("step id '{}' is used twice in this workflow", step.id),
                ));
            }
            if !self.templates.contains(&step.template) {
                diagnostics.push(problem(
                    &at("template"),
                    format!(
                        "no template '{}'{} (expected templates/{}.yaml)",
                        step.template,
                        did_you_mean(&step.template, self.templates.names()),
                        step.template
                    ),
                ));
            } else {
                for (c, channel) in step.channels.iter().enumerate() {
                    if !self.templates.supports(&step.template, *channel) {
                        diagnostics.push(problem(
                            &format!("steps[{i}].channels[{c}]"),
                            format!(
                                "template '{}' has no {channel} text in 'fra'",
                                step.template
                            ),
                        ));
                    }
                }
            }
            if let Some(kind) = sent_before_the_start(&step.template)
                && step.at.seconds() > 0
            {
                let located = parsed.map.value(&at("at"));
                let written: String = parsed
                    .text
                    .lines()
                    .nth(located.position.line.saturating_sub(1))
                    .unwrap_or_default()
                    .chars()
                    .skip(located.position.column.saturating_sub(1))
                    .take(located.width)
                    .collect();
                let written = match written.trim().trim_matches(['"', '\'']) {
                    "" => step.at.to_string(),
                    text => text.to_owned(),
                };
                let before = palabre_core::offset::Offset::from_seconds(-step.at.seconds());
                let mut warning = problem(
                    &at("at"),
                    format!(
                        "'at: {written}' is after the meeting's start: {kind} should be negative, like {before}"
                    ),
                );
                warning.severity = palabre_core::diagnostic::Severity::Warning;
                diagnostics.push(warning);
            }
            if step.channels.is_empty() {
                diagnostics.push(problem(
                    &at("channels"),
                    "channels is empty: list sms, email or both".to_owned(),
                ));
            }
            if let Some(groups) = &step.recipients {
                self.check_groups(groups, &at("recipients"), &problem, diagnostics);
            }
        }
        for hook in &HOOKS {
            let Some(function) = definition.rules.named(hook.slot) else {
                continue;
            };
            let path = format!("rules.{}", hook.slot);
            match self.rules.defined_along(&definition.place, function) {
                None => diagnostics.push(problem(
                    &path,
                    format!(
                        "no rule script along '{}' defines '{function}' (looked in {RULES_DIR}/ from the place up to national.rhai)",
                        definition.place
                    ),
                )),
                Some((script, f)) if f.params != 1 => diagnostics.push(problem(
                    &path,
                    format!(
                        "'{function}' in {} takes {} argument(s); a hook takes one (the input map)",
                        script.display(),
                        f.params
                    ),
                )),
                Some(_) => {}
            }
        }
        let reminders = definition
            .rules
            .reminders
            .as_deref()
            .unwrap_or(RemindersDecision::HOOK.name);
        let reach = StepReach::of(
            definition,
            self.rules
                .defined_along(&definition.place, reminders)
                .is_some(),
        );
        if let Some(recurrence) = &recurrence {
            // The occurrences one occurrence's steps overlap must fit in a window.
            let span = reach.latest - reach.earliest + TimeDelta::days(1);
            if occurrences_in(recurrence, span, MAX_OCCURRENCES_PER_WINDOW)
                >= MAX_OCCURRENCES_PER_WINDOW
            {
                let rule = if reach.rule_reminders {
                    ", with the reminders its meeting_reminders rule may add 30 days ahead"
                } else {
                    ""
                };
                diagnostics.push(problem(
                    "recurrence",
                    format!(
                        "'{}' recurs {MAX_OCCURRENCES_PER_WINDOW} times or more within {}, the reach of this workflow's steps{rule}: palabre plans at most {MAX_OCCURRENCES_PER_WINDOW} occurrences of a workflow at a time; choose a less frequent recurrence",
                        definition.recurrence,
                        span_text(span)
                    ),
                ));
            }
        }
        if diagnostics.error_count() > before {
            return None;
        }
        let recurrence = recurrence?;
        Some(Meeting {
            facts: MeetingFacts::of(&parsed.value, recurrence.zone()),
            reach,
            recurrence,
            definition: parsed.value,
            file: file.to_path_buf(),
            text: parsed.text,
            map: parsed.map,
        })
    }

    fn load_milestones(
        &self,
        file: &Path,
        text: String,
        diagnostics: &mut Diagnostics,
    ) -> Option<LoadedPlan> {
        let parsed = match yaml::parse_text::<MilestonePlan>(file, text) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                return None;
            }
        };
        let before = diagnostics.error_count();
        let plan = &parsed.value;
        let problem = |path: &str, message: String| {
            yaml::problem(file, &parsed.text, parsed.map.value(path), message)
        };
        if !is_slug(&plan.id) {
            diagnostics.push(problem(
                "id",
                format!(
                    "id '{}' must be lower-case letters, digits and dashes",
                    plan.id
                ),
            ));
        }
        if self.places.get(&plan.place).is_none() {
            diagnostics.push(problem("place", self.places.unknown_message(&plan.place)));
        }
        let zone = parse_time_zone(&plan.timezone)
            .map_err(|e| diagnostics.push(problem("timezone", e.to_string())))
            .ok();
        let send_at = chrono::NaiveTime::parse_from_str(&plan.send_at, "%H:%M")
            .map_err(|_| {
                diagnostics.push(problem(
                    "send_at",
                    format!("'{}' is not a time of day: write HH:MM", plan.send_at),
                ));
            })
            .ok();
        if plan.overdue_every.seconds() <= 0 {
            diagnostics.push(problem(
                "overdue_every",
                "overdue_every must be positive".to_owned(),
            ));
        }
        if plan.channels.is_empty() {
            diagnostics.push(problem(
                "channels",
                "channels is empty: list sms, email or both".to_owned(),
            ));
        }
        for template in MILESTONE_TEMPLATES {
            if !self.templates.contains(template) {
                diagnostics.push(problem(
                    "kind",
                    format!("milestone plans need templates/{template}.yaml"),
                ));
            }
        }
        let check_reminders = |path: &str,
                               reminders: &[palabre_core::offset::Offset],
                               diagnostics: &mut Diagnostics| {
            for (r, at) in reminders.iter().enumerate() {
                if !at.is_negative() {
                    diagnostics.push(problem(
                        &format!("{path}[{r}]"),
                        format!("reminder {at} is not before the due date (write -7d)"),
                    ));
                }
            }
        };
        check_reminders("reminders", &plan.reminders, diagnostics);
        if plan.milestones.is_empty() {
            diagnostics.push(problem(
                "milestones",
                "milestones is empty: nothing to follow".to_owned(),
            ));
        }
        let ids: Vec<&str> = plan.milestones.iter().map(|m| m.id.as_str()).collect();
        let mut seen = BTreeSet::new();
        for (i, milestone) in plan.milestones.iter().enumerate() {
            let at = |field: &str| format!("milestones[{i}].{field}");
            if !is_slug(&milestone.id) {
                diagnostics.push(problem(
                    &at("id"),
                    format!(
                        "milestone id '{}' must be lower-case letters, digits and dashes",
                        milestone.id
                    ),
                ));
            } else if !seen.insert(milestone.id.as_str()) {
                diagnostics.push(problem(
                    &at("id"),
                    format!("milestone id '{}' is used twice in this plan", milestone.id),
                ));
            }
            self.check_groups(
                std::slice::from_ref(&milestone.owner),
                &at("owner"),
                &problem,
                diagnostics,
            );
            if milestone.start.is_some_and(|start| start > milestone.due) {
                diagnostics.push(problem(&at("due"), "due before its start".to_owned()));
            }
            if let Some(reminders) = &milestone.reminders {
                check_reminders(&at("reminders"), reminders, diagnostics);
            }
            for (d, dep) in milestone.depends_on.iter().enumerate() {
                if !ids.contains(&dep.as_str()) {
                    diagnostics.push(problem(
                        &format!("milestones[{i}].depends_on[{d}]"),
                        format!(
                            "no milestone '{dep}' in this plan{}",
                            did_you_mean(dep, ids.iter().copied())
                        ),
                    ));
                }
            }
        }
        if let Some(cycle) = find_cycle(&plan.milestones) {
            let first = plan
                .milestones
                .iter()
                .position(|m| m.id == cycle[0])
                .unwrap_or(0);
            diagnostics.push(problem(
                &format!("milestones[{first}].depends_on"),
                format!("dependency cycle: {}", cycle.join(" → ")),
            ));
        }
        if diagnostics.error_count() > before {
            return None;
        }
        Some(LoadedPlan {
            plan: Plan {
                zone: zone?,
                send_at: send_at?,
                definition: parsed.value,
                file: file.to_path_buf(),
            },
            text: parsed.text,
            map: parsed.map,
        })
    }

    fn load_escalation(
        &self,
        file: &Path,
        text: String,
        diagnostics: &mut Diagnostics,
    ) -> Option<LoadedLadder> {
        let parsed = match yaml::parse_text::<EscalationWorkflow>(file, text) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                return None;
            }
        };
        let before = diagnostics.error_count();
        let ladder = &parsed.value;
        let problem = |path: &str, message: String| {
            yaml::problem(file, &parsed.text, parsed.map.value(path), message)
        };
        if !is_slug(&ladder.id) {
            diagnostics.push(problem(
                "id",
                format!(
                    "id '{}' must be lower-case letters, digits and dashes",
                    ladder.id
                ),
            ));
        }
        if self.places.get(&ladder.place).is_none() {
            diagnostics.push(problem("place", self.places.unknown_message(&ladder.place)));
        }
        let zone = parse_time_zone(&ladder.timezone)
            .map_err(|e| diagnostics.push(problem("timezone", e.to_string())))
            .ok();
        let time = |field: &str, value: &str, diagnostics: &mut Diagnostics| {
            chrono::NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|_| {
                    diagnostics.push(problem(
                        &format!("working_hours.{field}"),
                        format!("'{value}' is not a time of day: write HH:MM"),
                    ));
                })
                .ok()
        };
        let day_start = time("from", &ladder.working_hours.from, diagnostics);
        let day_end = time("to", &ladder.working_hours.to, diagnostics);
        if let (Some(start), Some(end)) = (day_start, day_end)
            && end <= start
        {
            diagnostics.push(problem(
                "working_hours.to",
                "the working day ends before it starts".to_owned(),
            ));
        }
        if ladder.working_hours.days.is_empty() {
            diagnostics.push(problem(
                "working_hours.days",
                "no working day: deadlines would never pass".to_owned(),
            ));
        }
        if ladder.categories.is_empty() {
            diagnostics.push(problem(
                "categories",
                "categories is empty: list the kinds of dispute".to_owned(),
            ));
        }
        for (c, category) in ladder.categories.iter().enumerate() {
            if !is_slug(category) {
                diagnostics.push(problem(
                    &format!("categories[{c}]"),
                    format!("category '{category}' must be lower-case letters, digits and dashes"),
                ));
            }
        }
        if !self.templates.contains(CASE_TEMPLATE) {
            diagnostics.push(problem(
                "kind",
                format!("escalation ladders need templates/{CASE_TEMPLATE}.yaml"),
            ));
        }
        if ladder.levels.is_empty() {
            diagnostics.push(problem(
                "levels",
                "levels is empty: nobody to escalate to".to_owned(),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, level) in ladder.levels.iter().enumerate() {
            let at = |field: &str| format!("levels[{i}].{field}");
            if !is_slug(&level.id) {
                diagnostics.push(problem(
                    &at("id"),
                    format!(
                        "level id '{}' must be lower-case letters, digits and dashes",
                        level.id
                    ),
                ));
            } else if !seen.insert(level.id.as_str()) {
                diagnostics.push(problem(
                    &at("id"),
                    format!("level id '{}' is used twice in this ladder", level.id),
                ));
            }
            if level.responders.is_empty() {
                diagnostics.push(problem(
                    &at("responders"),
                    "responders is empty: nobody would be told".to_owned(),
                ));
            }
            self.check_groups(&level.responders, &at("responders"), &problem, diagnostics);
            for (field, within) in [
                ("acknowledge_within", level.acknowledge_within),
                ("resolve_within", level.resolve_within),
            ] {
                if within.seconds() <= 0 {
                    diagnostics.push(problem(&at(field), format!("{field} must be positive")));
                }
            }
        }
        if diagnostics.error_count() > before {
            return None;
        }
        Some(LoadedLadder {
            ladder: Ladder {
                zone: zone?,
                day_start: day_start?,
                day_end: day_end?,
                definition: parsed.value,
                file: file.to_path_buf(),
            },
            text: parsed.text,
            map: parsed.map,
        })
    }

    fn check_groups(
        &self,
        groups: &[RecipientGroup],
        path: &str,
        problem: &dyn Fn(&str, String) -> Diagnostic,
        diagnostics: &mut Diagnostics,
    ) {
        for (g, group) in groups.iter().enumerate() {
            let at = format!("{path}[{g}]");
            if group.role.is_none() && group.contacts.is_empty() {
                diagnostics.push(problem(
                    &at,
                    "a recipient group needs a 'role' or 'contacts'".to_owned(),
                ));
            }
            if let Some(role) = &group.role
                && !self.roles.contains(role)
            {
                diagnostics.push(problem(
                    &format!("{at}.role"),
                    format!(
                        "unknown role '{role}'{}; roles are listed in roles.yaml",
                        did_you_mean(role, self.roles.iter().map(String::as_str))
                    ),
                ));
            }
            if let Some(place) = &group.place
                && self.places.get(place).is_none()
            {
                diagnostics.push(problem(
                    &format!("{at}.place"),
                    self.places.unknown_message(place),
                ));
            }
            for (c, id) in group.contacts.iter().enumerate() {
                if !is_slug(id) {
                    diagnostics.push(problem(
                        &format!("{at}.contacts[{c}]"),
                        format!("'{id}' is not a contact id"),
                    ));
                }
            }
        }
    }

    /// Checks recipients against the imported directory: every contact id exists,
    /// every group reaches somebody.
    pub fn check_directory(&self, directory: &[Contact]) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        let known: BTreeSet<&str> = directory.iter().map(|c| c.id.as_str()).collect();
        for meeting in &self.meetings {
            let def = &meeting.definition;
            let mut lists = vec![("recipients".to_owned(), &def.recipients)];
            for (i, step) in def.steps.iter().enumerate() {
                if let Some(groups) = &step.recipients {
                    lists.push((format!("steps[{i}].recipients"), groups));
                }
            }
            for (path, groups) in lists {
                for (g, group) in groups.iter().enumerate() {
                    for (c, id) in group.contacts.iter().enumerate() {
                        if !known.contains(id.as_str()) {
                            diagnostics.push(meeting.problem(
                                &format!("{path}[{g}].contacts[{c}]"),
                                format!(
                                    "no contact '{id}' in the directory{}",
                                    did_you_mean(id, known.iter().copied())
                                ),
                            ));
                        }
                    }
                    if crate::recipients::resolve_group(group, &def.place, directory)
                        .next()
                        .is_none()
                    {
                        let mut warning = meeting.problem(
                            &format!("{path}[{g}]"),
                            "this group reaches nobody in the directory",
                        );
                        warning.severity = palabre_core::diagnostic::Severity::Warning;
                        diagnostics.push(warning);
                    }
                }
            }
        }
        diagnostics
    }
}

/// A calendar whose dates end within 90 days (`CALENDAR_NOTICE_DAYS`) of a day,
/// or ended before it: `validate` warns about it (at its last entry), `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalendarEnding {
    /// The calendar file.
    pub file: PathBuf,
    /// Where its last entry is written.
    pub line: usize,
    pub column: usize,
    /// The last date it covers, and the holiday or period on it.
    pub last_date: NaiveDate,
    pub last_entry: String,
    /// Days from the day asked to `last_date`: 0 on it, negative once past.
    pub days_left: i64,
    /// What a coordinator reads: which calendar, its last date, what to add.
    pub message: String,
    #[serde(skip)]
    width: usize,
    #[serde(skip)]
    source_line: Option<String>,
}

impl CalendarEnding {
    fn of(end: &CalendarEnd, today: NaiveDate) -> CalendarEnding {
        let days_left = end.days_left(today);
        let name = end.file.file_name().map_or_else(
            || end.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let last = format_iso_date(end.last.date);
        let when = match days_left {
            0 => "today".to_owned(),
            1 => "tomorrow".to_owned(),
            -1 => "yesterday".to_owned(),
            d if d > 1 => format!("in {d} days"),
            d => format!("{} days ago", -d),
        };
        let ends = if days_left < 0 { "ended" } else { "ends" };
        let dated = "next year's holidays and feasts under `dated:` (the Islamic feasts \
                     with `estimated: true` until they are announced)";
        let periods = "next year's periods (Ramadan) under `periods:`";
        let add = match (end.has_dated, end.has_periods) {
            (true, true) => format!("{dated} and {periods}"),
            (false, true) => periods.to_owned(),
            _ => dated.to_owned(),
        };
        CalendarEnding {
            file: end.file.clone(),
            line: end.at.position.line,
            column: end.at.position.column,
            last_date: end.last.date,
            last_entry: end.last.name.clone(),
            days_left,
            message: format!(
                "calendar {name} {ends} on {last} ({}), {when}: after that date the rules and \
                 case deadlines know none of its holidays or periods; add {add}",
                end.last.name
            ),
            width: end.at.width,
            source_line: end.source_line.clone(),
        }
    }

    /// The warning `validate` prints, at the calendar's last entry.
    pub fn diagnostic(&self) -> Diagnostic {
        let position = Position {
            line: self.line,
            column: self.column,
        };
        let mut diagnostic =
            Diagnostic::warning(&self.file, position, self.message.clone()).with_width(self.width);
        diagnostic.source_line.clone_from(&self.source_line);
        diagnostic
    }
}

fn endings_of(calendars: &Calendars, today: NaiveDate) -> Vec<CalendarEnding> {
    calendars
        .ending_soon(today)
        .map(|end| CalendarEnding::of(end, today))
        .collect()
}

/// The calendars of the workflows folder `root` that end within 90 days
/// (`CALENDAR_NOTICE_DAYS`) of `today`, or ended, for `status`. Reads only the
/// map and the calendars; their problems are `validate`'s to report.
pub fn calendar_endings(root: &Path, today: NaiveDate) -> Vec<CalendarEnding> {
    let mut ignored = Diagnostics::default();
    let places = Places::load(&root.join(PLACES_FILE), &mut ignored);
    let calendars = Calendars::load(&root.join(CALENDARS_DIR), &places, &mut ignored);
    endings_of(&calendars, today)
}

impl Definitions {
    /// The calendars in use whose dates end within 90 days
    /// (`CALENDAR_NOTICE_DAYS`) of `today`, or ended before it: `validate` warns
    /// about each at its last entry ([`CalendarEnding::diagnostic`]).
    pub fn calendars_ending(&self, today: NaiveDate) -> Vec<CalendarEnding> {
        endings_of(self.rules.world().calendars(), today)
    }

    /// A warning for each meeting with [`MAX_OCCURRENCES_PER_WINDOW`] occurrences
    /// or more within `horizon` (how far ahead the server plans): the server fills
    /// its horizon in several passes, and a recurrence this frequent is rarely meant.
    pub fn crowded_meetings(&self, horizon: TimeDelta) -> Vec<Diagnostic> {
        self.meetings
            .iter()
            .filter_map(|meeting| {
                let span = horizon + meeting.reach.latest - meeting.reach.earliest;
                let count = occurrences_in(&meeting.recurrence, span, 4 * MAX_OCCURRENCES_PER_WINDOW);
                (count >= MAX_OCCURRENCES_PER_WINDOW).then(|| {
                    let count = if count == 4 * MAX_OCCURRENCES_PER_WINDOW {
                        format!("more than {count}")
                    } else {
                        count.to_string()
                    };
                    let mut warning = meeting.problem(
                        "recurrence",
                        format!(
                            "'{}' gives {count} occurrences to plan for the server's {}-day horizon (counting how far ahead its steps and rules reach): one planning pass holds {MAX_OCCURRENCES_PER_WINDOW}, so it takes several; is it meant to be this frequent?",
                            meeting.definition.recurrence,
                            horizon.num_days()
                        ),
                    );
                    warning.severity = palabre_core::diagnostic::Severity::Warning;
                    warning
                })
            })
            .collect()
    }
}

/// Every reply a template's text asks for (`OUI 4821`: a word in capitals just
/// before a reference of the sample) must be one `replies.yaml` accepts in that
/// text's language: otherwise whoever follows the instruction is not understood.
/// Every clip a template's voice text can play exists in each language it has
/// a voice text in: an error naming the missing ones when the language has
/// recordings, a warning when it has none yet (its calls go by the contact's
/// next channel until it is recorded).
fn check_voice_clips(
    root: &Path,
    templates: &Templates,
    audio: &Audio,
    diagnostics: &mut Diagnostics,
) {
    for name in templates.names() {
        for (language, clips) in templates.voice_clips(name) {
            let folder = root.join(AUDIO_DIR).join(language);
            let missing: Vec<&str> = clips
                .iter()
                .map(String::as_str)
                .filter(|clip| audio.clip(language, clip).is_none())
                .collect();
            if missing.is_empty() {
                continue;
            }
            let file = root.join(TEMPLATES_DIR).join(format!("{name}.yaml"));
            let shown = if missing.len() > 8 {
                format!("{} and {} more", missing[..8].join(", "), missing.len() - 8)
            } else {
                missing.join(", ")
            };
            if audio.has_recordings(language) {
                diagnostics.push(Diagnostic::error(
                    &file,
                    Position::START,
                    format!(
                        "the {language} voice text needs recordings that {} does not have: {shown} (`palabre clips` lists them all)",
                        folder.display()
                    ),
                ));
            } else {
                diagnostics.push(Diagnostic::warning(
                    &file,
                    Position::START,
                    format!(
                        "the {language} voice text has no recordings yet in {}: calls in {language} go by the contact's next channel until its {} clips are recorded (`palabre clips` lists them; scripts/ensure-clips makes French placeholders)",
                        folder.display(),
                        clips.len()
                    ),
                ));
            }
        }
    }
}

fn check_reply_instructions(
    folder: &Path,
    templates: &Templates,
    replies: &Replies,
    diagnostics: &mut Diagnostics,
) {
    let sample = MessageContext::sample();
    let references: Vec<&str> = [
        Some(sample.occurrence.reference.as_str()),
        sample.milestone.as_ref().map(|m| m.reference.as_str()),
        sample.case.as_ref().map(|c| c.reference.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for name in templates.names() {
        for language in templates.languages(name) {
            for channel in [Channel::Sms, Channel::Email] {
                let Ok(rendered) = templates.render(name, channel, language, &sample) else {
                    continue;
                };
                if rendered.language != language {
                    continue;
                }
                for word in asked_replies(&rendered.body, &references) {
                    let problem = if channel == Channel::Email {
                        format!(
                            "the {language} email text asks for the reply '{word}', but emails are not read: give the answer link ({{{{ answer.url }}}}) instead"
                        )
                    } else if replies.meaning_in(language, word).is_none() {
                        format!(
                            "the {language} {channel} text asks for the reply '{word}', which replies.yaml does not accept in '{language}': add it there (yes.{language}, no.{language} or done.{language}) or change the text"
                        )
                    } else {
                        continue;
                    };
                    let file = folder.join(format!("{name}.yaml"));
                    let text = std::fs::read_to_string(&file).unwrap_or_default();
                    // The word in its language's text for the channel, else anywhere.
                    let part = if channel == Channel::Sms {
                        "sms:"
                    } else {
                        "email:"
                    };
                    let section = text
                        .find(&format!("{language}:"))
                        .and_then(|at| text[at..].find(part).map(|p| at + p))
                        .unwrap_or(0);
                    let offset = text[section..]
                        .find(word)
                        .map(|at| section + at)
                        .or_else(|| text.find(word))
                        .unwrap_or(0);
                    diagnostics.push(
                        Diagnostic::error(
                            &file,
                            Position::of_byte_offset(text.as_bytes(), offset),
                            problem,
                        )
                        .with_width(word.chars().count())
                        .with_source(&text),
                    );
                }
            }
        }
    }
}

/// The words in capitals that come just before one of `references` in `text`
/// (`OUI` and `NON` in "Répondez OUI 4821 ou NON 4821").
fn asked_replies<'t>(text: &'t str, references: &[&str]) -> Vec<&'t str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut asked = Vec::new();
    for pair in words.windows(2) {
        let reference = pair[1].trim_matches(|c: char| !c.is_alphanumeric());
        let word = pair[0].trim_matches(|c: char| !c.is_alphanumeric());
        let in_capitals = word.chars().count() >= 2
            && word.chars().all(|c| c.is_alphabetic() && !c.is_lowercase());
        if references.contains(&reference) && in_capitals && !asked.contains(&word) {
            asked.push(word);
        }
    }
    asked
}

fn is_workflow_file(root: &Path, file: &Path) -> bool {
    let Ok(relative) = file.strip_prefix(root) else {
        return true;
    };
    let first = relative
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str());
    !matches!(
        first,
        Some(
            PLACES_FILE
                | ROLES_FILE
                | REPLIES_FILE
                | RETENTION_FILE
                | CALLS_FILE
                | TEMPLATES_DIR
                | CALENDARS_DIR
                | RULES_DIR
        )
    )
}

fn load_roles(file: &Path, diagnostics: &mut Diagnostics) -> BTreeSet<String> {
    match yaml::parse_file::<RolesFile>(file) {
        Ok(parsed) => {
            for role in parsed.value.roles.keys() {
                if !is_slug(role) {
                    diagnostics.push(yaml::problem(
                        file,
                        &parsed.text,
                        parsed.map.key(&format!("roles.{role}")),
                        format!("role '{role}' must be lower-case letters, digits and dashes"),
                    ));
                }
            }
            parsed.value.roles.into_keys().collect()
        }
        Err(d) => {
            diagnostics.push(*d);
            BTreeSet::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::asked_replies;

    #[test]
    fn the_replies_a_text_asks_for_are_the_capitals_before_a_reference() {
        let references = ["4821", "LT-0007"];
        assert_eq!(
            asked_replies("Répondez OUI 4821 ou NON 4821.", &references),
            ["OUI", "NON"]
        );
        assert_eq!(
            asked_replies(
                "Reply YES 4821, or NO 4821; OUI LT-0007 acknowledges",
                &references
            ),
            ["YES", "NO", "OUI"]
        );
        // A label before a reference is not an instruction.
        assert!(asked_replies("Ref 4821. Litige LT-0007", &references).is_empty());
        assert!(asked_replies("OUI 9999", &references).is_empty());
    }
}
