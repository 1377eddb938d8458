//! The consumer loop, in the style of Vector's Kafka source: records are applied in batches, one
//! transaction each, with their offsets; Kafka commits only mirror the database for lag
//! monitoring. On assignment the consumer seeks to the offsets stored in PostgreSQL; on revoke
//! it commits the mirror of what the database holds; on shutdown it stops between batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omie_sync_platform::telemetry;
use omie_sync_store::{PgPool, StoreError, offsets};
use opentelemetry::trace::TraceContextExt as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::apply::{self, LogRecord, OffsetScope};
use crate::dlq::DeadLetterQueue;
use crate::metrics::{PartitionLabels, ProjectorMetrics};

/// Longest pause between retries while the database is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Rebalance hooks. Holds what the callbacks need without touching the async runtime.
pub struct ProjectorContext {
    database_url: String,
    scope: OffsetScope,
    /// Next offset per partition as last committed to PostgreSQL.
    committed: Mutex<HashMap<i32, i64>>,
    metrics: ProjectorMetrics,
}

impl ProjectorContext {
    pub fn new(database_url: String, scope: OffsetScope, metrics: ProjectorMetrics) -> ProjectorContext {
        ProjectorContext { database_url, scope, committed: Mutex::new(HashMap::new()), metrics }
    }

    fn remember(&self, next_offsets: &std::collections::BTreeMap<i32, i64>) {
        let mut committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        committed.extend(next_offsets.iter().map(|(&partition, &offset)| (partition, offset)));
    }

    fn mirror(&self, partitions: impl Iterator<Item = i32>) -> TopicPartitionList {
        let committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            if let Some(&offset) = committed.get(&partition) {
                let _ = list.add_partition_offset(&self.scope.topic, partition, Offset::Offset(offset));
            }
        }
        list
    }

    fn mirror_all(&self) -> TopicPartitionList {
        let partitions: Vec<i32> = {
            let committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            committed.keys().copied().collect()
        };
        self.mirror(partitions.into_iter())
    }

    /// Stored offsets, read synchronously: the callback runs inside `poll`. On a multi-threaded
    /// runtime the worker is handed over first so other tasks keep running.
    fn stored_offsets(&self) -> Result<HashMap<i32, i64>, StoreError> {
        let load = || {
            let mut connection = omie_sync_store::connect_blocking(&self.database_url)?;
            offsets::load_blocking(&mut connection, &self.scope.group, &self.scope.topic)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(load)
            }
            _ => load(),
        }
    }
}

impl ClientContext for ProjectorContext {
    /// librdkafka's periodic statistics carry each partition's high watermark; the lag is what
    /// PostgreSQL has not applied yet.
    fn stats(&self, statistics: Statistics) {
        let committed = self.committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(topic) = statistics.topics.get(&self.scope.topic) else { return };
        for (&partition, stats) in &topic.partitions {
            if partition < 0 || stats.hi_offset < 0 {
                continue;
            }
            let next = committed.get(&partition).copied().unwrap_or(0);
            self.metrics
                .consumer_lag
                .get_or_create(&PartitionLabels { partition })
                .set((stats.hi_offset - next).max(0));
        }
    }
}

impl ConsumerContext for ProjectorContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Without the database we cannot know where we stopped; the beginning is always
                // safe because the transaction skips every offset the database already holds.
                let stored = self.stored_offsets().unwrap_or_else(|error| {
                    tracing::warn!(%error, "cannot read stored offsets; reading assigned partitions from the beginning");
                    HashMap::new()
                });
                let partitions: Vec<(String, i32)> =
                    tpl.elements().iter().map(|element| (element.topic().to_owned(), element.partition())).collect();
                for (topic, partition) in &partitions {
                    let offset = stored.get(partition).map_or(Offset::Beginning, |&next| Offset::Offset(next));
                    if let Err(error) = tpl.set_partition_offset(topic, *partition, offset) {
                        tracing::warn!(%error, partition, "cannot set the start offset");
                    }
                }
                tracing::info!(?partitions, "partitions assigned; seeking to the offsets stored in PostgreSQL");
                if let Err(error) = consumer.assign(tpl) {
                    tracing::error!(%error, "partition assignment failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = self.mirror(tpl.elements().iter().map(|element| element.partition()));
                if revoked.count() > 0
                    && let Err(error) = consumer.commit(&revoked, CommitMode::Sync)
                {
                    tracing::warn!(%error, "cannot mirror offsets to Kafka on revoke");
                }
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "partition revocation failed");
                }
                tracing::info!("partitions revoked");
            }
            other => tracing::error!(error = ?other, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::debug!(%error, "offset mirror commit failed (lag monitoring only)");
        }
    }
}

