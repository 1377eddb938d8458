//! Admin commands of the integrations centre. Each accepted command is one event with the caller
//! as actor; the answer is 202 once the broker acknowledged it (the projector applies it within
//! moments). Secrets are sealed before they leave this process and never echoed.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use omie_client::OmieError;
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::{
    Actor, ActorKind, ConnectionOutcome, ConnectionTested, CredentialsSet, DeactivationConfirmed, Envelope,
    ErrorArchived, Event, SyncRequested, TagSet, Template, TemplateSet, WebhookTokenRotated, ids,
};
use omie_sync_platform::auth::Caller;
use omie_sync_platform::http::JsonObject;
use omie_sync_platform::openapi::{BodyRefusals, Refusals};
use omie_sync_platform::problem::Problem;
use omie_sync_platform::secrets::mask;
use omie_sync_store::{errors, integrations, sync_runs};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, FieldError};

const MAX_TAG_CHARS: usize = 100;
const MAX_SECRET_CHARS: usize = 256;
const MAX_ARCHIVE_REASON_CHARS: usize = 500;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/v1/integrations/omie/credentials", web::put().to(set_credentials))
        .route("/api/v1/integrations/omie/tag", web::put().to(set_tag))
        .route("/api/v1/integrations/omie/template", web::put().to(set_template))
        .route("/api/v1/integrations/omie/webhook-token", web::post().to(rotate_webhook_token))
        .route("/api/v1/integrations/omie/test-connection", web::post().to(test_connection))
        .route("/api/v1/integrations/omie/sync", web::post().to(start_sync))
        .route("/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation", web::post().to(confirm_deactivation))
        .route("/api/v1/errors/{error_id}/archive", web::post().to(archive_error));
}

#[derive(Deserialize, ToSchema)]
pub struct CredentialsCommand {
    /// Omie's App Key: 1 to 64 letters or digits.
    #[serde(default)]
    #[schema(example = "3188245610231")]
    app_key: String,
    /// Omie's App Secret: sealed before it enters the log, never shown again.
    #[serde(default)]
    #[schema(value_type = String, format = Password)]
    app_secret: SecretString,
}

#[derive(Deserialize, ToSchema)]
pub struct ArchiveCommand {
    /// Why the error is set aside (up to 500 characters); shown in the history.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct TagCommand {
    /// The Omie tag that marks records to import (case-insensitive), 1 to 100 characters.
    #[serde(default)]
    #[schema(example = "Espresso")]
    tag: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TemplateCommand {
    /// The only template for Omie: `users`.
    #[serde(default)]
    #[schema(example = "users")]
    template: String,
}

/// A command recorded in the event log; the projections follow within moments.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "accepted")]
    status: &'static str,
    event_id: Uuid,
}

