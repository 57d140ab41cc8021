//! `palabre schema`: the JSON Schema of a kind of file, for editors.

use std::fmt::Write as _;

use palabre_plan::schema;

use super::args::SchemaFor;

pub fn run(kind: SchemaFor, out: &mut String) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&schema::schema(kind.into()))?
    )?;
    Ok(())
}
