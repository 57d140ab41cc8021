//! Message templates: one file per template, texts keyed by language, rendered
//! with minijinja in strict mode.
//!
//! `templates/<name>.yaml` maps ISO 639-3 codes (`fra`, `eng`, `bam`, `ffm` ...)
//! to texts per channel (`subject` + `email`, `sms`). A message is rendered in the
//! contact's language when the template has that text, otherwise in French, the
//! working language, which every template must provide. Undefined variables are
//! errors, never empty strings, and every render runs on a fuel budget.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::dates;
use crate::gsm::to_gsm_lookalikes;
use crate::language::is_language_code;
use crate::meeting::{TemplateFile, TemplateText};
use crate::yaml;
use palabre_core::channel::Channel;
use palabre_core::diagnostic::Diagnostics;

/// The language every template must have, used when the contact's is missing.
pub const FALLBACK_LANGUAGE: &str = "fra";

/// Instructions one render may spend: generous for a message, fatal for a runaway loop.
const RENDER_FUEL: u64 = 50_000;

/// What a template can use: the same shape in preview, validation and delivery.
#[derive(Debug, Clone, Serialize)]
pub struct MessageContext {
    pub workflow: WorkflowFacts,
    pub occurrence: OccurrenceFacts,
    pub step: StepFacts,
    pub recipient: RecipientFacts,
    /// Set only in the notices sent when an occurrence is moved or cancelled.
    pub change: Option<ChangeFacts>,
    /// Set only in milestone messages.
    pub milestone: Option<MilestoneFacts>,
    /// Set only in dispute messages.
    pub case: Option<CaseFacts>,
    /// Set only in the confirmation of an SMS reply.
    pub reply: Option<ReplyFacts>,
    /// Set in a meeting's messages when the server has a public address: the
    /// recipient's own link to answer yes or no from an email.
    pub answer: Option<AnswerFacts>,
}

/// Where a recipient answers a meeting from a browser (`{{ answer.url }}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerFacts {
    pub url: String,
}

/// An SMS reply palabre acted on, as its confirmation names it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplyFacts {
    /// What was recorded: `yes`, `no` (a meeting), `acknowledged`, `declined` (a
    /// dispute), `done` (a milestone), `restarted` (SMS again after STOP).
    pub kind: String,
    /// The reference the reply quoted, or empty.
    pub reference: String,
}

/// A dispute, as its messages name it: never its description or parties.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseFacts {
    pub reference: String,
    pub category: String,
    pub place_name: String,
    /// The level's title.
    pub level: String,
    pub severity: i64,
    /// Local date and time, `YYYY-MM-DD HH:MM`.
    pub acknowledge_by: String,
    pub resolve_by: String,
    /// Why it reached this level, for the template to word: `opened`,
    /// `climbed_missed_acknowledgement`, `climbed_missed_resolution`,
    /// `sent_by_hand` or `reopened` (`palabre_lang::escalation::Arrival`).
    pub why: String,
    /// The title of the level it came from (a climb, by a missed deadline or by
    /// hand; the same level when it stays at the top), or empty.
    pub from_level: String,
    /// The note of the person who sent it by hand or reopened it, as written, or empty.
    pub note: String,
}

/// A milestone, as its messages name it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MilestoneFacts {
    pub id: String,
    pub title: String,
    /// Local due date, `YYYY-MM-DD`.
    pub due: String,
    pub status: String,
    pub days_late: i64,
    /// A short reference people quote in replies.
    pub reference: String,
    /// Titles of the milestones it waits for (or the one that slipped), or empty.
    pub blocked_by: String,
    /// Why it was escalated (escalation messages), or empty.
    pub escalation: String,
    /// Whether its owner may report it done by SMS (`FAIT <reference>`).
    pub done_by_sms: bool,
}

