//! Full sync: a worker pages `ListarClientes` over every record (the projector decides what
//! counts, so untagged rows are fetched too) and records one `omie.client.upserted` per row,
//! framed by `sync.requested` / `sync.page_fetched` / `sync.completed` / `sync.failed`. Every event
//! of a run carries the sync id as `correlation_id`; a row's event id is derived from the run and
//! the record, so a page recorded twice is applied once.
//!
//! One sync per tenant at a time. A run this process did not start but the projection still shows
//! as running was interrupted (a restart): [`SyncWorkers::settle_interrupted`] records it failed
//! at start, so no run stays "running" forever. This assumes one ingress instance runs syncs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use omie_client::{Credentials, ListarClientes, OmieClient, OmieError};
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::omie::omie_code_of;
use omie_sync_events::{
    Actor, ActorKind, ClientUpserted, Envelope, Event, RecordSource, SyncCompleted, SyncFailed, SyncPageFetched, ids,
};
use omie_sync_store::{PgPool, StoreError, sync_runs};
use uuid::Uuid;

use omie_sync_platform::event_log::EventLog;
use omie_sync_platform::telemetry;
use prometheus_client::metrics::counter::Counter;
use tracing::Instrument as _;

/// Omie recommends at most 500 rows per page.
pub const PAGE_SIZE: u32 = 500;
/// Longest misuse block a sync waits out before it gives up.
const MAX_BLOCK_WAIT: Duration = Duration::from_secs(40 * 60);
const APPEND_ATTEMPTS: u32 = 5;
const LOG_UNAVAILABLE: &str = "the event log (Kafka) did not take the sync's events; start a new sync once it is back";

#[derive(Clone)]
pub struct SyncWorkers {
    omie: OmieClient,
    log: EventLog,
    running: Arc<Mutex<HashMap<Uuid, Uuid>>>,
    page_size: u32,
    pages_fetched: Counter,
}

impl SyncWorkers {
    pub fn new(omie: OmieClient, log: EventLog, page_size: u32, pages_fetched: Counter) -> SyncWorkers {
        SyncWorkers { omie, log, running: Arc::default(), page_size, pages_fetched }
    }

    /// The run this process is doing for `tenant_id`, if any.
    pub fn running_here(&self, tenant_id: Uuid) -> Option<Uuid> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&tenant_id).copied()
    }

    /// Claims the tenant's slot for `sync_id`, or names the run already going here.
    pub fn claim(&self, tenant_id: Uuid, sync_id: Uuid) -> Result<(), Uuid> {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&other) = running.get(&tenant_id) {
            return Err(other);
        }
        running.insert(tenant_id, sync_id);
        Ok(())
    }

    pub fn release(&self, tenant_id: Uuid) {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&tenant_id);
    }

    /// Runs the sync in the background; the slot is released when it ends. The run is a trace of
    /// its own (Omie calls and appends inside), linked to the request that started it.
    pub fn spawn(&self, tenant_id: Uuid, integration_id: Uuid, sync_id: Uuid, credentials: Credentials) {
        let workers = self.clone();
        let span = tracing::info_span!(
            parent: None,
            "sync.run",
            otel.name = "full sync",
            %sync_id,
            %tenant_id,
            trace_id = tracing::field::Empty,
        );
        span.follows_from(tracing::Span::current());
        telemetry::record_trace_id(&span);
        tokio::spawn(
            async move {
                let run = Run { workers: &workers, tenant_id, integration_id, sync_id };
                run.execute(&credentials).await;
                workers.release(tenant_id);
            }
            .instrument(span),
        );
    }

    /// Records as failed every run the projection shows running that this process is not doing.
    pub async fn settle_interrupted(&self, pool: &PgPool) -> Result<usize, StoreError> {
        let mut conn = pool.get().await?;
        let stale = sync_runs::all_running(&mut conn).await?;
        let mut settled = 0;
        for run in stale.into_iter().filter(|run| self.running_here(run.tenant_id) != Some(run.id)) {
            if self.run(run.tenant_id, run.id).fail(INTERRUPTED).await {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// The `sync.failed` that settles a run this process is not doing (one ingress runs the
    /// syncs, so such a run was lost to a restart). Harmless if the run did end: the fold keeps
    /// an ended run as it ended.
    pub fn interrupted(&self, tenant_id: Uuid, sync_id: Uuid) -> Envelope {
        self.run(tenant_id, sync_id).failure(INTERRUPTED)
    }

    fn run(&self, tenant_id: Uuid, sync_id: Uuid) -> Run<'_> {
        Run { workers: self, tenant_id, integration_id: ids::integration_id(tenant_id), sync_id }
    }
}

const INTERRUPTED: &str = "interrupted: ingress restarted during the sync; start a new sync";

/// Between attempts to record how a run ended while the event log refuses it.
const OUTAGE_PAUSE: Duration = Duration::from_secs(15);

struct Run<'a> {
    workers: &'a SyncWorkers,
    tenant_id: Uuid,
    integration_id: Uuid,
    sync_id: Uuid,
}

