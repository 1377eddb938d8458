//! `record_timeline`: every event of one Omie record with the projector's verdict.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::record_timeline;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = record_timeline)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub omie_code: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub verdict: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
    pub log_partition: i32,
    pub log_offset: i64,
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[TimelineEntry]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(record_timeline::table).values(chunk).on_conflict_do_nothing().execute(conn).await?;
    }
    Ok(())
}

/// One record's timeline in log order.
pub async fn for_record(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    omie_code: i64,
) -> Result<Vec<TimelineEntry>, StoreError> {
    Ok(record_timeline::table
        .filter(record_timeline::tenant_id.eq(tenant_id))
        .filter(record_timeline::omie_code.eq(omie_code))
        .order(record_timeline::log_offset)
        .select(TimelineEntry::as_select())
        .load(conn)
        .await?)
}

/// The tenant's timeline entries of `event_ids` (what each event did to its record).
pub async fn for_events(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    event_ids: &[Uuid],
) -> Result<Vec<TimelineEntry>, StoreError> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(record_timeline::table
        .filter(record_timeline::tenant_id.eq(tenant_id))
        .filter(record_timeline::event_id.eq_any(event_ids))
        .select(TimelineEntry::as_select())
        .load(conn)
        .await?)
}
