//! `POST /api/v1/webhooks/omie/users`, answered as the README's webhook table says. The handler records facts
//! only; the tag filter and every user decision belong to the projector.

// utoipa's `params(Query)` expands to a path the lint flags as needlessly qualified.
#![allow(unused_qualifications)]

use std::num::NonZeroU32;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::omie::{TOPIC_CHANGED, TOPIC_DELETED, TOPIC_INCLUDED, WebhookBody, omie_code_of};
use omie_sync_events::{
    Actor, ActorKind, ClientDeleted, ClientUpserted, Envelope, Event, RecordSource, UnprocessableReason, WebhookMeta,
    WebhookUnprocessable, ids,
};
use omie_sync_platform::problem::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::registry::Integration;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The integration's webhook token, when one was rotated (part of the URL pasted into Omie).
    token: Option<String>,
}

/// The answer Omie gets: a ping's pong, or the event id the webhook was recorded as.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `pong` or `recorded`.
    #[schema(example = "recorded")]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<Uuid>,
}

/// Per-app-key rate limiting. Only known app keys are counted, so the key space stays bounded.
pub struct WebhookLimiter {
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

impl WebhookLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> WebhookLimiter {
        WebhookLimiter { limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)) }
    }

    fn check(&self, tenant_id: Uuid) -> Result<(), ApiError> {
        self.limiter.check_key(&tenant_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited { retry_after_seconds: wait.as_secs() + 1 }
        })
    }
}

/// Omie's webhook: recorded in the event log before the 200, so an acknowledged webhook is never
/// lost, and deduplicated on `messageId`. A body that names an unknown record shape is recorded as
/// unprocessable and still answered 200, so Omie does not retry it forever.
#[utoipa::path(
    post, path = "/api/v1/webhooks/omie/users", tag = "webhooks", params(WebhookQuery),
    request_body(content = Object, description = "Omie's webhook body (`messageId`, `topic`, `event`, `author`, `appKey`, …) or its `{\"ping\": \"omie\"}`"),
    responses(
        (status = 200, body = WebhookAnswer),
        (status = 400, description = "`invalid-json`: the body is not a JSON object or not an Omie webhook", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unknown-app-key` (no integration has the body's `appKey`) or `invalid-webhook-token` (`?token=` missing or wrong)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload-too-large`: over `WEBHOOK_BODY_LIMIT_BYTES`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: too many webhooks for this app key; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`broker-unavailable`: the event log did not acknowledge in time; nothing was recorded, retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    request: HttpRequest,
    payload: web::Payload,
    query: web::Query<WebhookQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let answered = answer(&request, payload, &query, &state).await;
    match &answered {
        Ok((outcome, response)) => state.metrics.webhook(outcome, response.status().as_u16()),
        Err(error) => {
            let kind = error.kind();
            state.metrics.webhook(kind.slug, kind.status)
        }
    }
    answered.map(|(_, response)| response)
}

/// The answer, with the outcome it is counted under.
async fn answer(
    request: &HttpRequest,
    payload: web::Payload,
    query: &WebhookQuery,
    state: &AppState,
) -> Result<(&'static str, HttpResponse), ApiError> {
    let bytes = read_limited(request, payload, state.body_limit).await?;
    let raw: Value = serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::InvalidJson(format!("the body is not JSON: {error}")))?;
    if !raw.is_object() {
        return Err(ApiError::InvalidJson("the body must be a JSON object".into()));
    }
    let body = WebhookBody::deserialize(&raw)
        .map_err(|error| ApiError::InvalidJson(format!("the body is not an Omie webhook: {error}")))?;
    if body.ping.is_some() && body.app_key.is_none() {
        return Ok(("pong", HttpResponse::Ok().json(WebhookAnswer { status: "pong", event_id: None })));
    }
    let app_key = body.app_key.as_deref().ok_or(ApiError::MissingAppKey)?;
    let integration = state.registry.lookup(app_key).ok_or_else(|| {
        tracing::debug!("webhook with an unknown app key refused");
        ApiError::UnknownAppKey
    })?;
    if !integration.accepts_token(query.token.as_deref()) {
        tracing::debug!(tenant_id = %integration.tenant_id, "webhook with a missing or wrong token refused");
        return Err(ApiError::InvalidWebhookToken);
    }
    state.limiter.check(integration.tenant_id)?;

    let envelope = to_envelope(&integration, &body, raw, &bytes);
    let message_id = body.message_id.as_deref().unwrap_or_default();
    tracing::Span::current().record("omie.message_id", message_id);
    state.log.append(&envelope).await.map_err(|error| {
        tracing::warn!(%error, event_id = %envelope.id, message_id, "webhook not recorded; answering 503 so Omie retries");
        ApiError::BrokerUnavailable
    })?;
    tracing::info!(event_id = %envelope.id, message_id, event_type = envelope.type_name(), tenant_id = %envelope.tenant_id, "webhook recorded");
    let outcome = match envelope.event {
        Event::WebhookUnprocessable(_) => "unprocessable",
        _ => "recorded",
    };
    Ok((outcome, HttpResponse::Ok().json(WebhookAnswer { status: "recorded", event_id: Some(envelope.id) })))
}

