//! `integrations`: one Omie integration per tenant (tag, template, app key, sealed secrets).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::schema::integrations;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = integrations)]
pub struct Integration {
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub app_key: Option<String>,
    pub app_secret_sealed: Option<String>,
    pub webhook_token_sealed: Option<String>,
    pub tag: String,
    pub template: String,
    pub updated_at: DateTime<Utc>,
    pub last_event_id: Uuid,
    /// Outcome of the last connection test (`ok`, `invalid_credentials`, …), if any.
    pub connection_status: Option<String>,
    pub connection_detail: Option<String>,
    pub connection_tested_at: Option<DateTime<Utc>>,
    pub connection_tested_by: Option<Value>,
    /// The webhook token masked (`••••1a2b`); the token itself stays sealed.
    pub webhook_token_masked: Option<String>,
}

/// Every integration that has an app key: the webhook registry.
pub async fn with_app_key(conn: &mut AsyncPgConnection) -> Result<Vec<Integration>, StoreError> {
    Ok(integrations::table
        .filter(integrations::app_key.is_not_null())
        .select(Integration::as_select())
        .load(conn)
        .await?)
}

pub async fn by_tenant(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> Result<Option<Integration>, StoreError> {
    Ok(integrations::table.find(tenant_id).select(Integration::as_select()).first(conn).await.optional()?)
}

/// The tenant that owns `app_key`, if any.
pub async fn owner_of_app_key(conn: &mut AsyncPgConnection, app_key: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(integrations::table
        .filter(integrations::app_key.eq(app_key))
        .select(integrations::tenant_id)
        .first(conn)
        .await
        .optional()?)
}

/// Integrations of `tenants`, plus those holding any of `app_keys` (to detect key reuse).
pub async fn for_batch(
    conn: &mut AsyncPgConnection,
    tenants: &[Uuid],
    app_keys: &[String],
) -> Result<Vec<Integration>, StoreError> {
    Ok(integrations::table
        .filter(integrations::tenant_id.eq_any(tenants).or(integrations::app_key.eq_any(app_keys)))
        .select(Integration::as_select())
        .load(conn)
        .await?)
}

/// Unsets the app key of `tenants` (within a transaction, right before [`upsert`]).
pub async fn clear_app_keys(conn: &mut AsyncPgConnection, tenants: &[Uuid]) -> Result<(), StoreError> {
    diesel::update(integrations::table.filter(integrations::tenant_id.eq_any(tenants)))
        .set(integrations::app_key.eq(None::<String>))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[Integration]) -> Result<(), StoreError> {
    for chunk in rows.chunks(crate::WRITE_CHUNK) {
        diesel::insert_into(integrations::table)
            .values(chunk)
            .on_conflict(integrations::tenant_id)
            .do_update()
            .set((
                integrations::app_key.eq(excluded(integrations::app_key)),
                integrations::app_secret_sealed.eq(excluded(integrations::app_secret_sealed)),
                integrations::webhook_token_sealed.eq(excluded(integrations::webhook_token_sealed)),
                integrations::tag.eq(excluded(integrations::tag)),
                integrations::template.eq(excluded(integrations::template)),
                integrations::updated_at.eq(excluded(integrations::updated_at)),
                integrations::last_event_id.eq(excluded(integrations::last_event_id)),
                integrations::connection_status.eq(excluded(integrations::connection_status)),
                integrations::connection_detail.eq(excluded(integrations::connection_detail)),
                integrations::connection_tested_at.eq(excluded(integrations::connection_tested_at)),
                integrations::connection_tested_by.eq(excluded(integrations::connection_tested_by)),
                integrations::webhook_token_masked.eq(excluded(integrations::webhook_token_masked)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}
