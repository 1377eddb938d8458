//! Prometheus metrics. Each application owns its registry, so two services started in one test
//! process keep their own numbers; `GET /metrics` serves it in the OpenMetrics text format,
//! without a token (like health).
//!
//! Every name starts with `omie_sync_`; labels stay low-cardinality (no tenant, no record code).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A histogram family whose buckets suit latencies from 1 ms to about 30 s.
pub type LatencyFamily<Labels> = Family<Labels, Histogram, fn() -> Histogram>;

pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Whether the broker acknowledged an append.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProduceLabels {
    pub result: &'static str,
}

/// How long appends wait for the broker's acknowledgement, by result (`acked`, `failed`).
#[derive(Clone)]
pub struct ProduceMetrics {
    latency: LatencyFamily<ProduceLabels>,
}

impl ProduceMetrics {
    pub fn register(registry: &mut Registry) -> ProduceMetrics {
        let latency = LatencyFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "omie_sync_produce_duration_seconds",
            "Time from producing an event to the broker's acknowledgement (or failure)",
            latency.clone(),
        );
        ProduceMetrics { latency }
    }

    /// For one-shot tools (a replay's audit events) that serve no `/metrics`.
    pub fn detached() -> ProduceMetrics {
        ProduceMetrics::register(&mut Registry::default())
    }

    pub fn observe(&self, result: &'static str, elapsed: Duration) {
        self.latency.get_or_create(&ProduceLabels { result }).observe(elapsed.as_secs_f64());
    }
}

/// The registry a `/metrics` route serves.
#[derive(Clone)]
pub struct Exposition {
    registry: Arc<Registry>,
}

impl Exposition {
    pub fn new(registry: Registry) -> Exposition {
        Exposition { registry: Arc::new(registry) }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "metrics could not be encoded");
        }
        text
    }
}

/// Prometheus metrics of this service (OpenMetrics text).
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Counters, gauges and histograms in the OpenMetrics text format", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn serve(exposition: web::Data<Exposition>) -> HttpResponse {
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(exposition.render())
}