/// What changed about an occurrence (for the moved and cancelled notices).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeFacts {
    /// The local date and time the occurrence had before this change.
    pub previous_date: String,
    pub previous_time: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkflowFacts {
    pub id: String,
    pub title: String,
    pub venue: String,
    pub place: String,
    pub place_name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OccurrenceFacts {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Local time, `HH:MM`.
    pub time: String,
    pub timezone: String,
    /// RFC 3339 in UTC.
    pub starts_at: String,
    /// A short reference people quote in replies.
    pub reference: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepFacts {
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RecipientFacts {
    pub id: String,
    pub name: String,
}

impl MessageContext {
    /// What a milestone message's template sees: the plan as `workflow`, the
    /// milestone's due date as `occurrence`.
    pub fn about_milestone(
        plan: &str,
        title: &str,
        place: &str,
        place_name: &str,
        step: &str,
        milestone: MilestoneFacts,
    ) -> MessageContext {
        let workflow = WorkflowFacts {
            id: plan.to_owned(),
            title: title.to_owned(),
            venue: String::new(),
            place: place.to_owned(),
            place_name: place_name.to_owned(),
        };
        let occurrence = OccurrenceFacts {
            date: milestone.due.clone(),
            reference: milestone.reference.clone(),
            ..OccurrenceFacts::default()
        };
        MessageContext {
            milestone: Some(milestone),
            ..MessageContext::new(workflow, occurrence, step)
        }
    }

    /// What every recipient of one message shares; [`MessageContext::to`] adds the
    /// recipient. The change, milestone and case parts are set by the messages that
    /// have them.
    pub fn new(workflow: WorkflowFacts, occurrence: OccurrenceFacts, step: &str) -> MessageContext {
        MessageContext {
            workflow,
            occurrence,
            step: StepFacts {
                id: step.to_owned(),
            },
            recipient: RecipientFacts::default(),
            change: None,
            milestone: None,
            case: None,
            reply: None,
            answer: None,
        }
    }

    /// This context for one recipient.
    pub fn to(&self, recipient: &crate::contacts::Contact) -> MessageContext {
        MessageContext {
            recipient: RecipientFacts {
                id: recipient.id.clone(),
                name: recipient.name.clone(),
            },
            ..self.clone()
        }
    }

    /// An invented context that every template must render against in validation.
    pub fn sample() -> MessageContext {
        MessageContext {
            workflow: WorkflowFacts {
                id: "sample".into(),
                title: "Cadre de concertation".into(),
                venue: "Salle de la mairie".into(),
                place: "mopti/mopti".into(),
                place_name: "Mopti".into(),
            },
            occurrence: OccurrenceFacts {
                date: "2027-01-05".into(),
                time: "09:00".into(),
                timezone: "Africa/Bamako".into(),
                starts_at: "2027-01-05T09:00:00Z".into(),
                reference: "4821".into(),
            },
            step: StepFacts {
                id: "invitation".into(),
            },
            recipient: RecipientFacts {
                id: "c-0001".into(),
                name: "Awa Traoré".into(),
            },
            change: Some(ChangeFacts {
                previous_date: "2027-01-04".into(),
                previous_time: "09:00".into(),
                reason: "jour de marché".into(),
            }),
            milestone: Some(MilestoneFacts {
                id: "ecole".into(),
                title: "Réouverture de l'école".into(),
                due: "2027-01-15".into(),
                status: "in_progress".into(),
                days_late: 3,
                reference: "5127".into(),
                blocked_by: "Logement des enseignants".into(),
                escalation: "14 jours de retard".into(),
                done_by_sms: true,
            }),
            case: Some(CaseFacts {
                reference: "LT-0007".into(),
                category: "foncier".into(),
                place_name: "Koro".into(),
                level: "Maire".into(),
                severity: 2,
                acknowledge_by: "2027-01-06 12:00".into(),
                resolve_by: "2027-01-11 17:00".into(),
                why: "sent_by_hand".into(),
                from_level: "Chef de village ou de fraction".into(),
                note: "Les deux familles demandent une médiation rapide".into(),
            }),
            reply: Some(ReplyFacts {
                kind: "yes".into(),
                reference: "4821".into(),
            }),
            answer: Some(AnswerFacts {
                url: "https://palabre.example.org/answer/c2FtcGxl".into(),
            }),
        }
    }
}

/// A rendered message, ready for a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// The language actually used (the contact's, or the fallback).
    pub language: String,
    pub subject: Option<String>,
    pub body: String,
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template named '{0}'")]
    UnknownTemplate(String),
    #[error(
        "template '{template}' has no {channel} text in '{language}' nor in the fallback '{FALLBACK_LANGUAGE}'"
    )]
    MissingText {
        template: String,
        language: String,
        channel: Channel,
    },
    #[error("template '{name}': {source}")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// All templates, compiled.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// template name → languages it has.
    texts: BTreeMap<String, TemplateFile>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(RENDER_FUEL));
        let in_language = |f: fn(&str, &str) -> String| {
            move |state: &minijinja::State<'_, '_>, value: String| -> String {
                let language = state.lookup(dates::LANGUAGE_VARIABLE);
                f(
                    language
                        .as_ref()
                        .and_then(|l| l.as_str())
                        .unwrap_or(FALLBACK_LANGUAGE),
                    &value,
                )
            }
        };
        env.add_filter("date_long", in_language(dates::date_long));
        env.add_filter("date_short", in_language(dates::date_short));
        env.add_filter("clock", in_language(dates::clock));
        env.add_filter("say_date", |value: String| crate::voice::say_date(&value));
        env.add_filter("say_time", |value: String| crate::voice::say_time(&value));
        env.add_filter("say_digits", |value: String| {
            crate::voice::say_digits(&value)
        });
        Templates {
            env,
            texts: BTreeMap::new(),
        }
    }
}

