//! `palabre token create`: an API bearer token for a role and a place scope,
//! printed once; only its hash is kept.

use std::fmt::Write as _;

use anyhow::bail;
use palabre_api::auth::{self, Role};
use palabre_core::clock::{Clock, SystemClock};

use super::args::Sources;
use super::context::{load_definitions, open_store};

pub async fn create(
    role: &str,
    scope: &str,
    label: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let Some(role) = Role::parse(role) else {
        bail!(
            "unknown role '{role}': one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        );
    };
    let definitions = load_definitions(&sources.workflows)?;
    if scope != auth::NATIONAL && definitions.places.get(scope).is_none() {
        bail!(
            "{} (or `national`)",
            definitions.places.unknown_message(scope)
        );
    }
    let store = open_store(sources).await?;
    let token = auth::create_token(&store, role, scope, label, SystemClock.now()).await?;
    store.close().await;
    writeln!(out, "{token}")?;
    eprintln!("a {role} token for {scope}: keep it secret, it is not shown again");
    Ok(())
}
