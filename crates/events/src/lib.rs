//! The event log's contract: the envelope every record carries, the catalog of event types, the
//! Omie webhook model, and the deterministic ids derived from them.
//!
//! The log holds facts, not decisions: payloads keep what Omie sent or what an admin asked, and the
//! projector derives users and errors from them. Evolution rule: add fields, never repurpose them;
//! a breaking change is a new `schema_version` that the projector still reads.

pub mod envelope;
pub mod ids;
pub mod omie;
pub mod schema;

pub use envelope::{
    Actor, ActorKind, ClientDeleted, ClientUpserted, ConnectionOutcome, ConnectionTested, CredentialsSet,
    DeactivationConfirmed, DecodeError, Envelope, ErrorArchived, Event, RecordSource, ReplayCounts, ReplayFinished,
    ReplayMode, ReplayScope, ReplayStarted, SyncCompleted, SyncFailed, SyncPageFetched, SyncRequested, TagSet,
    Template, TemplateSet, UnprocessableReason, WebhookMeta, WebhookTokenRotated, WebhookUnprocessable,
};
