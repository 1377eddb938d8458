//! JSON Schema of every event and of the Omie webhook body, generated from the Rust types.
//! `schemas/` holds the committed copies; a test fails when they drift from the code.

use schemars::{JsonSchema, Schema, schema_for};

use crate::envelope::{
    ClientDeleted, ClientUpserted, ConnectionTested, CredentialsSet, DeactivationConfirmed, Envelope, ErrorArchived,
    ReplayFinished, ReplayStarted, SyncCompleted, SyncFailed, SyncPageFetched, SyncRequested, TagSet, TemplateSet,
    WebhookTokenRotated, WebhookUnprocessable,
};
use crate::omie::{OmieClient, WebhookBody};

/// (file name, schema) for everything published under `schemas/`.
pub fn all() -> Vec<(String, Schema)> {
    fn entry<T: JsonSchema>(name: &str) -> (String, Schema) {
        (format!("{name}.schema.json"), schema_for!(T))
    }
    vec![
        entry::<Envelope>("envelope"),
        entry::<ClientUpserted>("events/omie.client.upserted"),
        entry::<ClientDeleted>("events/omie.client.deleted"),
        entry::<WebhookUnprocessable>("events/omie.webhook.unprocessable"),
        entry::<CredentialsSet>("events/integration.credentials_set"),
        entry::<TagSet>("events/integration.tag_set"),
        entry::<TemplateSet>("events/integration.template_set"),
        entry::<WebhookTokenRotated>("events/integration.webhook_token_rotated"),
        entry::<ConnectionTested>("events/integration.connection_tested"),
        entry::<SyncRequested>("events/sync.requested"),
        entry::<SyncPageFetched>("events/sync.page_fetched"),
        entry::<SyncCompleted>("events/sync.completed"),
        entry::<SyncFailed>("events/sync.failed"),
        entry::<DeactivationConfirmed>("events/sync.deactivation_confirmed"),
        entry::<ErrorArchived>("events/error.archived"),
        entry::<ReplayStarted>("events/operator.replay_started"),
        entry::<ReplayFinished>("events/operator.replay_finished"),
        entry::<WebhookBody>("omie/webhook-body"),
        entry::<OmieClient>("omie/cliente-fornecedor"),
    ]
}

/// Pretty JSON with a trailing newline, as committed.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serialises to JSON");
    text.push('\n');
    text
}
