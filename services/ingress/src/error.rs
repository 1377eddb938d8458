//! Ingress errors, mapped to HTTP in one place.
//!
//! Policy:
//! - The caller can fix it → 4xx problem+json whose `detail` says what to change. Webhook
//!   rejections that Omie should not retry forever (bad JSON, unknown app key) are 400/401.
//! - A dependency is down (broker, database) → 503 with `Retry-After`; the request is safe to
//!   repeat, and a webhook's retry carries the same `messageId`, hence the same event id.
//! - Too many webhooks for one app key → 429 with `Retry-After`.
//! - 500 is never an intended answer; the body would name no internals.
//!
//! Secrets never appear in a detail.

use actix_web::{HttpResponse, ResponseError};
use omie_sync_platform::problem::{Problem, ProblemType, types};
use omie_sync_store::StoreError;
use serde::Serialize;

pub use omie_sync_platform::problem::types::PAYLOAD_TOO_LARGE;
pub const INVALID_JSON: ProblemType =
    ProblemType { slug: "invalid-json", title: "The body is not a JSON object", status: 400 };
pub const UNKNOWN_APP_KEY: ProblemType =
    ProblemType { slug: "unknown-app-key", title: "No integration has this app key", status: 401 };
pub const INVALID_WEBHOOK_TOKEN: ProblemType =
    ProblemType { slug: "invalid-webhook-token", title: "The webhook token is missing or wrong", status: 401 };
pub const RATE_LIMITED: ProblemType =
    ProblemType { slug: "rate-limited", title: "Too many webhooks for this app key", status: 429 };
pub const BROKER_UNAVAILABLE: ProblemType =
    ProblemType { slug: "broker-unavailable", title: "The event log cannot take the event now", status: 503 };
pub const APP_KEY_IN_USE: ProblemType =
    ProblemType { slug: "app-key-in-use", title: "Another company already uses this app key", status: 409 };

pub const CREDENTIALS_MISSING: ProblemType =
    ProblemType { slug: "credentials-missing", title: "The integration has no usable Omie credentials", status: 409 };

pub const SYNC_RUNNING: ProblemType =
    ProblemType { slug: "sync-running", title: "A full sync is already running", status: 409 };

/// Seconds a 503 asks Omie (or an admin) to wait.
const RETRY_AFTER_UNAVAILABLE: u64 = 5;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    InvalidJson(String),
    #[error("the body has no appKey; send the webhook as Omie does, with appKey")]
    MissingAppKey,
    #[error("no integration has this appKey; set the Omie credentials in the integrations centre first")]
    UnknownAppKey,
    #[error("the integration requires ?token=; use the webhook URL shown when the token was rotated")]
    InvalidWebhookToken,
    #[error("too many webhooks for this app key; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the event log did not acknowledge the event in time; retry later")]
    BrokerUnavailable,
    #[error("the command is not valid")]
    Validation(Vec<FieldError>),
    #[error("this Omie app key is already connected to another company; check the key")]
    AppKeyInUse,
    #[error("set the Omie App Key and App Secret first (or again, if SECRETS_KEY changed)")]
    CredentialsMissing,
    #[error("this company has no such sync")]
    UnknownSync,
    #[error("this company has no such import error; list them with GET /api/v1/errors")]
    UnknownImportError,
    #[error("a full sync is already running for this company; follow it or wait until it ends")]
    SyncRunning(uuid::Uuid),
    #[error("the database is unavailable; retry later")]
    Database(#[from] StoreError),
}

impl ApiError {
    /// The problem type this error is answered with.
    pub fn kind(&self) -> ProblemType {
        match self {
            ApiError::PayloadTooLarge { .. } => PAYLOAD_TOO_LARGE,
            ApiError::InvalidJson(_) => INVALID_JSON,
            ApiError::MissingAppKey | ApiError::UnknownAppKey => UNKNOWN_APP_KEY,
            ApiError::InvalidWebhookToken => INVALID_WEBHOOK_TOKEN,
            ApiError::RateLimited { .. } => RATE_LIMITED,
            ApiError::BrokerUnavailable => BROKER_UNAVAILABLE,
            ApiError::Validation(_) => types::VALIDATION_FAILED,
            ApiError::AppKeyInUse => APP_KEY_IN_USE,
            ApiError::CredentialsMissing => CREDENTIALS_MISSING,
            ApiError::UnknownSync | ApiError::UnknownImportError => types::NOT_FOUND,
            ApiError::SyncRunning(_) => SYNC_RUNNING,
            ApiError::Database(_) => types::SERVICE_UNAVAILABLE,
        }
    }

    pub fn validation(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError { field, message: message.into() }])
    }

    fn problem(&self) -> Problem {
        let problem = Problem::new(self.kind(), self.to_string());
        match self {
            ApiError::PayloadTooLarge { limit } => problem.with("limit_bytes", *limit),
            ApiError::RateLimited { retry_after_seconds } => problem.retry_after(*retry_after_seconds),
            ApiError::BrokerUnavailable => problem.retry_after(RETRY_AFTER_UNAVAILABLE),
            ApiError::Validation(errors) => problem.with("errors", serde_json::to_value(errors).unwrap_or_default()),
            ApiError::SyncRunning(sync_id) => problem.with("sync_id", sync_id.to_string()),
            ApiError::Database(error) => {
                tracing::warn!(%error, "database unavailable");
                problem.retry_after(RETRY_AFTER_UNAVAILABLE)
            }
            _ => problem,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.kind().status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().to_response()
    }
}
