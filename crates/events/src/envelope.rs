//! The envelope and the v1 catalog.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Version of the envelope layout and of every payload below.
pub const SCHEMA_VERSION: u16 = 1;

/// One record of the event log. Serialised as JSON, keyed by `tenant_id` in Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Unique per fact. For a webhook: UUIDv5 of tenant and Omie `messageId`, so a redelivery gets
    /// the same id and is applied once.
    pub id: Uuid,
    pub schema_version: u16,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    /// When the fact happened at its source, when known; otherwise when ingress received it.
    pub occurred_at: DateTime<Utc>,
    /// When ingress recorded the fact.
    pub recorded_at: DateTime<Utc>,
    pub actor: Actor,
    /// The Omie record code (`codigo_cliente_omie`) the fact is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(flatten)]
    pub event: Event,
}

/// The catalog: `type` names the event, `payload` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "payload")]
pub enum Event {
    #[serde(rename = "omie.client.upserted")]
    ClientUpserted(ClientUpserted),
    #[serde(rename = "omie.client.deleted")]
    ClientDeleted(ClientDeleted),
    #[serde(rename = "omie.webhook.unprocessable")]
    WebhookUnprocessable(WebhookUnprocessable),
    #[serde(rename = "integration.credentials_set")]
    CredentialsSet(CredentialsSet),
    #[serde(rename = "integration.tag_set")]
    TagSet(TagSet),
    #[serde(rename = "integration.template_set")]
    TemplateSet(TemplateSet),
    #[serde(rename = "integration.webhook_token_rotated")]
    WebhookTokenRotated(WebhookTokenRotated),
    #[serde(rename = "integration.connection_tested")]
    ConnectionTested(ConnectionTested),
    #[serde(rename = "sync.requested")]
    SyncRequested(SyncRequested),
    #[serde(rename = "sync.page_fetched")]
    SyncPageFetched(SyncPageFetched),
    #[serde(rename = "sync.completed")]
    SyncCompleted(SyncCompleted),
    #[serde(rename = "sync.failed")]
    SyncFailed(SyncFailed),
    #[serde(rename = "sync.deactivation_confirmed")]
    DeactivationConfirmed(DeactivationConfirmed),
    #[serde(rename = "error.archived")]
    ErrorArchived(ErrorArchived),
    #[serde(rename = "operator.replay_started")]
    ReplayStarted(ReplayStarted),
    #[serde(rename = "operator.replay_finished")]
    ReplayFinished(ReplayFinished),
}

impl Event {
    /// The stable `type` name, also sent as the `event-type` Kafka header.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ClientUpserted(_) => "omie.client.upserted",
            Event::ClientDeleted(_) => "omie.client.deleted",
            Event::WebhookUnprocessable(_) => "omie.webhook.unprocessable",
            Event::CredentialsSet(_) => "integration.credentials_set",
            Event::TagSet(_) => "integration.tag_set",
            Event::TemplateSet(_) => "integration.template_set",
            Event::WebhookTokenRotated(_) => "integration.webhook_token_rotated",
            Event::ConnectionTested(_) => "integration.connection_tested",
            Event::SyncRequested(_) => "sync.requested",
            Event::SyncPageFetched(_) => "sync.page_fetched",
            Event::SyncCompleted(_) => "sync.completed",
            Event::SyncFailed(_) => "sync.failed",
            Event::DeactivationConfirmed(_) => "sync.deactivation_confirmed",
            Event::ErrorArchived(_) => "error.archived",
            Event::ReplayStarted(_) => "operator.replay_started",
            Event::ReplayFinished(_) => "operator.replay_finished",
        }
    }

    /// Every type name of the catalog, in declaration order.
    pub const TYPE_NAMES: [&'static str; 16] = [
        "omie.client.upserted",
        "omie.client.deleted",
        "omie.webhook.unprocessable",
        "integration.credentials_set",
        "integration.tag_set",
        "integration.template_set",
        "integration.webhook_token_rotated",
        "integration.connection_tested",
        "sync.requested",
        "sync.page_fetched",
        "sync.completed",
        "sync.failed",
        "sync.deactivation_confirmed",
        "error.archived",
        "operator.replay_started",
        "operator.replay_finished",
    ];
}

/// Who caused a fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub kind: ActorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    OmieUser,
    EspressoUser,
    System,
    Operator,
}

/// Where an Omie record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    Webhook,
    Sync,
}

/// The parts of an Omie webhook body that are not the record itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookMeta {
    /// Omie's `messageId`; absent only in malformed deliveries (then the event id hashes the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// `omie.client.upserted`: a client/supplier exactly as Omie sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientUpserted {
    pub source: RecordSource,
    /// The raw Omie record (`clientes_cadastro` row or webhook `event`), extra keys included.
    pub record: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookMeta>,
}

/// `omie.client.deleted`: webhook `ClienteFornecedor.Excluido`, raw event kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientDeleted {
    pub record: Value,
    pub webhook: WebhookMeta,
}

/// Why a webhook of a known tenant could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnprocessableReason {
    /// The topic is not one of the three `ClienteFornecedor` topics.
    UnsupportedTopic,
    /// `event` is missing or not a JSON object.
    EventNotObject,
    /// The event has no usable `codigo_cliente_omie`.
    MissingOmieCode,
}

/// `omie.webhook.unprocessable`: recorded, never dropped, answered 200 so Omie stops retrying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookUnprocessable {
    pub reason: UnprocessableReason,
    /// The whole webhook body as received.
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// `integration.credentials_set`. The secret is sealed (AES-256-GCM) before it enters the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialsSet {
    pub app_key: String,
    /// `v1.<base64 nonce+ciphertext>`, bound to the tenant id; only ingress holds the key.
    pub app_secret_sealed: String,
}

