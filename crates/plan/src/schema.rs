//! The JSON Schemas of every kind of file, for editors (`palabre schema`). They
//! are generated from the model types, so they never disagree with the reader.

use palabre_lang::meeting::{MeetingWorkflow, RolesFile, TemplateFile};

/// The kinds of file palabre can give a JSON Schema for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Workflow,
    Places,
    Roles,
    Template,
    Calendar,
    RuleCases,
    Milestones,
    Escalation,
    Retention,
    Calls,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 10] = [
        SchemaKind::Workflow,
        SchemaKind::Milestones,
        SchemaKind::Escalation,
        SchemaKind::Places,
        SchemaKind::Roles,
        SchemaKind::Template,
        SchemaKind::Calendar,
        SchemaKind::RuleCases,
        SchemaKind::Retention,
        SchemaKind::Calls,
    ];

    /// The file name the schema is published under in `schemas/`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Workflow => "workflow.schema.json",
            SchemaKind::Places => "places.schema.json",
            SchemaKind::Roles => "roles.schema.json",
            SchemaKind::Template => "template.schema.json",
            SchemaKind::Calendar => "calendar.schema.json",
            SchemaKind::RuleCases => "rule-cases.schema.json",
            SchemaKind::Milestones => "milestones.schema.json",
            SchemaKind::Escalation => "escalation.schema.json",
            SchemaKind::Retention => "retention.schema.json",
            SchemaKind::Calls => "calls.schema.json",
        }
    }
}

/// The JSON Schema (2020-12) of one kind of file, for editors.
pub fn schema(kind: SchemaKind) -> schemars::Schema {
    let (mut schema, title) = match kind {
        SchemaKind::Workflow => (schemars::schema_for!(MeetingWorkflow), "palabre workflow"),
        SchemaKind::Places => (
            schemars::schema_for!(palabre_lang::places::PlacesFile),
            "palabre places",
        ),
        SchemaKind::Roles => (schemars::schema_for!(RolesFile), "palabre roles"),
        SchemaKind::Template => (
            schemars::schema_for!(TemplateFile),
            "palabre message template",
        ),
        SchemaKind::Calendar => (
            schemars::schema_for!(palabre_lang::calendars::CalendarFile),
            "palabre calendar",
        ),
        SchemaKind::RuleCases => (
            schemars::schema_for!(palabre_rules::CaseFile),
            "palabre rule test cases",
        ),
        SchemaKind::Milestones => (
            schemars::schema_for!(palabre_lang::milestones::MilestonePlan),
            "palabre milestone plan",
        ),
        SchemaKind::Escalation => (
            schemars::schema_for!(palabre_lang::escalation::EscalationWorkflow),
            "palabre escalation ladder",
        ),
        SchemaKind::Retention => (
            schemars::schema_for!(palabre_lang::retention::Retention),
            "palabre retention",
        ),
        SchemaKind::Calls => (
            schemars::schema_for!(palabre_lang::calls::CallsFile),
            "palabre call hours",
        ),
    };
    schema.insert(
        "title".to_owned(),
        serde_json::Value::String(title.to_owned()),
    );
    schema
}
