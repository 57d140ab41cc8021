//! `palabre schema`: the JSON Schema editors use, kept in `schemas/` and current.

use serde_json::Value;

use crate::util::{palabre, repo};

#[test]
fn committed_schemas_are_current() {
    for kind in [
        "workflow",
        "places",
        "roles",
        "template",
        "calendar",
        "rule-cases",
        "milestones",
        "escalation",
        "retention",
        "calls",
    ] {
        let run = palabre(&repo(), &["schema", "--kind", kind]);
        assert_eq!(run.code, 0);
        let committed =
            std::fs::read_to_string(repo().join(format!("schemas/{kind}.schema.json"))).unwrap();
        assert_eq!(
            run.stdout, committed,
            "schemas/{kind}.schema.json is stale: run `cargo run -- schema --kind {kind} > schemas/{kind}.schema.json`"
        );
    }
}

/// Every property of every object in the schema, with its path.
fn properties(value: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    if let Some(props) = value.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            out.push((format!("{path}.{name}"), prop.clone()));
        }
    }
    if let Some(defs) = value.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            properties(def, name, out);
        }
    }
}

#[test]
fn every_workflow_field_has_hover_documentation_and_unknown_fields_are_refused() {
    let run = palabre(&repo(), &["schema"]);
    let schema: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["Step"]["additionalProperties"], false);
    let mut all = Vec::new();
    properties(&schema, "workflow", &mut all);
    assert!(all.len() >= 20, "only {} properties", all.len());
    for (path, prop) in all {
        let documented = prop
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.len() > 10);
        assert!(documented, "{path} has no description for editors");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in [
        "kind",
        "id",
        "title",
        "place",
        "recurrence",
        "venue",
        "recipients",
        "steps",
    ] {
        assert!(required.contains(&field), "{field} should be required");
    }
}