pub type ProjectorConsumer = StreamConsumer<ProjectorContext>;

/// How batches are cut.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_records: usize,
    pub max_wait: Duration,
}

/// Consumes until `shutdown` turns true. A batch that cannot be applied (database down) is
/// retried with backoff, never skipped.
pub async fn run(
    consumer: Arc<ProjectorConsumer>,
    pool: PgPool,
    scope: OffsetScope,
    dlq: DeadLetterQueue,
    batching: Batching,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            received = consumer.recv() => received,
        };
        let mut batch = match first {
            Ok(message) => vec![LogRecord::from_message(&message)],
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let deadline = Instant::now() + batching.max_wait;
        while batch.len() < batching.max_records {
            tokio::select! {
                _ = sleep_until(deadline) => break,
                received = consumer.recv() => match received {
                    Ok(message) => batch.push(LogRecord::from_message(&message)),
                    Err(error) => {
                        tracing::warn!(%error, "consumer error");
                        break;
                    }
                },
            }
        }
        let span = batch_span(&scope, &batch);
        let started = std::time::Instant::now();
        let Some(report) = apply_with_retry(&pool, &scope, &dlq, &batch, &mut shutdown).instrument(span).await else {
            break;
        };
        consumer.context().metrics.batch_applied(batch.len(), started.elapsed().as_secs_f64(), &report);
        consumer.context().remember(&report.next_offsets);
        let mirror = consumer.context().mirror(report.next_offsets.keys().copied());
        if mirror.count() > 0
            && let Err(error) = consumer.commit(&mirror, CommitMode::Async)
        {
            tracing::debug!(%error, "offset mirror commit failed (lag monitoring only)");
        }
        tracing::debug!(
            applied = report.applied,
            already_applied = report.already_applied,
            dead_lettered = report.dead_lettered,
            verdicts = ?report.verdicts,
            "batch committed"
        );
    }
    // Async: the mirror is for lag monitoring only, and a broker that is gone must not hold up
    // the shutdown (the database already has every applied offset).
    let all = consumer.context().mirror_all();
    if all.count() > 0 {
        let _ = consumer.commit(&all, CommitMode::Async);
    }
    dlq.flush();
    tracing::info!("consumer stopped");
}

async fn apply_with_retry(
    pool: &PgPool,
    scope: &OffsetScope,
    dlq: &DeadLetterQueue,
    batch: &[LogRecord],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<apply::BatchReport> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut conn = pool.get().await.map_err(StoreError::from)?;
            apply::apply_batch(&mut conn, scope, batch, Some(dlq)).await
        };
        match attempt.await {
            Ok(report) => return Some(report),
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "batch not applied; retrying");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return None,
                    _ = sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The batch's CONSUMER span (OpenTelemetry messaging conventions). It links every record's
/// producer span and continues the trace of the first traced record, so a webhook that arrives
/// alone is one trace from the HTTP request to the database; the records batched with it are
/// reached through the links (and their `trace_id` on the event rows).
fn batch_span(scope: &OffsetScope, batch: &[LogRecord]) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "process",
        otel.name = %format!("process {}", scope.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.name = "process",
        messaging.operation.type = "process",
        messaging.destination.name = %scope.topic,
        messaging.consumer.group.name = %scope.group,
        messaging.batch.message_count = batch.len(),
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.kafka.offset = tracing::field::Empty,
        messaging.kafka.message.key = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(partition) = batch.first().map(|record| record.partition)
        && batch.iter().all(|record| record.partition == partition)
    {
        span.record("messaging.destination.partition.id", partition.to_string());
    }
    if let [record] = batch {
        span.record("messaging.kafka.offset", record.offset);
        if let Some(key) = record.key.as_deref() {
            span.record("messaging.kafka.message.key", String::from_utf8_lossy(key).as_ref());
        }
    }
    let producers: Vec<opentelemetry::Context> =
        batch.iter().map(LogRecord::trace_context).filter(|context| context.span().span_context().is_valid()).collect();
    if let Some(first) = producers.first() {
        let _ = span.set_parent(first.clone());
    }
    for producer in &producers {
        span.add_link(producer.span().span_context().clone());
    }
    telemetry::record_trace_id(&span);
    span
}
