//! `events`: every applied event with its raw payload and log position.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{self as sql, Array, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::schema::events;
use crate::{StoreError, column};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub subject: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub log_partition: i32,
    pub log_offset: i64,
    pub actor: Value,
    pub payload: Value,
    /// The W3C trace id the event travelled with.
    pub trace_id: Option<String>,
}

/// Which of `ids` were applied before (a duplicate delivery carries an id seen before).
pub async fn existing_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
    let found: Vec<Uuid> = events::table.filter(events::id.eq_any(ids)).select(events::id).load(conn).await?;
    Ok(found.into_iter().collect())
}

/// Appends `rows`, one array per column: PostgreSQL parses and plans a multi-row `VALUES` list
/// bind by bind, which cost more than inserting the rows.
pub async fn insert(conn: &mut AsyncPgConnection, rows: &[EventRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO events (id, tenant_id, event_type, subject, occurred_at, recorded_at, log_partition, log_offset, \
         actor, payload, trace_id) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], \
         $7::int4[], $8::int8[], $9::jsonb[], $10::jsonb[], $11::text[]) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.id))
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.tenant_id))
    .bind::<Array<sql::Text>, _>(column(rows, |row| row.event_type.as_str()))
    .bind::<Array<Nullable<sql::Text>>, _>(column(rows, |row| row.subject.as_deref()))
    .bind::<Array<sql::Timestamptz>, _>(column(rows, |row| row.occurred_at))
    .bind::<Array<sql::Timestamptz>, _>(column(rows, |row| row.recorded_at))
    .bind::<Array<sql::Integer>, _>(column(rows, |row| row.log_partition))
    .bind::<Array<sql::BigInt>, _>(column(rows, |row| row.log_offset))
    .bind::<Array<sql::Jsonb>, _>(column(rows, |row| &row.actor))
    .bind::<Array<sql::Jsonb>, _>(column(rows, |row| &row.payload))
    .bind::<Array<Nullable<sql::Text>>, _>(column(rows, |row| row.trace_id.as_deref()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn count_for_tenant(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<i64, StoreError> {
    Ok(events::table.filter(events::tenant_id.eq(tenant_id)).count().get_result(conn).await?)
}

/// The tenant's events among `ids`.
pub async fn by_ids(conn: &mut AsyncPgConnection, tenant_id: Uuid, ids: &[Uuid]) -> Result<Vec<EventRow>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::id.eq_any(ids))
        .select(EventRow::as_select())
        .load(conn)
        .await?)
}

/// The trace id of each of the tenant's events among `ids` that has one.
pub async fn trace_ids(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    let rows: Vec<(Uuid, Option<String>)> = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::id.eq_any(ids))
        .select((events::id, events::trace_id))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(id, trace_id)| Some((id, trace_id?))).collect())
}

/// Every tenant the log has told the projections about.
pub async fn tenants(conn: &mut AsyncPgConnection) -> Result<Vec<Uuid>, StoreError> {
    Ok(events::table.select(events::tenant_id).distinct().order(events::tenant_id).load(conn).await?)
}

/// Whether the projections hold any event at all.
pub async fn any(conn: &mut AsyncPgConnection) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(events::table.select(events::id))).get_result(conn).await?)
}
