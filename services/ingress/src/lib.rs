//! Ingress: the only writer of the event log. It validates Omie webhooks and admin commands and
//! appends each as one event; it never writes projections.
//!
//! [`Application::build`] wires everything; tests start it in-process on port 0.

pub mod admin;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod sync;
pub mod webhook;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, web};
use anyhow::Context as _;
use omie_sync_platform::auth::JwtKeys;
use omie_sync_platform::secrets::Sealer;
use omie_sync_platform::{http, kafka, telemetry};
use omie_sync_store::PgPool;
use rdkafka::producer::FutureProducer;
use tokio::task::JoinHandle;
use utoipa::OpenApi as _;

pub use config::IngressConfig;

use metrics::IngressMetrics;
use omie_sync_platform::event_log::EventLog;
use registry::Registry;
use webhook::WebhookLimiter;

/// Shared by every handler.
pub struct AppState {
    pub log: EventLog,
    pub omie: omie_client::OmieClient,
    pub syncs: sync::SyncWorkers,
    pub registry: Registry,
    pub limiter: WebhookLimiter,
    pub pool: PgPool,
    pub sealer: Sealer,
    pub body_limit: usize,
    pub public_base_url: String,
    pub metrics: IngressMetrics,
}

impl AppState {
    pub async fn connection(&self) -> Result<omie_sync_store::PooledConnection, error::ApiError> {
        Ok(self.pool.get().await.map_err(omie_sync_store::StoreError::from)?)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    registry_task: JoinHandle<()>,
    log: EventLog,
}

impl Application {
    pub async fn build(config: IngressConfig, handle_signals: bool) -> anyhow::Result<Application> {
        let sealer = config.validate()?;
        let pool = omie_sync_store::pool(&config.shared.database_url, config.pool_size as usize)?;
        let delivery_timeout = Duration::from_millis(config.produce_timeout_ms);
        let producer: FutureProducer = kafka::producer_config(&config.shared.kafka_brokers, config.produce_timeout_ms)
            .create()
            .context("cannot create the Kafka producer (check KAFKA_BROKERS)")?;
        let (metrics, exposition) = IngressMetrics::register();
        let log =
            EventLog::new(producer, config.shared.events_topic.clone(), delivery_timeout, metrics.produce.clone());

        let registry = Registry::default();
        match registry.refresh(&pool, &sealer).await {
            Ok(count) => tracing::info!(integrations = count, "app-key registry loaded"),
            Err(error) => tracing::warn!(%error, "app-key registry not loaded yet; retrying in the background"),
        }
        let registry_task = tokio::spawn(registry.clone().keep_fresh(
            pool.clone(),
            sealer.clone(),
            Duration::from_millis(config.registry_refresh_ms),
        ));

        let limiter = WebhookLimiter::new(
            NonZeroU32::new(config.rate_per_second).context("WEBHOOK_RATE_LIMIT_PER_SECOND must be > 0")?,
            NonZeroU32::new(config.rate_burst).context("WEBHOOK_RATE_LIMIT_BURST must be > 0")?,
        );
        let mut omie_settings = omie_client::Settings::new(config.omie_api_url.clone());
        omie_settings.timeout = Duration::from_millis(config.omie_timeout_ms);
        let observer: Arc<dyn omie_client::FaultObserver> = Arc::new(metrics.clone());
        let omie = omie_client::OmieClient::new(omie_settings)
            .context("cannot build the Omie API client")?
            .with_observer(observer);
        let syncs = sync::SyncWorkers::new(omie.clone(), log.clone(), sync::PAGE_SIZE, metrics.sync_pages.clone());
        match syncs.settle_interrupted(&pool).await {
            Ok(0) => {}
            Ok(settled) => tracing::warn!(settled, "full syncs interrupted by a restart recorded as failed"),
            Err(error) => tracing::warn!(%error, "cannot check for interrupted full syncs"),
        }
        // An admin waits for a connection test: no back-off behind a button.
        let omie = omie.answering_at_once();
        let pool_data = web::Data::new(pool.clone());
        let state = web::Data::new(AppState {
            log: log.clone(),
            omie,
            syncs,
            registry,
            limiter,
            pool,
            sealer,
            body_limit: config.body_limit,
            public_base_url: config.shared.public_base_url.clone(),
            metrics,
        });
        let exposition = web::Data::new(exposition);
        let keys = web::Data::new(JwtKeys::new(&config.shared.jwt_secret));
        let document = openapi::ApiDoc::openapi();
        let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))
            .with_context(|| format!("cannot bind {}:{} (INGRESS_HOST/INGRESS_PORT)", config.host, config.port))?;
        let port = listener.local_addr()?.port();
        let mut server = actix_web::HttpServer::new(move || {
            App::new()
                .wrap(telemetry::http_spans())
                .app_data(state.clone())
                .app_data(exposition.clone())
                .app_data(keys.clone())
                .configure(http::extractor_errors)
                .app_data(pool_data.clone())
                .route("/health", web::get().to(http::health))
                .route("/ready", web::get().to(http::ready))
                .route("/metrics", web::get().to(omie_sync_platform::metrics::serve))
                .configure(|config| omie_sync_platform::openapi::serve(config, &document))
                .route("/api/v1/webhooks/omie/users", web::post().to(webhook::receive))
                .configure(admin::routes)
                .default_service(web::to(http::not_found))
        })
        .workers(2)
        .listen(listener)?;
        if !handle_signals {
            server = server.disable_signals();
        }
        Ok(Application { port, server: server.run(), registry_task, log })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then flushes the producer so nothing acknowledged is in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.registry_task.abort();
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.flush(Duration::from_secs(10))).await?;
        served.context("the HTTP server failed")
    }
}
