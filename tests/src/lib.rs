//! The end-to-end harness: each test gets its own PostgreSQL database and its own Kafka topic on
//! the real broker that `make test` starts (Tansu), and runs both services in-process over real
//! HTTP. Nothing is mocked except Omie itself.

pub mod db;
pub mod fixtures;
pub mod stack;
pub mod stream;

use std::future::Future;
use std::time::{Duration, Instant};

/// The broker `make test` started (`TEST_KAFKA_BROKERS`).
pub fn kafka_brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS is not set: run the tests with `make test`, which starts the Kafka-API broker")
}

/// Polls `check` until it yields a value or `timeout` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The repository root (fixtures, scripts).
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
