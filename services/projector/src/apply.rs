//! The database adapter: applies one batch of log records in one transaction, together with the
//! next offsets. Offsets are locked first, so two consumers handed the same partition during a
//! rebalance serialise here and the second skips what the first applied.

use std::collections::{BTreeMap, BTreeSet};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use omie_sync_events::omie::{OmieClient, omie_code_of};
use omie_sync_events::{Envelope, Event, ids};
use omie_sync_platform::telemetry;
use omie_sync_store::dead_letters::DeadLetter;
use omie_sync_store::errors::{ErrorEvent, ImportError};
use omie_sync_store::events::EventRow;
use omie_sync_store::history::HistoryEntry;
use omie_sync_store::integrations::Integration;
use omie_sync_store::offsets::ConsumerOffset;
use omie_sync_store::records::OmieRecord;
use omie_sync_store::sync_runs::SyncRun;
use omie_sync_store::timeline::TimelineEntry;
use omie_sync_store::users::User;
use omie_sync_store::{
    StoreError, dead_letters, errors, events, history, integrations, offsets, records, sync_runs, timeline, users,
};
use rdkafka::message::{Headers as _, Message};
use scoped_futures::ScopedFutureExt;
use uuid::Uuid;

use crate::dlq::DeadLetterQueue;
use crate::rules::{self, LoggedEvent, State, record};

/// One record as it came off the log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// The W3C trace context headers the producer injected.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl LogRecord {
    pub fn from_message(message: &impl Message) -> LogRecord {
        let header = |name: &str| {
            message.headers().and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .map(str::to_owned)
            })
        };
        LogRecord {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
        }
    }

    /// The trace id of the producer's span, when the record carries one.
    pub fn trace_id(&self) -> Option<String> {
        self.traceparent.as_deref().and_then(telemetry::trace_id_of_traceparent)
    }

    /// The producer's span context, for the consumer's span to continue or link.
    pub fn trace_context(&self) -> opentelemetry::Context {
        let headers = [("traceparent", self.traceparent.as_deref()), ("tracestate", self.tracestate.as_deref())];
        telemetry::extract(headers.into_iter().filter_map(|(name, value)| value.map(|value| (name, value))))
    }
}

/// What a batch did, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub applied: usize,
    /// Records at offsets the database already holds (redelivery after a crash or rebalance).
    pub already_applied: usize,
    pub dead_lettered: usize,
    /// Events applied, by event type and verdict.
    pub verdicts: BTreeMap<(&'static str, String), usize>,
    /// The next offset to read, per partition, as committed.
    pub next_offsets: BTreeMap<i32, i64>,
}

