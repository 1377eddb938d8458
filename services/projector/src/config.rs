//! Typed configuration from the environment, validated at start. Every variable is documented in
//! the README's configuration table; an invalid value stops the service with a message naming it.

use clap::Args;
use omie_sync_platform::config::{ConfigError, SharedConfig};

#[derive(Args, Clone)]
pub struct ProjectorConfig {
    #[command(flatten)]
    pub shared: SharedConfig,
    /// Consumer group; the offsets table is keyed by it.
    #[arg(long, env = "PROJECTOR_GROUP_ID", value_name = "PROJECTOR_GROUP_ID", default_value = "omie-sync-projector")]
    pub group_id: String,
    #[arg(long, env = "PROJECTOR_HOST", value_name = "PROJECTOR_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port of the read API; 0 picks a free one.
    #[arg(long, env = "PROJECTOR_PORT", value_name = "PROJECTOR_PORT", default_value_t = 8081)]
    pub port: u16,
    /// Largest batch applied in one transaction.
    #[arg(long, env = "PROJECTOR_BATCH_MAX", value_name = "PROJECTOR_BATCH_MAX", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: u32,
    /// How long a batch waits to fill before it is applied.
    #[arg(long, env = "PROJECTOR_BATCH_WAIT_MS", value_name = "PROJECTOR_BATCH_WAIT_MS", default_value_t = 20)]
    pub batch_wait_ms: u64,
    #[arg(long, env = "DATABASE_POOL_SIZE", value_name = "DATABASE_POOL_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub pool_size: u32,
    /// Where undecodable records go; `<EVENTS_TOPIC>.dlq` when unset.
    #[arg(long, env = "DLQ_TOPIC", value_name = "DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
}

impl ProjectorConfig {
    pub fn dlq_topic(&self) -> String {
        self.dlq_topic.clone().unwrap_or_else(|| format!("{}.dlq", self.shared.events_topic))
    }

    /// The checks clap cannot make.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.shared.validate()
    }
}
