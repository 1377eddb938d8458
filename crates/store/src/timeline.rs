//! `record_timeline`: every event of one Omie record with the projector's verdict.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{self as sql, Array, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::schema::record_timeline;
use crate::{StoreError, column};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
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

/// Appends `rows`, one array per column (as [`crate::events::insert`] does).
pub async fn insert(conn: &mut AsyncPgConnection, rows: &[TimelineEntry]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO record_timeline (id, tenant_id, omie_code, event_id, event_type, verdict, detail, at, \
         log_partition, log_offset) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
         $8::timestamptz[], $9::int4[], $10::int8[]) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.id))
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.tenant_id))
    .bind::<Array<sql::BigInt>, _>(column(rows, |row| row.omie_code))
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.event_id))
    .bind::<Array<sql::Text>, _>(column(rows, |row| row.event_type.as_str()))
    .bind::<Array<sql::Text>, _>(column(rows, |row| row.verdict.as_str()))
    .bind::<Array<Nullable<sql::Text>>, _>(column(rows, |row| row.detail.as_deref()))
    .bind::<Array<sql::Timestamptz>, _>(column(rows, |row| row.at))
    .bind::<Array<sql::Integer>, _>(column(rows, |row| row.log_partition))
    .bind::<Array<sql::BigInt>, _>(column(rows, |row| row.log_offset))
    .execute(conn)
    .await?;
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