/// Reads the body up to `limit` bytes; a declared or actual larger body is a 413.
async fn read_limited(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::InvalidJson(format!("the body could not be read: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a webhook of a known tenant into the fact to record.
pub fn to_envelope(integration: &Integration, body: &WebhookBody, raw: Value, bytes: &[u8]) -> Envelope {
    let tenant_id = integration.tenant_id;
    let id = match body.message_id.as_deref() {
        Some(message_id) => ids::webhook_event_id(tenant_id, message_id),
        None => ids::anonymous_webhook_event_id(tenant_id, bytes),
    };
    let (event, subject) = classify(body, raw);
    let now = Utc::now();
    Envelope {
        id,
        schema_version: SCHEMA_VERSION,
        tenant_id,
        integration_id: integration.integration_id,
        occurred_at: now,
        recorded_at: now,
        actor: omie_author(body.author.as_ref()),
        subject: subject.map(|code| code.to_string()),
        correlation_id: None,
        causation_id: None,
        event,
    }
}

/// Which fact a webhook states, and the Omie record it is about.
fn classify(body: &WebhookBody, raw: Value) -> (Event, Option<i64>) {
    let unprocessable = |reason| {
        Event::WebhookUnprocessable(WebhookUnprocessable {
            reason,
            body: raw.clone(),
            message_id: body.message_id.clone(),
            topic: body.topic.clone(),
        })
    };
    let topic = body.topic.as_deref().unwrap_or_default();
    if ![TOPIC_INCLUDED, TOPIC_CHANGED, TOPIC_DELETED].contains(&topic) {
        return (unprocessable(UnprocessableReason::UnsupportedTopic), None);
    }
    let Some(record) = body.event.as_ref().filter(|event| event.is_object()) else {
        return (unprocessable(UnprocessableReason::EventNotObject), None);
    };
    let Some(code) = omie_code_of(record) else {
        return (unprocessable(UnprocessableReason::MissingOmieCode), None);
    };
    let meta = WebhookMeta {
        message_id: body.message_id.clone(),
        topic: topic.to_owned(),
        author: body.author.clone(),
        app_hash: body.app_hash.clone(),
        origin: body.origin.clone(),
    };
    let event = if topic == TOPIC_DELETED {
        Event::ClientDeleted(ClientDeleted { record: record.clone(), webhook: meta })
    } else {
        Event::ClientUpserted(ClientUpserted {
            source: RecordSource::Webhook,
            record: record.clone(),
            webhook: Some(meta),
        })
    };
    (event, Some(code))
}

fn omie_author(author: Option<&Value>) -> Actor {
    let field = |name: &str| {
        author.and_then(|author| author.get(name)).and_then(|value| match value {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    };
    Actor { kind: ActorKind::OmieUser, id: field("userId"), name: field("name"), email: field("email") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: Value) -> (WebhookBody, Value) {
        (WebhookBody::deserialize(&value).unwrap(), value)
    }

    #[test]
    fn classifies_the_three_topics_and_the_unusable() {
        let (included, raw) = body(json!({"topic": TOPIC_INCLUDED, "event": {"codigo_cliente_omie": "12"}}));
        assert!(matches!(classify(&included, raw), (Event::ClientUpserted(_), Some(12))));
        let (deleted, raw) = body(json!({"topic": TOPIC_DELETED, "event": {"codigo_cliente_omie": 13}}));
        assert!(matches!(classify(&deleted, raw), (Event::ClientDeleted(_), Some(13))));
        let cases = [
            (json!({"topic": "Financas.ContaPagar.Incluido", "event": []}), UnprocessableReason::UnsupportedTopic),
            (json!({"event": {"codigo_cliente_omie": 1}}), UnprocessableReason::UnsupportedTopic),
            (json!({"topic": TOPIC_CHANGED, "event": [1]}), UnprocessableReason::EventNotObject),
            (json!({"topic": TOPIC_CHANGED}), UnprocessableReason::EventNotObject),
            (json!({"topic": TOPIC_CHANGED, "event": {"razao_social": "X"}}), UnprocessableReason::MissingOmieCode),
            (
                json!({"topic": TOPIC_CHANGED, "event": {"codigo_cliente_omie": "abc"}}),
                UnprocessableReason::MissingOmieCode,
            ),
        ];
        for (value, expected) in cases {
            let (parsed, raw) = body(value.clone());
            match classify(&parsed, raw) {
                (Event::WebhookUnprocessable(unprocessable), None) => {
                    assert_eq!(unprocessable.reason, expected, "{value}")
                }
                other => panic!("{value} classified as {other:?}"),
            }
        }
    }

    #[test]
    fn the_author_becomes_the_actor() {
        let actor = omie_author(Some(&json!({"email": "ana@x.com.br", "name": "Ana", "userId": 4512})));
        assert_eq!(actor.kind, ActorKind::OmieUser);
        assert_eq!(actor.id.as_deref(), Some("4512"));
        assert_eq!(actor.name.as_deref(), Some("Ana"));
        assert_eq!(omie_author(Some(&json!("nobody"))).id, None);
    }
}
