//! `consumer_offsets`: the next offset to apply per partition, written in the same transaction
//! as the projection. The database, not Kafka, is the truth about what was applied.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;
use crate::schema::consumer_offsets;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = consumer_offsets)]
pub struct ConsumerOffset {
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

/// Locks the offset rows of `partitions` for this transaction (creating missing ones at 0) and
/// returns them. A second consumer applying the same partition waits here, then sees the advance.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, StoreError> {
    let fresh: Vec<ConsumerOffset> = partitions
        .iter()
        .map(|&partition| ConsumerOffset {
            consumer_group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            next_offset: 0,
        })
        .collect();
    diesel::insert_into(consumer_offsets::table).values(&fresh).on_conflict_do_nothing().execute(conn).await?;
    let rows: Vec<(i32, i64)> = consumer_offsets::table
        .filter(consumer_offsets::consumer_group.eq(group))
        .filter(consumer_offsets::topic.eq(topic))
        .filter(consumer_offsets::partition.eq_any(partitions))
        .select((consumer_offsets::partition, consumer_offsets::next_offset))
        .for_update()
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

pub async fn store(conn: &mut AsyncPgConnection, rows: &[ConsumerOffset]) -> Result<(), StoreError> {
    diesel::insert_into(consumer_offsets::table)
        .values(rows)
        .on_conflict((consumer_offsets::consumer_group, consumer_offsets::topic, consumer_offsets::partition))
        .do_update()
        .set(consumer_offsets::next_offset.eq(excluded(consumer_offsets::next_offset)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Stored offsets of a group and topic, read synchronously (from the rebalance callback).
pub fn load_blocking(conn: &mut PgConnection, group: &str, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
    let query = consumer_offsets::table
        .filter(consumer_offsets::consumer_group.eq(group))
        .filter(consumer_offsets::topic.eq(topic))
        .select((consumer_offsets::partition, consumer_offsets::next_offset));
    let rows: Vec<(i32, i64)> = diesel::RunQueryDsl::load(query, conn)?;
    Ok(rows.into_iter().collect())
}
