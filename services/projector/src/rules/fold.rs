//! `decide(state, event) -> changes` and `State::absorb(changes)`.
//!
//! Rules, in the order they are tried for a client/supplier fact:
//! duplicate event id → `duplicate-delivery`; older `info.dAlt/hAlt` than already seen → `stale`;
//! not tagged → deactivate (`untagged`) or `skipped-untagged`; `inativo = "S"` → deactivate
//! (`inactive_in_omie`) or `skipped-inactive`; invalid name/e-mail or an e-mail held by another
//! active user → `failed:<kind>` (the user, if any, keeps its last good state); otherwise create,
//! reactivate, update or `unchanged`. A record that is applied, or stops counting, resolves its
//! open errors. Every id and timestamp is derived from the event, never from the clock.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use omie_sync_events::omie::OmieClient;
use omie_sync_events::{
    ClientUpserted, CredentialsSet, Envelope, ErrorArchived, Event, UnprocessableReason, WebhookUnprocessable, ids,
};
use omie_sync_platform::secrets::mask;
use omie_sync_store::errors::{ErrorEvent, ImportError, STATUS_ARCHIVED, STATUS_OPEN, STATUS_RESOLVED};
use omie_sync_store::events::EventRow;
use omie_sync_store::history::HistoryEntry;
use omie_sync_store::integrations::Integration;
use omie_sync_store::records::OmieRecord;
use omie_sync_store::sync_runs::{self, SyncRun};
use omie_sync_store::timeline::TimelineEntry;
use omie_sync_store::users::User;
use serde_json::{Value, json};
use uuid::Uuid;

use super::record::{self, Candidate, ErrorKind, Failure};

/// The tag used until an admin sets one.
pub const DEFAULT_TAG: &str = "Espresso";
pub const DEFAULT_TEMPLATE: &str = "users";

/// An event with its position in the log.
#[derive(Debug, Clone, Copy)]
pub struct LoggedEvent<'a> {
    pub envelope: &'a Envelope,
    pub partition: i32,
    pub offset: i64,
    /// The W3C trace id the record travelled with (its `traceparent` header).
    pub trace_id: Option<&'a str>,
}

/// The projector's verdict on one event, shown in the record timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Created,
    Updated,
    Unchanged,
    Deactivated(&'static str),
    Reactivated,
    SkippedUntagged,
    SkippedInactive,
    Failed(ErrorKind),
    DuplicateDelivery,
    Stale,
    Ignored,
    Applied,
    Rejected,
}

impl Verdict {
    pub fn label(&self) -> String {
        match self {
            Verdict::Created => "created".into(),
            Verdict::Updated => "updated".into(),
            Verdict::Unchanged => "unchanged".into(),
            Verdict::Deactivated(_) => "deactivated".into(),
            Verdict::Reactivated => "reactivated".into(),
            Verdict::SkippedUntagged => "skipped-untagged".into(),
            Verdict::SkippedInactive => "skipped-inactive".into(),
            Verdict::Failed(kind) => format!("failed:{}", kind.as_str()),
            Verdict::DuplicateDelivery => "duplicate-delivery".into(),
            Verdict::Stale => "stale".into(),
            Verdict::Ignored => "ignored".into(),
            Verdict::Applied => "applied".into(),
            Verdict::Rejected => "rejected".into(),
        }
    }
}

/// What the fold reads: the rows a batch touches, kept current as events are absorbed.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub integrations: HashMap<Uuid, Integration>,
    pub app_key_owners: HashMap<String, Uuid>,
    pub users: HashMap<(Uuid, i64), User>,
    pub active_emails: HashMap<(Uuid, String), i64>,
    pub records: HashMap<(Uuid, i64), OmieRecord>,
    pub errors: HashMap<Uuid, ImportError>,
    pub seen_events: HashSet<Uuid>,
    pub sync_runs: HashMap<Uuid, SyncRun>,
    /// Codes each sync listed (loaded for runs that complete in the batch).
    pub sync_seen: HashMap<Uuid, HashSet<i64>>,
}

