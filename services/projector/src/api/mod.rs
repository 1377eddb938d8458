//! The read API of the integrations centre, served from the projections. Every route takes the
//! tenant from the token (roles `admin` and `financeiro`), so no parameter can reach another
//! tenant's rows: another tenant's id answers 404 as an unknown one does. Lists page newest first
//! by an opaque `cursor` over an immutable key, so rows arriving while a client pages are never
//! seen twice and never push a row out of reach.

// utoipa's `params(Query)` expands to a path the lint flags as needlessly qualified.
#![allow(unused_qualifications)]

pub mod views;

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use omie_sync_platform::auth::Caller;
use omie_sync_platform::openapi::{BearerAuth, Refusals};
use omie_sync_platform::problem::Problem;
use omie_sync_store::errors::{ErrorFilter, ImportError};
use omie_sync_store::history::HistoryFilter;
use omie_sync_store::page::{Page, Position};
use omie_sync_store::users::UserFilter;
use omie_sync_store::{
    PgPool, PooledConnection, StoreError, errors, events, history, integrations, sync_runs, timeline, users,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi};
use uuid::Uuid;

use self::views::*;
use crate::error::ReadError;
use crate::rules::record::ErrorKind;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1_000;
const MAX_SEARCH_CHARS: usize = 200;
const ERROR_STATUSES: [&str; 3] = ["open", "resolved", "archived"];
const ACTOR_KINDS: [&str; 4] = ["omie_user", "espresso_user", "system", "operator"];

/// Where the ingress receives Omie's webhooks, for the integration's status card.
#[derive(Debug, Clone)]
pub struct WebhookBase(pub String);

#[derive(OpenApi)]
#[openapi(
    info(title = "omie-sync projector: read API", description = "The integrations centre's reads, served from the projections. Every `/api/v1` route needs a bearer JWT (roles `admin`, `financeiro`); the tenant comes from the token. Errors are `application/problem+json` (see `schemas/problems.md`)."),
    paths(omie_sync_platform::http::health, omie_sync_platform::http::ready, crate::metrics::serve, integration, list_users, list_errors, get_error, error_log, error_related, list_history, record_timeline, sync_progress, stats),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags((name = "ops", description = "Open: liveness, readiness, metrics, this document"), (name = "integration"), (name = "users"), (name = "errors"), (name = "history"), (name = "records"), (name = "syncs"))
)]
pub struct ApiDoc;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/v1/integration", web::get().to(integration))
        .route("/api/v1/users", web::get().to(list_users))
        .route("/api/v1/errors", web::get().to(list_errors))
        .route("/api/v1/errors/{error_id}", web::get().to(get_error))
        .route("/api/v1/errors/{error_id}/log", web::get().to(error_log))
        .route("/api/v1/errors/{error_id}/related", web::get().to(error_related))
        .route("/api/v1/history", web::get().to(list_history))
        .route("/api/v1/stats", web::get().to(stats))
        .route("/api/v1/syncs/{sync_id}", web::get().to(sync_progress))
        .route("/api/v1/records/{omie_code}/timeline", web::get().to(record_timeline));
}

async fn connect(pool: &PgPool) -> Result<PooledConnection, ReadError> {
    Ok(pool.get().await.map_err(StoreError::from)?)
}

fn limit_of(limit: Option<i64>) -> Result<i64, ReadError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ReadError::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

