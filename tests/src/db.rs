//! One database per test, migrated, dropped when the test ends.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use omie_sync_store::schema::{consumer_offsets, events, history, import_errors, record_timeline, users};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct TestDb {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    pub fn create() -> TestDb {
        let server =
            std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("omie_sync_test_{}", Uuid::new_v4().simple());
        let admin_url = format!("{server}/postgres");
        let mut admin = omie_sync_store::connect_blocking(&admin_url)
            .expect("PostgreSQL must be running (make test starts it); set TEST_DATABASE_SERVER to point elsewhere");
        diesel::RunQueryDsl::execute(diesel::sql_query(format!("CREATE DATABASE {name}")), &mut admin)
            .expect("create the test database");
        let url = format!("{server}/{name}");
        omie_sync_store::migrate(&url).expect("migrate the test database");
        TestDb { url, name, admin_url }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.expect("connect to the test database")
    }

    /// Sum of the stored next offsets of `group`: how many log records it has applied.
    pub async fn applied(&self, group: &str) -> i64 {
        let mut conn = self.connect().await;
        let offsets: Vec<i64> = consumer_offsets::table
            .filter(consumer_offsets::consumer_group.eq(group))
            .select(consumer_offsets::next_offset)
            .load(&mut conn)
            .await
            .expect("read offsets");
        offsets.iter().sum()
    }

    /// The shape of the `public` schema (tables and indexes with their durability, index
    /// definitions, constraints) and any other schema besides PostgreSQL's own, one line each,
    /// sorted: equal lists mean a schema a migration would leave the same.
    pub async fn catalog(&self) -> Vec<String> {
        let mut conn = self.connect().await;
        let lines: Vec<CatalogLine> = diesel::sql_query(
            "SELECT format('relation %s %s %s', relname, relkind, relpersistence) AS line FROM pg_class \
               WHERE relnamespace = 'public'::regnamespace \
             UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
             UNION ALL SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid)) FROM pg_constraint \
               WHERE connamespace = 'public'::regnamespace \
             UNION ALL SELECT 'schema ' || nspname FROM pg_namespace \
               WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public') \
             ORDER BY line",
        )
        .load(&mut conn)
        .await
        .expect("catalog");
        lines.into_iter().map(|CatalogLine { line }| line).collect()
    }

    /// Every projection row, ordered, as JSON: two equal dumps mean equal projections.
    pub async fn dump(&self) -> Value {
        let mut conn = self.connect().await;
        let users: Vec<omie_sync_store::users::User> = users::table
            .order(users::id)
            .select(omie_sync_store::users::User::as_select())
            .load(&mut conn)
            .await
            .expect("users");
        let errors: Vec<omie_sync_store::errors::ImportError> = import_errors::table
            .order(import_errors::id)
            .select(omie_sync_store::errors::ImportError::as_select())
            .load(&mut conn)
            .await
            .expect("errors");
        let history: Vec<omie_sync_store::history::HistoryEntry> = history::table
            .order(history::id)
            .select(omie_sync_store::history::HistoryEntry::as_select())
            .load(&mut conn)
            .await
            .expect("history");
        let timeline: Vec<(Uuid, Uuid, String)> = record_timeline::table
            .order(record_timeline::id)
            .select((record_timeline::id, record_timeline::event_id, record_timeline::verdict))
            .load(&mut conn)
            .await
            .expect("timeline");
        let events: Vec<(Uuid, String)> = events::table
            .order(events::id)
            .select((events::id, events::event_type))
            .load(&mut conn)
            .await
            .expect("events");
        json!({"users": users, "errors": errors, "history": history, "timeline": timeline, "events": events})
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = omie_sync_store::connect_blocking(&self.admin_url) {
            let _ = diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)),
                &mut admin,
            );
        }
    }
}

#[derive(QueryableByName)]
struct CatalogLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}
