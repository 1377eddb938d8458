//! The down migration really reverts: after it only Diesel's bookkeeping table is left, and the
//! up migration applies again cleanly.

use diesel::prelude::*;
use diesel::sql_types::Text;
use omie_sync_e2e::db::TestDb;

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    table_name: String,
}

fn tables(url: &str) -> Vec<String> {
    let mut conn = omie_sync_store::connect_blocking(url).expect("connect");
    let rows: Vec<Table> = RunQueryDsl::load(
        diesel::sql_query(
            "SELECT table_name::text AS table_name FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
        ),
        &mut conn,
    )
    .expect("list tables");
    rows.into_iter().map(|row| row.table_name).collect()
}

#[test]
fn migrations_revert_and_reapply() {
    let db = TestDb::create();
    let migrated = tables(&db.url);
    assert!(migrated.contains(&"users".to_owned()) && migrated.contains(&"consumer_offsets".to_owned()));
    let applied = std::fs::read_dir(omie_sync_e2e::repo_root().join("crates/store/migrations"))
        .expect("the migrations directory")
        .count();
    assert_eq!(omie_sync_store::revert_all(&db.url).expect("revert"), applied);
    assert_eq!(tables(&db.url), ["__diesel_schema_migrations"]);
    assert_eq!(omie_sync_store::migrate(&db.url).expect("migrate again"), applied);
    assert_eq!(tables(&db.url), migrated);
    assert_eq!(omie_sync_store::migrate(&db.url).expect("idempotent"), 0);
}
