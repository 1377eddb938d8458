//! The OpenAPI documents: both services generate theirs from the code (utoipa) and serve it at
//! `/openapi.json`; `schemas/openapi/` holds the checked-in copies a drift test compares.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify};

use crate::problem::Problem;

/// The scheme every `security(("bearer" = []))` refers to: an HS256 JWT carrying the tenant.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("HS256 JWT with `tenant_id` and `role` (`admin` or `financeiro`)"))
                    .build(),
            ),
        );
    }
}

/// The refusals every authenticated route may answer, whatever it does.
#[derive(IntoResponses)]
pub enum Refusals {
    #[response(
        status = 401,
        description = "`unauthenticated`: no bearer token, or a bad or expired one",
        content_type = "application/problem+json"
    )]
    Unauthenticated(Problem),
    #[response(
        status = 403,
        description = "`forbidden`: the token's role is neither `admin` nor `financeiro`",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    #[response(
        status = 503,
        description = "`service-unavailable`: the database is down; retry after `Retry-After` seconds",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// The refusals of a command's JSON body (`platform::http::JsonObject` and its `JsonConfig`).
#[derive(IntoResponses)]
pub enum BodyRefusals {
    #[response(
        status = 400,
        description = "`invalid-request`: the body is not the JSON this command takes",
        content_type = "application/problem+json"
    )]
    InvalidRequest(Problem),
    #[response(
        status = 413,
        description = "`payload-too-large`: the body is over 64 KiB",
        content_type = "application/problem+json"
    )]
    PayloadTooLarge(Problem),
}

/// The document as served and checked in: pretty JSON with a trailing newline.
pub fn render(document: &OpenApi) -> String {
    let mut text = document.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// Serves `document` at `GET /openapi.json` (open, like health).
pub fn serve(config: &mut web::ServiceConfig, document: &OpenApi) {
    let body: Arc<str> = render(document).into();
    config.route(
        "/openapi.json",
        web::get().to(move || {
            let body = Arc::clone(&body);
            async move { HttpResponse::Ok().content_type("application/json").body(body.to_string()) }
        }),
    );
}
