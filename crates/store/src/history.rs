//! `history`: one row per meaningful action (what, who, when), in log order.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{self as sql, Array, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::page::{Page, Position, contains_pattern};
use crate::schema::history;
use crate::{StoreError, column};

#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
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

/// Appends `rows`, one array per column (as [`crate::events::insert`] does).
pub async fn insert(conn: &mut AsyncPgConnection, rows: &[HistoryEntry]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO history (id, tenant_id, at, action, actor, subject, details, event_id, log_offset, ordinal) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::text[], \
         $7::jsonb[], $8::uuid[], $9::int8[], $10::int2[]) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.id))
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.tenant_id))
    .bind::<Array<sql::Timestamptz>, _>(column(rows, |row| row.at))
    .bind::<Array<sql::Text>, _>(column(rows, |row| row.action.as_str()))
    .bind::<Array<sql::Jsonb>, _>(column(rows, |row| &row.actor))
    .bind::<Array<Nullable<sql::Text>>, _>(column(rows, |row| row.subject.as_deref()))
    .bind::<Array<sql::Jsonb>, _>(column(rows, |row| &row.details))
    .bind::<Array<sql::Uuid>, _>(column(rows, |row| row.event_id))
    .bind::<Array<sql::BigInt>, _>(column(rows, |row| row.log_offset))
    .bind::<Array<sql::SmallInt>, _>(column(rows, |row| row.ordinal))
    .execute(conn)
    .await?;
    Ok(())
}

/// A tenant's history, newest first.
/// Which history rows a page holds.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub actions: Vec<String>,
    pub actor_kind: Option<String>,
    /// Part of the actor's name, e-mail or id.
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A page of the tenant's history, newest first, after `after`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    filter: &HistoryFilter,
    after: Option<Position>,
    limit: i64,
) -> Result<Page<HistoryEntry>, StoreError> {
    let mut query = history::table.filter(history::tenant_id.eq(tenant_id)).into_boxed();
    if !filter.actions.is_empty() {
        query = query.filter(history::action.eq_any(filter.actions.clone()));
    }
    if let Some(kind) = &filter.actor_kind {
        query = query.filter(history::actor.retrieve_as_text("kind").eq(kind.clone()));
    }
    if let Some(actor) = filter.actor.as_deref() {
        let pattern = contains_pattern(actor);
        query = query.filter(
            history::actor
                .retrieve_as_text("name")
                .ilike(pattern.clone())
                .or(history::actor.retrieve_as_text("email").ilike(pattern.clone()))
                .or(history::actor.retrieve_as_text("id").ilike(pattern)),
        );
    }
    if let Some(from) = filter.from {
        query = query.filter(history::at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(history::at.lt(until));
    }
    if let Some(after) = after {
        query = query.filter(history::at.lt(after.at).or(history::at.eq(after.at).and(history::id.lt(after.id))));
    }
    let rows = query
        .order((history::at.desc(), history::id.desc()))
        .limit(limit + 1)
        .select(HistoryEntry::as_select())
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn count_for_tenant(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<i64, StoreError> {
    Ok(history::table.filter(history::tenant_id.eq(tenant_id)).count().get_result(conn).await?)
}
