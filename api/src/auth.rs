//! Bearer tokens: creation (the secret shown once, only its SHA-256 kept) and
//! checking a request's token into a [`Caller`] with a role and a scope.
//!
//! A token reads `plb_<id>_<secret>`. The id finds the stored token; the secret's
//! SHA-256 is compared in constant time. The scope is a place path (`mopti`) or
//! `national`; a caller sees and changes only what lies within its scope.
//!
//! A revoked token, or one past its expiry, is refused like an unknown one, at
//! once; an accepted token's `last_used` is written at most once a minute.
//!
//! The dashboard signs a browser in with a token ([`open_session`]): a session
//! cookie whose secret's SHA-256 is kept, for [`SESSION_LIFETIME`] at most, and
//! checked with its token on every request ([`check_session`]), so that a
//! revoked token ends its sessions at once.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use palabre_lang::places::Places;
use palabre_store::{Store, StoreError, StoredSession, StoredToken};
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
    let (id, secret) = (random_hex::<6>()?, random_hex::<24>()?);
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
    if !same_secret(&sha256_hex(secret), &stored.secret_sha256) {
        return Ok(Err(TokenRefusal::WrongSecret { id: stored.id }));
    }
    accept(store, stored, now).await
}

/// The caller a stored token stands for at `now`, whether it came as a bearer
/// token or as the token a session was opened with: refused when revoked, past
/// its expiry or of a role this version does not know; else its `last_used` is
/// recorded (at most once a minute).
async fn accept(
    store: &Store,
    stored: StoredToken,
    now: DateTime<Utc>,
) -> Result<Result<Caller, TokenRefusal>, StoreError> {
    let id = stored.id.clone();
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

/// How long a dashboard session lasts from sign-in.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// A session just opened: the cookie's value (the only time its secret is
/// seen), the secret its forms carry, and who it is.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub cookie: String,
    pub csrf: String,
    pub expires: DateTime<Utc>,
    pub caller: Caller,
}

/// A session's caller, and the secret its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
}

/// Why a session was refused, for the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No session has this secret (never opened, signed out, or forgotten).
    Unknown,
    Expired,
    /// The session's token was revoked, expired or removed.
    Token(TokenRefusal),
}

impl fmt::Display for SessionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionRefusal::Unknown => f.write_str("unknown session"),
            SessionRefusal::Expired => f.write_str("session expired"),
            SessionRefusal::Token(refusal) => write!(f, "session's token refused: {refusal}"),
        }
    }
}

/// A new random secret of 24 bytes, in hex (a form's one-time secret).
pub fn random_secret() -> Result<String, TokenError> {
    random_hex::<24>()
}

fn random_hex<const N: usize>() -> Result<String, TokenError> {
    let mut bytes = [0_u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TokenError::Random)?;
    Ok(hex(&bytes))
}

/// Signs a browser in with a bearer token: a new session for its caller, ending
/// [`SESSION_LIFETIME`] from `now` (or with the token, if that is sooner), or
/// why the token is refused. The token's secret is not kept.
pub async fn open_session(
    store: &Store,
    bearer: &str,
    now: DateTime<Utc>,
) -> Result<Result<OpenedSession, TokenRefusal>, TokenError> {
    let caller = match check_token(store, bearer, now).await? {
        Ok(caller) => caller,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (secret, csrf) = (random_hex::<24>()?, random_hex::<24>()?);
    let token_expiry = store.token(&caller.token).await?.and_then(|t| t.expires);
    let expires = token_expiry.map_or(now + SESSION_LIFETIME, |t| t.min(now + SESSION_LIFETIME));
    store
        .add_session(
            &StoredSession {
                id_sha256: sha256_hex(&secret),
                token_id: caller.token.clone(),
                csrf: csrf.clone(),
                created: now,
                expires,
            },
            now,
        )
        .await?;
    Ok(Ok(OpenedSession {
        cookie: secret,
        csrf,
        expires,
        caller,
    }))
}

/// The session a cookie's value stands for at `now`, its token checked as a
/// bearer token would be (revoked or expired, the session is refused).
pub async fn check_session(
    store: &Store,
    cookie: &str,
    now: DateTime<Utc>,
) -> Result<Result<Session, SessionRefusal>, StoreError> {
    let Some(session) = store.session(&sha256_hex(cookie)).await? else {
        return Ok(Err(SessionRefusal::Unknown));
    };
    if now >= session.expires {
        return Ok(Err(SessionRefusal::Expired));
    }
    let Some(stored) = store.token(&session.token_id).await? else {
        return Ok(Err(SessionRefusal::Token(TokenRefusal::Unknown)));
    };
    Ok(accept(store, stored, now)
        .await?
        .map(|caller| Session {
            caller,
            csrf: session.csrf,
        })
        .map_err(SessionRefusal::Token))
}

/// Ends the session of a cookie's value (sign-out): whether there was one.
pub async fn close_session(store: &Store, cookie: &str) -> Result<bool, StoreError> {
    store.end_session(&sha256_hex(cookie)).await
}
