//! Admin commands of the integrations centre. Each accepted command is one event with the caller
//! as actor; the answer is 202 once the broker acknowledged it (the projector applies it within
//! moments). Secrets are sealed before they leave this process and never echoed.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use omie_client::OmieError;
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::{
    Actor, ActorKind, ConnectionOutcome, ConnectionTested, CredentialsSet, DeactivationConfirmed, Envelope, Event,
    SyncRequested, TagSet, Template, TemplateSet, WebhookTokenRotated, ids,
};
use omie_sync_platform::auth::Caller;
use omie_sync_store::{integrations, sync_runs};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, FieldError};

const MAX_TAG_CHARS: usize = 100;
const MAX_SECRET_CHARS: usize = 256;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/v1/integrations/omie/credentials", web::put().to(set_credentials))
        .route("/api/v1/integrations/omie/tag", web::put().to(set_tag))
        .route("/api/v1/integrations/omie/template", web::put().to(set_template))
        .route("/api/v1/integrations/omie/webhook-token", web::post().to(rotate_webhook_token))
        .route("/api/v1/integrations/omie/test-connection", web::post().to(test_connection))
        .route("/api/v1/integrations/omie/sync", web::post().to(start_sync))
        .route("/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation", web::post().to(confirm_deactivation));
}

#[derive(Deserialize)]
pub struct CredentialsCommand {
    #[serde(default)]
    app_key: String,
    #[serde(default)]
    app_secret: SecretString,
}

#[derive(Deserialize)]
pub struct TagCommand {
    #[serde(default)]
    tag: String,
}

#[derive(Deserialize)]
pub struct TemplateCommand {
    #[serde(default)]
    template: String,
}

async fn set_credentials(
    caller: Caller,
    state: web::Data<AppState>,
    command: web::Json<CredentialsCommand>,
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

async fn set_tag(
    caller: Caller,
    state: web::Data<AppState>,
    command: web::Json<TagCommand>,
) -> Result<HttpResponse, ApiError> {
    let tag = command.tag.trim().to_owned();
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        return Err(ApiError::validation("tag", format!("the Omie tag name: 1 to {MAX_TAG_CHARS} characters")));
    }
    record(&state, &caller, Event::TagSet(TagSet { tag })).await
}

async fn set_template(
    caller: Caller,
    state: web::Data<AppState>,
    command: web::Json<TemplateCommand>,
) -> Result<HttpResponse, ApiError> {
    let template = match command.template.trim().to_lowercase().as_str() {
        "users" => Template::Users,
        _ => return Err(ApiError::validation("template", "the only template for Omie is \"users\"")),
    };
    record(&state, &caller, Event::TemplateSet(TemplateSet { template })).await
}

/// Issues a new webhook token. It is shown once, inside the URL to paste into Omie.
async fn rotate_webhook_token(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
    let token_sealed = state.sealer.seal(caller.tenant_id(), &token);
    let envelope = command_envelope(&caller, Event::WebhookTokenRotated(WebhookTokenRotated { token_sealed }));
    append(&state, &envelope).await?;
    let webhook_url = format!(
        "{}/api/v1/webhooks/omie/users?token={}",
        state.public_base_url.trim_end_matches('/'),
        token.expose_secret()
    );
    Ok(HttpResponse::Created().json(json!({"status": "accepted", "event_id": envelope.id, "webhook_url": webhook_url})))
}

/// Calls Omie's `ListarClientes` (one row) with the stored keys and records what happened.
/// Answers 200 with the outcome whatever Omie said: the test itself succeeded.
async fn test_connection(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id();
    let mut conn = state.connection().await?;
    let integration = integrations::by_tenant(&mut conn, tenant).await?;
    drop(conn);
    let (app_key, sealed) =
        integration.and_then(|row| row.app_key.zip(row.app_secret_sealed)).ok_or(ApiError::CredentialsMissing)?;
    let app_secret = state.sealer.open(tenant, &sealed).map_err(|_| ApiError::CredentialsMissing)?;
    let credentials = omie_client::Credentials { app_key, app_secret };
    let probe = omie_client::ListarClientes::page(1, 1);
    let (outcome, detail, blocked_until) = match state.omie.listar_clientes(&credentials, &probe).await {
        Ok(_) => (ConnectionOutcome::Ok, "Omie accepted the App Key and App Secret".to_owned(), None),
        Err(OmieError::InvalidCredentials(message)) => (ConnectionOutcome::InvalidCredentials, message, None),
        Err(OmieError::Blocked(duration)) => {
            let until = Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default();
            (ConnectionOutcome::Blocked, format!("Omie blocked the API for this app until {until}"), Some(until))
        }
        Err(other) => (ConnectionOutcome::OmieUnavailable, other.to_string(), None),
    };
    let tested = ConnectionTested { outcome, detail: detail.clone(), blocked_until };
    let envelope = command_envelope(&caller, Event::ConnectionTested(tested));
    append(&state, &envelope).await?;
    Ok(HttpResponse::Ok().json(json!({
        "outcome": outcome.as_str(),
        "detail": detail,
        "blocked_until": blocked_until,
        "event_id": envelope.id,
    })))
}

/// Starts a full sync: 202 with its id, or 409 with the run already going.
async fn start_sync(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id();
    let credentials = stored_credentials(&state, tenant).await?;
    // The projection also knows runs of a process that has not settled them yet.
    let mut conn = state.connection().await?;
    if let Some(run) = sync_runs::running(&mut conn, tenant).await? {
        return Err(ApiError::SyncRunning(run.id));
    }
    drop(conn);
    let sync_id = Uuid::now_v7();
    state.syncs.claim(tenant, sync_id).map_err(ApiError::SyncRunning)?;
    let mut envelope = command_envelope(&caller, Event::SyncRequested(SyncRequested { sync_id }));
    envelope.correlation_id = Some(sync_id);
    if let Err(error) = append(&state, &envelope).await {
        state.syncs.release(tenant);
        return Err(error);
    }
    state.syncs.spawn(tenant, envelope.integration_id, sync_id, credentials);
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "sync_id": sync_id, "event_id": envelope.id})))
}

/// Confirms the deactivation a completed sync's guard blocked (audited as the caller's action).
async fn confirm_deactivation(
    caller: Caller,
    state: web::Data<AppState>,
    sync_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let sync_id = sync_id.into_inner();
    let mut conn = state.connection().await?;
    let run = sync_runs::find(&mut conn, caller.tenant_id(), sync_id).await?.ok_or(ApiError::UnknownSync)?;
    drop(conn);
    if run.status != sync_runs::COMPLETED {
        return Err(ApiError::validation("sync_id", "only a completed sync's deactivation can be confirmed"));
    }
    let mut envelope = command_envelope(&caller, Event::DeactivationConfirmed(DeactivationConfirmed { sync_id }));
    envelope.correlation_id = Some(sync_id);
    append(&state, &envelope).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "event_id": envelope.id})))
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
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "event_id": envelope.id})))
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
