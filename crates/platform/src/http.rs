//! HTTP plumbing both services share: extractor errors and unknown routes answer problem+json.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};
use omie_sync_store::PgPool;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{Problem, types};

/// Registers problem+json answers for malformed JSON bodies, query strings and path segments.
pub fn extractor_errors(config: &mut web::ServiceConfig) {
    config
        .app_data(web::JsonConfig::default().error_handler(|error: JsonPayloadError, _| {
            let problem = Problem::new(types::INVALID_REQUEST, format!("the JSON body is not valid: {error}"));
            actix_web::error::InternalError::from_response(error, problem.to_response()).into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|error: QueryPayloadError, _| {
            let problem = Problem::new(types::INVALID_REQUEST, format!("the query string is not valid: {error}"));
            actix_web::error::InternalError::from_response(error, problem.to_response()).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|error: PathError, _| {
            let problem = Problem::new(types::INVALID_REQUEST, format!("the path is not valid: {error}"));
            actix_web::error::InternalError::from_response(error, problem.to_response()).into()
        }));
}

/// The default service: every unknown route is a 404 problem.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    Problem::new(types::NOT_FOUND, format!("no route for {} {}", request.method(), request.path())).to_response()
}

/// Liveness and readiness answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (live) or `ready`.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, description = "The process is up", body = Status)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Readiness: the service's dependencies answer (checked by the caller).
#[utoipa::path(
    get, path = "/ready", tag = "ops",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "`service-unavailable`: the database does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(database: web::Data<PgPool>) -> HttpResponse {
    match database.get().await {
        Ok(_) => HttpResponse::Ok().json(Status { status: "ready" }),
        Err(_) => Problem::new(types::SERVICE_UNAVAILABLE, "the database is unavailable").retry_after(2).to_response(),
    }
}