/// The parts a channel needs, with the name each part has in the YAML.
fn parts(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::Sms => &["sms"],
        Channel::Email => &["subject", "email"],
        Channel::Voice => &["voice"],
    }
}

fn part<'t>(text: &'t TemplateText, name: &str) -> Option<&'t str> {
    match name {
        "sms" => text.sms.as_deref(),
        "email" => text.email.as_deref(),
        "subject" => text.subject.as_deref(),
        "voice" => text.voice.as_deref(),
        _ => None,
    }
}

fn key(template: &str, language: &str, part: &str) -> String {
    format!("{template}/{language}/{part}")
}

impl Templates {
    /// Loads every `*.yaml` of `dir`; each file is one template named after the file.
    pub fn load(dir: &Path, diagnostics: &mut Diagnostics) -> Templates {
        let mut templates = Templates::default();
        for file in crate::files::yaml_files(dir, diagnostics) {
            let Some(name) = file.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let parsed = match yaml::parse_file::<TemplateFile>(&file) {
                Ok(parsed) => parsed,
                Err(d) => {
                    diagnostics.push(*d);
                    continue;
                }
            };
            if !parsed.value.contains_key(FALLBACK_LANGUAGE) {
                diagnostics.push(yaml::problem(
                    &file,
                    &parsed.text,
                    parsed.map.value(""),
                    format!("template '{name}' has no '{FALLBACK_LANGUAGE}' text; French is the fallback for every language"),
                ));
            }
            for (language, text) in &parsed.value {
                if !is_language_code(language) {
                    diagnostics.push(yaml::problem(
                        &file,
                        &parsed.text,
                        parsed.map.key(language),
                        format!("'{language}' is not an ISO 639-3 language code (three lower-case letters: fra, eng, bam, ffm)"),
                    ));
                    continue;
                }
                for part_name in ["subject", "email", "sms", "voice"] {
                    let Some(source) = part(text, part_name) else {
                        continue;
                    };
                    let result = templates
                        .env
                        .add_template_owned(key(&name, language, part_name), source.to_owned())
                        .and_then(|()| {
                            let compiled = templates
                                .env
                                .get_template(&key(&name, language, part_name))?;
                            compiled.render(in_language(language, &MessageContext::sample()))
                        });
                    if part_name == "voice"
                        && let Ok(script) = &result
                        && let Some(bad) =
                            crate::voice::clips_of(script).find(|c| !crate::voice::is_clip_name(c))
                    {
                        diagnostics.push(yaml::problem(
                            &file,
                            &parsed.text,
                            parsed.map.value(&format!("{language}.voice")),
                            format!(
                                "voice text in '{language}' says '{bad}', which cannot name a recording: clip names are lower-case letters, digits and dashes, separated by spaces"
                            ),
                        ));
                    }
                    if let Err(e) = &result {
                        let line = e
                            .line()
                            .map(|l| format!(" (line {l} of the text)"))
                            .unwrap_or_default();
                        diagnostics.push(yaml::problem(
                            &file,
                            &parsed.text,
                            parsed.map.value(&format!("{language}.{part_name}")),
                            format!(
                                "{part_name} text in '{language}'{line}: {}",
                                describe(e, source)
                            ),
                        ));
                    }
                }
                if text.email.is_some() != text.subject.is_some() {
                    diagnostics.push(yaml::problem(
                        &file,
                        &parsed.text,
                        parsed.map.key(language),
                        format!(
                            "'{language}' needs both 'subject' and 'email' for email, or neither"
                        ),
                    ));
                }
            }
            templates.texts.insert(name, parsed.value);
        }
        templates
    }

