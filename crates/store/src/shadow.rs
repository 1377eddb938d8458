//! Shadow schemas: an empty copy of the projections, in a schema of its own, where a replay
//! folds the log aside while the live projector keeps serving; then, in one transaction, the
//! shadow replaces the live state, so readers see the old state or the new one, never a
//! half-built one:
//! - **every tenant**: the shadow's tables themselves become the live ones (moved into `public`,
//!   the old ones moved out), which costs the same at any size. Before that, outside the swap, the
//!   shadow is made durable and given the read API's indexes ([`Shadow::prepare_takeover`]).
//! - **one tenant**: that tenant's rows are copied over the live ones ([`Shadow::replace_live`]).
//!
//! Offsets are not swapped: the live projector's stay its own.

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
///
/// `dead_letters` is not among them: it is the operators' workspace (what was re-driven, when),
/// and a rebuild finds the same undecodable records again anyway.
const TABLES: [(&str, &str); 10] = [
    ("integrations", "tenant_id = ANY($1)"),
    ("events", "tenant_id = ANY($1)"),
    ("omie_records", "tenant_id = ANY($1)"),
    ("users", "tenant_id = ANY($1)"),
    ("import_errors", "tenant_id = ANY($1)"),
    ("error_events", "error_id IN (SELECT id FROM {schema}.import_errors WHERE tenant_id = ANY($1))"),
    ("history", "tenant_id = ANY($1)"),
    ("record_timeline", "tenant_id = ANY($1)"),
    ("sync_runs", "tenant_id = ANY($1)"),
    ("sync_seen", "sync_id IN (SELECT id FROM {schema}.sync_runs WHERE tenant_id = ANY($1))"),
];

/// Indexes the read API uses and the fold does not.
const READ_ONLY_INDEXES: [&str; 9] = [
    "events_by_subject",
    "import_errors_by_status",
    "history_by_tenant",
    "record_timeline_by_record",
    "sync_runs_by_tenant",
    "users_page",
    "import_errors_page",
    "history_page",
    "error_events_by_event",
];

