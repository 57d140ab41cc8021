//! The contact directory in the database: import (upsert) and listing.

use sqlx::Row;

use super::{ImportSummary, Store, StoreError};
use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;

const CONTACT_COLUMNS: &str = "id, name, roles, place, phone, email, language, channels";

impl Store {
    /// Inserts new contacts and updates changed ones, in one transaction; re-importing
    /// the same file changes nothing and never duplicates.
    pub async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<ImportSummary, StoreError> {
        let mut summary = ImportSummary::default();
        let mut tx = self.write_transaction().await?;
        for contact in contacts {
            let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
            )))
            .bind(&contact.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| contact_from_row(&row))
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
                     language = $7, channels = $8 WHERE id = $1"
                }
                None => {
                    summary.inserted += 1;
                    "INSERT INTO contacts (id, name, roles, place, phone, email, language, channels) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                }
            };
            sqlx::query(sql)
                .bind(&contact.id)
                .bind(&contact.name)
                .bind(roles)
                .bind(&contact.place)
                .bind(contact.phone.as_deref())
                .bind(contact.email.as_deref())
                .bind(&contact.language)
                .bind(channels)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// The whole directory, ordered by id.
    pub async fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(contact_from_row).collect()
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

fn contact_from_row(row: &sqlx::any::AnyRow) -> Result<Contact, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "contacts",
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
        name: row.try_get("name")?,
        place: row.try_get("place")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        language: row.try_get("language")?,
        id,
    })
}

impl Store {
    /// One contact by id, as it is now (addresses are read at delivery time).
    pub async fn contact(&self, id: &str) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| contact_from_row(&row)).transpose()
    }
}