    pub fn contains(&self, name: &str) -> bool {
        self.texts.contains_key(name)
    }

    /// The languages `template` has a text in.
    pub fn languages(&self, template: &str) -> Vec<&str> {
        self.texts
            .get(template)
            .map(|file| file.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.texts.keys().map(String::as_str)
    }

    /// Whether `template` can be sent on `channel` (its fallback text has that channel's parts).
    pub fn supports(&self, template: &str, channel: Channel) -> bool {
        self.texts
            .get(template)
            .and_then(|t| t.get(FALLBACK_LANGUAGE))
            .is_some_and(|text| parts(channel).iter().all(|p| part(text, p).is_some()))
    }

    /// The languages `template` has a voice text in, with every clip a call in
    /// that language can play: the text's own (as the sample renders them), what
    /// its filters can say, and the keypad's.
    pub fn voice_clips(&self, template: &str) -> BTreeMap<&str, Vec<String>> {
        let Some(file) = self.texts.get(template) else {
            return BTreeMap::new();
        };
        file.iter()
            .filter_map(|(language, text)| {
                let source = text.voice.as_deref()?;
                let sample = self
                    .env
                    .get_template(&key(template, language, "voice"))
                    .and_then(|t| t.render(in_language(language, &MessageContext::sample())))
                    .unwrap_or_default();
                let mut clips: Vec<String> = crate::voice::clips_of(&sample)
                    .filter(|c| crate::voice::is_clip_name(c))
                    .map(str::to_owned)
                    .chain(crate::voice::spoken_clips(source))
                    .chain(crate::voice::CALL_CLIPS.map(str::to_owned))
                    .collect();
                clips.sort();
                clips.dedup();
                Some((language.as_str(), clips))
            })
            .collect()
    }

    /// The languages `template` has an SMS text in.
    pub fn sms_languages(&self, template: &str) -> Vec<&str> {
        self.texts.get(template).map_or_else(Vec::new, |file| {
            file.iter()
                .filter(|(_, t)| t.sms.is_some())
                .map(|(l, _)| l.as_str())
                .collect()
        })
    }

    /// The language a message to a `preferred`-language contact is written in.
    pub fn language_for(&self, template: &str, channel: Channel, preferred: &str) -> Option<&str> {
        let file = self.texts.get(template)?;
        [preferred, FALLBACK_LANGUAGE]
            .into_iter()
            .find_map(|language| {
                let (code, text) = file.get_key_value(language)?;
                parts(channel)
                    .iter()
                    .all(|p| part(text, p).is_some())
                    .then_some(code.as_str())
            })
    }

    /// Renders `template` for `channel` in `preferred` language (or the fallback).
    pub fn render(
        &self,
        template: &str,
        channel: Channel,
        preferred: &str,
        context: &MessageContext,
    ) -> Result<Rendered, RenderError> {
        if !self.contains(template) {
            return Err(RenderError::UnknownTemplate(template.to_owned()));
        }
        let language = self
            .language_for(template, channel, preferred)
            .ok_or_else(|| RenderError::MissingText {
                template: template.to_owned(),
                language: preferred.to_owned(),
                channel,
            })?
            .to_owned();
        // What the template sees, made once for all its parts.
        let seen = in_language(&language, context);
        let render = |part_name: &str| -> Result<String, RenderError> {
            let name = key(template, &language, part_name);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&seen))
                .map_err(|source| RenderError::Render { name, source })
        };
        let (subject, mut body) = match channel {
            Channel::Sms => {
                let text = render("sms")?;
                let gsm = self
                    .texts
                    .get(template)
                    .and_then(|t| t.get(&language))
                    .is_some_and(|t| t.sms_gsm);
                (None, if gsm { to_gsm_lookalikes(&text) } else { text })
            }
            Channel::Email => (Some(render("subject")?.trim().to_owned()), render("email")?),
            Channel::Voice => {
                let script = render("voice")?;
                (
                    None,
                    crate::voice::clips_of(&script)
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            }
        };
        body.truncate(body.trim_end().len());
        Ok(Rendered {
            language,
            subject,
            body,
        })
    }
}

