//! Projector metrics (served at `/metrics`): events applied by type and verdict, dead letters,
//! batch size and duration, consumer lag per partition, and open import errors per kind (counted
//! in the database at scrape time, so they are right after a replay too).

use omie_sync_platform::metrics::{Exposition, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use actix_web::{HttpResponse, web};
use omie_sync_store::{PgPool, errors};

use crate::apply::BatchReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppliedLabels {
    pub event_type: &'static str,
    /// The timeline's verdict (`created`, `failed:missing_email`, `duplicate-delivery`, …).
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone)]
pub struct ProjectorMetrics {
    pub events_applied: Family<AppliedLabels, Counter>,
    pub dead_lettered: Counter,
    pub batch_size: Histogram,
    pub batch_duration: Histogram,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub open_errors: Family<KindLabels, Gauge>,
}

impl ProjectorMetrics {
    pub fn register() -> (ProjectorMetrics, Exposition) {
        let mut registry = Registry::default();
        let metrics = ProjectorMetrics {
            events_applied: Family::default(),
            dead_lettered: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            batch_duration: latency_histogram(),
            consumer_lag: Family::default(),
            open_errors: Family::default(),
        };
        registry.register(
            "omie_sync_events_applied",
            "Events folded into the projections, by event type and verdict",
            metrics.events_applied.clone(),
        );
        registry.register(
            "omie_sync_dead_lettered",
            "Records that could not be decoded and went to the dead-letter topic",
            metrics.dead_lettered.clone(),
        );
        registry.register("omie_sync_batch_size", "Records per applied batch", metrics.batch_size.clone());
        registry.register(
            "omie_sync_batch_duration_seconds",
            "Time to apply one batch and its offsets in one transaction (retries included)",
            metrics.batch_duration.clone(),
        );
        registry.register(
            "omie_sync_consumer_lag",
            "Records in the partition not yet applied (high watermark minus the next offset in PostgreSQL)",
            metrics.consumer_lag.clone(),
        );
        registry.register("omie_sync_open_errors", "Open import errors, by kind", metrics.open_errors.clone());
        (metrics.clone(), Exposition::new(registry))
    }

    pub fn batch_applied(&self, records: usize, seconds: f64, report: &BatchReport) {
        self.batch_size.observe(records as f64);
        self.batch_duration.observe(seconds);
        for ((event_type, verdict), count) in &report.verdicts {
            self.events_applied
                .get_or_create(&AppliedLabels { event_type, verdict: verdict.clone() })
                .inc_by(*count as u64);
        }
        self.dead_lettered.inc_by(report.dead_lettered as u64);
    }

    /// Replaces the open-error gauges with these counts, so a kind with none left reads absent.
    pub fn set_open_errors(&self, counts: &[(String, i64)]) {
        self.open_errors.clear();
        for (kind, count) in counts {
            self.open_errors.get_or_create(&KindLabels { kind: kind.clone() }).set(*count);
        }
    }
}

/// Prometheus metrics of this service (OpenMetrics text); open errors are counted now.
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Counters, gauges and histograms in the OpenMetrics text format", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn serve(
    pool: web::Data<PgPool>,
    metrics: web::Data<ProjectorMetrics>,
    exposition: web::Data<Exposition>,
) -> HttpResponse {
    match pool.get().await {
        Ok(mut conn) => match errors::open_by_kind(&mut conn).await {
            Ok(counts) => metrics.set_open_errors(&counts),
            Err(error) => tracing::warn!(%error, "open errors not counted for /metrics"),
        },
        Err(error) => tracing::warn!(%error, "open errors not counted for /metrics"),
    }
    omie_sync_platform::metrics::serve(exposition).await
}
