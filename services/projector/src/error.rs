//! The read API's errors, mapped to HTTP in one place.
//!
//! Policy: a caller's mistake is a 4xx problem that says what to change; a database that is down
//! or slow is a 503 with `Retry-After` (the read is safe to repeat); nothing answers 500 unless a
//! bug slipped through, and then the detail names no internals.

use actix_web::{HttpResponse, ResponseError};
use omie_sync_platform::problem::{Problem, types};
use omie_sync_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the projections are unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    NotFound(String),
}

impl ReadError {
    fn problem(&self) -> Problem {
        match self {
            ReadError::Store(error) => {
                tracing::warn!(%error, "read failed");
                Problem::new(types::SERVICE_UNAVAILABLE, "the database is unavailable; retry shortly").retry_after(2)
            }
            ReadError::InvalidQuery(detail) => Problem::new(types::INVALID_REQUEST, detail.clone()),
            ReadError::NotFound(detail) => Problem::new(types::NOT_FOUND, detail.clone()),
        }
    }
}

impl ResponseError for ReadError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().to_response()
    }
}
