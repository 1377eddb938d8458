//! Kafka client settings shared by both services. Only standard librdkafka keys, so the same
//! configuration works against Apache Kafka, Tansu and the mock cluster.

use rdkafka::ClientConfig;

/// The producer ingress uses: idempotent, acks from every in-sync replica, and a delivery
/// timeout below Omie's HTTP timeout so a stuck broker turns into a 503, not a hung request.
pub fn producer_config(brokers: &str, delivery_timeout_ms: u64) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", delivery_timeout_ms.to_string())
        .set("request.timeout.ms", delivery_timeout_ms.min(30_000).to_string());
    config
}

/// The projector's consumer: offsets live in PostgreSQL, so nothing is committed or stored
/// automatically; Kafka commits only mirror them for lag monitoring.
pub fn consumer_config(brokers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        // Statistics carry each partition's high watermark: the consumer-lag metric.
        .set("statistics.interval.ms", "2000")
        .set("heartbeat.interval.ms", "1000");
    config
}
