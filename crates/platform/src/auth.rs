//! JWT bearer auth for admin commands and reads: HS256, tenant and role from the claims.
//! Only `admin` and `financeiro` may use the integrations centre; every other role gets 403.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, ResponseError, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::{Problem, types};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Financeiro,
    #[serde(other)]
    Other,
}

impl Role {
    fn may_manage_integrations(self) -> bool {
        matches!(self, Role::Admin | Role::Financeiro)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The Espresso user id.
    pub sub: String,
    pub tenant_id: Uuid,
    pub role: Role,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub exp: i64,
}

/// Verifies and mints tokens with one shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Minimum secret length: HS256 with a short secret is brute-forceable.
pub const MIN_SECRET_BYTES: usize = 32;

/// The default of `AUTH_JWT_SECRET`, for a developer machine only; `make run` uses it to mint
/// the demo token.
pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-0123456789";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the bearer token is invalid or expired: {0}")]
    Invalid(String),
    #[error("role `{0}` may not use the integrations centre; ask an admin or financeiro user")]
    Forbidden(String),
}

impl ResponseError for AuthError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        self.problem().to_response()
    }
}

impl AuthError {
    fn problem(&self) -> Problem {
        match self {
            AuthError::Missing | AuthError::Invalid(_) => Problem::new(types::UNAUTHENTICATED, self.to_string()),
            AuthError::Forbidden(_) => Problem::new(types::FORBIDDEN, self.to_string()),
        }
    }
}

impl JwtKeys {
    pub fn new(secret: &SecretString) -> JwtKeys {
        let bytes = secret.expose_secret().as_bytes();
        JwtKeys { encoding: EncodingKey::from_secret(bytes), decoding: DecodingKey::from_secret(bytes) }
    }

    pub fn mint(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serialisable claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let validation = Validation::new(Algorithm::HS256);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|error| AuthError::Invalid(error.to_string()))
    }
}

/// An authenticated caller with a role allowed to manage integrations. Needs `web::Data<JwtKeys>`.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }
}

impl FromRequest for Caller {
    type Error = AuthError;
    type Future = Ready<Result<Caller, AuthError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<Caller, AuthError> {
    let keys = request
        .app_data::<web::Data<JwtKeys>>()
        .expect("JwtKeys is registered as app data by every service that uses Caller");
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AuthError::Missing)?;
    let claims = keys.verify(token.trim())?;
    if !claims.role.may_manage_integrations() {
        return Err(AuthError::Forbidden(format!("{:?}", claims.role).to_lowercase()));
    }
    Ok(Caller(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from("x".repeat(MIN_SECRET_BYTES)))
    }

    fn claims(role: Role, exp: i64) -> Claims {
        Claims { sub: "u1".into(), tenant_id: Uuid::from_u128(7), role, name: None, email: None, exp }
    }

    #[test]
    fn verifies_own_tokens_and_rejects_others() {
        let far = chrono::Utc::now().timestamp() + 3600;
        let token = keys().mint(&claims(Role::Financeiro, far));
        assert_eq!(keys().verify(&token).unwrap().tenant_id, Uuid::from_u128(7));
        let other = JwtKeys::new(&SecretString::from("y".repeat(MIN_SECRET_BYTES)));
        assert!(other.verify(&token).is_err());
        let expired = keys().mint(&claims(Role::Admin, 1_000));
        assert!(keys().verify(&expired).is_err());
    }

    #[test]
    fn unknown_roles_decode_as_other_and_are_refused() {
        let role: Role = serde_json::from_str("\"viewer\"").unwrap();
        assert_eq!(role, Role::Other);
        assert!(!role.may_manage_integrations());
        assert!(Role::Admin.may_manage_integrations());
    }
}
