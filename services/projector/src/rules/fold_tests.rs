//! The fold without I/O: sequences of events against an in-memory state.

use chrono::{DateTime, Duration, Utc};
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::{Actor, ActorKind, ClientDeleted, ClientUpserted, CredentialsSet, RecordSource, TagSet};
use serde_json::{Value, json};

use super::*;

const TENANT: Uuid = Uuid::from_u128(1);

struct Folder {
    state: State,
    offset: i64,
}

impl Folder {
    fn new() -> Folder {
        Folder { state: State::default(), offset: 0 }
    }

    fn apply(&mut self, envelope: &Envelope) -> Changes {
        self.apply_traced(envelope, None)
    }

    fn apply_traced(&mut self, envelope: &Envelope, trace_id: Option<&str>) -> Changes {
        let changes = decide(&self.state, LoggedEvent { envelope, partition: 0, offset: self.offset, trace_id });
        self.state.absorb(&changes);
        self.offset += 1;
        changes
    }

    fn user(&self, code: i64) -> Option<&User> {
        self.state.users.get(&(TENANT, code))
    }

    fn error(&self, code: i64, kind: ErrorKind) -> Option<&ImportError> {
        self.state.errors.get(&ids::record_error_id(TENANT, code, kind.as_str()))
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap() + Duration::seconds(seconds)
}

fn envelope(id: u128, event: Event) -> Envelope {
    Envelope {
        id: Uuid::from_u128(id),
        schema_version: SCHEMA_VERSION,
        tenant_id: TENANT,
        integration_id: ids::integration_id(TENANT),
        occurred_at: at(id as i64),
        recorded_at: at(id as i64),
        actor: Actor { kind: ActorKind::OmieUser, id: Some("4512".into()), name: Some("Ana".into()), email: None },
        subject: None,
        correlation_id: None,
        causation_id: None,
        event,
    }
}

fn record(code: i64, name: &str, email: &str, tags: &[&str], inactive: bool) -> Value {
    let tags: Vec<Value> = tags.iter().map(|tag| json!({"tag": tag})).collect();
    json!({"codigo_cliente_omie": code, "razao_social": name, "email": email, "tags": tags, "inativo": if inactive { "S" } else { "N" }})
}

fn upsert(id: u128, record: Value) -> Envelope {
    envelope(id, Event::ClientUpserted(ClientUpserted { source: RecordSource::Webhook, record, webhook: None }))
}

fn synced(id: u128, mut record: Value, changed_brasilia: &str) -> Envelope {
    let (date, time) = changed_brasilia.split_once(' ').unwrap();
    record["info"] = json!({"dAlt": date, "hAlt": time});
    envelope(id, Event::ClientUpserted(ClientUpserted { source: RecordSource::Sync, record, webhook: None }))
}

fn deleted(id: u128, code: i64) -> Envelope {
    let webhook = omie_sync_events::WebhookMeta {
        message_id: Some(format!("m-{id}")),
        topic: "ClienteFornecedor.Excluido".into(),
        author: None,
        app_hash: None,
        origin: None,
    };
    envelope(id, Event::ClientDeleted(ClientDeleted { record: json!({"codigo_cliente_omie": code}), webhook }))
}

fn actions(changes: &Changes) -> Vec<&str> {
    changes.history.iter().map(|entry| entry.action.as_str()).collect()
}

#[test]
fn a_record_lives_created_updated_untagged_retagged() {
    let mut folder = Folder::new();
    let created = folder.apply(&upsert(1, record(10, "Ana Ltda", "Ana@X.com.br", &["Espresso"], false)));
    assert_eq!(created.verdict, Verdict::Created);
    assert_eq!(actions(&created), ["user_created"]);
    let user = folder.user(10).unwrap();
    assert_eq!((user.email.as_str(), user.active, user.id), ("ana@x.com.br", true, ids::user_id(TENANT, 10)));
    assert_eq!(user.created_at, at(1));

    let unchanged = folder.apply(&upsert(2, record(10, "Ana Ltda", "ana@x.com.br", &[" espresso "], false)));
    assert_eq!(unchanged.verdict, Verdict::Unchanged);
    assert!(unchanged.history.is_empty() && unchanged.user.is_none(), "re-sent content floods nothing");

    let updated = folder.apply(&upsert(3, record(10, "Ana S.A.", "ana@x.com.br", &["Espresso"], false)));
    assert_eq!(updated.verdict, Verdict::Updated);
    assert_eq!(updated.history[0].details["changed"]["name"], json!({"from": "Ana Ltda", "to": "Ana S.A."}));

    let untagged = folder.apply(&upsert(4, record(10, "Ana S.A.", "ana@x.com.br", &["Cliente"], false)));
    assert_eq!(untagged.verdict, Verdict::Deactivated("untagged"));
    assert_eq!(folder.user(10).unwrap().deactivation_reason.as_deref(), Some("untagged"));

    let again = folder.apply(&upsert(5, record(10, "Ana S.A.", "ana@x.com.br", &["Cliente"], false)));
    assert_eq!(again.verdict, Verdict::SkippedUntagged);
    assert!(again.history.is_empty());

    let back = folder.apply(&upsert(6, record(10, "Ana S.A.", "ana@x.com.br", &["ESPRESSO"], false)));
    assert_eq!(back.verdict, Verdict::Reactivated);
    assert_eq!(actions(&back), ["user_reactivated"]);
    let user = folder.user(10).unwrap();
    assert!(user.active && user.deactivation_reason.is_none());
    assert_eq!(user.created_at, at(1), "reactivation keeps the creation time");
}

#[test]
fn inactive_and_deleted_records_deactivate_with_their_reason() {
    let mut folder = Folder::new();
    folder.apply(&upsert(1, record(10, "A", "a@x.com.br", &["Espresso"], false)));
    let inactive = folder.apply(&upsert(2, record(10, "A", "a@x.com.br", &["Espresso"], true)));
    assert_eq!(inactive.verdict, Verdict::Deactivated("inactive_in_omie"));
    let never_user = folder.apply(&upsert(3, record(11, "B", "b@x.com.br", &["Espresso"], true)));
    assert_eq!(never_user.verdict, Verdict::SkippedInactive);
    assert!(folder.user(11).is_none());

    folder.apply(&upsert(4, record(12, "C", "c@x.com.br", &["Espresso"], false)));
    let gone = folder.apply(&deleted(5, 12));
    assert_eq!(gone.verdict, Verdict::Deactivated("deleted_in_omie"));
    assert!(!folder.user(12).unwrap().active, "never hard-deleted");
    assert_eq!(folder.apply(&deleted(6, 99)).verdict, Verdict::Unchanged);
}

#[test]
fn errors_open_count_reopen_and_resolve() {
    let mut folder = Folder::new();
    let missing = folder.apply(&upsert(1, record(20, "Rafael", "", &["Espresso"], false)));
    assert_eq!(missing.verdict, Verdict::Failed(ErrorKind::MissingEmail));
    assert_eq!(actions(&missing), ["import_failed"]);
    assert!(folder.user(20).is_none());

    let repeated = folder.apply(&upsert(2, record(20, "Rafael", " ", &["Espresso"], false)));
    assert!(repeated.history.is_empty(), "an open error does not flood the history");
    assert_eq!(repeated.error_events.len(), 1, "but its log grows");
    assert_eq!(folder.error(20, ErrorKind::MissingEmail).unwrap().occurrences, 2);

    let invalid = folder.apply(&upsert(3, record(20, "Rafael", "rafael@@x", &["Espresso"], false)));
    assert_eq!(invalid.verdict, Verdict::Failed(ErrorKind::InvalidEmail));
    assert_eq!(folder.error(20, ErrorKind::MissingEmail).unwrap().status, STATUS_RESOLVED);
    assert_eq!(folder.error(20, ErrorKind::InvalidEmail).unwrap().status, STATUS_OPEN);

    let fixed = folder.apply(&upsert(4, record(20, "Rafael", "rafael@x.com.br", &["Espresso"], false)));
    assert_eq!(fixed.verdict, Verdict::Created);
    let resolved = folder.error(20, ErrorKind::InvalidEmail).unwrap();
    assert_eq!((resolved.status.as_str(), resolved.resolved_at), (STATUS_RESOLVED, Some(at(4))));

    let broken_again = folder.apply(&upsert(5, record(20, "Rafael", "rafael@@x", &["Espresso"], false)));
    assert_eq!(actions(&broken_again), ["import_failed"], "a resolved error that fails again is reopened");
    assert_eq!(broken_again.history[0].details["reopened"], true);
    assert!(folder.user(20).unwrap().active, "the user keeps its last good state");
    assert_eq!(folder.user(20).unwrap().email, "rafael@x.com.br");

    let no_name =
        folder.apply(&upsert(6, json!({"codigo_cliente_omie": 21, "email": "x@x.com.br", "tags": ["Espresso"]})));
    assert_eq!(no_name.verdict, Verdict::Failed(ErrorKind::MissingName));
}

#[test]
fn an_error_carries_the_trace_of_the_event_that_last_failed_it() {
    let mut folder = Folder::new();
    let first = folder.apply_traced(&upsert(1, record(20, "Rafael", "", &["Espresso"], false)), Some("trace-a"));
    assert_eq!(first.event.unwrap().trace_id.as_deref(), Some("trace-a"));
    assert_eq!(folder.error(20, ErrorKind::MissingEmail).unwrap().trace_id.as_deref(), Some("trace-a"));
    folder.apply_traced(&upsert(2, record(20, "Rafael", " ", &["Espresso"], false)), Some("trace-b"));
    assert_eq!(folder.error(20, ErrorKind::MissingEmail).unwrap().trace_id.as_deref(), Some("trace-b"));
    folder.apply_traced(&upsert(3, record(20, "Rafael", "rafael@x.com.br", &["Espresso"], false)), Some("trace-c"));
    let resolved = folder.error(20, ErrorKind::MissingEmail).unwrap();
    assert_eq!(
        (resolved.status.as_str(), resolved.trace_id.as_deref()),
        (STATUS_RESOLVED, Some("trace-b")),
        "the fix does not replace the failing trace"
    );
}

#[test]
fn one_active_user_per_email() {
    let mut folder = Folder::new();
    folder.apply(&upsert(1, record(30, "First", "shared@x.com.br", &["Espresso"], false)));
    let second = folder.apply(&upsert(2, record(31, "Second", "SHARED@x.com.br", &["Espresso"], false)));
    assert_eq!(second.verdict, Verdict::Failed(ErrorKind::DuplicateEmail));
    assert!(folder.user(31).is_none());

    folder.apply(&upsert(3, record(30, "First", "shared@x.com.br", &["Espresso"], true)));
    let retry = folder.apply(&upsert(4, record(31, "Second", "shared@x.com.br", &["Espresso"], false)));
    assert_eq!(retry.verdict, Verdict::Created, "the address is free once its holder is inactive");
    assert_eq!(folder.error(31, ErrorKind::DuplicateEmail).unwrap().status, STATUS_RESOLVED);
    assert_eq!(folder.state.active_emails.get(&(TENANT, "shared@x.com.br".into())), Some(&31));
}

#[test]
fn duplicate_event_ids_change_nothing() {
    let mut folder = Folder::new();
    let event = upsert(1, record(40, "A", "a@x.com.br", &["Espresso"], false));
    folder.apply(&event);
    let state_before = folder.state.users.clone();
    let duplicate = folder.apply(&event);
    assert_eq!(duplicate.verdict, Verdict::DuplicateDelivery);
    assert!(duplicate.event.is_none() && duplicate.user.is_none() && duplicate.history.is_empty());
    assert!(duplicate.errors.is_empty() && duplicate.record.is_none());
    assert_eq!(folder.state.users, state_before);
}

#[test]
fn an_older_sync_row_never_undoes_a_newer_fact() {
    let mut folder = Folder::new();
    folder.apply(&synced(1, record(50, "New Name", "n@x.com.br", &["Espresso"], false), "05/03/2026 14:30:00"));
    let stale =
        folder.apply(&synced(2, record(50, "Old Name", "o@x.com.br", &["Espresso"], false), "05/03/2026 14:29:59"));
    assert_eq!(stale.verdict, Verdict::Stale);
    assert!(stale.user.is_none() && stale.history.is_empty());
    assert_eq!(folder.user(50).unwrap().name, "New Name");
    let newer =
        folder.apply(&synced(3, record(50, "Newer", "n@x.com.br", &["Espresso"], false), "05/03/2026 14:31:00"));
    assert_eq!(newer.verdict, Verdict::Updated);
}

#[test]
fn configuration_events_build_the_integration() {
    let mut folder = Folder::new();
    let set = folder.apply(&envelope(
        1,
        Event::CredentialsSet(CredentialsSet { app_key: "3188245610231".into(), app_secret_sealed: "v1.x".into() }),
    ));
    assert_eq!(set.history[0].details["app_key"], "••••0231", "the key is masked in the history");
    let tag = folder.apply(&envelope(2, Event::TagSet(TagSet { tag: " Viagem ".into() })));
    assert_eq!(tag.history[0].details, json!({"from": DEFAULT_TAG, "to": "Viagem"}));
    let integration = folder.state.integrations.get(&TENANT).unwrap();
    assert_eq!((integration.tag.as_str(), integration.app_key.as_deref()), ("Viagem", Some("3188245610231")));
    let counted = folder.apply(&upsert(3, record(60, "A", "a@x.com.br", &["viagem"], false)));
    assert_eq!(counted.verdict, Verdict::Created, "the configured tag is the filter");

    let mut other = envelope(
        4,
        Event::CredentialsSet(CredentialsSet { app_key: "3188245610231".into(), app_secret_sealed: "v1.y".into() }),
    );
    other.tenant_id = Uuid::from_u128(2);
    let rejected = folder.apply(&other);
    assert_eq!(rejected.verdict, Verdict::Rejected);
    assert!(rejected.integration.is_none());
    assert_eq!(folder.state.app_key_owners.get("3188245610231"), Some(&TENANT));
}

#[test]
fn the_fold_is_deterministic() {
    let events = [
        upsert(1, record(70, "A", "a@x.com.br", &["Espresso"], false)),
        upsert(2, record(71, "B", "a@x.com.br", &["Espresso"], false)),
        deleted(3, 70),
        upsert(4, record(71, "B", "a@x.com.br", &["Espresso"], false)),
    ];
    let run = || {
        let mut folder = Folder::new();
        events.iter().map(|event| folder.apply(event)).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn absurdly_long_names_are_capped() {
    let mut folder = Folder::new();
    let long = "N".repeat(200_000);
    folder.apply(&upsert(1, record(80, &long, "n@x.com.br", &["Espresso"], false)));
    assert_eq!(folder.user(80).unwrap().name.chars().count(), record::MAX_NAME_CHARS);
}

#[test]
fn a_sync_run_counts_what_its_rows_did_and_ends_once() {
    use omie_sync_events::{SyncCompleted, SyncFailed, SyncPageFetched, SyncRequested};
    let sync_id = Uuid::from_u128(99);
    let in_sync = |id: u128, event: Event| Envelope { correlation_id: Some(sync_id), ..envelope(id, event) };
    let row = |id: u128, record: Value| {
        in_sync(id, Event::ClientUpserted(ClientUpserted { source: RecordSource::Sync, record, webhook: None }))
    };
    let mut folder = Folder::new();
    folder.apply(&upsert(1, record(91, "Old", "old@x.com.br", &["Espresso"], false)));
    let started = folder.apply(&in_sync(2, Event::SyncRequested(SyncRequested { sync_id })));
    assert_eq!(actions(&started), ["sync_started"]);
    folder.apply(&row(3, record(90, "A", "a@x.com.br", &["Espresso"], false)));
    folder.apply(&row(4, record(91, "Old", "old@x.com.br", &["Cliente"], false)));
    folder.apply(&row(5, record(92, "B", "", &["Espresso"], false)));
    folder.apply(&row(6, record(93, "C", "c@x.com.br", &["Cliente"], false)));
    let page = SyncPageFetched { sync_id, page: 1, total_pages: 1, rows: 4, total_rows: 4 };
    folder.apply(&in_sync(7, Event::SyncPageFetched(page)));
    let finished = folder.apply(&in_sync(8, Event::SyncCompleted(SyncCompleted { sync_id, pages: 1, rows: 4 })));
    assert_eq!(actions(&finished), ["sync_finished"]);
    let run = folder.state.sync_runs.get(&sync_id).unwrap();
    assert_eq!(run.status, "completed");
    assert_eq!((run.pages_done, run.pages_total, run.rows_seen), (1, Some(1), 4));
    assert_eq!((run.users_created, run.users_deactivated, run.records_failed, run.users_updated), (1, 1, 1, 0));
    let late = folder.apply(&in_sync(9, Event::SyncFailed(SyncFailed { sync_id, reason: "late".into() })));
    assert!(late.sync_run.is_none() && late.history.is_empty(), "an ended run stays ended");
}

/// A sync of `active` users that lists only the first `listed`; returns the completion's changes.
fn sync_listing(active: i64, listed: i64) -> (Folder, Changes) {
    use omie_sync_events::{SyncCompleted, SyncRequested};
    let sync_id = Uuid::from_u128(7_777);
    let in_sync = |id: u128, event: Event| Envelope { correlation_id: Some(sync_id), ..envelope(id, event) };
    let mut folder = Folder::new();
    for code in 1..=active {
        folder.apply(&upsert(code as u128, record(code, "U", &format!("u{code}@x.com.br"), &["Espresso"], false)));
    }
    folder.apply(&in_sync(1_000, Event::SyncRequested(SyncRequested { sync_id })));
    for code in 1..=listed {
        let row = record(code, "U", &format!("u{code}@x.com.br"), &["Espresso"], false);
        let event = Event::ClientUpserted(ClientUpserted { source: RecordSource::Sync, record: row, webhook: None });
        folder.apply(&in_sync(2_000 + code as u128, event));
    }
    let completed = SyncCompleted { sync_id, pages: 1, rows: listed as u32 };
    let done =
        Envelope { id: ids::sync_completed_event_id(sync_id), ..in_sync(9_000, Event::SyncCompleted(completed)) };
    let done = folder.apply(&done);
    (folder, done)
}

#[test]
fn a_completed_sync_deactivates_users_missing_from_the_listing() {
    let (folder, done) = sync_listing(20, 16);
    assert_eq!(done.missing_in_omie.len(), 4);
    for code in 17..=20 {
        let user = folder.user(code).unwrap();
        assert_eq!((user.active, user.deactivation_reason.as_deref()), (false, Some("missing_in_omie")));
    }
    assert!(folder.user(16).unwrap().active);
    assert_eq!(folder.state.sync_runs.values().next().unwrap().users_deactivated, 4);
    assert_eq!(actions(&done).iter().filter(|action| **action == "user_deactivated").count(), 4);
}

#[test]
fn a_mass_deactivation_is_blocked_and_raises_an_error() {
    let (folder, done) = sync_listing(30, 21);
    assert!(done.missing_in_omie.is_empty(), "9 of 30 is over max(5, 20%): nobody is deactivated");
    assert!((1..=30).all(|code| folder.user(code).unwrap().active));
    let error = done.errors.iter().find(|error| error.kind == "mass_deactivation_blocked").expect("the guard's error");
    assert!(error.message.starts_with("9 of 30"), "{}", error.message);
    assert_eq!(mass_deactivation_threshold(3), 5);
    assert_eq!(mass_deactivation_threshold(100), 20);
}

#[test]
fn a_confirmed_mass_deactivation_deactivates_the_missing_and_resolves_the_guard() {
    use omie_sync_events::DeactivationConfirmed;
    let (mut folder, _) = sync_listing(30, 21);
    let sync_id = Uuid::from_u128(7_777);
    let confirm = envelope(9_500, Event::DeactivationConfirmed(DeactivationConfirmed { sync_id }));
    let confirmed = folder.apply(&confirm);
    assert_eq!(confirmed.missing_in_omie.len(), 9);
    assert_eq!(actions(&confirmed)[0], "mass_deactivation_confirmed");
    assert!((22..=30).all(|code| folder.user(code).unwrap().deactivation_reason.as_deref() == Some("missing_in_omie")));
    assert!(confirmed.errors.iter().all(|error| error.status == STATUS_RESOLVED));
    let again = folder.apply(&envelope(9_501, Event::DeactivationConfirmed(DeactivationConfirmed { sync_id })));
    assert!(again.missing_in_omie.is_empty() && again.history.is_empty(), "a second confirmation changes nothing");
}

#[test]
fn an_archived_error_stays_archived_until_the_record_fails_again() {
    let mut folder = Folder::new();
    folder.apply(&upsert(1, record(7, "Sete", "sete@@", &["Espresso"], false)));
    let id = folder.error(7, ErrorKind::InvalidEmail).expect("opened").id;
    let archive = |event_id: u128| {
        let mut envelope =
            envelope(event_id, Event::ErrorArchived(ErrorArchived { error_id: id, reason: Some("antigo".into()) }));
        envelope.actor =
            Actor { kind: ActorKind::EspressoUser, id: Some("u-9".into()), name: Some("Bia".into()), email: None };
        envelope
    };
    let archived = folder.apply(&archive(2));
    assert_eq!(actions(&archived), ["error_archived"]);
    let error = folder.error(7, ErrorKind::InvalidEmail).expect("kept");
    assert_eq!(error.status, STATUS_ARCHIVED);
    assert_eq!(error.archived.as_ref().map(|archived| archived["by"]["name"].clone()), Some(json!("Bia")));
    assert_eq!(error.archived.as_ref().map(|archived| archived["reason"].clone()), Some(json!("antigo")));

    let again = folder.apply(&archive(3));
    assert_eq!(again.verdict, Verdict::Ignored);
    assert!(again.errors.is_empty() && again.history.is_empty());
    let stranger =
        folder.apply(&envelope(4, Event::ErrorArchived(ErrorArchived { error_id: Uuid::from_u128(99), reason: None })));
    assert_eq!(stranger.verdict, Verdict::Ignored);

    folder.apply(&upsert(5, record(7, "Sete", "sete@@", &["Espresso"], false)));
    let error = folder.error(7, ErrorKind::InvalidEmail).expect("kept");
    assert_eq!((error.status.as_str(), error.occurrences, error.archived.is_none()), (STATUS_OPEN, 2, true));
    folder.apply(&upsert(6, record(7, "Sete", "sete@empresa.com.br", &["Espresso"], false)));
    assert_eq!(folder.error(7, ErrorKind::InvalidEmail).expect("kept").status, STATUS_RESOLVED);
}