/// The advisory lock key of a shadow named `$1`: held by the replay building it ([`Shadow::claim`]).
const CLAIM_KEY: &str = "hashtextextended($1, 0)";

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
        // The shadow can always be built again from the log: skipping the write-ahead log for it
        // roughly halves the cost of a rebuild's writes. Referencing tables go first.
        let tables = TABLES.iter().rev().map(|(table, _)| *table).chain(["dead_letters", "consumer_offsets"]);
        for table in tables {
            conn.batch_execute(&format!("ALTER TABLE {0}.{table} SET UNLOGGED", self.0))?;
        }
        // Nobody reads the shadow through the read API: the indexes only those reads use would
        // cost every write of the rebuild (the live tables keep theirs).
        for index in READ_ONLY_INDEXES {
            conn.batch_execute(&format!("DROP INDEX {0}.{index}", self.0))?;
        }
        Ok(())
    }

    /// Marks the shadow as this session's for as long as the session lasts. Call it before
    /// creating the shadow: a shadow nobody claims was left by a replay that died.
    pub async fn claim(&self, conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
        diesel::sql_query(format!("SELECT pg_advisory_lock({CLAIM_KEY})"))
            .bind::<Text, _>(&self.0)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Marks the shadow as a past state kept on purpose, with what it holds.
    pub async fn keep(&self, conn: &mut AsyncPgConnection, note: &str) -> Result<(), StoreError> {
        let note = note.replace('\'', "''");
        conn.batch_execute(&format!("COMMENT ON SCHEMA {} IS '{note}'", self.0)).await?;
        Ok(())
    }

    /// Drops what replays that died left behind (shadows nobody claims and nobody kept, and the
    /// live tables a takeover retired); returns the schemas dropped. A schema still locked by
    /// the dead replay's last statement is left for the next run.
    pub async fn drop_abandoned(conn: &mut AsyncPgConnection) -> Result<Vec<String>, StoreError> {
        let schemas: Vec<SchemaRow> = diesel::sql_query(
            "SELECT nspname AS name, obj_description(oid, 'pg_namespace') IS NOT NULL AS kept FROM pg_namespace \
             WHERE nspname LIKE 'replay\\_%' ORDER BY nspname",
        )
        .load(conn)
        .await?;
        let mut dropped = Vec::new();
        for SchemaRow { name, kept } in schemas {
            let Some(shadow) = Shadow::named(name.strip_suffix("_retired").unwrap_or(&name)) else { continue };
            if kept && shadow.0 == name {
                continue;
            }
            let unclaimed: Unclaimed =
                diesel::sql_query(format!("SELECT pg_try_advisory_lock({CLAIM_KEY}) AS unclaimed"))
                    .bind::<Text, _>(&shadow.0)
                    .get_result(conn)
                    .await?;
            if !unclaimed.unclaimed {
                continue;
            }
            diesel::sql_query(format!("SELECT pg_advisory_unlock({CLAIM_KEY})"))
                .bind::<Text, _>(&shadow.0)
                .execute(conn)
                .await?;
            let drop = format!("BEGIN; SET LOCAL lock_timeout = 2000; DROP SCHEMA {name} CASCADE; COMMIT");
            match conn.batch_execute(&drop).await {
                Ok(()) => dropped.push(name),
                Err(error) => {
                    conn.batch_execute("ROLLBACK").await?;
                    tracing::warn!(%error, schema = %name, "could not drop a schema an interrupted replay left; the next replay tries again");
                }
            }
        }
        Ok(dropped)
    }

    /// Drops the shadow and, after a takeover, the live tables it replaced.
    pub async fn drop(&self, conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
        conn.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {0} CASCADE; DROP SCHEMA IF EXISTS {0}_retired CASCADE",
            self.0
        ))
        .await?;
        Ok(())
    }

    /// Makes the shadow's projection tables fit to be the live ones: durable, with every index
    /// the live tables have, and analysed. Slow at scale, so run it before the swap, while the
    /// live projector still applies.
    pub async fn prepare_takeover(&self, database_url: &str) -> Result<(), StoreError> {
        let mut first = self.connect(database_url).await?;
        let mut second = self.connect(database_url).await?;
        let definitions: Vec<IndexDefinition> = diesel::sql_query(
            "SELECT tablename AS table_name, indexdef AS definition FROM pg_indexes \
             WHERE schemaname = 'public' AND indexname = ANY($1)",
        )
        .bind::<Array<Text>, _>(READ_ONLY_INDEXES.to_vec())
        .load(&mut first)
        .await?;
        if definitions.len() != READ_ONLY_INDEXES.len() {
            return Err(StoreError::Migration(
                "the live indexes differ from the migrations': run `projector migrate`".into(),
            ));
        }
        // `events`, with every raw payload, is most of the shadow: it gets a connection (and a
        // core) of its own while the others are prepared on a second one.
        let (largest, rest): (Vec<&str>, Vec<&str>) =
            TABLES.iter().map(|(table, _)| *table).partition(|table| *table == "events");
        tokio::try_join!(
            self.prepare_tables(&mut first, &largest, &definitions),
            self.prepare_tables(&mut second, &rest, &definitions),
        )?;
        Ok(())
    }

    async fn prepare_tables(
        &self,
        conn: &mut AsyncPgConnection,
        tables: &[&str],
        definitions: &[IndexDefinition],
    ) -> Result<(), StoreError> {
        let shadow = &self.0;
        // A logged table may not reference an unlogged one: referenced tables go first.
        for table in tables {
            conn.batch_execute(&format!("ALTER TABLE {shadow}.{table} SET LOGGED")).await?;
        }
        for IndexDefinition { table_name, definition } in definitions {
            if !tables.contains(&table_name.as_str()) {
                continue;
            }
            let (head, tail) = definition.split_once(" ON public.").ok_or_else(|| {
                StoreError::Migration(format!("an index definition this replay cannot place: {definition}"))
            })?;
            conn.batch_execute(&format!("{head} ON {shadow}.{tail}")).await?;
        }
        let tables: Vec<String> = tables.iter().map(|table| format!("{shadow}.{table}")).collect();
        conn.batch_execute(&format!("ANALYZE {}", tables.join(", "))).await?;
        Ok(())
    }

    /// What others added to the live projection tables, one line each: views, grants, triggers,
    /// policies, publications, foreign keys from other tables, indexes the migrations did not
    /// make, comments and storage settings. None of it would follow the shadow's tables into
    /// place (a view would even keep reading the old table, then be dropped with it), so a
    /// rebuild copies rows instead when there is any. The new tables would belong to the
    /// replay's role: tables owned by another role count too.
    pub async fn takeover_blockers(&self, live: &mut AsyncPgConnection) -> Result<Vec<String>, StoreError> {
        let tables: Vec<&str> = TABLES.iter().map(|(table, _)| *table).collect();
        let blockers: Vec<Blocker> = diesel::sql_query(
            "WITH live AS (SELECT oid, relname, relowner, relacl, reloptions FROM pg_class \
               WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname = ANY($1)) \
             SELECT format('view %s reads %s', r.ev_class::regclass, l.relname) AS reason FROM live l \
               JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = l.oid \
                 AND d.classid = 'pg_rewrite'::regclass \
               JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> l.oid \
             UNION SELECT format('foreign key %s of %s references %s', c.conname, c.conrelid::regclass, l.relname) \
               FROM live l JOIN pg_constraint c ON c.confrelid = l.oid \
               WHERE c.contype = 'f' AND c.conrelid NOT IN (SELECT oid FROM live) \
             UNION SELECT format('trigger %s on %s', t.tgname, l.relname) FROM live l \
               JOIN pg_trigger t ON t.tgrelid = l.oid WHERE NOT t.tgisinternal \
             UNION SELECT format('policy %s on %s', p.polname, l.relname) FROM live l \
               JOIN pg_policy p ON p.polrelid = l.oid \
             UNION SELECT format('publication %s lists %s', pub.pubname, l.relname) FROM live l \
               JOIN pg_publication_rel pr ON pr.prrelid = l.oid JOIN pg_publication pub ON pub.oid = pr.prpubid \
             UNION SELECT format('%s belongs to %s, not to %s', l.relname, l.relowner::regrole, current_user) \
               FROM live l WHERE l.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) \
             UNION SELECT format('%s grants %s to %s', l.relname, a.privilege_type, \
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END) \
               FROM live l, aclexplode(l.relacl) a WHERE a.grantee <> l.relowner \
             UNION SELECT format('%s grants %s on %s to %s', l.relname, a.privilege_type, c.attname, \
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END) \
               FROM live l JOIN pg_attribute c ON c.attrelid = l.oid, aclexplode(c.attacl) a \
               WHERE a.grantee <> l.relowner \
             UNION SELECT format('index %s on %s', i.indexname, i.tablename) FROM pg_indexes i \
               WHERE i.schemaname = 'public' AND i.tablename = ANY($1) AND i.indexname <> ALL($2) \
                 AND i.indexname NOT IN (SELECT indexname FROM pg_indexes WHERE schemaname = $3) \
             UNION SELECT format('a comment on %s', l.relname) FROM live l \
               JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = l.oid \
             UNION SELECT format('%s stores with %s', l.relname, array_to_string(l.reloptions, ', ')) \
               FROM live l WHERE l.reloptions IS NOT NULL \
             ORDER BY reason",
        )
        .bind::<Array<Text>, _>(tables)
        .bind::<Array<Text>, _>(READ_ONLY_INDEXES.to_vec())
        .bind::<Text, _>(&self.0)
        .load(live)
        .await?;
        Ok(blockers.into_iter().map(|Blocker { reason }| reason).collect())
    }

    /// Puts the shadow's projection tables in place of the live ones, for every tenant. Call it
    /// inside the live connection's transaction, after [`Shadow::prepare_takeover`], when
    /// [`Shadow::takeover_blockers`] finds none. Readers wait for the moment the move takes, then
    /// read the new tables; on an error, roll the moves back.
    pub async fn take_over_live(&self, live: &mut AsyncPgConnection) -> Result<(), StoreError> {
        let shadow = &self.0;
        live.batch_execute(&format!("CREATE SCHEMA {shadow}_retired")).await?;
        for (table, _) in TABLES {
            // Index names are unique per schema: the old table leaves with its indexes first.
            live.batch_execute(&format!(
                "ALTER TABLE public.{table} SET SCHEMA {shadow}_retired; ALTER TABLE {shadow}.{table} SET SCHEMA public"
            ))
            .await?;
        }
        Ok(())
    }

    /// A connection whose unqualified tables are the shadow's.
    pub async fn connect(&self, database_url: &str) -> Result<AsyncPgConnection, StoreError> {
        let mut conn =
            AsyncPgConnection::establish(database_url).await.map_err(|error| StoreError::Connect(error.to_string()))?;
        // Losing the shadow's last batches in a crash costs a replay, never live data.
        conn.batch_execute(&format!("SET search_path TO {0}; SET synchronous_commit TO off", self.0)).await?;
        Ok(conn)
    }

    /// Replaces the live rows of `tenants` (every tenant when `None`) with the shadow's. Call it
    /// inside the live connection's transaction.
    pub async fn replace_live(&self, live: &mut AsyncPgConnection, tenants: Option<&[Uuid]>) -> Result<(), StoreError> {
        let shadow = &self.0;
        for (table, filter) in TABLES.iter().rev() {
            let sql = format!("DELETE FROM public.{table} WHERE {}", scoped(filter, "public", tenants));
            bound(diesel::sql_query(sql), tenants).execute(live).await?;
        }
        for (table, filter) in TABLES {
            let sql = format!(
                "INSERT INTO public.{table} SELECT * FROM {shadow}.{table} WHERE {}",
                scoped(filter, shadow, tenants)
            );
            bound(diesel::sql_query(sql), tenants).execute(live).await?;
        }
        Ok(())
    }

    /// Keeps the shadow's dead letters live (when nothing ran live, they exist only there).
    pub async fn adopt_dead_letters(&self, live: &mut AsyncPgConnection) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO public.dead_letters SELECT * FROM {}.dead_letters ON CONFLICT DO NOTHING", self.0);
        diesel::sql_query(sql).execute(live).await?;
        Ok(())
    }

    /// Whether live and shadow went through the same migrations (so their rows line up).
    pub async fn same_migrations(&self, live: &mut AsyncPgConnection) -> Result<bool, StoreError> {
        let differing: RowCount = diesel::sql_query(format!(
            "SELECT count(*) AS rows FROM (\
               (SELECT version FROM public.__diesel_schema_migrations EXCEPT SELECT version FROM {0}.__diesel_schema_migrations) \
               UNION ALL \
               (SELECT version FROM {0}.__diesel_schema_migrations EXCEPT SELECT version FROM public.__diesel_schema_migrations)\
             ) AS differing",
            self.0
        ))
        .get_result(live)
        .await?;
        Ok(differing.rows == 0)
    }

    /// Rows that differ between live and shadow, per table, for `tenants` (every tenant when
    /// `None`): rows only in one of them, counting a changed row twice.
    pub async fn differing_rows(
        &self,
        live: &mut AsyncPgConnection,
        tenants: Option<&[Uuid]>,
    ) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::new();
        let shadow = &self.0;
        for (table, filter) in TABLES {
            let (live_filter, shadow_filter) = (scoped(filter, "public", tenants), scoped(filter, shadow, tenants));
            // Against nothing live (a first build, a new tenant), every rebuilt row differs:
            // counting them spares comparing them.
            let live_rows: RowCount = bound(
                diesel::sql_query(format!(
                    "SELECT count(*) AS rows FROM (SELECT 1 FROM public.{table} WHERE {live_filter} LIMIT 1) AS any_row"
                )),
                tenants,
            )
            .get_result(live)
            .await?;
            if live_rows.rows == 0 {
                let sql = format!("SELECT count(*) AS rows FROM {shadow}.{table} WHERE {shadow_filter}");
                let row: RowCount = bound(diesel::sql_query(sql), tenants).get_result(live).await?;
                counts.push((table, row.rows));
                continue;
            }
            let sql = format!(
                "SELECT count(*) AS rows FROM (\
                   (SELECT * FROM public.{table} WHERE {live_filter} EXCEPT ALL SELECT * FROM {shadow}.{table} WHERE {shadow_filter}) \
                   UNION ALL \
                   (SELECT * FROM {shadow}.{table} WHERE {shadow_filter} EXCEPT ALL SELECT * FROM public.{table} WHERE {live_filter})\
                 ) AS differing"
            );
            let row: RowCount = bound(diesel::sql_query(sql), tenants).get_result(live).await?;
            counts.push((table, row.rows));
        }
        Ok(counts)
    }
}

