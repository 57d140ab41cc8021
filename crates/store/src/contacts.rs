//! The contact directory in the database: import (upsert, or sync with the whole
//! directory), listing, removal, and deactivation.
//!
//! A contact is *active* or *inactive*. An inactive contact (a replaced mayor) is
//! kept for the record but reached no more: [`Store::contacts`], the directory
//! the planner's recipient groups, the rules and delivery read, leaves inactive
//! contacts out, while [`Store::directory`] (what `contacts list` shows) holds
//! everyone, marked.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::Row;

use super::sealing::{CONTACT_EMAIL, CONTACT_NAME, CONTACT_PHONE, Indexed, Sealer};
use super::{ImportSummary, Store, StoreError};
use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;

const TABLE: &str = "contacts";

const CONTACT_COLUMNS: &str = "id, name, roles, place, phone, email, language, channels";

/// One contact as `contacts list` shows it: the contact, and whether it is still
/// reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryEntry {
    #[serde(flatten)]
    pub contact: Contact,
    /// False for a contact kept for the record only (`contacts deactivate`).
    pub active: bool,
}

/// What a sync (`contacts import --sync`) changed: the import itself, and the
/// contacts deactivated (missing from the file) or reactivated (back in it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub import: ImportSummary,
    pub deactivated: usize,
    pub reactivated: usize,
}

/// What a sync with a file would change in the directory as it is now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncPreview {
    /// Active contacts missing from the file.
    pub deactivate: BTreeSet<String>,
    /// Inactive contacts the file holds again.
    pub reactivate: BTreeSet<String>,
}

impl SyncPreview {
    /// Against `stored` (id → active), for a file holding `ids`.
    fn of(stored: &BTreeMap<String, bool>, ids: &BTreeSet<&str>) -> SyncPreview {
        let mut preview = SyncPreview::default();
        for (id, &active) in stored {
            let listed = ids.contains(id.as_str());
            if active && !listed {
                preview.deactivate.insert(id.clone());
            } else if !active && listed {
                preview.reactivate.insert(id.clone());
            }
        }
        preview
    }
}

impl Store {
    /// Inserts new contacts and updates changed ones, in one transaction; re-importing
    /// the same file changes nothing and never duplicates. Whether a contact is
    /// active is left as it is (a new one is active).
    pub async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<ImportSummary, StoreError> {
        let mut tx = self.write_transaction().await?;
        let summary = upsert(&mut tx, &self.sealer, contacts).await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// What [`Store::sync_contacts`] with these contacts would deactivate and
    /// reactivate now.
    pub async fn sync_preview(&self, contacts: &[Contact]) -> Result<SyncPreview, StoreError> {
        let stored = activity(&mut *self.pool.acquire().await?).await?;
        let ids = contacts.iter().map(|c| c.id.as_str()).collect();
        Ok(SyncPreview::of(&stored, &ids))
    }

    /// Makes the directory the given contacts, in one transaction: they are
    /// inserted or updated and made active, and every contact missing from them
    /// is deactivated (kept for the record, reached no more).
    pub async fn sync_contacts(&self, contacts: &[Contact]) -> Result<SyncSummary, StoreError> {
        let mut tx = self.write_transaction().await?;
        let stored = activity(&mut tx).await?;
        let ids = contacts.iter().map(|c| c.id.as_str()).collect();
        let preview = SyncPreview::of(&stored, &ids);
        let import = upsert(&mut tx, &self.sealer, contacts).await?;
        for (ids, active) in [(&preview.deactivate, false), (&preview.reactivate, true)] {
            for id in ids {
                sqlx::query(active_statement(active))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(SyncSummary {
            import,
            deactivated: preview.deactivate.len(),
            reactivated: preview.reactivate.len(),
        })
    }

    /// Removes a contact from the directory; false if there was none by that id.
    /// Messages queued for them are dead-lettered at delivery.
    pub async fn remove_contact(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deactivates (`active` false) or reactivates a contact: `None` if there is
    /// none by that id, else whether this changed anything.
    pub async fn set_contact_active(
        &self,
        id: &str,
        active: bool,
    ) -> Result<Option<bool>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let stored = activity(&mut tx).await?;
        let Some(&was) = stored.get(id) else {
            return Ok(None);
        };
        if was != active {
            sqlx::query(active_statement(active))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(was != active))
    }

    /// The ids of the inactive contacts.
    pub async fn inactive_contacts(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM contacts WHERE NOT active")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The whole directory, inactive contacts included and marked, ordered by id:
    /// what `contacts list` shows. Planning and delivery read [`Store::contacts`].
    pub async fn directory(&self) -> Result<Vec<DirectoryEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        let inactive = self.inactive_contacts().await?;
        rows.iter()
            .map(|row| {
                let contact = contact_from_row(&self.sealer, row)?;
                let active = !inactive.contains(&contact.id);
                Ok(DirectoryEntry { contact, active })
            })
            .collect()
    }
}

/// `UPDATE` of one contact's `active` (bound: the id). Literals rather than a
/// bound boolean: both backends read them, and the `Any` driver needs no
/// boolean decoding.
fn active_statement(active: bool) -> &'static str {
    if active {
        "UPDATE contacts SET active = TRUE WHERE id = $1"
    } else {
        "UPDATE contacts SET active = FALSE WHERE id = $1"
    }
}

/// Every contact's id and whether it is active.
async fn activity(conn: &mut sqlx::AnyConnection) -> Result<BTreeMap<String, bool>, StoreError> {
    let rows =
        sqlx::query("SELECT id, CASE WHEN active THEN 'yes' ELSE 'no' END AS active FROM contacts")
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let active: String = r.try_get("active")?;
            Ok((id, active == "yes"))
        })
        .collect()
}

