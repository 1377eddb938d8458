//! Typed configuration from the environment, validated at start (see the README's table).

use clap::Parser;
use omie_sync_platform::config::{self as checks, ConfigError, SharedConfig, secret};
use omie_sync_platform::secrets::{DEV_SECRETS_KEY, Sealer};
use secrecy::SecretString;

/// Validates Omie webhooks and admin commands and records them as events in Kafka.
#[derive(Parser, Clone)]
#[command(version)]
pub struct IngressConfig {
    #[command(flatten)]
    pub shared: SharedConfig,
    #[arg(long, env = "INGRESS_HOST", value_name = "INGRESS_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port; 0 picks a free one.
    #[arg(long, env = "INGRESS_PORT", value_name = "INGRESS_PORT", default_value_t = 8080)]
    pub port: u16,
    #[arg(long, env = "DATABASE_POOL_SIZE", value_name = "DATABASE_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pool_size: u32,
    /// AES-256-GCM key (base64 of 32 bytes) sealing app secrets and webhook tokens.
    #[arg(long, env = "SECRETS_KEY", value_name = "SECRETS_KEY", hide_env_values = true, hide_default_value = true,
          default_value = DEV_SECRETS_KEY, value_parser = secret)]
    pub secrets_key: SecretString,
    /// Largest accepted webhook body; keep it below the broker's message size limit.
    #[arg(long, env = "WEBHOOK_BODY_LIMIT_BYTES", value_name = "WEBHOOK_BODY_LIMIT_BYTES", default_value_t = 256 * 1024)]
    pub body_limit: usize,
    /// How long a webhook waits for the broker's acknowledgement before answering 503
    /// (below Omie's HTTP timeout).
    #[arg(long, env = "PRODUCE_TIMEOUT_MS", value_name = "PRODUCE_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub produce_timeout_ms: u64,
    /// Sustained webhooks per second per app key.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_PER_SECOND", value_name = "WEBHOOK_RATE_LIMIT_PER_SECOND", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_second: u32,
    /// Webhooks per app key that may arrive at once above the sustained rate.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_BURST", value_name = "WEBHOOK_RATE_LIMIT_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,
    /// How often the app-key registry is re-read from the `integrations` read model.
    #[arg(long, env = "REGISTRY_REFRESH_MS", value_name = "REGISTRY_REFRESH_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..))]
    pub registry_refresh_ms: u64,
    /// Omie's API (omie-sim's address in development and tests).
    #[arg(long, env = "OMIE_API_URL", value_name = "OMIE_API_URL", default_value = "https://app.omie.com.br")]
    pub omie_api_url: String,
    /// Timeout of one Omie API call.
    #[arg(long, env = "OMIE_TIMEOUT_MS", value_name = "OMIE_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub omie_timeout_ms: u64,
}

impl IngressConfig {
    /// The checks clap cannot make; returns the sealer built from `SECRETS_KEY`.
    pub fn validate(&self) -> Result<Sealer, ConfigError> {
        self.shared.validate()?;
        checks::sealer(&self.secrets_key)
    }
}
