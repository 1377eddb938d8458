//! HTTP plumbing both services share: extractor errors and unknown routes answer problem+json.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};

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

/// Liveness: the process answers.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
