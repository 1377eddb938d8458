//! Shadow schemas: an empty copy of the projections, in a schema of its own, where a replay
//! folds the log aside while the live projector keeps serving; then, in one transaction, the
//! shadow's rows replace the live ones (for every tenant or one), so readers see the old state or
//! the new one, never a half-built one. Offsets are not copied: the live projector's stay its own.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::MigrationHarness;
use uuid::Uuid;

use crate::{MIGRATIONS, StoreError};

/// The projection tables, in an order that respects their references, with how to select one
/// tenant's rows (`$1` is the array of tenants).
const TABLES: [(&str, Option<&str>); 11] = [
    ("integrations", Some("tenant_id = ANY($1)")),
    ("events", Some("tenant_id = ANY($1)")),
    ("omie_records", Some("tenant_id = ANY($1)")),
    ("users", Some("tenant_id = ANY($1)")),
    ("import_errors", Some("tenant_id = ANY($1)")),
    ("error_events", Some("error_id IN (SELECT id FROM {schema}.import_errors WHERE tenant_id = ANY($1))")),
    ("history", Some("tenant_id = ANY($1)")),
    ("record_timeline", Some("tenant_id = ANY($1)")),
    ("sync_runs", Some("tenant_id = ANY($1)")),
    ("sync_seen", Some("sync_id IN (SELECT id FROM {schema}.sync_runs WHERE tenant_id = ANY($1))")),
    // Undecodable records have no tenant: only a rebuild of every tenant replaces them.
    ("dead_letters", None),
];

/// A schema name this module made: `replay_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow(String);

impl Shadow {
    pub fn for_replay(replay_id: Uuid) -> Shadow {
        Shadow(format!("replay_{}", replay_id.simple()))
    }