/// What one event changes. Row-valued fields hold the row's new full value.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub verdict: Verdict,
    pub event: Option<EventRow>,
    pub integration: Option<Integration>,
    pub record: Option<OmieRecord>,
    pub user: Option<User>,
    pub errors: Vec<ImportError>,
    pub error_events: Vec<ErrorEvent>,
    pub history: Vec<HistoryEntry>,
    pub timeline: Option<TimelineEntry>,
    pub sync_run: Option<SyncRun>,
    /// (sync id, code) when a sync row is folded.
    pub seen: Option<(Uuid, i64)>,
    /// Users the reconciliation of a completed sync deactivated.
    pub missing_in_omie: Vec<User>,
}

impl State {
    pub fn add_integration(&mut self, integration: Integration) {
        if let Some(app_key) = &integration.app_key {
            self.app_key_owners.insert(app_key.clone(), integration.tenant_id);
        }
        self.integrations.insert(integration.tenant_id, integration);
    }

    pub fn add_user(&mut self, user: User) {
        let key = (user.tenant_id, user.omie_code);
        if let Some(previous) = self.users.get(&key) {
            let email_key = (previous.tenant_id, previous.email.clone());
            if self.active_emails.get(&email_key) == Some(&previous.omie_code) {
                self.active_emails.remove(&email_key);
            }
        }
        if user.active {
            self.active_emails.insert((user.tenant_id, user.email.clone()), user.omie_code);
        }
        self.users.insert(key, user);
    }

    /// Makes the state reflect `changes`, so the next event of the batch sees them.
    pub fn absorb(&mut self, changes: &Changes) {
        if let Some(event) = &changes.event {
            self.seen_events.insert(event.id);
        }
        if let Some(integration) = &changes.integration {
            if let Some(previous_key) =
                self.integrations.get(&integration.tenant_id).and_then(|old| old.app_key.clone())
            {
                self.app_key_owners.remove(&previous_key);
            }
            self.add_integration(integration.clone());
        }
        if let Some(record) = &changes.record {
            self.records.insert((record.tenant_id, record.omie_code), record.clone());
        }
        if let Some(user) = &changes.user {
            self.add_user(user.clone());
        }
        for error in &changes.errors {
            self.errors.insert(error.id, error.clone());
        }
        if let Some(run) = &changes.sync_run {
            self.sync_runs.insert(run.id, run.clone());
        }
        if let Some((sync_id, code)) = changes.seen {
            self.sync_seen.entry(sync_id).or_default().insert(code);
        }
        for user in &changes.missing_in_omie {
            self.add_user(user.clone());
        }
    }
}