/// Inserts new contacts and updates changed ones within `tx`.
async fn upsert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sealer: &Sealer,
    contacts: &[Contact],
) -> Result<ImportSummary, StoreError> {
    let mut summary = ImportSummary::default();
    {
        for contact in contacts {
            let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
            )))
            .bind(&contact.id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|row| contact_from_row(sealer, &row))
            .transpose()?;
            let roles = json_list(contact.roles.iter().map(String::as_str));
            let channels = json_list(contact.channels.iter().map(|c| c.as_str()));
            let sql = match existing {
                Some(ref stored) if stored == contact => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    summary.updated += 1;
                    "UPDATE contacts SET name = $2, roles = $3, place = $4, phone = $5, email = $6, \
                     language = $7, channels = $8, phone_index = $9, email_index = $10 WHERE id = $1"
                }
                None => {
                    summary.inserted += 1;
                    "INSERT INTO contacts (id, name, roles, place, phone, email, language, channels, \
                     phone_index, email_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                }
            };
            let (id, phone, email) = (
                &contact.id,
                contact.phone.as_deref(),
                contact.email.as_deref(),
            );
            sqlx::query(sql)
                .bind(id)
                .bind(sealer.seal(&CONTACT_NAME, id, &contact.name)?)
                .bind(roles)
                .bind(&contact.place)
                .bind(sealer.seal_some(&CONTACT_PHONE, id, phone)?)
                .bind(sealer.seal_some(&CONTACT_EMAIL, id, email)?)
                .bind(&contact.language)
                .bind(channels)
                .bind(sealer.index_some(Indexed::Phone, phone))
                .bind(sealer.index_some(Indexed::Email, email))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(summary)
}

impl Store {
    /// The directory that is reached, ordered by id: the active contacts only.
    /// Planning (the planner's recipient groups, the rules' `contacts_with_role`),
    /// commands and delivery read this, so an inactive contact is never a
    /// recipient; [`Store::directory`] lists everyone.
    pub async fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE active ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| contact_from_row(&self.sealer, row))
            .collect()
    }

    /// The active contact whose phone is `number` (normalised, as stored), found
    /// by its blind index; the first by id if several share it.
    pub async fn contact_by_phone(&self, number: &str) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE active AND phone_index = $1 \
             ORDER BY id LIMIT 1"
        )))
        .bind(self.sealer.index(Indexed::Phone, number))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| contact_from_row(&self.sealer, &row))
            .transpose()
    }
}

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::Value::Array(
        items
            .map(|s| serde_json::Value::String(s.to_owned()))
            .collect(),
    )
    .to_string()
}

fn contact_from_row(sealer: &Sealer, row: &sqlx::any::AnyRow) -> Result<Contact, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: TABLE,
        id: id.clone(),
        reason,
    };
    let list = |column: &str| -> Result<Vec<String>, StoreError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| corrupt(format!("{column}: {e}")))
    };
    let channels = list("channels")?
        .iter()
        .map(|c| Channel::parse(c).ok_or_else(|| corrupt(format!("unknown channel '{c}'"))))
        .collect::<Result<_, _>>()?;
    Ok(Contact {
        roles: list("roles")?,
        channels,
        name: sealer.open(
            TABLE,
            &CONTACT_NAME,
            &id,
            &row.try_get::<String, _>("name")?,
        )?,
        place: row.try_get("place")?,
        phone: sealer.open_some(
            TABLE,
            &CONTACT_PHONE,
            &id,
            row.try_get::<Option<String>, _>("phone")?.as_deref(),
        )?,
        email: sealer.open_some(
            TABLE,
            &CONTACT_EMAIL,
            &id,
            row.try_get::<Option<String>, _>("email")?.as_deref(),
        )?,
        language: row.try_get("language")?,
        id,
    })
}

impl Store {
    /// One contact by id, as it is now (addresses are read at delivery time),
    /// active or not.
    pub async fn contact(&self, id: &str) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| contact_from_row(&self.sealer, &row))
            .transpose()
    }
}