/// Where a batch is applied: the consumer group and topic name the offset rows.
#[derive(Debug, Clone)]
pub struct OffsetScope {
    pub group: String,
    pub topic: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DeadLetterQueue(#[from] crate::dlq::DeadLetterError),
}

impl From<diesel::result::Error> for ApplyError {
    fn from(error: diesel::result::Error) -> ApplyError {
        ApplyError::Store(StoreError::from(error))
    }
}

/// Applies `batch` in one transaction with its offsets. Undecodable records go to `dlq` (when
/// given) before the transaction commits, and to the `dead_letters` table within it.
pub async fn apply_batch(
    conn: &mut AsyncPgConnection,
    scope: &OffsetScope,
    batch: &[LogRecord],
    dlq: Option<&DeadLetterQueue>,
) -> Result<BatchReport, ApplyError> {
    conn.transaction::<_, ApplyError, _>(|conn| {
        async move { apply_in_transaction(conn, scope, batch, dlq).await }.scope_boxed()
    })
    .await
}

async fn apply_in_transaction(
    conn: &mut AsyncPgConnection,
    scope: &OffsetScope,
    batch: &[LogRecord],
    dlq: Option<&DeadLetterQueue>,
) -> Result<BatchReport, ApplyError> {
    let partitions: Vec<i32> =
        batch.iter().map(|record| record.partition).collect::<BTreeSet<_>>().into_iter().collect();
    let stored = offsets::lock(conn, &scope.group, &scope.topic, &partitions).await?;
    let mut report = BatchReport::default();
    let mut decoded = Vec::new();
    let mut writes = Writes::default();
    for record in batch {
        let next = stored.get(&record.partition).copied().unwrap_or(0);
        if record.offset < next {
            report.already_applied += 1;
            continue;
        }
        report.next_offsets.insert(record.partition, record.offset + 1);
        match record.payload.as_deref().map(Envelope::decode) {
            Some(Ok(envelope)) => decoded.push((record, envelope)),
            Some(Err(error)) => writes.dead_letter(scope, record, error.to_string()),
            None => writes.dead_letter(scope, record, "empty record value".into()),
        }
    }
    report.dead_lettered = writes.dead_letters.len();
    if let Some(dlq) = dlq {
        for letter in &writes.dead_letters {
            dlq.send(letter).await?;
        }
    }

    let mut state = load_state(conn, decoded.iter().map(|(_, envelope)| envelope)).await?;
    for (record, envelope) in &decoded {
        let trace_id = record.trace_id();
        let logged =
            LoggedEvent { envelope, partition: record.partition, offset: record.offset, trace_id: trace_id.as_deref() };
        let changes = rules::decide(&state, logged);
        state.absorb(&changes);
        *report.verdicts.entry((envelope.type_name(), changes.verdict.label())).or_default() += 1;
        writes.add(changes);
    }
    report.applied = decoded.len();

    writes.flush(conn).await?;
    let new_offsets: Vec<ConsumerOffset> = report
        .next_offsets
        .iter()
        .map(|(&partition, &next_offset)| ConsumerOffset {
            consumer_group: scope.group.clone(),
            topic: scope.topic.clone(),
            partition,
            next_offset,
        })
        .collect();
    if !new_offsets.is_empty() {
        offsets::store(conn, &new_offsets).await?;
    }
    Ok(report)
}

/// Loads every row the fold may read for these events, in one query per table.
async fn load_state<'a>(
    conn: &mut AsyncPgConnection,
    envelopes: impl Iterator<Item = &'a Envelope>,
) -> Result<State, StoreError> {
    let mut tenants = BTreeSet::new();
    let mut codes = BTreeSet::new();
    let mut emails = BTreeSet::new();
    let mut event_ids = Vec::new();
    let mut app_keys = Vec::new();
    let mut sync_ids = BTreeSet::new();
    let mut completed = Vec::new();
    let mut errors_by_id = Vec::new();
    for envelope in envelopes {
        tenants.insert(envelope.tenant_id);
        event_ids.push(envelope.id);
        sync_ids.extend(envelope.correlation_id);
        match &envelope.event {
            Event::ClientUpserted(upserted) => {
                let client = OmieClient::from_value(&upserted.record);
                codes.extend(client.codigo_cliente_omie);
                emails.extend(record::claimed_email(&client));
            }
            Event::ClientDeleted(deleted) => codes.extend(omie_code_of(&deleted.record)),
            Event::CredentialsSet(credentials) => app_keys.push(credentials.app_key.clone()),
            Event::SyncCompleted(done) => completed.push((envelope.tenant_id, done.sync_id)),
            Event::ErrorArchived(archived) => errors_by_id.push(archived.error_id),
            Event::DeactivationConfirmed(confirmed) => {
                completed.push((envelope.tenant_id, confirmed.sync_id));
                errors_by_id.push(ids::deactivation_guard_error_id(envelope.tenant_id, confirmed.sync_id));
            }
            _ => {}
        }
    }
    let tenants: Vec<Uuid> = tenants.into_iter().collect();
    let codes: Vec<i64> = codes.into_iter().collect();
    let emails: Vec<String> = emails.into_iter().collect();

    let mut state = State::default();
    for integration in integrations::for_batch(conn, &tenants, &app_keys).await? {
        state.add_integration(integration);
    }
    if !codes.is_empty() {
        for user in users::for_codes(conn, &tenants, &codes).await? {
            state.add_user(user);
        }
        for record in records::for_codes(conn, &tenants, &codes).await? {
            state.records.insert((record.tenant_id, record.omie_code), record);
        }
        for error in errors::for_codes(conn, &tenants, &codes).await? {
            state.errors.insert(error.id, error);
        }
    }
    if !emails.is_empty() {
        for user in users::active_with_emails(conn, &tenants, &emails).await? {
            state.add_user(user);
        }
    }
    if !sync_ids.is_empty() {
        let sync_ids: Vec<Uuid> = sync_ids.into_iter().collect();
        for run in sync_runs::by_ids(conn, &sync_ids).await? {
            state.sync_runs.insert(run.id, run);
        }
    }
    for error in errors::by_ids(conn, &errors_by_id).await? {
        state.errors.insert(error.id, error);
    }
    if !completed.is_empty() {
        // The reconciliation compares every active user with what the listing held.
        let tenants: Vec<Uuid> = completed.iter().map(|(tenant, _)| *tenant).collect();
        for user in users::active_of_tenants(conn, &tenants).await? {
            state.add_user(user);
        }
        for (_, sync_id) in completed {
            let seen = sync_runs::seen_codes(conn, sync_id).await?;
            state.sync_seen.entry(sync_id).or_default().extend(seen);
        }
    }
    state.seen_events = events::existing_ids(conn, &event_ids).await?;
    Ok(state)
}

