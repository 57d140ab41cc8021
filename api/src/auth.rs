//! Bearer tokens: creation (the secret shown once, only its SHA-256 kept) and
//! checking a request's token into a [`Caller`] with a role and a scope.
//!
//! A token reads `plb_<id>_<secret>`. The id finds the stored token; the secret's
//! SHA-256 is compared in constant time. The scope is a place path (`mopti`) or
//! `national`; a caller sees and changes only what lies within its scope.
//!
//! A revoked token, or one past its expiry, is refused like an unknown one, at
//! once; an accepted token's `last_used` is written at most once a minute.

use std::fmt;

use chrono::{DateTime, Utc};
use palabre_lang::places::Places;
use palabre_store::{Store, StoreError, StoredToken};
use ring::rand::{SecureRandom, SystemRandom};

/// What a token may do. Each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads cases (without their description), milestones, the ledger.
    Observer,
    /// Also opens and acts on cases (and reads their descriptions), sets milestone
    /// status, fires workflow events.
    Coordinator,
    /// Everything a coordinator may.
    Administrator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Observer, Role::Coordinator, Role::Administrator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Coordinator => "coordinator",
            Role::Administrator => "administrator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope that covers every place.
pub const NATIONAL: &str = "national";

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub role: Role,
    pub scope: String,
}

impl Caller {
    /// Whether `place` lies within this caller's scope.
    pub fn covers(&self, place: &str) -> bool {
        self.scope == NATIONAL || Places::contains(&self.scope, place)
    }
}

/// Why a token cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no randomness available")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

/// Whether two secrets are equal, in a time that does not depend on where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    palabre_core::secret::same_bytes(given.as_bytes(), expected.as_bytes())
}

/// Creates a token that never expires and returns it in full: the only time its
/// secret is seen.
pub async fn create_token(
    store: &Store,
    role: Role,
    scope: &str,
    label: &str,
    now: DateTime<Utc>,
) -> Result<String, TokenError> {
    create_token_expiring(store, role, scope, label, now, None).await
}

/// Creates a token refused from `expires` on (never, if `None`) and returns it
/// in full: the only time its secret is seen.
pub async fn create_token_expiring(
    store: &Store,
    role: Role,
    scope: &str,
    label: &str,
    now: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
) -> Result<String, TokenError> {
    let random = SystemRandom::new();
    let mut id = [0_u8; 6];
    let mut secret = [0_u8; 24];
    random.fill(&mut id).map_err(|_| TokenError::Random)?;
    random.fill(&mut secret).map_err(|_| TokenError::Random)?;
    let (id, secret) = (hex(&id), hex(&secret));
    store
        .add_token(&StoredToken {
            id: id.clone(),
            secret_sha256: sha256_hex(&secret),
            role: role.as_str().to_owned(),
            scope: scope.to_owned(),
            label: label.to_owned(),
            created: now,
            expires,
            revoked: None,
            last_used: None,
        })
        .await?;
    Ok(format!("plb_{id}_{secret}"))
}

/// Why a bearer token was refused, as the server's log says it: the id of a
/// known token at most, never a secret nor what an unknown token read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not of the form `plb_<id>_<secret>`.
    Malformed,
    /// No token has this id.
    Unknown,
    /// The token's secret is not this one.
    WrongSecret {
        id: String,
    },
    Revoked {
        id: String,
    },
    Expired {
        id: String,
    },
    /// The stored role is none this version knows.
    UnknownRole {
        id: String,
    },
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRefusal::Malformed => f.write_str("not a palabre token"),
            TokenRefusal::Unknown => f.write_str("unknown token"),
            TokenRefusal::WrongSecret { id } => write!(f, "wrong secret for token {id}"),
            TokenRefusal::Revoked { id } => write!(f, "token {id} is revoked"),
            TokenRefusal::Expired { id } => write!(f, "token {id} has expired"),
            TokenRefusal::UnknownRole { id } => write!(f, "token {id} has an unknown role"),
        }
    }
}

/// The caller a bearer token stands for at `now` (the engine's clock), or `None`
/// if it is not a valid token: unknown, wrong secret, revoked, or expired. An
/// accepted token's `last_used` is recorded (at most once a minute).
pub async fn check(
    store: &Store,
    bearer: &str,
    now: DateTime<Utc>,
) -> Result<Option<Caller>, StoreError> {
    Ok(check_token(store, bearer, now).await?.ok())
}

/// [`check`], saying why a token is refused.
pub async fn check_token(
    store: &Store,
    bearer: &str,
    now: DateTime<Utc>,
) -> Result<Result<Caller, TokenRefusal>, StoreError> {
    let Some((id, secret)) = bearer
        .strip_prefix("plb_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(Err(TokenRefusal::Malformed));
    };
    let Some(stored) = store.token(id).await? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    let id = stored.id.clone();
    if !same_secret(&sha256_hex(secret), &stored.secret_sha256) {
        return Ok(Err(TokenRefusal::WrongSecret { id }));
    }
    if stored.revoked.is_some() {
        return Ok(Err(TokenRefusal::Revoked { id }));
    }
    if !stored.usable(now) {
        return Ok(Err(TokenRefusal::Expired { id }));
    }
    let Some(role) = Role::parse(&stored.role) else {
        return Ok(Err(TokenRefusal::UnknownRole { id }));
    };
    store.token_used(&stored, now).await?;
    Ok(Ok(Caller {
        token: stored.id,
        role,
        scope: stored.scope,
    }))
}
