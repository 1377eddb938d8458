//! `dead_letters`: log records the projector cannot decode, kept with the reason.

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
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[DeadLetter]) -> Result<(), StoreError> {
    diesel::insert_into(dead_letters::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
    Ok(())
}
