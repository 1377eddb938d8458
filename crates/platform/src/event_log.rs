//! Appending events to the log. An append returns only once the broker acknowledged the record
//! (acks=all, idempotent producer) or the delivery timeout passed.
//!
//! Each append is a PRODUCER span (OpenTelemetry messaging conventions) whose W3C context goes
//! into the record's `traceparent`/`tracestate` headers, so the projector continues the trace.

use std::time::{Duration, Instant};

use omie_sync_events::Envelope;
use omie_sync_events::envelope::SCHEMA_VERSION;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tracing::Instrument as _;

use crate::metrics::ProduceMetrics;
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the broker did not acknowledge the event: {0}")]
    NotAcknowledged(#[from] KafkaError),
    #[error("no acknowledgement within {0:?}")]
    TimedOut(Duration),
}

#[derive(Clone)]
pub struct EventLog {
    producer: FutureProducer,
    topic: String,
    delivery_timeout: Duration,
    metrics: ProduceMetrics,
}

impl EventLog {
    pub fn new(
        producer: FutureProducer,
        topic: String,
        delivery_timeout: Duration,
        metrics: ProduceMetrics,
    ) -> EventLog {
        EventLog { producer, topic, delivery_timeout, metrics }
    }

    /// Appends one event keyed by tenant, so a tenant's facts stay in order.
    pub async fn append(&self, envelope: &Envelope) -> Result<(), AppendError> {
        let key = envelope.tenant_id.to_string();
        let span = tracing::info_span!(
            "send",
            otel.name = %format!("send {}", self.topic),
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            messaging.system = "kafka",
            messaging.operation.name = "send",
            messaging.operation.type = "send",
            messaging.destination.name = %self.topic,
            messaging.kafka.message.key = %key,
            messaging.message.id = %envelope.id,
            messaging.destination.partition.id = tracing::field::Empty,
            messaging.kafka.offset = tracing::field::Empty,
            event.type = envelope.type_name(),
            error.type = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.send(envelope, &key, &span).instrument(span.clone()).await;
        match &result {
            Ok((partition, offset)) => {
                span.record("messaging.destination.partition.id", partition.to_string());
                span.record("messaging.kafka.offset", offset);
                self.metrics.observe("acked", started.elapsed());
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error.to_string());
                self.metrics.observe("failed", started.elapsed());
            }
        }
        result.map(|_| ())
    }

    async fn send(&self, envelope: &Envelope, key: &str, span: &tracing::Span) -> Result<(i32, i64), AppendError> {
        let payload = envelope.encode();
        let schema_version = SCHEMA_VERSION.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: "event-type", value: Some(envelope.type_name()) })
            .insert(Header { key: "schema-version", value: Some(schema_version.as_str()) });
        for (name, value) in telemetry::inject(span) {
            headers = headers.insert(Header { key: &name, value: Some(&value) });
        }
        let record = FutureRecord::to(&self.topic).key(key).payload(&payload).headers(headers);
        // `message.timeout.ms` bounds delivery; the outer timeout guards against a stuck client.
        let delivery = self.producer.send(record, Timeout::After(self.delivery_timeout));
        match tokio::time::timeout(self.delivery_timeout + Duration::from_secs(1), delivery).await {
            Ok(Ok(delivery)) => Ok((delivery.partition, delivery.offset)),
            Ok(Err((error, _))) => Err(AppendError::NotAcknowledged(error)),
            Err(_) => Err(AppendError::TimedOut(self.delivery_timeout)),
        }
    }

    /// Waits for in-flight events before shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(%error, "producer flush incomplete at shutdown");
        }
    }
}
