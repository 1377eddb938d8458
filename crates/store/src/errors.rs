//! `import_errors` (one row per failing record and kind) and `error_events` (its log).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::{error_events, import_errors};

pub const STATUS_OPEN: &str = "open";
pub const STATUS_RESOLVED: &str = "resolved";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_errors)]
pub struct ImportError {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub omie_code: Option<i64>,
    pub kind: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub status: String,
    pub occurrences: i32,
    pub first_event_id: Uuid,
    pub last_event_id: Uuid,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = error_events)]
pub struct ErrorEvent {
    pub error_id: Uuid,
    pub event_id: Uuid,
    pub seen_at: DateTime<Utc>,
    pub reason: String,
}

/// Errors of `codes` within `tenants` (a superset of the exact pairs; the caller indexes them).
pub async fn for_codes(
    conn: &mut AsyncPgConnection,
    tenants: &[Uuid],
    codes: &[i64],
) -> Result<Vec<ImportError>, StoreError> {
    Ok(import_errors::table
        .filter(import_errors::tenant_id.eq_any(tenants))
        .filter(import_errors::omie_code.eq_any(codes))
        .select(ImportError::as_select())
        .load(conn)
        .await?)
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[ImportError]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(import_errors::table)
            .values(chunk)
            .on_conflict(import_errors::id)
            .do_update()
            .set((
                import_errors::name.eq(excluded(import_errors::name)),
                import_errors::email.eq(excluded(import_errors::email)),
                import_errors::message.eq(excluded(import_errors::message)),
                import_errors::status.eq(excluded(import_errors::status)),
                import_errors::occurrences.eq(excluded(import_errors::occurrences)),
                import_errors::last_event_id.eq(excluded(import_errors::last_event_id)),
                import_errors::last_seen_at.eq(excluded(import_errors::last_seen_at)),
                import_errors::resolved_at.eq(excluded(import_errors::resolved_at)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub async fn insert_events(conn: &mut AsyncPgConnection, rows: &[ErrorEvent]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(error_events::table).values(chunk).on_conflict_do_nothing().execute(conn).await?;
    }
    Ok(())
}

/// A tenant's errors, most recently seen first.
pub async fn list(conn: &mut AsyncPgConnection, tenant_id: Uuid, limit: i64) -> Result<Vec<ImportError>, StoreError> {
    Ok(import_errors::table
        .filter(import_errors::tenant_id.eq(tenant_id))
        .order((import_errors::last_seen_at.desc(), import_errors::id))
        .limit(limit)
        .select(ImportError::as_select())
        .load(conn)
        .await?)
}

/// (kind, status, count) of a tenant's errors.
pub async fn count_by_kind(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(import_errors::table
        .filter(import_errors::tenant_id.eq(tenant_id))
        .group_by((import_errors::kind, import_errors::status))
        .select((import_errors::kind, import_errors::status, diesel::dsl::count_star()))
        .order((import_errors::kind, import_errors::status))
        .load(conn)
        .await?)
}

pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<ImportError>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(import_errors::table.filter(import_errors::id.eq_any(ids)).select(ImportError::as_select()).load(conn).await?)
}
