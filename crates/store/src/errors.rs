//! `import_errors` (one row per failing record and kind) and `error_events` (its log).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::page::{Condition, Page, Position, contains_pattern};
use crate::schema::{error_events, import_errors};

pub const STATUS_OPEN: &str = "open";
pub const STATUS_RESOLVED: &str = "resolved";
pub const STATUS_ARCHIVED: &str = "archived";

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
    /// `{"at", "by", "reason"}` while archived.
    pub archived: Option<Value>,
    /// The trace of the event that last failed the record.
    pub trace_id: Option<String>,
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
                import_errors::archived.eq(excluded(import_errors::archived)),
                import_errors::trace_id.eq(excluded(import_errors::trace_id)),
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

/// Which errors a page holds.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    /// Part of the name or e-mail, or the whole Omie code.
    pub search: Option<String>,
}

/// A page of the tenant's errors, newest first (by when they first appeared), after `after`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    filter: &ErrorFilter,
    after: Option<Position>,
    limit: i64,
) -> Result<Page<ImportError>, StoreError> {
    let mut query = import_errors::table.filter(import_errors::tenant_id.eq(tenant_id)).into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(import_errors::status.eq(status.clone()));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(import_errors::kind.eq(kind.clone()));
    }
    if let Some(search) = filter.search.as_deref() {
        let pattern = contains_pattern(search);
        let mut matches: Condition<import_errors::table> =
            Box::new(import_errors::name.ilike(pattern.clone()).or(import_errors::email.ilike(pattern)));
        if let Ok(code) = search.trim().parse::<i64>() {
            matches = Box::new(matches.or(import_errors::omie_code.eq(code)));
        }
        query = query.filter(matches);
    }
    if let Some(after) = after {
        query = query.filter(
            import_errors::first_seen_at
                .lt(after.at)
                .or(import_errors::first_seen_at.eq(after.at).and(import_errors::id.lt(after.id))),
        );
    }
    let rows = query
        .order((import_errors::first_seen_at.desc(), import_errors::id.desc()))
        .limit(limit + 1)
        .select(ImportError::as_select())
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// The failing events logged against one error, oldest first.
pub async fn log(conn: &mut AsyncPgConnection, error_id: Uuid) -> Result<Vec<ErrorEvent>, StoreError> {
    Ok(error_events::table
        .filter(error_events::error_id.eq(error_id))
        .order((error_events::seen_at, error_events::event_id))
        .select(ErrorEvent::as_select())
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

/// (kind, count) of the open errors of every tenant, for the ops metrics.
pub async fn open_by_kind(conn: &mut AsyncPgConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(import_errors::table
        .filter(import_errors::status.eq(STATUS_OPEN))
        .group_by(import_errors::kind)
        .select((import_errors::kind, diesel::dsl::count_star()))
        .order(import_errors::kind)
        .load(conn)
        .await?)
}

/// One of the tenant's errors.
pub async fn find(conn: &mut AsyncPgConnection, tenant_id: Uuid, id: Uuid) -> Result<Option<ImportError>, StoreError> {
    Ok(import_errors::table
        .filter(import_errors::tenant_id.eq(tenant_id))
        .filter(import_errors::id.eq(id))
        .select(ImportError::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<ImportError>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(import_errors::table.filter(import_errors::id.eq_any(ids)).select(ImportError::as_select()).load(conn).await?)
}

/// The errors of `tenants` (every tenant when `None`), for comparing two builds of the projections.
pub async fn of_scope(conn: &mut AsyncPgConnection, tenants: Option<&[Uuid]>) -> Result<Vec<ImportError>, StoreError> {
    let mut query = import_errors::table.select(ImportError::as_select()).into_boxed();
    if let Some(tenants) = tenants {
        query = query.filter(import_errors::tenant_id.eq_any(tenants.to_vec()));
    }
    Ok(query.load(conn).await?)
}