/// The fold's single entry point.
pub fn decide(state: &State, logged: LoggedEvent<'_>) -> Changes {
    let envelope = logged.envelope;
    let mut draft = Draft::new(logged);
    if state.seen_events.contains(&envelope.id) {
        draft.verdict = Verdict::DuplicateDelivery;
        draft.timeline_for_subject(&Verdict::DuplicateDelivery, None);
        return draft.finish();
    }
    draft.record_event();
    match &envelope.event {
        Event::ClientUpserted(upserted) => client_upserted(state, &mut draft, upserted),
        Event::ClientDeleted(deleted) => {
            let code = omie_sync_events::omie::omie_code_of(&deleted.record);
            match code {
                Some(code) => client_gone(state, &mut draft, code, "deleted_in_omie", Verdict::Unchanged),
                None => draft.verdict = Verdict::Ignored,
            }
        }
        Event::WebhookUnprocessable(unprocessable) => webhook_unprocessable(state, &mut draft, unprocessable),
        Event::CredentialsSet(credentials) => credentials_set(state, &mut draft, credentials),
        Event::TagSet(tag_set) => {
            let tag = tag_set.tag.trim().to_owned();
            let mut integration = integration_of(state, envelope);
            let previous = std::mem::replace(&mut integration.tag, tag.clone());
            draft.configure(integration, "tag_set", json!({"from": previous, "to": tag}));
        }
        Event::TemplateSet(template_set) => {
            let template = template_set.template.as_str().to_owned();
            let mut integration = integration_of(state, envelope);
            let previous = std::mem::replace(&mut integration.template, template.clone());
            draft.configure(integration, "template_set", json!({"from": previous, "to": template}));
        }
        Event::ConnectionTested(tested) => {
            let mut integration = integration_of(state, envelope);
            integration.connection_status = Some(tested.outcome.as_str().to_owned());
            integration.connection_detail = Some(tested.detail.clone());
            integration.connection_tested_at = Some(envelope.recorded_at);
            integration.connection_tested_by = Some(draft.actor());
            let details = json!({"outcome": tested.outcome.as_str(), "detail": tested.detail, "blocked_until": tested.blocked_until});
            draft.configure(integration, "connection_tested", details);
        }
        Event::SyncRequested(requested) => {
            draft.sync_run = Some(SyncRun {
                id: requested.sync_id,
                tenant_id: envelope.tenant_id,
                status: sync_runs::RUNNING.into(),
                requested_by: draft.actor(),
                started_at: envelope.recorded_at,
                finished_at: None,
                pages_done: 0,
                pages_total: None,
                rows_seen: 0,
                users_created: 0,
                users_updated: 0,
                users_deactivated: 0,
                records_failed: 0,
                failure_reason: None,
                last_event_id: envelope.id,
            });
            draft.history("sync_started", None, json!({"sync_id": requested.sync_id}));
        }
        Event::SyncPageFetched(page) => {
            if let Some(mut run) = running_sync(state, page.sync_id) {
                run.pages_done += 1;
                run.pages_total = Some(i32::try_from(page.total_pages).unwrap_or(i32::MAX));
                run.rows_seen += i32::try_from(page.rows).unwrap_or(i32::MAX);
                run.last_event_id = envelope.id;
                draft.sync_run = Some(run);
            }
        }
        Event::SyncCompleted(completed) => {
            if let Some(mut run) = running_sync(state, completed.sync_id) {
                run.status = sync_runs::COMPLETED.into();
                run.finished_at = Some(envelope.recorded_at);
                run.last_event_id = envelope.id;
                reconcile(state, &mut draft, &mut run);
                let details = json!({
                    "sync_id": run.id, "pages": run.pages_done, "rows": run.rows_seen,
                    "users_created": run.users_created, "users_updated": run.users_updated,
                    "users_deactivated": run.users_deactivated, "records_failed": run.records_failed,
                });
                draft.history("sync_finished", None, details);
                draft.sync_run = Some(run);
            }
        }
        Event::SyncFailed(failed) => {
            if let Some(mut run) = running_sync(state, failed.sync_id) {
                run.status = sync_runs::FAILED.into();
                run.finished_at = Some(envelope.recorded_at);
                run.failure_reason = Some(failed.reason.clone());
                run.last_event_id = envelope.id;
                draft.history("sync_failed", None, json!({"sync_id": run.id, "reason": failed.reason}));
                draft.sync_run = Some(run);
            }
        }
        Event::DeactivationConfirmed(confirmed) => confirm_deactivation(state, &mut draft, confirmed.sync_id),
        Event::ErrorArchived(archived) => archive_error(state, &mut draft, archived),
        Event::ReplayStarted(started) => {
            draft.history("replay_started", None, serde_json::to_value(started).unwrap_or_default());
        }
        Event::ReplayFinished(finished) => {
            draft.history("replay_finished", None, serde_json::to_value(finished).unwrap_or_default());
        }
        Event::WebhookTokenRotated(rotated) => {
            let mut integration = integration_of(state, envelope);
            integration.webhook_token_sealed = Some(rotated.token_sealed.clone());
            integration.webhook_token_masked = rotated.token_masked.clone();
            draft.configure(integration, "webhook_token_rotated", json!({"token": rotated.token_masked}));
        }
    }
    count_for_sync(state, &mut draft);
    draft.finish()
}

/// An admin set an error aside. Archiving an archived error (or another tenant's, or an unknown
/// one) changes nothing; the next failing event of the record and kind reopens it.
fn archive_error(state: &State, draft: &mut Draft<'_>, archived: &ErrorArchived) {
    let envelope = draft.logged.envelope;
    let Some(error) = state
        .errors
        .get(&archived.error_id)
        .filter(|error| error.tenant_id == envelope.tenant_id && error.status != STATUS_ARCHIVED)
    else {
        draft.verdict = Verdict::Ignored;
        return;
    };
    draft.history(
        "error_archived",
        error.omie_code,
        json!({"error_id": error.id, "kind": error.kind, "reason": archived.reason}),
    );
    draft.errors.push(ImportError {
        status: STATUS_ARCHIVED.into(),
        archived: Some(json!({"at": envelope.recorded_at, "by": draft.actor(), "reason": archived.reason})),
        ..error.clone()
    });
}

