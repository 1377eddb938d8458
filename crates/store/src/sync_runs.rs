//! `sync_runs`: each full sync with its progress and what it did.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::{sync_runs, sync_seen};

pub const RUNNING: &str = "running";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_runs)]
pub struct SyncRun {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: String,
    pub requested_by: Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub pages_done: i32,
    pub pages_total: Option<i32>,
    pub rows_seen: i32,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_deactivated: i32,
    pub records_failed: i32,
    pub failure_reason: Option<String>,
    pub last_event_id: Uuid,
}

pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<SyncRun>, StoreError> {
    Ok(sync_runs::table.filter(sync_runs::id.eq_any(ids)).select(SyncRun::as_select()).load(conn).await?)
}

/// The tenant's run that is still `running`, if any.
pub async fn running(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<Option<SyncRun>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::tenant_id.eq(tenant_id))
        .filter(sync_runs::status.eq(RUNNING))
        .select(SyncRun::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Every run still `running`, of all tenants (ingress settles them at start).
pub async fn all_running(conn: &mut AsyncPgConnection) -> Result<Vec<SyncRun>, StoreError> {
    Ok(sync_runs::table.filter(sync_runs::status.eq(RUNNING)).select(SyncRun::as_select()).load(conn).await?)
}

pub async fn find(conn: &mut AsyncPgConnection, tenant_id: Uuid, id: Uuid) -> Result<Option<SyncRun>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::tenant_id.eq(tenant_id))
        .filter(sync_runs::id.eq(id))
        .select(SyncRun::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The tenant's most recently started run, if any.
pub async fn latest(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<Option<SyncRun>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::tenant_id.eq(tenant_id))
        .order((sync_runs::started_at.desc(), sync_runs::id.desc()))
        .select(SyncRun::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[SyncRun]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(sync_runs::table)
            .values(chunk)
            .on_conflict(sync_runs::id)
            .do_update()
            .set((
                sync_runs::status.eq(excluded(sync_runs::status)),
                sync_runs::finished_at.eq(excluded(sync_runs::finished_at)),
                sync_runs::pages_done.eq(excluded(sync_runs::pages_done)),
                sync_runs::pages_total.eq(excluded(sync_runs::pages_total)),
                sync_runs::rows_seen.eq(excluded(sync_runs::rows_seen)),
                sync_runs::users_created.eq(excluded(sync_runs::users_created)),
                sync_runs::users_updated.eq(excluded(sync_runs::users_updated)),
                sync_runs::users_deactivated.eq(excluded(sync_runs::users_deactivated)),
                sync_runs::records_failed.eq(excluded(sync_runs::records_failed)),
                sync_runs::failure_reason.eq(excluded(sync_runs::failure_reason)),
                sync_runs::last_event_id.eq(excluded(sync_runs::last_event_id)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Records that a sync listed these codes.
pub async fn mark_seen(conn: &mut AsyncPgConnection, seen: &[(Uuid, i64)]) -> Result<(), StoreError> {
    let rows: Vec<_> =
        seen.iter().map(|(sync_id, code)| (sync_seen::sync_id.eq(*sync_id), sync_seen::omie_code.eq(*code))).collect();
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(sync_seen::table).values(chunk).on_conflict_do_nothing().execute(conn).await?;
    }
    Ok(())
}

/// Every code the sync listed.
pub async fn seen_codes(conn: &mut AsyncPgConnection, sync_id: Uuid) -> Result<Vec<i64>, StoreError> {
    Ok(sync_seen::table.filter(sync_seen::sync_id.eq(sync_id)).select(sync_seen::omie_code).load(conn).await?)
}
