//! Ingress metrics (served at `/metrics`): webhooks by outcome and status, the produce latency,
//! full-sync pages, and Omie's faults by code.

use omie_client::{FaultObserver, OmieError};
use omie_sync_platform::metrics::{Exposition, ProduceMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `recorded`, `unprocessable`, `pong`, or the problem type of a refusal.
    pub outcome: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub method: &'static str,
    pub code: &'static str,
}

#[derive(Clone)]
pub struct IngressMetrics {
    pub webhooks: Family<WebhookLabels, Counter>,
    pub sync_pages: Counter,
    pub omie_faults: Family<FaultLabels, Counter>,
    pub produce: ProduceMetrics,
}

impl IngressMetrics {
    pub fn register() -> (IngressMetrics, Exposition) {
        let mut registry = Registry::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register("omie_sync_webhooks", "Omie webhooks answered, by outcome and HTTP status", webhooks.clone());
        let sync_pages = Counter::default();
        registry.register("omie_sync_sync_pages", "Full-sync pages fetched from Omie and recorded", sync_pages.clone());
        let omie_faults = Family::<FaultLabels, Counter>::default();
        registry.register(
            "omie_sync_omie_faults",
            "Faults Omie answered (retried ones included), by method and code",
            omie_faults.clone(),
        );
        let produce = ProduceMetrics::register(&mut registry);
        (IngressMetrics { webhooks, sync_pages, omie_faults, produce }, Exposition::new(registry))
    }

    pub fn webhook(&self, outcome: &'static str, status: u16) {
        self.webhooks.get_or_create(&WebhookLabels { outcome, status }).inc();
    }
}

impl FaultObserver for IngressMetrics {
    fn observe(&self, method: &'static str, fault: &OmieError) {
        self.omie_faults.get_or_create(&FaultLabels { method, code: fault.code() }).inc();
    }
}
