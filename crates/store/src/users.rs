//! `users`: the Espresso users made from Omie records. Never hard-deleted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::users;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub omie_code: i64,
    pub name: String,
    pub email: String,
    pub document: Option<String>,
    pub active: bool,
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_event_id: Uuid,
}

/// Users of `codes` within `tenants` (a superset of the exact pairs; the caller indexes them).
pub async fn for_codes(conn: &mut AsyncPgConnection, tenants: &[Uuid], codes: &[i64]) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::omie_code.eq_any(codes))
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// Active users holding any of `emails` within `tenants`.
pub async fn active_with_emails(
    conn: &mut AsyncPgConnection,
    tenants: &[Uuid],
    emails: &[String],
) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::email.eq_any(emails))
        .filter(users::active.eq(true))
        .select(User::as_select())
        .load(conn)
        .await?)
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[User]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(users::table)
            .values(chunk)
            .on_conflict(users::id)
            .do_update()
            .set((
                users::name.eq(excluded(users::name)),
                users::email.eq(excluded(users::email)),
                users::document.eq(excluded(users::document)),
                users::active.eq(excluded(users::active)),
                users::deactivation_reason.eq(excluded(users::deactivation_reason)),
                users::updated_at.eq(excluded(users::updated_at)),
                users::last_event_id.eq(excluded(users::last_event_id)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A tenant's users, by name then Omie code.
pub async fn list(conn: &mut AsyncPgConnection, tenant_id: Uuid, limit: i64) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq(tenant_id))
        .order((users::name, users::omie_code))
        .limit(limit)
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// (active, inactive) user counts of a tenant.
pub async fn count_by_state(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<(i64, i64), StoreError> {
    let rows: Vec<(bool, i64)> = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .group_by(users::active)
        .select((users::active, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    let count = |wanted: bool| rows.iter().filter(|(active, _)| *active == wanted).map(|(_, n)| n).sum();
    Ok((count(true), count(false)))
}

/// Every active user of `tenants` (the reconciliation of a completed sync reads them).
pub async fn active_of_tenants(conn: &mut AsyncPgConnection, tenants: &[Uuid]) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .filter(users::tenant_id.eq_any(tenants))
        .filter(users::active.eq(true))
        .select(User::as_select())
        .load(conn)
        .await?)
}