#[derive(QueryableByName)]
struct SchemaRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    kept: bool,
}

#[derive(QueryableByName)]
struct Unclaimed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    unclaimed: bool,
}

#[derive(QueryableByName)]
struct Blocker {
    #[diesel(sql_type = Text)]
    reason: String,
}

#[derive(QueryableByName)]
struct IndexDefinition {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

#[derive(QueryableByName)]
struct RowCount {
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// A table's tenant filter with its sub-selects in `schema`, or every row for every tenant.
fn scoped(filter: &str, schema: &str, tenants: Option<&[Uuid]>) -> String {
    match tenants {
        Some(_) => filter.replace("{schema}", schema),
        None => "TRUE".to_owned(),
    }
}

/// Binds the tenants as `$1` when the query is scoped to some.
fn bound(
    query: diesel::query_builder::SqlQuery,
    tenants: Option<&[Uuid]>,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let query = query.into_boxed();
    match tenants {
        Some(tenants) => query.bind::<Array<diesel::sql_types::Uuid>, _>(tenants.to_vec()),
        None => query,
    }
}

async fn live_offsets(live: &mut AsyncPgConnection, group: &str, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
    let rows: Vec<OffsetRow> = diesel::sql_query(
        "SELECT partition, next_offset FROM public.consumer_offsets WHERE consumer_group = $1 AND topic = $2",
    )
    .bind::<Text, _>(group)
    .bind::<Text, _>(topic)
    .load(live)
    .await?;
    Ok(rows.into_iter().map(|row| (row.partition, row.next_offset)).collect())
}

/// Takes the live offsets table for the rest of the transaction: the live projector's next batch
/// waits (it locks its rows before writing), readers do not. Returns the live group's offsets.
pub async fn hold_live_offsets(
    live: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, StoreError> {
    live.batch_execute("LOCK TABLE public.consumer_offsets IN EXCLUSIVE MODE").await?;
    live_offsets(live, group, topic).await
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