impl Accepted {
    fn new(event_id: Uuid) -> Accepted {
        Accepted { status: "accepted", event_id }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenRotated {
    #[schema(example = "accepted")]
    status: &'static str,
    event_id: Uuid,
    /// The URL to paste into Omie, token included; shown this once.
    webhook_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionTestResult {
    /// `ok`, `invalid_credentials`, `omie_unavailable` or `blocked`.
    #[schema(example = "ok")]
    outcome: &'static str,
    /// What Omie said.
    detail: String,
    /// Until when Omie blocks the API, for `blocked`.
    blocked_until: Option<DateTime<Utc>>,
    event_id: Uuid,
}

#[derive(Serialize, ToSchema)]
pub struct SyncStarted {
    #[schema(example = "accepted")]
    status: &'static str,
    /// Follow it at the projector's `GET /api/v1/syncs/{sync_id}`.
    sync_id: Uuid,
    event_id: Uuid,
}

/// Stores the Omie App Key and App Secret (the secret sealed, never shown again).
#[utoipa::path(
    put, path = "/api/v1/integrations/omie/credentials", tag = "integration", security(("bearer" = [])),
    request_body = CredentialsCommand,
    responses(
        (status = 202, body = Accepted),
        BodyRefusals,
        (status = 409, description = "`app-key-in-use`: another company uses this app key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation-failed`: `errors` names each field and what it must be", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
pub(crate) async fn set_credentials(
    caller: Caller,
    state: web::Data<AppState>,
    JsonObject(command): JsonObject<CredentialsCommand>,
) -> Result<HttpResponse, ApiError> {
    let app_key = command.app_key.trim().to_owned();
    let secret = command.app_secret.expose_secret().trim();
    let mut problems = Vec::new();
    if app_key.is_empty() || app_key.len() > 64 || !app_key.chars().all(|c| c.is_ascii_alphanumeric()) {
        problems.push(FieldError { field: "app_key", message: "the Omie App Key: 1 to 64 letters or digits".into() });
    }
    if secret.is_empty() || secret.len() > MAX_SECRET_CHARS {
        problems.push(FieldError {
            field: "app_secret",
            message: format!("the Omie App Secret: 1 to {MAX_SECRET_CHARS} characters"),
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let mut conn = state.connection().await?;
    if let Some(owner) = integrations::owner_of_app_key(&mut conn, &app_key).await?
        && owner != caller.tenant_id()
    {
        return Err(ApiError::AppKeyInUse);
    }
    drop(conn);
    let app_secret_sealed = state.sealer.seal(caller.tenant_id(), &SecretString::from(secret));
    record(&state, &caller, Event::CredentialsSet(CredentialsSet { app_key, app_secret_sealed })).await
}

/// Sets the Omie tag that marks the records to import.
#[utoipa::path(
    put, path = "/api/v1/integrations/omie/tag", tag = "integration", security(("bearer" = [])),
    request_body = TagCommand,
    responses((status = 202, body = Accepted), BodyRefusals, (status = 422, description = "`validation-failed`: `errors` names each field and what it must be", body = Problem, content_type = "application/problem+json"), Refusals)
)]
pub(crate) async fn set_tag(
    caller: Caller,
    state: web::Data<AppState>,
    JsonObject(command): JsonObject<TagCommand>,
) -> Result<HttpResponse, ApiError> {
    let tag = command.tag.trim().to_owned();
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        return Err(ApiError::validation("tag", format!("the Omie tag name: 1 to {MAX_TAG_CHARS} characters")));
    }
    record(&state, &caller, Event::TagSet(TagSet { tag })).await
}

/// Sets the import template (`users`).
#[utoipa::path(
    put, path = "/api/v1/integrations/omie/template", tag = "integration", security(("bearer" = [])),
    request_body = TemplateCommand,
    responses((status = 202, body = Accepted), BodyRefusals, (status = 422, description = "`validation-failed`: `errors` names each field and what it must be", body = Problem, content_type = "application/problem+json"), Refusals)
)]
pub(crate) async fn set_template(
    caller: Caller,
    state: web::Data<AppState>,
    JsonObject(command): JsonObject<TemplateCommand>,
) -> Result<HttpResponse, ApiError> {
    let template = match command.template.trim().to_lowercase().as_str() {
        "users" => Template::Users,
        _ => return Err(ApiError::validation("template", "the only template for Omie is \"users\"")),
    };
    record(&state, &caller, Event::TemplateSet(TemplateSet { template })).await
}

/// Issues a new webhook token. It is shown once, inside the URL to paste into Omie.
#[utoipa::path(
    post, path = "/api/v1/integrations/omie/webhook-token", tag = "integration", security(("bearer" = [])),
    responses((status = 201, body = TokenRotated), Refusals)
)]
pub(crate) async fn rotate_webhook_token(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
    let token_sealed = state.sealer.seal(caller.tenant_id(), &token);
    let token_masked = Some(mask(token.expose_secret()));
    let envelope =
        command_envelope(&caller, Event::WebhookTokenRotated(WebhookTokenRotated { token_sealed, token_masked }));
    append(&state, &envelope).await?;
    let webhook_url = format!(
        "{}/api/v1/webhooks/omie/users?token={}",
        state.public_base_url.trim_end_matches('/'),
        token.expose_secret()
    );
    Ok(HttpResponse::Created().json(TokenRotated { status: "accepted", event_id: envelope.id, webhook_url }))
}

/// Calls Omie's `ListarClientes` (one row) with the stored keys and records what happened.
/// Answers 200 with the outcome whatever Omie said: the test itself succeeded.
#[utoipa::path(
    post, path = "/api/v1/integrations/omie/test-connection", tag = "integration", security(("bearer" = [])),
    responses(
        (status = 200, body = ConnectionTestResult),
        (status = 409, description = "`credentials-missing`: set the App Key and App Secret first", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
pub(crate) async fn test_connection(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let credentials = stored_credentials(&state, caller.tenant_id()).await?;
    let probe = omie_client::ListarClientes::page(1, 1);
    let (outcome, detail, blocked_until) = match state.omie.listar_clientes(&credentials, &probe).await {
        Ok(_) => (ConnectionOutcome::Ok, "Omie accepted the App Key and App Secret".to_owned(), None),
        Err(OmieError::InvalidCredentials(message)) => (ConnectionOutcome::InvalidCredentials, message, None),
        Err(OmieError::Blocked(duration)) => {
            let until = Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default();
            (ConnectionOutcome::Blocked, format!("Omie blocked the API for this app until {until}"), Some(until))
        }
        Err(OmieError::Redundant(wait)) => (
            ConnectionOutcome::OmieUnavailable,
            format!("Omie refused a repeat of the same call; test again in {} s", wait.as_secs() + 1),
            None,
        ),
        Err(other) => (ConnectionOutcome::OmieUnavailable, other.to_string(), None),
    };
    let tested = ConnectionTested { outcome, detail: detail.clone(), blocked_until };
    let envelope = command_envelope(&caller, Event::ConnectionTested(tested));
    append(&state, &envelope).await?;
    Ok(HttpResponse::Ok().json(ConnectionTestResult {
        outcome: outcome.as_str(),
        detail,
        blocked_until,
        event_id: envelope.id,
    }))
}

/// Starts a full sync: 202 with its id, or 409 with the run already going.
#[utoipa::path(
    post, path = "/api/v1/integrations/omie/sync", tag = "syncs", security(("bearer" = [])),
    responses(
        (status = 202, body = SyncStarted),
        (status = 409, description = "`sync-running` (with the running `sync_id`) or `credentials-missing`", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
pub(crate) async fn start_sync(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id();
    let credentials = stored_credentials(&state, tenant).await?;
    // The projection also knows runs a restart interrupted; those that could not be settled at
    // start (the broker was down then) are settled now instead of blocking syncs for good.
    let mut conn = state.connection().await?;
    let projected = sync_runs::running(&mut conn, tenant).await?;
    drop(conn);
    if let Some(run) = projected {
        if state.syncs.running_here(tenant) == Some(run.id) {
            return Err(ApiError::SyncRunning(run.id));
        }
        append(&state, &state.syncs.interrupted(tenant, run.id)).await?;
    }
    let sync_id = Uuid::now_v7();
    state.syncs.claim(tenant, sync_id).map_err(ApiError::SyncRunning)?;
    let mut envelope = command_envelope(&caller, Event::SyncRequested(SyncRequested { sync_id }));
    envelope.correlation_id = Some(sync_id);
    if let Err(error) = append(&state, &envelope).await {
        state.syncs.release(tenant);
        return Err(error);
    }
    state.syncs.spawn(tenant, envelope.integration_id, sync_id, credentials);
    Ok(HttpResponse::Accepted().json(SyncStarted { status: "accepted", sync_id, event_id: envelope.id }))
}

/// Confirms the deactivation a completed sync's guard blocked (audited as the caller's action).
#[utoipa::path(
    post, path = "/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation", tag = "syncs", security(("bearer" = [])),
    params(("sync_id" = Uuid, Path, description = "The completed sync whose deactivation was blocked")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, description = "`invalid-request`: the id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: no such sync for this company", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation-failed`: the sync has not completed, or blocked nothing that is still to confirm", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
pub(crate) async fn confirm_deactivation(
    caller: Caller,
    state: web::Data<AppState>,
    sync_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let sync_id = sync_id.into_inner();
    let mut conn = state.connection().await?;
    let tenant = caller.tenant_id();
    let run = sync_runs::find(&mut conn, tenant, sync_id).await?.ok_or(ApiError::UnknownSync)?;
    if run.status != sync_runs::COMPLETED {
        return Err(ApiError::validation("sync_id", "only a completed sync's deactivation can be confirmed"));
    }
    let guard = errors::find(&mut conn, tenant, ids::deactivation_guard_error_id(tenant, sync_id)).await?;
    drop(conn);
    if guard.is_none_or(|error| error.status == errors::STATUS_RESOLVED) {
        return Err(ApiError::validation(
            "sync_id",
            "this sync blocked no deactivation, or it was confirmed already: there is nothing to confirm",
        ));
    }
    let mut envelope = command_envelope(&caller, Event::DeactivationConfirmed(DeactivationConfirmed { sync_id }));
    envelope.correlation_id = Some(sync_id);
    append(&state, &envelope).await?;
    Ok(HttpResponse::Accepted().json(Accepted::new(envelope.id)))
}

/// Sets an import error aside (audited). Archiving an archived error again changes nothing; a
/// later failing event of the same record and kind reopens it.
#[utoipa::path(
    post, path = "/api/v1/errors/{error_id}/archive", tag = "errors", security(("bearer" = [])),
    params(("error_id" = Uuid, Path, description = "The error's id")),
    request_body = ArchiveCommand,
    responses(
        (status = 202, body = Accepted),
        BodyRefusals,
        (status = 404, description = "`not-found`: no such error for this company", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation-failed`: `errors` names each field and what it must be", body = Problem, content_type = "application/problem+json"),
        Refusals,
    )
)]
pub(crate) async fn archive_error(
    caller: Caller,
    state: web::Data<AppState>,
    error_id: web::Path<Uuid>,
    JsonObject(command): JsonObject<ArchiveCommand>,
) -> Result<HttpResponse, ApiError> {
    let error_id = error_id.into_inner();
    let reason = command.reason.map(|reason| reason.trim().to_owned()).filter(|reason| !reason.is_empty());
    if reason.as_ref().is_some_and(|reason| reason.chars().count() > MAX_ARCHIVE_REASON_CHARS) {
        return Err(ApiError::validation("reason", format!("at most {MAX_ARCHIVE_REASON_CHARS} characters")));
    }
    let mut conn = state.connection().await?;
    errors::find(&mut conn, caller.tenant_id(), error_id).await?.ok_or(ApiError::UnknownImportError)?;
    drop(conn);
    record(&state, &caller, Event::ErrorArchived(ErrorArchived { error_id, reason })).await
}

/// The tenant's Omie keys from the integrations read model, the secret opened.
async fn stored_credentials(state: &AppState, tenant: Uuid) -> Result<omie_client::Credentials, ApiError> {
    let mut conn = state.connection().await?;
    let integration = integrations::by_tenant(&mut conn, tenant).await?;
    let (app_key, sealed) =
        integration.and_then(|row| row.app_key.zip(row.app_secret_sealed)).ok_or(ApiError::CredentialsMissing)?;
    let app_secret = state.sealer.open(tenant, &sealed).map_err(|_| ApiError::CredentialsMissing)?;
    Ok(omie_client::Credentials { app_key, app_secret })
}

async fn record(state: &AppState, caller: &Caller, event: Event) -> Result<HttpResponse, ApiError> {
    let envelope = command_envelope(caller, event);
    append(state, &envelope).await?;
    Ok(HttpResponse::Accepted().json(Accepted::new(envelope.id)))
}

async fn append(state: &AppState, envelope: &Envelope) -> Result<(), ApiError> {
    state.log.append(envelope).await.map_err(|error| {
        tracing::warn!(%error, event_type = envelope.type_name(), "command not recorded");
        ApiError::BrokerUnavailable
    })?;
    tracing::info!(event_id = %envelope.id, event_type = envelope.type_name(), tenant_id = %envelope.tenant_id, "command recorded");
    Ok(())
}

fn command_envelope(caller: &Caller, event: Event) -> Envelope {
    let now = Utc::now();
    let claims = &caller.0;
    Envelope {
        id: Uuid::now_v7(),
        schema_version: SCHEMA_VERSION,
        tenant_id: claims.tenant_id,
        integration_id: ids::integration_id(claims.tenant_id),
        occurred_at: now,
        recorded_at: now,
        actor: Actor {
            kind: ActorKind::EspressoUser,
            id: Some(claims.sub.clone()),
            name: claims.name.clone(),
            email: claims.email.clone(),
        },
        subject: None,
        correlation_id: None,
        causation_id: None,
        event,
    }
}
