//! Start-up checks of the configuration both services share. Each error names the variable and
//! what to do, and never repeats a secret's value.

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{DEV_JWT_SECRET, MIN_SECRET_BYTES};
use crate::secrets::Sealer;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)")]
    ShortJwtSecret,
    #[error("SECRETS_KEY must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)")]
    BadSecretsKey,
    #[error("DATABASE_URL must be a postgres:// or postgresql:// URL")]
    BadDatabaseUrl,
    #[error("KAFKA_BROKERS must list at least one host:port")]
    NoBrokers,
}

/// The settings both services read, under the same variable names.
#[derive(Args, Clone)]
pub struct SharedConfig {
    /// PostgreSQL: the projections and offsets (ingress reads only `integrations` and `sync_runs`).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/omie_sync_dev"
    )]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", value_name = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// The event log topic.
    #[arg(long, env = "EVENTS_TOPIC", value_name = "EVENTS_TOPIC", default_value = "omie-sync.events.v1")]
    pub events_topic: String,
    /// HS256 secret of the admin/financeiro JWTs (at least 32 bytes).
    #[arg(
        long,
        env = "AUTH_JWT_SECRET",
        value_name = "AUTH_JWT_SECRET",
        hide_env_values = true,
        hide_default_value = true,
        default_value = DEV_JWT_SECRET,
        value_parser = secret
    )]
    pub jwt_secret: SecretString,
    /// How Omie reaches the ingress: the base of the webhook URL the integrations centre shows.
    #[arg(long, env = "PUBLIC_BASE_URL", value_name = "PUBLIC_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub public_base_url: String,
}

impl SharedConfig {
    /// The checks clap cannot make.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_jwt_secret(&self.jwt_secret)?;
        check_database_url(&self.database_url)?;
        check_brokers(&self.kafka_brokers)
    }
}

/// Clap value parser for secrets: never fails, so clap never echoes the value in an error.
pub fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

pub fn check_jwt_secret(secret: &SecretString) -> Result<(), ConfigError> {
    if secret.expose_secret().len() < MIN_SECRET_BYTES {
        return Err(ConfigError::ShortJwtSecret);
    }
    Ok(())
}

pub fn sealer(secrets_key: &SecretString) -> Result<Sealer, ConfigError> {
    Sealer::from_base64_key(secrets_key).map_err(|_| ConfigError::BadSecretsKey)
}

pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !scheme_ok || url.len() <= "postgres://".len() {
        return Err(ConfigError::BadDatabaseUrl);
    }
    Ok(())
}

pub fn check_brokers(brokers: &str) -> Result<(), ConfigError> {
    if !brokers.split(',').any(|broker| broker.trim().contains(':')) {
        return Err(ConfigError::NoBrokers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable_and_hide_the_value() {
        let error = check_jwt_secret(&SecretString::from("short-secret")).unwrap_err();
        assert!(error.to_string().contains("AUTH_JWT_SECRET") && !error.to_string().contains("short-secret"));
        assert_eq!(sealer(&SecretString::from("c2hvcnQ=")).err(), Some(ConfigError::BadSecretsKey));
        assert_eq!(check_database_url("notaurl"), Err(ConfigError::BadDatabaseUrl));
        assert_eq!(check_database_url("postgres://"), Err(ConfigError::BadDatabaseUrl));
        assert!(check_database_url("postgres://postgres@127.0.0.1:5432/x").is_ok());
        assert_eq!(check_brokers(""), Err(ConfigError::NoBrokers));
        assert_eq!(check_brokers(" , "), Err(ConfigError::NoBrokers));
        assert!(check_brokers("a:9092,b:9092").is_ok());
    }
}
