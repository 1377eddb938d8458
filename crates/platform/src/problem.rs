//! RFC 9457 problem details. Every error body of both services is `application/problem+json`
//! with a stable `type`; the catalogue of types is documented in `schemas/problems.md`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem type: its URI suffix and human title never change once shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    pub slug: &'static str,
    pub title: &'static str,
    pub status: u16,
}

impl ProblemType {
    pub fn uri(self) -> String {
        format!("/problems/{}", self.slug)
    }
}

/// The response body. Types may add members (`errors`, `retry_after_seconds`, `sync_id`, …); each
/// type's are listed in `schemas/problems.md`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(description = "RFC 9457 problem details, `application/problem+json`")]
pub struct Problem {
    /// `/problems/<slug>`: stable, one per kind of refusal.
    #[serde(rename = "type")]
    #[schema(example = "/problems/invalid-request")]
    pub type_uri: String,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    /// What is wrong and what to do about it.
    pub detail: String,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: Map<String, Value>,
    #[serde(skip)]
    retry_after_seconds: Option<u64>,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: kind.uri(),
            title: kind.title,
            status: kind.status,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after_seconds: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Problem {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Adds `Retry-After` (and the same number in the body, for clients that drop headers).
    pub fn retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after_seconds = Some(seconds);
        self.with("retry_after_seconds", seconds)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem+json answer, logged: operators see why a caller was refused, whichever layer
    /// refused it. Details never hold secrets.
    pub fn to_response(&self) -> HttpResponse {
        tracing::info!(status = self.status, problem = %self.type_uri, detail = %self.detail, "request refused");
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self)
    }
}

/// Types shared by both services.
pub mod types {
    use super::ProblemType;

    pub const UNAUTHENTICATED: ProblemType =
        ProblemType { slug: "unauthenticated", title: "Authentication required", status: 401 };
    pub const FORBIDDEN: ProblemType =
        ProblemType { slug: "forbidden", title: "Not allowed for this role", status: 403 };
    pub const NOT_FOUND: ProblemType = ProblemType { slug: "not-found", title: "No such resource", status: 404 };
    pub const INVALID_REQUEST: ProblemType =
        ProblemType { slug: "invalid-request", title: "The request is not valid", status: 400 };
    pub const VALIDATION_FAILED: ProblemType =
        ProblemType { slug: "validation-failed", title: "The command is not valid", status: 422 };
    pub const SERVICE_UNAVAILABLE: ProblemType =
        ProblemType { slug: "service-unavailable", title: "A dependency is unavailable; retry later", status: 503 };
    pub const PAYLOAD_TOO_LARGE: ProblemType =
        ProblemType { slug: "payload-too-large", title: "The body is too large", status: 413 };
}