/// An admin confirmed what the guard blocked: deactivate the users the run's listing missed
/// (as of now) and resolve the guard's error. Without a blocked run this changes nothing.
fn confirm_deactivation(state: &State, draft: &mut Draft<'_>, sync_id: Uuid) {
    let envelope = draft.logged.envelope;
    let error_id = ids::deactivation_guard_error_id(envelope.tenant_id, sync_id);
    let Some(error) = state.errors.get(&error_id).filter(|error| error.status != STATUS_RESOLVED) else {
        draft.verdict = Verdict::Ignored;
        return;
    };
    let missing = missing_from_listing(state, envelope.tenant_id, sync_id);
    draft.history("mass_deactivation_confirmed", None, json!({"sync_id": sync_id, "users": missing.len()}));
    for user in missing {
        deactivate_missing(draft, user);
    }
    draft.errors.push(ImportError {
        status: STATUS_RESOLVED.into(),
        resolved_at: Some(envelope.recorded_at),
        ..error.clone()
    });
}

/// Active users of `tenant` whose record the sync did not list, by Omie code.
fn missing_from_listing(state: &State, tenant: Uuid, sync_id: Uuid) -> Vec<&User> {
    let empty = HashSet::new();
    let seen = state.sync_seen.get(&sync_id).unwrap_or(&empty);
    let mut missing: Vec<&User> = state
        .users
        .values()
        .filter(|user| user.tenant_id == tenant && user.active && !seen.contains(&user.omie_code))
        .collect();
    missing.sort_by_key(|user| user.omie_code);
    missing
}

fn deactivate_missing(draft: &mut Draft<'_>, user: &User) {
    let envelope = draft.logged.envelope;
    let mut deactivated = user.clone();
    deactivated.active = false;
    deactivated.deactivation_reason = Some("missing_in_omie".into());
    deactivated.updated_at = envelope.recorded_at;
    deactivated.last_event_id = envelope.id;
    draft.history("user_deactivated", Some(user.omie_code), json!({"reason": "missing_in_omie", "email": user.email}));
    draft.missing_in_omie.push(deactivated);
}

/// Most users a completed sync may deactivate as missing from Omie: max(5, 20% of the active).
pub fn mass_deactivation_threshold(active: usize) -> usize {
    (active / 5).max(5)
}

/// After a completed listing, active users whose record was not listed are deactivated
/// (`missing_in_omie`), unless that would be a mass deactivation: then nothing changes and an
/// error `mass_deactivation_blocked` asks an admin to look.
fn reconcile(state: &State, draft: &mut Draft<'_>, run: &mut SyncRun) {
    let envelope = draft.logged.envelope;
    let active = state.users.values().filter(|user| user.tenant_id == envelope.tenant_id && user.active).count();
    let missing = missing_from_listing(state, envelope.tenant_id, run.id);
    if missing.is_empty() {
        return;
    }
    let threshold = mass_deactivation_threshold(active);
    if missing.len() > threshold {
        let kind = ErrorKind::MassDeactivationBlocked;
        let message = format!(
            "{} of {active} active users are missing from the full listing (more than {threshold}); nothing was deactivated",
            missing.len(),
        );
        let id = ids::event_error_id(envelope.tenant_id, envelope.id, kind.as_str());
        let error = open_error(state, draft, id, None, kind, &message);
        draft.errors.push(error);
        return;
    }
    for user in missing {
        let mut deactivated = (*user).clone();
        deactivated.active = false;
        deactivated.deactivation_reason = Some("missing_in_omie".into());
        deactivated.updated_at = envelope.recorded_at;
        deactivated.last_event_id = envelope.id;
        draft.history(
            "user_deactivated",
            Some(user.omie_code),
            json!({"reason": "missing_in_omie", "email": user.email}),
        );
        draft.missing_in_omie.push(deactivated);
        run.users_deactivated += 1;
    }
}