    /// An existing shadow's name, checked so it can be spliced into SQL.
    pub fn named(name: &str) -> Option<Shadow> {
        let hex = name.strip_prefix("replay_")?;
        (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
            .then(|| Shadow(name.to_owned()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// Creates the schema with every migration applied (blocking; run it off the async runtime).
    pub fn create(&self, database_url: &str) -> Result<(), StoreError> {
        let mut conn = PgConnection::establish(database_url).map_err(|error| StoreError::Connect(error.to_string()))?;
        conn.batch_execute(&format!("CREATE SCHEMA {0}; SET search_path TO {0}", self.0))?;
        conn.run_pending_migrations(MIGRATIONS).map_err(|error| StoreError::Migration(error.to_string()))?;
        Ok(())
    }

    pub async fn drop(&self, conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
        conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {0} CASCADE", self.0)).await?;
        Ok(())
    }

    /// A connection whose unqualified tables are the shadow's.
    pub async fn connect(&self, database_url: &str) -> Result<AsyncPgConnection, StoreError> {
        let mut conn =
            AsyncPgConnection::establish(database_url).await.map_err(|error| StoreError::Connect(error.to_string()))?;
        conn.batch_execute(&format!("SET search_path TO {0}", self.0)).await?;
        Ok(conn)
    }

    /// Replaces the live rows of `tenants` (every tenant when `None`) with the shadow's. Call it
    /// inside the live connection's transaction.
    pub async fn replace_live(&self, live: &mut AsyncPgConnection, tenants: Option<&[Uuid]>) -> Result<(), StoreError> {
        for (table, _) in TABLES.iter().rev() {
            match (tenants, condition(table, "public")) {
                (None, _) => diesel::sql_query(format!("DELETE FROM public.{table}")).execute(live).await?,
                (Some(tenants), Some(filter)) => {
                    diesel::sql_query(format!("DELETE FROM public.{table} WHERE {filter}"))
                        .bind::<Array<diesel::sql_types::Uuid>, _>(tenants)
                        .execute(live)
                        .await?
                }
                (Some(_), None) => 0,
            };
        }
        for (table, _) in TABLES {
            let shadow = &self.0;
            match (tenants, condition(table, shadow)) {
                (None, _) => {
                    diesel::sql_query(format!("INSERT INTO public.{table} SELECT * FROM {shadow}.{table}"))
                        .execute(live)
                        .await?
                }
                (Some(tenants), Some(filter)) => {
                    diesel::sql_query(format!(
                        "INSERT INTO public.{table} SELECT * FROM {shadow}.{table} WHERE {filter}"
                    ))
                    .bind::<Array<diesel::sql_types::Uuid>, _>(tenants)
                    .execute(live)
                    .await?
                }
                (Some(_), None) => 0,
            };
        }
        Ok(())
    }

    /// Rows that differ between live and shadow, per table, for `tenants` (every tenant when
    /// `None`): rows only in one of them, counting a changed row twice.
    pub async fn differing_rows(
        &self,
        live: &mut AsyncPgConnection,
        tenants: Option<&[Uuid]>,
    ) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::new();
        for (table, _) in TABLES {
            let filters = match tenants {
                None => Some(("TRUE".to_owned(), "TRUE".to_owned())),
                Some(_) => condition(table, "public").zip(condition(table, &self.0)),
            };
            let Some((live_filter, shadow_filter)) = filters else {
                continue;
            };
            let shadow = &self.0;
            let query = diesel::sql_query(format!(
                "SELECT count(*) AS rows FROM (\
                   (SELECT * FROM public.{table} WHERE {live_filter} EXCEPT ALL SELECT * FROM {shadow}.{table} WHERE {shadow_filter}) \
                   UNION ALL \
                   (SELECT * FROM {shadow}.{table} WHERE {shadow_filter} EXCEPT ALL SELECT * FROM public.{table} WHERE {live_filter})\
                 ) AS differing"
            ));
            let row: RowCount = match tenants {
                None => query.get_result(live).await?,
                Some(tenants) => query.bind::<Array<diesel::sql_types::Uuid>, _>(tenants).get_result(live).await?,
            };
            counts.push((table, row.rows));
        }
        Ok(counts)
    }
}

#[derive(QueryableByName)]
struct RowCount {
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// The tenant filter of `table` with its sub-selects in `schema`.
fn condition(table: &str, schema: &str) -> Option<String> {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .and_then(|(_, filter)| filter.map(|filter| filter.replace("{schema}", schema)))
}

/// Takes the live offsets table for the rest of the transaction: the live projector's next batch
/// waits (it locks its rows before writing), readers do not. Returns the live group's offsets.
pub async fn hold_live_offsets(
    live: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, StoreError> {
    live.batch_execute("LOCK TABLE public.consumer_offsets IN EXCLUSIVE MODE").await?;
    let rows: Vec<OffsetRow> = diesel::sql_query(
        "SELECT partition, next_offset FROM public.consumer_offsets WHERE consumer_group = $1 AND topic = $2",
    )
    .bind::<Text, _>(group)
    .bind::<Text, _>(topic)
    .load(live)
    .await?;
    Ok(rows.into_iter().map(|row| (row.partition, row.next_offset)).collect())
}

/// Moves the live group's offsets forward to `offsets` (never back).
pub async fn advance_live_offsets(
    live: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    offsets: &HashMap<i32, i64>,
) -> Result<(), StoreError> {
    for (&partition, &next_offset) in offsets {
        diesel::sql_query(
            "INSERT INTO public.consumer_offsets (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (consumer_group, topic, partition) DO UPDATE \
             SET next_offset = GREATEST(public.consumer_offsets.next_offset, EXCLUDED.next_offset)",
        )
        .bind::<Text, _>(group)
        .bind::<Text, _>(topic)
        .bind::<Integer, _>(partition)
        .bind::<BigInt, _>(next_offset)
        .execute(live)
        .await?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct OffsetRow {
    #[diesel(sql_type = Integer)]
    partition: i32,
    #[diesel(sql_type = BigInt)]
    next_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_this_module_makes_are_accepted() {
        let shadow = Shadow::for_replay(Uuid::from_u128(7));
        assert_eq!(Shadow::named(shadow.name()), Some(shadow));
        assert_eq!(Shadow::named("public"), None);
        assert_eq!(Shadow::named("replay_x; DROP TABLE users"), None);
    }
}