/// The batch's writes: upserted rows keep only their last value; appended rows keep log order.
#[derive(Default)]
struct Writes {
    events: Vec<EventRow>,
    integrations: BTreeMap<Uuid, Integration>,
    records: BTreeMap<(Uuid, i64), OmieRecord>,
    users: BTreeMap<Uuid, User>,
    errors: BTreeMap<Uuid, ImportError>,
    error_events: Vec<ErrorEvent>,
    history: Vec<HistoryEntry>,
    timeline: Vec<TimelineEntry>,
    dead_letters: Vec<DeadLetter>,
    sync_runs: BTreeMap<Uuid, SyncRun>,
    sync_seen: Vec<(Uuid, i64)>,
}

impl Writes {
    fn add(&mut self, changes: rules::Changes) {
        self.events.extend(changes.event);
        if let Some(integration) = changes.integration {
            self.integrations.insert(integration.tenant_id, integration);
        }
        if let Some(record) = changes.record {
            self.records.insert((record.tenant_id, record.omie_code), record);
        }
        if let Some(user) = changes.user {
            self.users.insert(user.id, user);
        }
        for error in changes.errors {
            self.errors.insert(error.id, error);
        }
        self.error_events.extend(changes.error_events);
        self.history.extend(changes.history);
        self.timeline.extend(changes.timeline);
        if let Some(run) = changes.sync_run {
            self.sync_runs.insert(run.id, run);
        }
        self.sync_seen.extend(changes.seen);
        for user in changes.missing_in_omie {
            self.users.insert(user.id, user);
        }
    }

    fn dead_letter(&mut self, scope: &OffsetScope, record: &LogRecord, reason: String) {
        tracing::warn!(partition = record.partition, offset = record.offset, %reason, "dead-lettering an undecodable record");
        self.dead_letters.push(DeadLetter {
            topic: scope.topic.clone(),
            log_partition: record.partition,
            log_offset: record.offset,
            record_key: record.key.as_deref().map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: record.payload.clone(),
            reason,
            redriven_at: None,
            redriven_to: None,
        });
    }

    async fn flush(self, conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
        let upserted_integrations: Vec<Integration> = self.integrations.into_values().collect();
        let upserted_records: Vec<OmieRecord> = self.records.into_values().collect();
        let upserted_users: Vec<User> = self.users.into_values().collect();
        let upserted_errors: Vec<ImportError> = self.errors.into_values().collect();
        events::insert(conn, &self.events).await?;
        if !upserted_integrations.is_empty() {
            // An app key may move between tenants within one batch; clearing first keeps the
            // unique index from rejecting a valid final state because of row order.
            let tenants: Vec<Uuid> = upserted_integrations.iter().map(|row| row.tenant_id).collect();
            integrations::clear_app_keys(conn, &tenants).await?;
            integrations::upsert(conn, &upserted_integrations).await?;
        }
        records::upsert(conn, &upserted_records).await?;
        users::upsert(conn, &upserted_users).await?;
        errors::upsert(conn, &upserted_errors).await?;
        errors::insert_events(conn, &self.error_events).await?;
        history::insert(conn, &self.history).await?;
        timeline::insert(conn, &self.timeline).await?;
        let runs: Vec<SyncRun> = self.sync_runs.into_values().collect();
        sync_runs::upsert(conn, &runs).await?;
        sync_runs::mark_seen(conn, &self.sync_seen).await?;
        if !self.dead_letters.is_empty() {
            dead_letters::insert(conn, &self.dead_letters).await?;
        }
        Ok(())
    }
}