/// What a text in `language` renders with: `context`, and the language its
/// date and time filters write in.
fn in_language(language: &str, context: &MessageContext) -> minijinja::Value {
    minijinja::context! {
        lang => language,
        ..minijinja::Value::from(minijinja::value::Serde(context))
    }
}

/// minijinja's error, on one line, without its template-name prefix noise. An
/// undefined value is named, with the closest name [`MessageContext::sample`]
/// has: `undefined variable 'ocurrence' (did you mean 'occurrence'?)`,
/// `'occurrence' has no 'dat' (did you mean 'date'?)`.
fn describe(error: &minijinja::Error, source: &str) -> String {
    if error.kind() == minijinja::ErrorKind::UndefinedError
        && let Some(undefined) = undefined_in(error, source)
    {
        return undefined;
    }
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// The first name of a dotted path (`occurrence.dat`) that the sample context
/// lacks, said as [`describe`] says it. The path is the one minijinja's detail
/// quotes (`` `occurrence.dat` is undefined ``), else any the template reads.
/// Variables the template sets itself (`{% set %}`, `{% for %}`) are left to
/// minijinja's own words.
fn undefined_in(error: &minijinja::Error, source: &str) -> Option<String> {
    let env = Environment::new();
    let template = env.template_from_str(source).ok()?;
    let from_context = template.undeclared_variables(false);
    let quoted = error
        .detail()
        .and_then(|detail| detail.split('`').nth(1))
        .map(str::to_owned);
    let mut paths: Vec<String> = match quoted {
        Some(path) => vec![path],
        None => template.undeclared_variables(true).into_iter().collect(),
    };
    paths.sort();
    let sample = minijinja::Value::from(minijinja::value::Serde(MessageContext::sample()));
    let keys = |value: &minijinja::Value| -> Vec<String> {
        if value.kind() != minijinja::value::ValueKind::Map {
            return Vec::new();
        }
        value
            .try_iter()
            .map(|keys| keys.filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    paths.iter().find_map(|path| {
        let first = path.split('.').next()?;
        if !from_context.contains(first) || first == dates::LANGUAGE_VARIABLE {
            return None;
        }
        let mut value = sample.clone();
        let mut reached = Vec::new();
        for name in path.split('.') {
            let next = value.get_attr(name).ok().filter(|v| !v.is_undefined());
            let Some(next) = next else {
                let known = keys(&value);
                let mut hint =
                    palabre_core::suggest::did_you_mean(name, known.iter().map(String::as_str));
                if hint.is_empty() && !known.is_empty() {
                    let verb = if reached.is_empty() {
                        "a template can use"
                    } else {
                        "it has"
                    };
                    hint = format!(" ({verb} {})", known.join(", "));
                }
                return Some(if reached.is_empty() {
                    format!("undefined variable '{name}'{hint}")
                } else {
                    format!("'{}' has no '{name}'{hint}", reached.join("."))
                });
            };
            value = next;
            reached.push(name);
        }
        None
    })
}
