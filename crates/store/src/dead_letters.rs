//! `dead_letters`: log records the projector cannot decode, kept with the reason (and sent to the
//! dead-letter topic); an operator lists, inspects and re-drives them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;
use crate::schema::dead_letters;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = dead_letters)]
pub struct DeadLetter {
    pub topic: String,
    pub log_partition: i32,
    pub log_offset: i64,
    pub record_key: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
    pub redriven_at: Option<DateTime<Utc>>,
    /// `partition:offset` of the re-driven record on the events topic.
    pub redriven_to: Option<String>,
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[DeadLetter]) -> Result<(), StoreError> {
    diesel::insert_into(dead_letters::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
    Ok(())
}

/// The dead letters of `topic`, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, topic: &str, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
    Ok(dead_letters::table
        .filter(dead_letters::topic.eq(topic))
        .order((dead_letters::log_partition, dead_letters::log_offset))
        .limit(limit)
        .select(DeadLetter::as_select())
        .load(conn)
        .await?)
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<DeadLetter>, StoreError> {
    Ok(dead_letters::table
        .find((topic, partition, offset))
        .select(DeadLetter::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn mark_redriven(
    conn: &mut AsyncPgConnection,
    letter: &DeadLetter,
    at: DateTime<Utc>,
    to: &str,
) -> Result<(), StoreError> {
    diesel::update(dead_letters::table.find((&letter.topic, letter.log_partition, letter.log_offset)))
        .set((dead_letters::redriven_at.eq(at), dead_letters::redriven_to.eq(to)))
        .execute(conn)
        .await?;
    Ok(())
}
