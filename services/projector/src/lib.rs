//! The projector: consumes the event log, folds it into PostgreSQL (users, errors, history,
//! timelines, the integrations read model) and serves reads of those projections.
//!
//! [`Application::build`] wires everything; tests start it in-process on port 0 and stop it
//! with [`StopHandle`].

pub mod api;
pub mod apply;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod error;
pub mod metrics;
pub mod replay;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, web};
use anyhow::Context as _;
use omie_sync_platform::auth::JwtKeys;
use omie_sync_platform::{http, kafka, openapi, telemetry};
use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::ProjectorConfig;

use apply::OffsetScope;
use consumer::{Batching, ProjectorConsumer, ProjectorContext};

pub struct Application {
    port: u16,
    server: Server,
    consumer: JoinHandle<()>,
    stop: StopHandle,
}

/// Stops a running [`Application`]: the HTTP server first, then the consumer between batches.
#[derive(Clone)]
pub struct StopHandle {
    server: ServerHandle,
    consumer: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    pub async fn stop(&self) {
        let _ = self.consumer.send(true);
        self.server.stop(true).await;
    }
}

impl Application {
    /// Connects to Kafka and PostgreSQL and binds the HTTP port. Migrations are not run here:
    /// they are an explicit step (`projector migrate`).
    pub async fn build(config: ProjectorConfig, handle_signals: bool) -> anyhow::Result<Application> {
        config.validate()?;
        let pool = omie_sync_store::pool(&config.shared.database_url, config.pool_size as usize)?;
        let scope = OffsetScope { group: config.group_id.clone(), topic: config.shared.events_topic.clone() };
        let (metrics, exposition) = metrics::ProjectorMetrics::register();
        let context = ProjectorContext::new(config.shared.database_url.clone(), scope.clone(), metrics.clone());
        let consumer: ProjectorConsumer = kafka::consumer_config(&config.shared.kafka_brokers, &config.group_id)
            .create_with_context(context)
            .context("cannot create the Kafka consumer (check KAFKA_BROKERS)")?;
        consumer
            .subscribe(&[config.shared.events_topic.as_str()])
            .with_context(|| format!("cannot subscribe to {}", config.shared.events_topic))?;
        let consumer = Arc::new(consumer);

        let (stop_consumer, shutdown) = watch::channel(false);
        let batching =
            Batching { max_records: config.batch_max as usize, max_wait: Duration::from_millis(config.batch_wait_ms) };
        let dlq = dlq::DeadLetterQueue::new(&config.shared.kafka_brokers, config.dlq_topic())
            .context("cannot create the dead-letter producer (check KAFKA_BROKERS)")?;
        let consumer_task = tokio::spawn(consumer::run(consumer, pool.clone(), scope, dlq, batching, shutdown));

        let keys = web::Data::new(JwtKeys::new(&config.shared.jwt_secret));
        let webhook_base = web::Data::new(api::WebhookBase(config.shared.public_base_url.clone()));
        let document = <api::ApiDoc as utoipa::OpenApi>::openapi();
        let pool_data = web::Data::new(pool);
        let metrics = web::Data::new(metrics);
        let exposition = web::Data::new(exposition);
        let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))
            .with_context(|| format!("cannot bind {}:{} (PROJECTOR_HOST/PROJECTOR_PORT)", config.host, config.port))?;
        let port = listener.local_addr()?.port();
        let mut server = actix_web::HttpServer::new(move || {
            App::new()
                .wrap(telemetry::http_spans())
                .app_data(keys.clone())
                .app_data(metrics.clone())
                .app_data(exposition.clone())
                .app_data(pool_data.clone())
                .app_data(webhook_base.clone())
                .configure(http::extractor_errors)
                .route("/health", web::get().to(http::health))
                .route("/ready", web::get().to(http::ready))
                .route("/metrics", web::get().to(metrics::serve))
                .configure(|config| openapi::serve(config, &document))
                .configure(api::routes)
                .default_service(web::to(http::not_found))
        })
        .workers(2)
        .listen(listener)?;
        if !handle_signals {
            server = server.disable_signals();
        }
        let server = server.run();
        let stop = StopHandle { server: server.handle(), consumer: Arc::new(stop_consumer) };
        Ok(Application { port, server, consumer: consumer_task, stop })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves until stopped (signal or [`StopHandle`]), then lets the consumer finish its batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        let _ = self.stop.consumer.send(true);
        self.consumer.await.context("the consumer task panicked")?;
        served.context("the HTTP server failed")
    }
}
