//! Start-up checks of the configuration both services share. Each error names the variable and
//! what to do, and never repeats a secret's value.

use secrecy::{ExposeSecret, SecretString};

use crate::auth::MIN_SECRET_BYTES;
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
