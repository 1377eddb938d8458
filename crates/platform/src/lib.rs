//! What both services share: JWT auth, problem+json, secret sealing, Kafka client settings and
//! logging. Nothing here knows about Omie or the fold.

pub mod auth;
pub mod config;
pub mod event_log;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod secrets;
pub mod telemetry;
