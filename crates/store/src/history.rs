//! `history`: one row per meaningful action (what, who, when), in log order.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::history;

#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = history)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor: Value,
    pub subject: Option<String>,
    pub details: Value,
    pub event_id: Uuid,
    pub log_offset: i64,
    pub ordinal: i16,
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[HistoryEntry]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(history::table).values(chunk).on_conflict_do_nothing().execute(conn).await?;
    }
    Ok(())
}

/// A tenant's history, newest first.
pub async fn list(conn: &mut AsyncPgConnection, tenant_id: Uuid, limit: i64) -> Result<Vec<HistoryEntry>, StoreError> {
    Ok(history::table
        .filter(history::tenant_id.eq(tenant_id))
        .order((history::log_offset.desc(), history::ordinal.desc()))
        .limit(limit)
        .select(HistoryEntry::as_select())
        .load(conn)
        .await?)
}

pub async fn count_for_tenant(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<i64, StoreError> {
    Ok(history::table.filter(history::tenant_id.eq(tenant_id)).count().get_result(conn).await?)
}