/// A run that has not ended yet (events of an ended run change nothing).
fn running_sync(state: &State, sync_id: Uuid) -> Option<SyncRun> {
    state.sync_runs.get(&sync_id).filter(|run| run.status == sync_runs::RUNNING).cloned()
}

/// A row fetched by a running sync counts toward that run's progress.
fn count_for_sync(state: &State, draft: &mut Draft<'_>) {
    let envelope = draft.logged.envelope;
    if !matches!(envelope.event, Event::ClientUpserted(_)) {
        return;
    }
    let Some(mut run) = envelope.correlation_id.and_then(|sync_id| running_sync(state, sync_id)) else {
        return;
    };
    // Every listed row counts as seen, stale or skipped alike; its timeline entry names the code
    // already parsed by the rules.
    if draft.verdict != Verdict::DuplicateDelivery
        && let Some(entry) = &draft.timeline
    {
        draft.seen = Some((run.id, entry.omie_code));
    }
    match draft.verdict {
        Verdict::Created => run.users_created += 1,
        Verdict::Updated | Verdict::Reactivated => run.users_updated += 1,
        Verdict::Deactivated(_) => run.users_deactivated += 1,
        Verdict::Failed(_) => run.records_failed += 1,
        _ => return,
    }
    draft.sync_run = Some(run);
}

fn client_upserted(state: &State, draft: &mut Draft<'_>, upserted: &ClientUpserted) {
    let envelope = draft.logged.envelope;
    let client = OmieClient::from_value(&upserted.record);
    let Some(code) = client.codigo_cliente_omie else {
        draft.verdict = Verdict::Ignored;
        return;
    };
    let tenant = envelope.tenant_id;
    let previous = state.records.get(&(tenant, code));
    let source_time = client.changed_at();
    if let (Some(incoming), Some(known)) = (source_time, previous)
        && incoming < known.source_changed_at
    {
        draft.verdict = Verdict::Stale;
        let detail = format!("changed {incoming}, newer seen {}", known.source_changed_at);
        draft.timeline(code, &Verdict::Stale, Some(detail));
        return;
    }
    draft.touch_record(previous, code, source_time.unwrap_or(envelope.occurred_at));

    let tag = state.integrations.get(&tenant).map_or(DEFAULT_TAG, |integration| integration.tag.as_str());
    if !client.has_tag(tag) {
        client_gone(state, draft, code, "untagged", Verdict::SkippedUntagged);
        return;
    }
    if client.is_inactive() {
        client_gone(state, draft, code, "inactive_in_omie", Verdict::SkippedInactive);
        return;
    }
    let candidate = record::validate(&client).and_then(|candidate| {
        match state.active_emails.get(&(tenant, candidate.email.clone())) {
            Some(&owner) if owner != code => Err(Failure {
                kind: ErrorKind::DuplicateEmail,
                message: format!("{} already belongs to the active user of Omie record {owner}", candidate.email),
            }),
            _ => Ok(candidate),
        }
    });
    match candidate {
        Ok(candidate) => apply_candidate(state, draft, code, candidate),
        Err(failure) => fail(state, draft, code, &client, failure),
    }
}

fn apply_candidate(state: &State, draft: &mut Draft<'_>, code: i64, candidate: Candidate) {
    let envelope = draft.logged.envelope;
    let tenant = envelope.tenant_id;
    let at = envelope.recorded_at;
    let existing = state.users.get(&(tenant, code));
    let (verdict, user) = match existing {
        None => {
            let user = User {
                id: ids::user_id(tenant, code),
                tenant_id: tenant,
                omie_code: code,
                name: candidate.name,
                email: candidate.email,
                document: candidate.document,
                active: true,
                deactivation_reason: None,
                created_at: at,
                updated_at: at,
                last_event_id: envelope.id,
            };
            draft.history("user_created", Some(code), json!({"name": user.name, "email": user.email}));
            (Verdict::Created, Some(user))
        }
        Some(user) => {
            let changed = changed_fields(user, &candidate);
            let mut updated = user.clone();
            updated.name = candidate.name;
            updated.email = candidate.email;
            updated.document = candidate.document;
            updated.updated_at = at;
            updated.last_event_id = envelope.id;
            if !user.active {
                updated.active = true;
                updated.deactivation_reason = None;
                draft.history(
                    "user_reactivated",
                    Some(code),
                    json!({"previous_reason": user.deactivation_reason, "changed": changed}),
                );
                (Verdict::Reactivated, Some(updated))
            } else if changed.as_object().is_some_and(|fields| !fields.is_empty()) {
                draft.history("user_updated", Some(code), json!({"changed": changed}));
                (Verdict::Updated, Some(updated))
            } else {
                (Verdict::Unchanged, None)
            }
        }
    };
    draft.user = user;
    draft.verdict = verdict.clone();
    draft.timeline(code, &verdict, None);
    resolve_errors(state, draft, code, None);
}

