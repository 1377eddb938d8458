//! HTTP plumbing both services share: extractor errors and unknown routes answer problem+json.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{InternalError, JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use omie_sync_store::PgPool;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::problem::{Problem, types};

/// Largest command body; commands are a few fields.
const COMMAND_BODY_LIMIT: usize = 64 * 1024;

/// Registers problem+json answers for malformed JSON bodies, query strings and path segments.
pub fn extractor_errors(config: &mut web::ServiceConfig) {
    config
        .app_data(web::JsonConfig::default().limit(COMMAND_BODY_LIMIT).error_handler(|error: JsonPayloadError, _| {
            let problem = match &error {
                JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                    Problem::new(types::PAYLOAD_TOO_LARGE, format!("the body exceeds the limit of {limit} bytes"))
                        .with("limit_bytes", *limit)
                }
                _ => Problem::new(
                    types::INVALID_REQUEST,
                    format!("the JSON body is not valid: {}", without_values(&error.to_string())),
                ),
            };
            InternalError::from_response(error, problem.to_response()).into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|error: QueryPayloadError, _| {
            let problem = Problem::new(types::INVALID_REQUEST, format!("the query string is not valid: {error}"));
            InternalError::from_response(error, problem.to_response()).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|error: PathError, _| {
            let problem = Problem::new(types::INVALID_REQUEST, format!("the path is not valid: {error}"));
            InternalError::from_response(error, problem.to_response()).into()
        }));
}

/// A command's JSON body decoded as `T`. Unlike `web::Json`, only an object is taken: serde
/// would also read a struct from an array of its fields in order.
pub struct JsonObject<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<JsonObject<T>, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<serde_json::Value>::from_request(request, payload);
        Box::pin(async move {
            let web::Json(body) = body.await?;
            let refuse = |detail: String| {
                let problem = Problem::new(types::INVALID_REQUEST, detail);
                InternalError::from_response("invalid command body", problem.to_response()).into()
            };
            if !body.is_object() {
                return Err(refuse("the JSON body must be an object".into()));
            }
            serde_json::from_value(body)
                .map(JsonObject)
                .map_err(|error| refuse(format!("the JSON body is not valid: {}", without_values(&error.to_string()))))
        })
    }
}

/// serde's message without the values it quotes (`invalid type: integer `123``): a wrongly typed
/// secret must not come back in the answer.
fn without_values(message: &str) -> String {
    let mut kept = String::with_capacity(message.len());
    let mut quoted = false;
    for character in message.chars() {
        if character == '`' {
            quoted = !quoted;
        } else if !quoted {
            kept.push(character);
        }
    }
    kept.replace(" ,", ",").trim_end().to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_left_out_of_decoding_errors() {
        let error = serde_json::from_str::<String>("987654321987").expect_err("not a string");
        let message = without_values(&error.to_string());
        assert!(!message.contains("987654321987"), "{message}");
        assert!(message.starts_with("invalid type: integer, expected a string"), "{message}");
    }
}
