//! Appending events to the log. An append returns only once the broker acknowledged the record
//! (acks=all, idempotent producer) or the delivery timeout passed.

use std::time::Duration;

use omie_sync_events::Envelope;
use omie_sync_events::envelope::SCHEMA_VERSION;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

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
}

impl EventLog {
    pub fn new(producer: FutureProducer, topic: String, delivery_timeout: Duration) -> EventLog {
        EventLog { producer, topic, delivery_timeout }
    }

    /// Appends one event keyed by tenant, so a tenant's facts stay in order.
    pub async fn append(&self, envelope: &Envelope) -> Result<(), AppendError> {
        let key = envelope.tenant_id.to_string();
        let payload = envelope.encode();
        let schema_version = SCHEMA_VERSION.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "event-type", value: Some(envelope.type_name()) })
            .insert(Header { key: "schema-version", value: Some(schema_version.as_str()) });
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload).headers(headers);
        // `message.timeout.ms` bounds delivery; the outer timeout guards against a stuck client.
        let delivery = self.producer.send(record, Timeout::After(self.delivery_timeout));
        match tokio::time::timeout(self.delivery_timeout + Duration::from_secs(1), delivery).await {
            Ok(Ok(_)) => Ok(()),
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