fn changed_fields(user: &User, candidate: &Candidate) -> Value {
    let mut changed = serde_json::Map::new();
    if user.name != candidate.name {
        changed.insert("name".into(), json!({"from": user.name, "to": candidate.name}));
    }
    if user.email != candidate.email {
        changed.insert("email".into(), json!({"from": user.email, "to": candidate.email}));
    }
    if user.document != candidate.document {
        changed.insert("document".into(), json!({"from": user.document, "to": candidate.document}));
    }
    Value::Object(changed)
}

/// The record stopped counting (untagged, inactive, deleted): deactivate its user, if active.
fn client_gone(state: &State, draft: &mut Draft<'_>, code: i64, reason: &'static str, otherwise: Verdict) {
    let envelope = draft.logged.envelope;
    if matches!(envelope.event, Event::ClientDeleted(_)) {
        let previous = state.records.get(&(envelope.tenant_id, code));
        draft.touch_record(previous, code, envelope.occurred_at);
    }
    let verdict = match state.users.get(&(envelope.tenant_id, code)) {
        Some(user) if user.active => {
            let mut deactivated = user.clone();
            deactivated.active = false;
            deactivated.deactivation_reason = Some(reason.to_owned());
            deactivated.updated_at = envelope.recorded_at;
            deactivated.last_event_id = envelope.id;
            draft.history("user_deactivated", Some(code), json!({"reason": reason, "email": user.email}));
            draft.user = Some(deactivated);
            Verdict::Deactivated(reason)
        }
        _ => otherwise,
    };
    let detail = matches!(verdict, Verdict::Deactivated(_)).then(|| reason.to_owned());
    draft.timeline(code, &verdict, detail);
    draft.verdict = verdict;
    resolve_errors(state, draft, code, None);
}

fn fail(state: &State, draft: &mut Draft<'_>, code: i64, client: &OmieClient, failure: Failure) {
    let envelope = draft.logged.envelope;
    let id = ids::record_error_id(envelope.tenant_id, code, failure.kind.as_str());
    let error = open_error(state, draft, id, Some(code), failure.kind, &failure.message);
    let error = ImportError { name: record::name_of(client), email: client.email.clone(), ..error };
    draft.errors.push(error);
    let verdict = Verdict::Failed(failure.kind);
    draft.timeline(code, &verdict, Some(failure.message));
    draft.verdict = verdict;
    resolve_errors(state, draft, code, Some(failure.kind));
}

/// Opens (or bumps, or reopens) an error row and logs the failing event against it.
fn open_error(
    state: &State,
    draft: &mut Draft<'_>,
    id: Uuid,
    code: Option<i64>,
    kind: ErrorKind,
    message: &str,
) -> ImportError {
    let envelope = draft.logged.envelope;
    let at = envelope.recorded_at;
    let error = match state.errors.get(&id) {
        Some(existing) => {
            if existing.status != STATUS_OPEN {
                draft.history(
                    "import_failed",
                    code,
                    json!({"kind": kind.as_str(), "message": message, "reopened": true}),
                );
            }
            ImportError {
                message: message.to_owned(),
                status: STATUS_OPEN.into(),
                occurrences: existing.occurrences + 1,
                last_event_id: envelope.id,
                last_seen_at: at,
                resolved_at: None,
                archived: None,
                ..existing.clone()
            }
        }
        None => {
            draft.history("import_failed", code, json!({"kind": kind.as_str(), "message": message}));
            ImportError {
                id,
                tenant_id: envelope.tenant_id,
                omie_code: code,
                kind: kind.as_str().into(),
                name: None,
                email: None,
                message: message.to_owned(),
                status: STATUS_OPEN.into(),
                occurrences: 1,
                first_event_id: envelope.id,
                last_event_id: envelope.id,
                first_seen_at: at,
                last_seen_at: at,
                resolved_at: None,
                archived: None,
                trace_id: None,
            }
        }
    };
    draft.error_events.push(ErrorEvent {
        error_id: id,
        event_id: envelope.id,
        seen_at: at,
        reason: message.to_owned(),
    });
    error
}

