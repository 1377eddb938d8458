//! PostgreSQL: the schema, embedded migrations, and each table's row type with its queries side
//! by side (one module per table). The projector is the only writer; ingress reads
//! [`integrations`] to resolve app keys.

pub mod dead_letters;
pub mod errors;
pub mod events;
pub mod history;
pub mod integrations;
pub mod offsets;
pub mod page;
pub mod query_spans;
pub mod records;
pub mod schema;
pub mod shadow;
pub mod sync_runs;
pub mod timeline;
pub mod users;

pub use query_spans::trace_queries;

use diesel::{Connection, PgConnection};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{self, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub type PgPool = Pool<AsyncPgConnection>;
pub type PooledConnection = deadpool::Object<AsyncPgConnection>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Rows are written in chunks so one statement stays far below PostgreSQL's 65,535 bind parameters.
pub(crate) const WRITE_CHUNK: usize = 1_000;

/// One column of `rows`, to bind as an array (`unnest($1::uuid[], …)` inserts).
pub(crate) fn column<'a, Row, Value>(rows: &'a [Row], value: impl Fn(&'a Row) -> Value) -> Vec<Value> {
    rows.iter().map(value).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] deadpool::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// A pool of async connections; connections are opened lazily.
pub fn pool(database_url: &str, max_size: usize) -> Result<PgPool, StoreError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Pool::builder(manager).max_size(max_size).build().map_err(|error| StoreError::Connect(error.to_string()))
}

/// Runs pending migrations; returns how many ran. Blocking: call it before serving, or from a
/// blocking task.
pub fn migrate(database_url: &str) -> Result<usize, StoreError> {
    let mut connection = connect_blocking(database_url)?;
    let applied =
        connection.run_pending_migrations(MIGRATIONS).map_err(|error| StoreError::Migration(error.to_string()))?;
    Ok(applied.len())
}

/// Reverts every migration (the down scripts), leaving an empty schema.
pub fn revert_all(database_url: &str) -> Result<usize, StoreError> {
    let mut connection = connect_blocking(database_url)?;
    let reverted =
        connection.revert_all_migrations(MIGRATIONS).map_err(|error| StoreError::Migration(error.to_string()))?;
    Ok(reverted.len())
}

/// A synchronous connection, for start-up steps and the consumer's rebalance callback.
pub fn connect_blocking(database_url: &str) -> Result<PgConnection, StoreError> {
    PgConnection::establish(database_url).map_err(|error| StoreError::Connect(error.to_string()))
}