/// A free-text filter named `name`; PostgreSQL text cannot hold NUL, so that is refused here.
fn search_of(name: &str, search: Option<&str>) -> Result<Option<String>, ReadError> {
    match search.map(str::trim).filter(|search| !search.is_empty()) {
        Some(search) if search.chars().count() > MAX_SEARCH_CHARS => {
            Err(ReadError::InvalidQuery(format!("{name} must be at most {MAX_SEARCH_CHARS} characters")))
        }
        Some(search) if search.contains('\0') => {
            Err(ReadError::InvalidQuery(format!("{name} must not contain NUL characters")))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

fn instant_of(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ReadError> {
    value
        .map(|value| {
            DateTime::parse_from_rfc3339(value).map(|instant| instant.with_timezone(&Utc)).map_err(|_| {
                ReadError::InvalidQuery(format!("{name} must be an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z"))
            })
        })
        .transpose()
}

fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> Result<Option<String>, ReadError> {
    match value {
        Some(value) if !allowed.contains(&value) => {
            Err(ReadError::InvalidQuery(format!("{name} must be one of {}", allowed.join(", "))))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

fn paged<Row, View: Serialize>(
    page: Page<Row>,
    position: impl Fn(&Row) -> Position,
    view: impl Fn(Row) -> View,
) -> HttpResponse {
    let next_cursor = page.rows.last().filter(|_| page.more).map(|row| encode_cursor(position(row)));
    let items: Vec<View> = page.rows.into_iter().map(view).collect();
    HttpResponse::Ok().json(Paged { items, next_cursor })
}

/// The error, if it is the caller's tenant's.
async fn tenant_error(conn: &mut PooledConnection, caller: &Caller, error_id: Uuid) -> Result<ImportError, ReadError> {
    errors::find(conn, caller.tenant_id(), error_id)
        .await?
        .ok_or_else(|| ReadError::NotFound("this company has no such import error".into()))
}

/// The integration's status card: ERP, template, tag, masked app key, connection, webhook URL and
/// the last sync.
#[utoipa::path(
    get, path = "/api/v1/integration", tag = "integration", security(("bearer" = [])),
    responses(
        (status = 200, body = IntegrationView),
        Refusals,
    )
)]
async fn integration(
    caller: Caller,
    pool: web::Data<PgPool>,
    webhook: web::Data<WebhookBase>,
) -> Result<HttpResponse, ReadError> {
    let tenant = caller.tenant_id();
    let mut conn = connect(&pool).await?;
    let integration = integrations::by_tenant(&mut conn, tenant).await?;
    let last_sync = sync_runs::latest(&mut conn, tenant).await?;
    let url = format!("{}/api/v1/webhooks/omie/users", webhook.0.trim_end_matches('/'));
    Ok(HttpResponse::Ok().json(IntegrationView::new(integration, last_sync, url)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only active (`true`) or inactive (`false`) users.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    /// Part of the name or e-mail, four or more digits of the CPF/CNPJ (punctuation ignored), or
    /// the whole Omie code.
    q: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The tenant's users, newest first.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users", params(UserQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = Paged<UserView>),
        (status = 400, description = "`invalid-request`: a parameter is out of range or the cursor is not ours", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn list_users(
    caller: Caller,
    pool: web::Data<PgPool>,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse, ReadError> {
    let limit = limit_of(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let active = match query.active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ReadError::InvalidQuery("active must be true or false".into())),
    };
    let filter = UserFilter { active, search: search_of("q", query.q.as_deref())? };
    let tenant = caller.tenant_id();
    let mut conn = connect(&pool).await?;
    let page = users::page(&mut conn, tenant, &filter, after, limit).await?;
    let last_events: Vec<Uuid> = page.rows.iter().map(|user| user.last_event_id).collect();
    let entries = timeline::for_events(&mut conn, tenant, &last_events).await?;
    let by_event: HashMap<(Uuid, i64), _> =
        entries.iter().map(|entry| ((entry.event_id, entry.omie_code), entry)).collect();
    Ok(paged(
        page,
        |user| Position { at: user.created_at, id: user.id },
        |user| {
            let entry = by_event.get(&(user.last_event_id, user.omie_code)).copied();
            UserView::new(user, entry)
        },
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorQuery {
    /// `open`, `resolved` or `archived`.
    status: Option<String>,
    /// One kind, e.g. `invalid_email`.
    kind: Option<String>,
    /// Part of the name or e-mail, or the whole Omie code.
    q: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The tenant's import errors, newest first (by when each first appeared).
#[utoipa::path(
    get, path = "/api/v1/errors", tag = "errors", params(ErrorQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = Paged<ErrorView>),
        (status = 400, description = "`invalid-request`: unknown status or kind, a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn list_errors(
    caller: Caller,
    pool: web::Data<PgPool>,
    query: web::Query<ErrorQuery>,
) -> Result<HttpResponse, ReadError> {
    let limit = limit_of(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
    let filter = ErrorFilter {
        status: one_of("status", query.status.as_deref(), &ERROR_STATUSES)?,
        kind: one_of("kind", query.kind.as_deref(), &kinds)?,
        search: search_of("q", query.q.as_deref())?,
    };
    let mut conn = connect(&pool).await?;
    let page = errors::page(&mut conn, caller.tenant_id(), &filter, after, limit).await?;
    Ok(paged(page, |error| Position { at: error.first_seen_at, id: error.id }, ErrorView::from))
}

/// One import error.
#[utoipa::path(
    get, path = "/api/v1/errors/{error_id}", tag = "errors", security(("bearer" = [])),
    params(("error_id" = Uuid, Path, description = "The error's id")),
    responses(
        (status = 200, body = ErrorView),
        (status = 400, description = "`invalid-request`: the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such error for this company", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn get_error(
    caller: Caller,
    pool: web::Data<PgPool>,
    error_id: web::Path<Uuid>,
) -> Result<HttpResponse, ReadError> {
    let mut conn = connect(&pool).await?;
    let error = tenant_error(&mut conn, &caller, error_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ErrorView::from(error)))
}

/// The error's failing events in order, each with its input, the rule that failed and how to fix
/// it in Omie (Portuguese).
#[utoipa::path(
    get, path = "/api/v1/errors/{error_id}/log", tag = "errors", security(("bearer" = [])),
    params(("error_id" = Uuid, Path, description = "The error's id")),
    responses(
        (status = 200, body = Items<ErrorLogEntryView>),
        (status = 400, description = "`invalid-request`: the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such error for this company", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn error_log(
    caller: Caller,
    pool: web::Data<PgPool>,
    error_id: web::Path<Uuid>,
) -> Result<HttpResponse, ReadError> {
    let mut conn = connect(&pool).await?;
    let error = tenant_error(&mut conn, &caller, error_id.into_inner()).await?;
    let logged = errors::log(&mut conn, error.id).await?;
    let event_ids: Vec<Uuid> = logged.iter().map(|entry| entry.event_id).collect();
    let rows = events::by_ids(&mut conn, caller.tenant_id(), &event_ids).await?;
    let by_id: HashMap<Uuid, _> = rows.iter().map(|row| (row.id, row)).collect();
    let items: Vec<ErrorLogEntryView> = logged
        .into_iter()
        .map(|entry| {
            let event = by_id.get(&entry.event_id).copied();
            ErrorLogEntryView::new(&error, entry, event)
        })
        .collect();
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// Every event of the error's Omie record, with the projector's verdict (for an error with no
/// record, its own failing events).
#[utoipa::path(
    get, path = "/api/v1/errors/{error_id}/related", tag = "errors", security(("bearer" = [])),
    params(("error_id" = Uuid, Path, description = "The error's id")),
    responses(
        (status = 200, body = Items<TimelineView>),
        (status = 400, description = "`invalid-request`: the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such error for this company", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn error_related(
    caller: Caller,
    pool: web::Data<PgPool>,
    error_id: web::Path<Uuid>,
) -> Result<HttpResponse, ReadError> {
    let tenant = caller.tenant_id();
    let mut conn = connect(&pool).await?;
    let error = tenant_error(&mut conn, &caller, error_id.into_inner()).await?;
    let items: Vec<TimelineView> = match error.omie_code {
        Some(code) => timeline_of(&mut conn, tenant, code).await?,
        None => {
            let logged = errors::log(&mut conn, error.id).await?;
            let event_ids: Vec<Uuid> = logged.iter().map(|entry| entry.event_id).collect();
            let mut rows = events::by_ids(&mut conn, tenant, &event_ids).await?;
            rows.sort_by_key(|row| (row.log_partition, row.log_offset));
            rows.into_iter()
                .map(|row| TimelineView {
                    event_id: row.id,
                    event_type: row.event_type,
                    verdict: format!("failed:{}", error.kind),
                    detail: Some(error.message.clone()),
                    at: row.recorded_at,
                    log_partition: row.log_partition,
                    log_offset: row.log_offset,
                    trace_id: row.trace_id,
                })
                .collect()
        }
    };
    Ok(HttpResponse::Ok().json(Items { items }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// One action, or several separated by commas (`user_created,user_updated`).
    action: Option<String>,
    /// `omie_user`, `espresso_user`, `system` or `operator`.
    actor_kind: Option<String>,
    /// Part of the actor's name, e-mail or id.
    actor: Option<String>,
    /// From this instant on (RFC 3339, inclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    from: Option<String>,
    /// Before this instant (RFC 3339, exclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The action history: what, who, when — newest first.
#[utoipa::path(
    get, path = "/api/v1/history", tag = "history", params(HistoryQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = Paged<HistoryView>),
        (status = 400, description = "`invalid-request`: unknown actor kind, a bad date range, limit or cursor", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn list_history(
    caller: Caller,
    pool: web::Data<PgPool>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ReadError> {
    let limit = limit_of(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let from = instant_of("from", query.from.as_deref())?;
    let until = instant_of("until", query.until.as_deref())?;
    if let (Some(from), Some(until)) = (from, until)
        && from >= until
    {
        return Err(ReadError::InvalidQuery("from must be before until".into()));
    }
    let actions: Vec<String> = query
        .action
        .as_deref()
        .map(|actions| {
            actions.split(',').map(str::trim).filter(|action| !action.is_empty()).map(str::to_owned).collect()
        })
        .unwrap_or_default();
    if actions.iter().any(|action| action.contains('\0') || action.chars().count() > MAX_SEARCH_CHARS) {
        return Err(ReadError::InvalidQuery(format!(
            "action must be action names (at most {MAX_SEARCH_CHARS} characters each) separated by commas"
        )));
    }
    let filter = HistoryFilter {
        actions,
        actor_kind: one_of("actor_kind", query.actor_kind.as_deref(), &ACTOR_KINDS)?,
        actor: search_of("actor", query.actor.as_deref())?,
        from,
        until,
    };
    let mut conn = connect(&pool).await?;
    let page = history::page(&mut conn, caller.tenant_id(), &filter, after, limit).await?;
    Ok(paged(page, |entry| Position { at: entry.at, id: entry.id }, HistoryView::from))
}

/// Every event of one Omie record, in log order, with the projector's verdict.
#[utoipa::path(
    get, path = "/api/v1/records/{omie_code}/timeline", tag = "records", security(("bearer" = [])),
    params(("omie_code" = i64, Path, description = "`codigo_cliente_omie`")),
    responses(
        (status = 200, body = Items<TimelineView>),
        (status = 400, description = "`invalid-request`: the code is not an integer", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn record_timeline(
    caller: Caller,
    pool: web::Data<PgPool>,
    omie_code: web::Path<i64>,
) -> Result<HttpResponse, ReadError> {
    let code = omie_code.into_inner();
    let mut conn = connect(&pool).await?;
    let items = timeline_of(&mut conn, caller.tenant_id(), code).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// A record's timeline, each entry with the trace id of its event.
async fn timeline_of(
    conn: &mut diesel_async::AsyncPgConnection,
    tenant: Uuid,
    code: i64,
) -> Result<Vec<TimelineView>, ReadError> {
    let entries = timeline::for_record(conn, tenant, code).await?;
    let event_ids: Vec<Uuid> = entries.iter().map(|entry| entry.event_id).collect();
    let traces = events::trace_ids(conn, tenant, &event_ids).await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let trace_id = traces.get(&entry.event_id).cloned();
            TimelineView::new(entry, trace_id)
        })
        .collect())
}

/// Counts of the tenant's projections (what `make run` summarises).
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "integration", security(("bearer" = [])),
    responses(
        (status = 200, body = StatsView),
        Refusals,
    )
)]
async fn stats(caller: Caller, pool: web::Data<PgPool>) -> Result<HttpResponse, ReadError> {
    let tenant = caller.tenant_id();
    let mut conn = connect(&pool).await?;
    let (active, inactive) = users::count_by_state(&mut conn, tenant).await?;
    let errors = errors::count_by_kind(&mut conn, tenant)
        .await?
        .into_iter()
        .map(|(kind, status, count)| ErrorCountView { kind, status, count })
        .collect();
    Ok(HttpResponse::Ok().json(StatsView {
        users: UserCountsView { active, inactive },
        errors,
        history_rows: history::count_for_tenant(&mut conn, tenant).await?,
        events_applied: events::count_for_tenant(&mut conn, tenant).await?,
    }))
}

/// One full sync's progress and what it did.
#[utoipa::path(
    get, path = "/api/v1/syncs/{sync_id}", tag = "syncs", security(("bearer" = [])),
    params(("sync_id" = Uuid, Path, description = "The id the sync command answered")),
    responses(
        (status = 200, body = SyncRunView),
        (status = 400, description = "`invalid-request`: the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such sync for this company (yet: the projector applies `sync.requested` within moments)", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
async fn sync_progress(
    caller: Caller,
    pool: web::Data<PgPool>,
    sync_id: web::Path<Uuid>,
) -> Result<HttpResponse, ReadError> {
    let mut conn = connect(&pool).await?;
    match sync_runs::find(&mut conn, caller.tenant_id(), sync_id.into_inner()).await? {
        Some(run) => Ok(HttpResponse::Ok().json(SyncRunView::from(run))),
        None => Err(ReadError::NotFound("no such sync for this company".into())),
    }
}