impl Run<'_> {
    async fn execute(&self, credentials: &Credentials) {
        let mut page = 1;
        let mut rows_total = 0;
        loop {
            let listing = match self.fetch(credentials, page).await {
                Ok(listing) => listing,
                Err(error) => {
                    self.fail_surely(&format!("Omie: {error}")).await;
                    return;
                }
            };
            let rows = listing.clientes_cadastro.len() as u32;
            let mut appends = Vec::with_capacity(listing.clientes_cadastro.len());
            for record in listing.clientes_cadastro {
                let code = omie_code_of(&record);
                let id = ids::derived_id(
                    self.sync_id,
                    &format!("row:{}", code.map_or_else(|| record.to_string(), |code| code.to_string())),
                );
                let event = Event::ClientUpserted(ClientUpserted { source: RecordSource::Sync, record, webhook: None });
                appends.push(self.envelope(id, event, code));
            }
            if !self.append_all(&appends).await {
                self.fail_surely(LOG_UNAVAILABLE).await;
                return;
            }
            rows_total += rows;
            let total_pages = listing.total_de_paginas.max(page);
            let fetched = SyncPageFetched {
                sync_id: self.sync_id,
                page,
                total_pages,
                rows,
                total_rows: listing.total_de_registros,
            };
            let progress = self.envelope(
                ids::derived_id(self.sync_id, &format!("page:{page}")),
                Event::SyncPageFetched(fetched),
                None,
            );
            if !self.append_all(std::slice::from_ref(&progress)).await {
                self.fail_surely(LOG_UNAVAILABLE).await;
                return;
            }
            self.workers.pages_fetched.inc();
            if page >= total_pages || rows == 0 {
                let completed = SyncCompleted { sync_id: self.sync_id, pages: page, rows: rows_total };
                let done =
                    self.envelope(ids::sync_completed_event_id(self.sync_id), Event::SyncCompleted(completed), None);
                if !self.append_all(std::slice::from_ref(&done)).await {
                    self.fail_surely(LOG_UNAVAILABLE).await;
                    return;
                }
                tracing::info!(sync_id = %self.sync_id, tenant_id = %self.tenant_id, pages = page, rows = rows_total, "sync completed");
                return;
            }
            page += 1;
        }
    }

    /// One page, waiting out a misuse block as Omie asks (the client already retries the rest).
    async fn fetch(&self, credentials: &Credentials, page: u32) -> Result<omie_client::ClientesPage, OmieError> {
        let params = ListarClientes::page(page, self.workers.page_size);
        loop {
            match self.workers.omie.listar_clientes(credentials, &params).await {
                Err(OmieError::Blocked(wait)) if wait <= MAX_BLOCK_WAIT => {
                    tracing::warn!(sync_id = %self.sync_id, wait_secs = wait.as_secs(), "Omie blocked the API; the sync pauses");
                    tokio::time::sleep(wait + Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Records `sync.failed`; `false` when even that could not be recorded.
    async fn fail(&self, reason: &str) -> bool {
        tracing::warn!(sync_id = %self.sync_id, tenant_id = %self.tenant_id, reason, "sync failed");
        self.append_all(std::slice::from_ref(&self.failure(reason))).await
    }

    /// [`Run::fail`] until the event log takes it. The tenant's slot stays claimed meanwhile, so
    /// a new sync is refused rather than started beside a run the log would show running forever.
    async fn fail_surely(&self, reason: &str) {
        while !self.fail(reason).await {
            tokio::time::sleep(OUTAGE_PAUSE).await;
        }
    }

    fn failure(&self, reason: &str) -> Envelope {
        let failed = SyncFailed { sync_id: self.sync_id, reason: reason.to_owned() };
        self.envelope(ids::derived_id(self.sync_id, "failed"), Event::SyncFailed(failed), None)
    }

    /// Appends every envelope, retrying the whole set while the broker is unavailable.
    async fn append_all(&self, envelopes: &[Envelope]) -> bool {
        let mut pause = Duration::from_millis(500);
        for attempt in 1..=APPEND_ATTEMPTS {
            let results =
                futures::future::join_all(envelopes.iter().map(|envelope| self.workers.log.append(envelope))).await;
            match results.into_iter().find_map(Result::err) {
                None => return true,
                Some(error) => {
                    tracing::warn!(sync_id = %self.sync_id, attempt, %error, "sync events not recorded; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        false
    }

    fn envelope(&self, id: Uuid, event: Event, subject: Option<i64>) -> Envelope {
        let now = Utc::now();
        Envelope {
            id,
            schema_version: SCHEMA_VERSION,
            tenant_id: self.tenant_id,
            integration_id: self.integration_id,
            occurred_at: now,
            recorded_at: now,
            actor: Actor { kind: ActorKind::System, id: Some("full-sync".into()), name: None, email: None },
            subject: subject.map(|code| code.to_string()),
            correlation_id: Some(self.sync_id),
            causation_id: None,
            event,
        }
    }
}
