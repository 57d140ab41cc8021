//! `palabre token create|list|revoke`: API bearer tokens. A token is created for
//! a role and a place scope, perhaps with an expiry, and printed once (only its
//! hash is kept); listed without its secret or hash; revoked (refused at once,
//! kept for the record).

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use palabre_api::auth::{self, Role};
use palabre_core::clock::{Clock, SystemClock};
use palabre_core::offset::Offset;

use super::args::{Format, Sources};
use super::context::{Invalid, load_definitions, open_store, print_table, read_if_exists};

pub async fn create(
    role: &str,
    scope: &str,
    label: &str,
    expires: Option<&str>,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let Some(role) = Role::parse(role) else {
        bail!(
            "unknown role '{role}': one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        );
    };
    let lasts = expires
        .map(|text| {
            let offset: Offset = text.parse().with_context(|| format!("--expires {text}"))?;
            if offset.seconds() <= 0 {
                bail!("--expires {text}: give a length of time ahead, e.g. 30d");
            }
            Ok(offset)
        })
        .transpose()?;
    let definitions = load_definitions(&sources.workflows)?;
    if scope != auth::NATIONAL && definitions.places.get(scope).is_none() {
        bail!(
            "{} (or `national`)",
            definitions.places.unknown_message(scope)
        );
    }
    let now = SystemClock.now();
    let expires = lasts.map(|offset| now + offset.as_delta());
    let store = open_store(sources).await?;
    let token = auth::create_token_expiring(&store, role, scope, label, now, expires).await;
    store.close().await;
    writeln!(out, "{}", token?)?;
    match expires {
        Some(expires) => eprintln!(
            "a {role} token for {scope}, good until {}: keep it secret, it is not shown again",
            when(expires)
        ),
        None => eprintln!("a {role} token for {scope}: keep it secret, it is not shown again"),
    }
    Ok(())
}

/// One token as listed: never its secret, nor the secret's hash.
struct Listed {
    id: String,
    label: String,
    role: String,
    scope: String,
    created: DateTime<Utc>,
    last_used: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    revoked: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`, now.
    state: &'static str,
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub async fn list(format: Format, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let tokens = read_if_exists(sources, async |store| store.tokens().await).await?;
    let now = SystemClock.now();
    let listed: Vec<Listed> = tokens
        .into_iter()
        .map(|t| Listed {
            state: if t.revoked.is_some() {
                "revoked"
            } else if t.usable(now) {
                "active"
            } else {
                "expired"
            },
            id: t.id,
            label: t.label,
            role: t.role,
            scope: t.scope,
            created: t.created,
            last_used: t.last_used,
            expires: t.expires,
            revoked: t.revoked,
        })
        .collect();
    match format {
        Format::Json => {
            let json: Vec<serde_json::Value> = listed
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "id": t.id,
                        "label": t.label,
                        "role": t.role,
                        "scope": t.scope,
                        "created": t.created,
                        "last_used": t.last_used,
                        "expires": t.expires,
                        "revoked": t.revoked,
                        "state": t.state,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
        Format::Table => {
            let optional = |t: Option<DateTime<Utc>>, none: &str| t.map_or(none.to_owned(), when);
            let rows = listed.iter().map(|t| {
                vec![
                    t.id.clone(),
                    t.label.clone(),
                    t.role.clone(),
                    t.scope.clone(),
                    when(t.created),
                    optional(t.last_used, "never"),
                    optional(t.expires, "never"),
                    t.state.to_owned(),
                ]
            });
            print_table(
                out,
                &[
                    "id",
                    "label",
                    "role",
                    "scope",
                    "created",
                    "last used",
                    "expires",
                    "state",
                ],
                rows,
            );
            writeln!(out, "{} token(s)", listed.len())?;
        }
    }
    Ok(())
}

pub async fn revoke(id: &str, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    // Given in full by mistake (`plb_<id>_<secret>`), the id is still found.
    let id = id
        .strip_prefix("plb_")
        .and_then(|rest| rest.split_once('_'))
        .map_or(id, |(id, _)| id);
    let store = open_store(sources).await?;
    let revoked = store.revoke_token(id, SystemClock.now()).await;
    store.close().await;
    match revoked? {
        Some(true) => writeln!(out, "token {id} revoked: refused from now on")?,
        Some(false) => writeln!(out, "token {id} was already revoked")?,
        None => {
            eprintln!("error: there is no token '{id}'");
            return Err(Invalid.into());
        }
    }
    Ok(())
}