/// Open errors of the record, other than `keep`, become resolved. Archived ones stay archived.
fn resolve_errors(state: &State, draft: &mut Draft<'_>, code: i64, keep: Option<ErrorKind>) {
    let envelope = draft.logged.envelope;
    for kind in ErrorKind::RECORD_KINDS {
        if Some(kind) == keep {
            continue;
        }
        let id = ids::record_error_id(envelope.tenant_id, code, kind.as_str());
        if let Some(error) = state.errors.get(&id).filter(|error| error.status == STATUS_OPEN) {
            draft.errors.push(ImportError {
                status: STATUS_RESOLVED.into(),
                resolved_at: Some(envelope.recorded_at),
                ..error.clone()
            });
        }
    }
}

fn webhook_unprocessable(state: &State, draft: &mut Draft<'_>, unprocessable: &WebhookUnprocessable) {
    if unprocessable.reason == UnprocessableReason::UnsupportedTopic {
        draft.verdict = Verdict::Ignored;
        return;
    }
    let envelope = draft.logged.envelope;
    let kind = ErrorKind::UnprocessableWebhook;
    let id = ids::event_error_id(envelope.tenant_id, envelope.id, kind.as_str());
    let message = match unprocessable.reason {
        UnprocessableReason::EventNotObject => "the webhook's `event` is not a client/supplier object",
        _ => "the webhook's client/supplier has no codigo_cliente_omie",
    };
    let client = unprocessable.body.get("event").map(OmieClient::from_value).unwrap_or_default();
    let error = open_error(state, draft, id, None, kind, message);
    draft.errors.push(ImportError { name: record::name_of(&client), email: client.email.clone(), ..error });
    draft.verdict = Verdict::Failed(kind);
}

fn credentials_set(state: &State, draft: &mut Draft<'_>, credentials: &CredentialsSet) {
    let envelope = draft.logged.envelope;
    let masked = mask(&credentials.app_key);
    match state.app_key_owners.get(&credentials.app_key) {
        Some(&owner) if owner != envelope.tenant_id => {
            draft.verdict = Verdict::Rejected;
            draft.history(
                "credentials_rejected",
                None,
                json!({"app_key": masked, "reason": "app key belongs to another company"}),
            );
        }
        _ => {
            let mut integration = integration_of(state, envelope);
            integration.app_key = Some(credentials.app_key.clone());
            integration.app_secret_sealed = Some(credentials.app_secret_sealed.clone());
            draft.configure(integration, "credentials_set", json!({"app_key": masked}));
        }
    }
}

/// The tenant's integration as of this event, created with defaults by its first config event.
fn integration_of(state: &State, envelope: &Envelope) -> Integration {
    let mut integration = state.integrations.get(&envelope.tenant_id).cloned().unwrap_or_else(|| Integration {
        tenant_id: envelope.tenant_id,
        integration_id: envelope.integration_id,
        app_key: None,
        app_secret_sealed: None,
        webhook_token_sealed: None,
        tag: DEFAULT_TAG.into(),
        template: DEFAULT_TEMPLATE.into(),
        updated_at: envelope.recorded_at,
        last_event_id: envelope.id,
        connection_status: None,
        connection_detail: None,
        connection_tested_at: None,
        connection_tested_by: None,
        webhook_token_masked: None,
    });
    integration.updated_at = envelope.recorded_at;
    integration.last_event_id = envelope.id;
    integration
}

/// Builds one event's [`Changes`].
struct Draft<'a> {
    logged: LoggedEvent<'a>,
    verdict: Verdict,
    event: Option<EventRow>,
    integration: Option<Integration>,
    record: Option<OmieRecord>,
    user: Option<User>,
    errors: Vec<ImportError>,
    error_events: Vec<ErrorEvent>,
    history: Vec<HistoryEntry>,
    timeline: Option<TimelineEntry>,
    sync_run: Option<SyncRun>,
    seen: Option<(Uuid, i64)>,
    missing_in_omie: Vec<User>,
}

