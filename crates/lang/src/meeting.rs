//! The workflow language: what a coordinator writes in YAML.
//!
//! Every type here is the schema: serde reads it (unknown fields refused), schemars
//! turns it into the JSON Schema that editors use, and each field's doc comment is
//! the hover text a coordinator sees. Checks that need more than one field (a place
//! exists, a template renders) live in `palabre-plan`'s `definitions`, not here.
//!
//! A workflow file is read in two steps: first only its `kind`, then the whole file
//! as that kind's type, so that serde's errors keep their exact positions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use palabre_core::channel::Channel;
use palabre_core::offset::Offset;

/// The only field read before the kind is known.
#[derive(Debug, Deserialize)]
pub struct KindProbe {
    pub kind: Option<String>,
}

/// The workflow kinds this version understands.
pub const KINDS: [&str; 3] = ["meeting", "milestones", "escalation"];

/// `kind: meeting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MeetingKind {
    /// A periodic meeting with invitations and reminders.
    Meeting,
}

/// What to do with slots that passed while the engine was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Misfire {
    /// Drop every missed slot (each is written to the ledger as skipped).
    Skip,
    /// Run the most recent missed slot once, drop the others. The default.
    #[default]
    Once,
    /// Run every missed slot, oldest first.
    All,
}

fn default_time_zone() -> String {
    "Africa/Bamako".to_owned()
}

fn default_duration() -> Offset {
    Offset::from_seconds(3 * 3600)
}

fn default_misfire_grace() -> Offset {
    Offset::from_seconds(15 * 60)
}

/// A periodic dialogue meeting: who meets, when, where, and what is sent around each occurrence.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingWorkflow {
    /// Always `meeting` for this kind.
    pub kind: MeetingKind,
    /// Unique id of this workflow across all files: lower-case letters, digits, dashes (`dialogue-cercle-koro`).
    pub id: String,
    /// The meeting's name as participants read it (`Cadre de concertation du cercle de Koro`).
    pub title: String,
    /// Free notes for coordinators; never sent.
    #[serde(default)]
    pub description: Option<String>,
    /// The place the meeting belongs to, as a path from places.yaml (`mopti/koro`). Rules are looked up from here.
    pub place: String,
    /// When occurrences start: a cron line in the 5-field form (`min hour day-of-month month day-of-week`,
    /// 0 or 7 = Sunday, `TUE#1` = first Tuesday of the month) or 6 fields with seconds first.
    /// `0 9 * * TUE#1` = 09:00 on the first Tuesday of every month.
    pub recurrence: String,
    /// IANA time zone the recurrence is read in. Default `Africa/Bamako`.
    #[serde(default = "default_time_zone")]
    pub timezone: String,
    /// How long a meeting lasts (used for calendar invitations). Default `3h`.
    #[serde(default = "default_duration")]
    pub duration: Offset,
    /// Where the meeting is held, as participants should read it.
    pub venue: String,
    /// Who is invited: a list of groups; a contact in several groups is invited once.
    pub recipients: Vec<RecipientGroup>,
    /// What is sent, relative to each occurrence's start.
    pub steps: Vec<Step>,
    /// What to do with slots missed while the engine was down: `skip`, `once` (default) or `all`.
    #[serde(default)]
    pub misfire: Misfire,
    /// How late a step may still run as if on time; later than this it counts as missed. Default `15m`.
    #[serde(default = "default_misfire_grace")]
    pub misfire_grace: Offset,
    /// Rule functions this workflow asks instead of the standard hook names. Each must
    /// be defined by a script along the workflow's place (see `palabre rules docs`).
    #[serde(default)]
    pub rules: MeetingRules,
}

/// Functions that answer a meeting's hooks, when not the standard ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingRules {
    /// Instead of `meeting_schedule`: hold, skip or move an occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Instead of `meeting_invitees`: groups invited beyond the YAML ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitees: Option<String>,
    /// Instead of `meeting_quorum`: whether the confirmations make a quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<String>,
    /// Instead of `meeting_reminders`: extra reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<String>,
}

impl MeetingRules {
    /// The function named for the hook in `slot` (`schedule` ...), if any.
    pub fn named(&self, slot: &str) -> Option<&str> {
        match slot {
            "schedule" => self.schedule.as_deref(),
            "invitees" => self.invitees.as_deref(),
            "quorum" => self.quorum.as_deref(),
            "reminders" => self.reminders.as_deref(),
            _ => None,
        }
    }
}

/// A group of recipients: everyone holding `role` in `place` (and the places below it),
/// and/or explicit contacts by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientGroup {
    /// A role from roles.yaml (`leader`, `mayor`, `prefect` ...).
    #[serde(default)]
    pub role: Option<String>,
    /// Where the role is looked for: a place path; the workflow's place when omitted.
    #[serde(default)]
    pub place: Option<String>,
    /// Contact ids from the imported directory (`c-0042`).
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// One message sent around each occurrence.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Id of the step, unique in this workflow (`invitation`, `reminder-1d`).
    pub id: String,
    /// When, relative to the occurrence's start: `-7d` a week before, `-2h`, `+3d` three days after.
    pub at: Offset,
    /// The template to send, by name (a file `templates/<name>.yaml`).
    pub template: String,
    /// Channels this step may use, in order of preference; each recipient gets the message once,
    /// on the first of their own preferred channels that is listed here and reachable.
    pub channels: Vec<Channel>,
    /// Send this step to these groups instead of the workflow's recipients.
    #[serde(default)]
    pub recipients: Option<Vec<RecipientGroup>>,
    /// Attach a calendar invitation (.ics) to this step's emails, so the meeting
    /// lands in the recipients' calendars. Usually on the invitation step.
    #[serde(default)]
    pub calendar: bool,
}

/// Texts of one template in one language.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateText {
    /// Email subject line (one line).
    #[serde(default)]
    pub subject: Option<String>,
    /// Email body.
    #[serde(default)]
    pub email: Option<String>,
    /// SMS text: keep it short and neutral, phones are shared.
    #[serde(default)]
    pub sms: Option<String>,
    /// Write this SMS in the GSM alphabet (`ç`→`c`, `ê`→`e`, `’`→`'` ...) so that it
    /// goes in the cheaper encoding: 160 characters a segment instead of 70.
    #[serde(default)]
    pub sms_gsm: bool,
    /// What a call plays: the names of recorded clips
    /// (`workflows/audio/<language>/<clip>.wav`), separated by spaces, with
    /// spoken values said by `say_date`, `say_time` and `say_digits`
    /// (`invitation {{ occurrence.date | say_date }}`).
    #[serde(default)]
    pub voice: Option<String>,
}

/// A template file: texts keyed by ISO 639-3 language code (`fra`, `eng`, `bam`, `ffm`).
/// `fra` is required: it is the fallback for every other language.
pub type TemplateFile = BTreeMap<String, TemplateText>;

/// `roles.yaml`: the roles contacts can hold, with what each means.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    /// Role id (lower-case, dashes) to its description.
    pub roles: BTreeMap<String, String>,
}
