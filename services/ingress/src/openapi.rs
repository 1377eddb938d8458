//! The ingress's OpenAPI document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use omie_sync_platform::openapi::BearerAuth;
use omie_sync_platform::problem::Problem;
use utoipa::OpenApi;

use crate::{admin, webhook};

#[derive(OpenApi)]
#[openapi(
    info(title = "omie-sync ingress: webhooks and admin commands", description = "Receives Omie's webhooks and the integrations centre's commands and records each as an event in the log. Admin routes need a bearer JWT (roles `admin`, `financeiro`); the tenant comes from the token. Errors are `application/problem+json` (see `schemas/problems.md`)."),
    paths(
        omie_sync_platform::http::health,
        omie_sync_platform::http::ready,
        omie_sync_platform::metrics::serve,
        webhook::receive,
        admin::set_credentials,
        admin::set_tag,
        admin::set_template,
        admin::rotate_webhook_token,
        admin::test_connection,
        admin::start_sync,
        admin::confirm_deactivation,
        admin::archive_error,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "ops", description = "Open: liveness, readiness, metrics, this document"),
        (name = "webhooks", description = "Omie's deliveries: authenticated by the body's `appKey` and, optionally, `?token=`"),
        (name = "integration"), (name = "syncs"), (name = "errors"),
    )
)]
pub struct ApiDoc;
