//! Minimal reads of a tenant's projections (the full read API with filters and cursors comes
//! later): users, errors, history and one record's timeline. The tenant always comes from the
//! token, so no parameter can reach another tenant's rows.

use actix_web::{HttpResponse, web};
use omie_sync_platform::auth::Caller;
use omie_sync_store::{PgPool, PooledConnection, StoreError, errors, events, history, sync_runs, timeline, users};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ReadError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;

#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<i64>,
}

impl Page {
    fn limit(&self) -> Result<i64, ReadError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ReadError::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}"))),
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PooledConnection, ReadError> {
    Ok(pool.get().await.map_err(StoreError::from)?)
}

fn items(rows: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "items": rows }))
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/v1/users", web::get().to(list_users))
        .route("/api/v1/errors", web::get().to(list_errors))
        .route("/api/v1/history", web::get().to(list_history))
        .route("/api/v1/stats", web::get().to(stats))
        .route("/api/v1/syncs/{sync_id}", web::get().to(sync_progress))
        .route("/api/v1/records/{omie_code}/timeline", web::get().to(record_timeline));
}

async fn list_users(
    caller: Caller,
    pool: web::Data<PgPool>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ReadError> {
    let limit = page.limit()?;
    let mut conn = connect(&pool).await?;
    Ok(items(users::list(&mut conn, caller.tenant_id(), limit).await?))
}

async fn list_errors(
    caller: Caller,
    pool: web::Data<PgPool>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ReadError> {
    let limit = page.limit()?;
    let mut conn = connect(&pool).await?;
    Ok(items(errors::list(&mut conn, caller.tenant_id(), limit).await?))
}

async fn list_history(
    caller: Caller,
    pool: web::Data<PgPool>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ReadError> {
    let limit = page.limit()?;
    let mut conn = connect(&pool).await?;
    Ok(items(history::list(&mut conn, caller.tenant_id(), limit).await?))
}

async fn record_timeline(
    caller: Caller,
    pool: web::Data<PgPool>,
    omie_code: web::Path<i64>,
) -> Result<HttpResponse, ReadError> {
    let code = omie_code.into_inner();
    let mut conn = connect(&pool).await?;
    Ok(items(timeline::for_record(&mut conn, caller.tenant_id(), code).await?))
}

/// Counts of a tenant's projections: what `make run` summarises.
async fn stats(caller: Caller, pool: web::Data<PgPool>) -> Result<HttpResponse, ReadError> {
    let tenant = caller.tenant_id();
    let mut conn = connect(&pool).await?;
    let (active, inactive) = users::count_by_state(&mut conn, tenant).await?;
    let errors: Vec<_> = errors::count_by_kind(&mut conn, tenant)
        .await?
        .into_iter()
        .map(|(kind, status, count)| json!({"kind": kind, "status": status, "count": count}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "users": {"active": active, "inactive": inactive},
        "errors": errors,
        "history_rows": history::count_for_tenant(&mut conn, tenant).await?,
        "events_applied": events::count_for_tenant(&mut conn, tenant).await?,
    })))
}

/// One full sync's progress and what it did.
async fn sync_progress(
    caller: Caller,
    pool: web::Data<PgPool>,
    sync_id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ReadError> {
    let mut conn = connect(&pool).await?;
    match sync_runs::find(&mut conn, caller.tenant_id(), sync_id.into_inner()).await? {
        Some(run) => Ok(HttpResponse::Ok().json(run)),
        None => Err(ReadError::NotFound("no such sync for this company".into())),
    }
}
