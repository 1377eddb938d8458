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
    /// The stable problem type (`unknown-app-key`, …), for metrics.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::PayloadTooLarge { .. } => PAYLOAD_TOO_LARGE.slug,
            ApiError::InvalidJson(_) => INVALID_JSON.slug,
            ApiError::MissingAppKey | ApiError::UnknownAppKey => UNKNOWN_APP_KEY.slug,
            ApiError::InvalidWebhookToken => INVALID_WEBHOOK_TOKEN.slug,
            ApiError::RateLimited { .. } => RATE_LIMITED.slug,
            ApiError::BrokerUnavailable => BROKER_UNAVAILABLE.slug,
            ApiError::Validation(_) => types::VALIDATION_FAILED.slug,
            ApiError::AppKeyInUse => APP_KEY_IN_USE.slug,
            ApiError::CredentialsMissing => CREDENTIALS_MISSING.slug,
            ApiError::UnknownSync | ApiError::UnknownImportError => types::NOT_FOUND.slug,
            ApiError::SyncRunning(_) => SYNC_RUNNING.slug,
            ApiError::Database(_) => types::SERVICE_UNAVAILABLE.slug,
        }
    }

    pub fn validation(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError { field, message: message.into() }])
    }

    fn problem(&self) -> Problem {
        let detail = self.to_string();
        match self {
            ApiError::PayloadTooLarge { limit } => Problem::new(PAYLOAD_TOO_LARGE, detail).with("limit_bytes", *limit),
            ApiError::InvalidJson(_) => Problem::new(INVALID_JSON, detail),
            ApiError::MissingAppKey | ApiError::UnknownAppKey => Problem::new(UNKNOWN_APP_KEY, detail),
            ApiError::InvalidWebhookToken => Problem::new(INVALID_WEBHOOK_TOKEN, detail),
            ApiError::RateLimited { retry_after_seconds } => {
                Problem::new(RATE_LIMITED, detail).retry_after(*retry_after_seconds)
            }
            ApiError::BrokerUnavailable => {
                Problem::new(BROKER_UNAVAILABLE, detail).retry_after(RETRY_AFTER_UNAVAILABLE)
            }
            ApiError::Validation(errors) => Problem::new(types::VALIDATION_FAILED, detail)
                .with("errors", serde_json::to_value(errors).unwrap_or_default()),
            ApiError::AppKeyInUse => Problem::new(APP_KEY_IN_USE, detail),
            ApiError::CredentialsMissing => Problem::new(CREDENTIALS_MISSING, detail),
            ApiError::UnknownSync | ApiError::UnknownImportError => Problem::new(types::NOT_FOUND, detail),
            ApiError::SyncRunning(sync_id) => Problem::new(SYNC_RUNNING, detail).with("sync_id", sync_id.to_string()),
            ApiError::Database(error) => {
                tracing::warn!(%error, "database unavailable");
                Problem::new(types::SERVICE_UNAVAILABLE, detail).retry_after(RETRY_AFTER_UNAVAILABLE)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().to_response()
    }
}