/// `integration.tag_set`: the Omie tag that makes a record count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TagSet {
    pub tag: String,
}

/// The integration templates Espresso offers for Omie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Create and update Espresso users from Omie clients and suppliers.
    Users,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Users => "users",
        }
    }
}

/// `integration.template_set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateSet {
    pub template: Template,
}

/// `integration.webhook_token_rotated`: the `?token=` Omie must send from now on, sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookTokenRotated {
    pub token_sealed: String,
    /// The token masked (`••••1a2b`), so reads can show which one is set without the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_masked: Option<String>,
}

/// What a connection test against Omie found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionOutcome {
    Ok,
    /// Omie refused the app key or secret (or the app is suspended).
    InvalidCredentials,
    /// Omie could not be reached or answered with an unexpected error.
    OmieUnavailable,
    /// Omie blocked the method for misuse until `blocked_until`.
    Blocked,
}

impl ConnectionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionOutcome::Ok => "ok",
            ConnectionOutcome::InvalidCredentials => "invalid_credentials",
            ConnectionOutcome::OmieUnavailable => "omie_unavailable",
            ConnectionOutcome::Blocked => "blocked",
        }
    }
}

/// `integration.connection_tested`: the outcome of calling Omie with the stored keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionTested {
    pub outcome: ConnectionOutcome,
    /// What Omie said, in a form fit for an admin (never a secret).
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<DateTime<Utc>>,
}

/// `sync.requested`: an admin asked for a full sync. Every event of the run carries its
/// `sync_id` as `correlation_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncRequested {
    pub sync_id: Uuid,
}

/// `sync.page_fetched`: one `ListarClientes` page was read and its rows recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncPageFetched {
    pub sync_id: Uuid,
    pub page: u32,
    pub total_pages: u32,
    pub rows: u32,
    pub total_rows: u32,
}

/// `sync.completed`: every page was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncCompleted {
    pub sync_id: Uuid,
    pub pages: u32,
    pub rows: u32,
}

/// `sync.failed`: the run ended without reading every page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncFailed {
    pub sync_id: Uuid,
    pub reason: String,
}

/// `sync.deactivation_confirmed`: an admin confirmed the deactivation a completed sync's guard
/// blocked (more than max(5, 20%) of the active users missing from the listing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeactivationConfirmed {
    pub sync_id: Uuid,
}

/// `error.archived`: an admin set an import error aside; a later failing event of the same record
/// and kind reopens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorArchived {
    pub error_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a replay does with what it rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayMode {
    /// Build aside, then swap into the live projections.
    Rebuild,
    /// Build aside, compare with live, change nothing.
    DryRun,
    /// Build a past state aside (`--until`) and keep it for inspection.
    PastState,
}

/// Which part of the log a replay folds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayScope {
    /// One tenant, or every tenant when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Uuid>,
    /// `--until` as given (an RFC 3339 instant or an offset), when the replay stops early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `operator.replay_started`: an operator began folding the log aside. One per tenant in scope,
/// so each tenant's history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayStarted {
    pub replay_id: Uuid,
    pub mode: ReplayMode,
    pub scope: ReplayScope,
}

/// What a replay found or changed, counted against the live projections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayCounts {
    pub events_read: u64,
    pub events_applied: u64,
    pub users_created: u64,
    pub users_updated: u64,
    pub users_deactivated: u64,
    pub users_reactivated: u64,
    pub users_removed: u64,
    pub errors_opened: u64,
    pub errors_resolved: u64,
    pub errors_changed: u64,
}

/// `operator.replay_finished`: the replay ended (`completed`, or `failed` with the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayFinished {
    pub replay_id: Uuid,
    pub mode: ReplayMode,
    pub scope: ReplayScope,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub counts: ReplayCounts,
    pub duration_ms: u64,
}

/// A log record that is not a v1 envelope of this catalog.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON event envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("schema_version {0} is newer than this projector understands ({SCHEMA_VERSION})")]
    UnsupportedVersion(u16),
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises to JSON")
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(DecodeError::Malformed)?;
        if envelope.schema_version > SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion(envelope.schema_version));
        }
        Ok(envelope)
    }

    pub fn type_name(&self) -> &'static str {
        self.event.type_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Envelope {
        Envelope {
            id: Uuid::nil(),
            schema_version: SCHEMA_VERSION,
            tenant_id: Uuid::nil(),
            integration_id: Uuid::nil(),
            occurred_at: DateTime::UNIX_EPOCH,
            recorded_at: DateTime::UNIX_EPOCH,
            actor: Actor { kind: ActorKind::System, id: None, name: None, email: None },
            subject: Some("42".into()),
            correlation_id: None,
            causation_id: None,
            event: Event::TagSet(TagSet { tag: "Espresso".into() }),
        }
    }

    #[test]
    fn envelope_carries_type_and_payload_at_top_level() {
        let value: Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert_eq!(value["type"], "integration.tag_set");
        assert_eq!(value["payload"], json!({"tag": "Espresso"}));
        assert_eq!(value["subject"], "42");
    }

    #[test]
    fn decode_round_trips_and_rejects_future_versions() {
        let envelope = sample();
        assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
        let mut future: Value = serde_json::from_slice(&envelope.encode()).unwrap();
        future["schema_version"] = json!(SCHEMA_VERSION + 1);
        let bytes = serde_json::to_vec(&future).unwrap();
        assert!(matches!(Envelope::decode(&bytes), Err(DecodeError::UnsupportedVersion(2))));
        assert!(matches!(Envelope::decode(b"{}"), Err(DecodeError::Malformed(_))));
    }
}
