//! What the read API answers: the projections' rows shaped for the integrations centre, each with
//! its OpenAPI schema. Keys are English; texts meant for admins (how to fix an error) Portuguese.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike as _, Utc};
use omie_sync_store::errors::{ErrorEvent, ImportError};
use omie_sync_store::events::EventRow;
use omie_sync_store::history::HistoryEntry;
use omie_sync_store::integrations::Integration;
use omie_sync_store::page::Position;
use omie_sync_store::sync_runs::SyncRun;
use omie_sync_store::timeline::TimelineEntry;
use omie_sync_store::users::User;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ReadError;
use crate::rules::explain;

/// An opaque position in a list: pass `next_cursor` back as `cursor` for the next page.
pub fn encode_cursor(position: Position) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&position).unwrap_or_default())
}

pub fn decode_cursor(cursor: &str) -> Result<Position, ReadError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes: Vec<u8>| serde_json::from_slice::<Position>(&bytes).ok())
        // Ours are instants PostgreSQL stored; a forged one outside its range is not.
        .filter(|position| (1..=9999).contains(&position.at.year()))
        .ok_or_else(|| ReadError::InvalidQuery("cursor is not one this API issued; start again without it".into()))
}

/// Who did something: an Omie user (webhooks), an Espresso user (commands), the system (syncs)
/// or an operator (replays).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"kind": "espresso_user", "id": "u-1", "name": "Ana Admin", "email": "ana@empresa.com.br"}))]
pub struct ActorView {
    #[schema(example = "espresso_user")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl ActorView {
    pub fn from_json(actor: &Value) -> ActorView {
        let text = |key: &str| actor.get(key).and_then(Value::as_str).map(str::to_owned);
        ActorView {
            kind: text("kind").unwrap_or_else(|| "system".into()),
            id: text("id"),
            name: text("name"),
            email: text("email"),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `ok`, `invalid_credentials`, `omie_unavailable`, `blocked`, or `untested`.
    pub status: String,
    pub detail: Option<String>,
    pub tested_at: Option<DateTime<Utc>>,
    pub tested_by: Option<ActorView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// The URL to register in Omie's developer portal.
    pub url: String,
    /// The `?token=` Omie must send, masked; the full URL is shown once, when the token is rotated.
    pub token: Option<String>,
}

/// The integrations centre's status card.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    #[schema(example = "omie")]
    pub erp: &'static str,
    pub configured: bool,
    #[schema(example = "users")]
    pub template: String,
    #[schema(example = "Espresso")]
    pub tag: String,
    /// Only the last four characters.
    #[schema(example = "••••0231")]
    pub app_key: Option<String>,
    pub connection: ConnectionView,
    pub webhook: WebhookView,
    pub last_sync: Option<SyncRunView>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl IntegrationView {
    pub fn new(integration: Option<Integration>, last_sync: Option<SyncRun>, webhook_url: String) -> IntegrationView {
        let last_sync = last_sync.map(SyncRunView::from);
        match integration {
            None => IntegrationView {
                erp: "omie",
                configured: false,
                template: crate::rules::fold::DEFAULT_TEMPLATE.into(),
                tag: crate::rules::fold::DEFAULT_TAG.into(),
                app_key: None,
                connection: ConnectionView {
                    status: "untested".into(),
                    detail: None,
                    tested_at: None,
                    tested_by: None,
                },
                webhook: WebhookView { url: webhook_url, token: None },
                last_sync,
                updated_at: None,
            },
            Some(integration) => IntegrationView {
                erp: "omie",
                configured: integration.app_key.is_some() && integration.app_secret_sealed.is_some(),
                template: integration.template,
                tag: integration.tag,
                app_key: integration.app_key.as_deref().map(omie_sync_platform::secrets::mask),
                connection: ConnectionView {
                    status: integration.connection_status.unwrap_or_else(|| "untested".into()),
                    detail: integration.connection_detail,
                    tested_at: integration.connection_tested_at,
                    tested_by: integration.connection_tested_by.as_ref().map(ActorView::from_json),
                },
                webhook: WebhookView {
                    url: webhook_url,
                    token: integration
                        .webhook_token_masked
                        .or(integration.webhook_token_sealed.map(|_| "••••".to_owned())),
                },
                last_sync,
                updated_at: Some(integration.updated_at),
            },
        }
    }
}

/// What last changed a user, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastChangeView {
    pub at: DateTime<Utc>,
    pub event_id: Uuid,
    /// The projector's verdict: `created`, `updated`, `deactivated`, `reactivated`, …
    #[schema(example = "deactivated")]
    pub why: String,
    /// For a deactivation, its reason (`untagged`, `inactive_in_omie`, `deleted_in_omie`,
    /// `missing_in_omie`).
    #[schema(example = "untagged")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    #[schema(example = 8612300401_i64)]
    pub omie_code: i64,
    pub name: String,
    pub email: String,
    /// CPF or CNPJ as Omie shows it.
    pub document: Option<String>,
    pub active: bool,
    /// `untagged`, `inactive_in_omie`, `deleted_in_omie`, `missing_in_omie`.
    pub deactivation_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_change: LastChangeView,
}

impl UserView {
    /// `timeline` is the entry of the user's last event, when that event touched the record.
    pub fn new(user: User, timeline: Option<&TimelineEntry>) -> UserView {
        let (why, detail) = match (timeline, &user.deactivation_reason) {
            (Some(entry), _) => (entry.verdict.clone(), entry.detail.clone()),
            (None, Some(reason)) if !user.active => ("deactivated".to_owned(), Some(reason.clone())),
            (None, _) => ("updated".to_owned(), None),
        };
        UserView {
            last_change: LastChangeView { at: user.updated_at, event_id: user.last_event_id, why, detail },
            id: user.id,
            omie_code: user.omie_code,
            name: user.name,
            email: user.email,
            document: user.document,
            active: user.active,
            deactivation_reason: user.deactivation_reason,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveView {
    pub at: DateTime<Utc>,
    pub by: ActorView,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    pub id: Uuid,
    /// The Omie record (absent for a webhook that named none).
    pub omie_code: Option<i64>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// `missing_name`, `missing_email`, `invalid_email`, `duplicate_email`, `unprocessable_webhook`,
    /// `mass_deactivation_blocked`.
    #[schema(example = "invalid_email")]
    pub kind: String,
    pub message: String,
    /// `open`, `resolved` or `archived`.
    #[schema(example = "open")]
    pub status: String,
    pub occurrences: i32,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub archived: Option<ArchiveView>,
    /// The W3C trace id of the event that last failed the record: its trace shows the webhook
    /// or sync page from the HTTP request to this row.
    #[schema(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: Option<String>,
}

impl From<ImportError> for ErrorView {
    fn from(error: ImportError) -> ErrorView {
        let archived = error.archived.as_ref().and_then(|archived| {
            Some(ArchiveView {
                at: serde_json::from_value(archived.get("at")?.clone()).ok()?,
                by: ActorView::from_json(archived.get("by").unwrap_or(&Value::Null)),
                reason: archived.get("reason").and_then(Value::as_str).map(str::to_owned),
            })
        });
        ErrorView {
            id: error.id,
            omie_code: error.omie_code,
            name: error.name,
            email: error.email,
            kind: error.kind,
            message: error.message,
            status: error.status,
            occurrences: error.occurrences,
            first_seen_at: error.first_seen_at,
            last_seen_at: error.last_seen_at,
            resolved_at: error.resolved_at,
            archived,
            trace_id: error.trace_id,
        }
    }
}

/// One failing event of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorLogEntryView {
    pub event_id: Uuid,
    pub seen_at: DateTime<Utc>,
    #[schema(example = "omie.client.upserted")]
    pub event_type: Option<String>,
    /// The rule that failed (the error's kind).
    pub rule: String,
    /// What the rule found, in English.
    pub reason: String,
    /// How to fix it in Omie, in Portuguese.
    pub how_to_fix: String,
    /// The event's payload as recorded: the Omie record or webhook body that failed.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The W3C trace id the event travelled with.
    pub trace_id: Option<String>,
}

impl ErrorLogEntryView {
    pub fn new(error: &ImportError, logged: ErrorEvent, event: Option<&EventRow>) -> ErrorLogEntryView {
        ErrorLogEntryView {
            event_id: logged.event_id,
            seen_at: logged.seen_at,
            event_type: event.map(|event| event.event_type.clone()),
            rule: error.kind.clone(),
            reason: logged.reason,
            how_to_fix: explain::how_to_fix(&error.kind, error.omie_code, error.email.as_deref()),
            input: event.and_then(|event| event.payload.get("payload").cloned()).unwrap_or(Value::Null),
            trace_id: event.and_then(|event| event.trace_id.clone()),
        }
    }
}

/// One event of an Omie record with the projector's verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineView {
    pub event_id: Uuid,
    #[schema(example = "omie.client.upserted")]
    pub event_type: String,
    /// `created`, `updated`, `unchanged`, `skipped-untagged`, `skipped-inactive`, `failed:<kind>`,
    /// `duplicate-delivery`, `stale`, `deactivated` (with the reason in `detail`), `reactivated`, …
    #[schema(example = "failed:invalid_email")]
    pub verdict: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
    pub log_partition: i32,
    pub log_offset: i64,
    /// The W3C trace id the event travelled with.
    pub trace_id: Option<String>,
}

impl TimelineView {
    pub fn new(entry: TimelineEntry, trace_id: Option<String>) -> TimelineView {
        TimelineView {
            event_id: entry.event_id,
            event_type: entry.event_type,
            verdict: entry.verdict,
            detail: entry.detail,
            at: entry.at,
            log_partition: entry.log_partition,
            log_offset: entry.log_offset,
            trace_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `user_created`, `user_updated`, `user_deactivated`, `user_reactivated`, `import_failed`,
    /// `error_archived`, `credentials_set`, `tag_set`, `template_set`, `webhook_token_rotated`,
    /// `connection_tested`, `sync_started`, `sync_finished`, `sync_failed`,
    /// `mass_deactivation_confirmed`, …
    #[schema(example = "error_archived")]
    pub action: String,
    pub actor: ActorView,
    /// The Omie code the action concerns, when it concerns one record.
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub event_id: Uuid,
}

impl From<HistoryEntry> for HistoryView {
    fn from(entry: HistoryEntry) -> HistoryView {
        HistoryView {
            id: entry.id,
            at: entry.at,
            action: entry.action,
            actor: ActorView::from_json(&entry.actor),
            subject: entry.subject,
            details: entry.details,
            event_id: entry.event_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunView {
    pub id: Uuid,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub requested_by: ActorView,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub pages_done: i32,
    pub pages_total: Option<i32>,
    pub rows_seen: i32,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_deactivated: i32,
    pub records_failed: i32,
    pub failure_reason: Option<String>,
}

impl From<SyncRun> for SyncRunView {
    fn from(run: SyncRun) -> SyncRunView {
        SyncRunView {
            id: run.id,
            status: run.status,
            requested_by: ActorView::from_json(&run.requested_by),
            started_at: run.started_at,
            finished_at: run.finished_at,
            pages_done: run.pages_done,
            pages_total: run.pages_total,
            rows_seen: run.rows_seen,
            users_created: run.users_created,
            users_updated: run.users_updated,
            users_deactivated: run.users_deactivated,
            records_failed: run.records_failed,
            failure_reason: run.failure_reason,
        }
    }
}

/// A page of a list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A complete list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCountsView {
    pub active: i64,
    pub inactive: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorCountView {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// Counts of the tenant's projections.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub users: UserCountsView,
    pub errors: Vec<ErrorCountView>,
    pub history_rows: i64,
    pub events_applied: i64,
}