impl<'a> Draft<'a> {
    fn new(logged: LoggedEvent<'a>) -> Draft<'a> {
        Draft {
            logged,
            verdict: Verdict::Applied,
            event: None,
            integration: None,
            record: None,
            user: None,
            errors: Vec::new(),
            error_events: Vec::new(),
            history: Vec::new(),
            timeline: None,
            sync_run: None,
            seen: None,
            missing_in_omie: Vec::new(),
        }
    }

    fn actor(&self) -> Value {
        serde_json::to_value(&self.logged.envelope.actor).unwrap_or(Value::Null)
    }

    fn record_event(&mut self) {
        let envelope = self.logged.envelope;
        self.event = Some(EventRow {
            id: envelope.id,
            tenant_id: envelope.tenant_id,
            event_type: envelope.type_name().to_owned(),
            subject: envelope.subject.clone(),
            occurred_at: envelope.occurred_at,
            recorded_at: envelope.recorded_at,
            log_partition: self.logged.partition,
            log_offset: self.logged.offset,
            actor: self.actor(),
            payload: serde_json::to_value(envelope).unwrap_or(Value::Null),
            trace_id: self.logged.trace_id.map(str::to_owned),
        });
    }

    fn touch_record(&mut self, previous: Option<&OmieRecord>, code: i64, seen: DateTime<Utc>) {
        let envelope = self.logged.envelope;
        let newest = previous.map_or(seen, |known| known.source_changed_at.max(seen));
        self.record = Some(OmieRecord {
            tenant_id: envelope.tenant_id,
            omie_code: code,
            source_changed_at: newest,
            last_event_id: envelope.id,
        });
    }

    fn configure(&mut self, integration: Integration, action: &str, details: Value) {
        self.integration = Some(integration);
        self.history(action, None, details);
    }

    fn history(&mut self, action: &str, code: Option<i64>, details: Value) {
        let envelope = self.logged.envelope;
        let ordinal = i16::try_from(self.history.len()).unwrap_or(i16::MAX);
        self.history.push(HistoryEntry {
            id: ids::derived_id(envelope.id, &format!("history:{action}:{ordinal}")),
            tenant_id: envelope.tenant_id,
            at: envelope.recorded_at,
            action: action.to_owned(),
            actor: self.actor(),
            subject: code.map(|code| code.to_string()),
            details,
            event_id: envelope.id,
            log_offset: self.logged.offset,
            ordinal,
        });
    }

    fn timeline(&mut self, code: i64, verdict: &Verdict, detail: Option<String>) {
        let envelope = self.logged.envelope;
        self.timeline = Some(TimelineEntry {
            id: ids::timeline_id(envelope.id, self.logged.partition, self.logged.offset),
            tenant_id: envelope.tenant_id,
            omie_code: code,
            event_id: envelope.id,
            event_type: envelope.type_name().to_owned(),
            verdict: verdict.label(),
            detail,
            at: envelope.recorded_at,
            log_partition: self.logged.partition,
            log_offset: self.logged.offset,
        });
    }

    fn timeline_for_subject(&mut self, verdict: &Verdict, detail: Option<String>) {
        if let Some(code) = self.logged.envelope.subject.as_deref().and_then(|subject| subject.parse().ok()) {
            self.timeline(code, verdict, detail);
        }
    }

    fn finish(mut self) -> Changes {
        let failing = self.logged.envelope.id;
        for error in &mut self.errors {
            if error.status == STATUS_OPEN && error.last_event_id == failing {
                error.trace_id = self.logged.trace_id.map(str::to_owned);
            }
        }
        Changes {
            verdict: self.verdict,
            event: self.event,
            integration: self.integration,
            record: self.record,
            user: self.user,
            errors: self.errors,
            error_events: self.error_events,
            history: self.history,
            timeline: self.timeline,
            sync_run: self.sync_run,
            seen: self.seen,
            missing_in_omie: self.missing_in_omie,
        }
    }
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;
