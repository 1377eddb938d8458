//! `omie_records`: the newest source time seen per Omie record, for the staleness rule.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::StoreError;
use crate::schema::omie_records;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = omie_records)]
pub struct OmieRecord {
    pub tenant_id: Uuid,
    pub omie_code: i64,
    pub source_changed_at: DateTime<Utc>,
    pub last_event_id: Uuid,
}

/// Records of `codes` within `tenants` (a superset of the exact pairs; the caller indexes them).
pub async fn for_codes(
    conn: &mut AsyncPgConnection,
    tenants: &[Uuid],
    codes: &[i64],
) -> Result<Vec<OmieRecord>, StoreError> {
    Ok(omie_records::table
        .filter(omie_records::tenant_id.eq_any(tenants))
        .filter(omie_records::omie_code.eq_any(codes))
        .select(OmieRecord::as_select())
        .load(conn)
        .await?)
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[OmieRecord]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(omie_records::table)
            .values(chunk)
            .on_conflict((omie_records::tenant_id, omie_records::omie_code))
            .do_update()
            .set((
                omie_records::source_changed_at.eq(excluded(omie_records::source_changed_at)),
                omie_records::last_event_id.eq(excluded(omie_records::last_event_id)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}
