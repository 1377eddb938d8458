//! Both services in-process on port 0, wired to this test's database and topic.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use omie_sync_events::Envelope;
use omie_sync_platform::auth::{Claims, DEV_JWT_SECRET, JwtKeys, Role};
use omie_sync_platform::config::SharedConfig;
use omie_sync_platform::event_log::EventLog;
use omie_sync_platform::kafka;
use omie_sync_platform::metrics::ProduceMetrics;
use omie_sync_platform::secrets::DEV_SECRETS_KEY;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::TestDb;
use crate::{eventually, kafka_brokers};

/// How often the test ingress re-reads its app-key registry.
const REGISTRY_REFRESH_MS: u64 = 100;

pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let results = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topic request");
    for result in results {
        result.expect("topic created");
    }
}

pub fn shared_config(database_url: &str, brokers: &str, topic: &str) -> SharedConfig {
    SharedConfig {
        database_url: database_url.into(),
        kafka_brokers: brokers.into(),
        events_topic: topic.into(),
        jwt_secret: SecretString::from(DEV_JWT_SECRET),
        public_base_url: "http://127.0.0.1".into(),
    }
}

pub fn ingress_config(database_url: &str, brokers: &str, topic: &str) -> ingress::IngressConfig {
    ingress::IngressConfig {
        host: "127.0.0.1".into(),
        port: 0,
        shared: shared_config(database_url, brokers, topic),
        pool_size: 4,
        secrets_key: SecretString::from(DEV_SECRETS_KEY),
        body_limit: 256 * 1024,
        // Tansu 0.6 panics on the producer-epoch bump that follows a delivery timeout, and a
        // loaded 2-core machine can take seconds per produce: time out only on a real outage.
        produce_timeout_ms: 30_000,
        rate_per_second: 1_000,
        rate_burst: 1_000,
        registry_refresh_ms: REGISTRY_REFRESH_MS,
        omie_api_url: "http://127.0.0.1:9".into(),
        omie_timeout_ms: 2_000,
    }
}

pub fn projector_config(database_url: &str, brokers: &str, topic: &str, group: &str) -> projector::ProjectorConfig {
    projector::ProjectorConfig {
        shared: shared_config(database_url, brokers, topic),
        group_id: group.into(),
        host: "127.0.0.1".into(),
        port: 0,
        batch_max: 500,
        batch_wait_ms: 10,
        pool_size: 4,
        dlq_topic: None,
    }
}

/// Starts ingress in-process; returns its base URL and a handle that stops it.
pub async fn spawn_ingress(config: ingress::IngressConfig) -> (String, ServerHandle) {
    let app = ingress::Application::build(config, false).await.expect("build ingress");
    let url = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    tokio::spawn(app.run_until_stopped());
    (url, handle)
}

pub async fn spawn_projector(config: projector::ProjectorConfig) -> (String, projector::StopHandle) {
    let app = projector::Application::build(config, false).await.expect("build projector");
    let url = format!("http://127.0.0.1:{}", app.port());
    let handle = app.stop_handle();
    tokio::spawn(app.run_until_stopped());
    (url, handle)
}

pub struct Stack {
    pub db: TestDb,
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub ingress_url: String,
    pub projector_url: String,
    pub http: reqwest::Client,
    ingress: ServerHandle,
    projector: projector::StopHandle,
    keys: JwtKeys,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(|_| {}).await
    }

    /// Starts on the test broker with a fresh topic, letting the test adjust ingress.
    pub async fn start_with(adjust_ingress: impl FnOnce(&mut ingress::IngressConfig)) -> Stack {
        let brokers = kafka_brokers();
        let topic = format!("omie-sync.events.test-{}", Uuid::new_v4().simple());
        create_topic(&brokers, &topic, 3).await;
        create_topic(&brokers, &format!("{topic}.dlq"), 1).await;
        Stack::start_on(&brokers, &topic, adjust_ingress).await
    }

    /// Starts against `brokers` and an existing `topic`, letting the test adjust the ingress
    /// configuration.
    pub async fn start_on(
        brokers: &str,
        topic: &str,
        adjust_ingress: impl FnOnce(&mut ingress::IngressConfig),
    ) -> Stack {
        crate::telemetry();
        let db = TestDb::create();
        let topic = topic.to_owned();
        let group = format!("projector-test-{}", Uuid::new_v4().simple());
        let mut ingress_config = ingress_config(&db.url, brokers, &topic);
        adjust_ingress(&mut ingress_config);
        let (projector_url, projector) = spawn_projector(projector_config(&db.url, brokers, &topic, &group)).await;
        let (ingress_url, ingress) = spawn_ingress(ingress_config).await;
        Stack {
            db,
            brokers: brokers.to_owned(),
            topic,
            group,
            ingress_url,
            projector_url,
            http: reqwest::Client::new(),
            ingress,
            projector,
            keys: JwtKeys::new(&SecretString::from(DEV_JWT_SECRET)),
        }
    }

    pub fn token(&self, tenant_id: Uuid, role: Role) -> String {
        self.keys.mint(&Claims {
            sub: format!("user-of-{tenant_id}"),
            tenant_id,
            role,
            name: Some("Test Admin".into()),
            email: Some("admin@example.com.br".into()),
            exp: chrono_like_now() + 3_600,
        })
    }

    /// Sends an admin command to ingress.
    pub async fn command(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.ingress_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("ingress answers")
    }

    pub async fn read(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.projector_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("projector answers")
    }

    /// A projector read: status and JSON body (null when the body is not JSON).
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self.read(path, token).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Configures a tenant through the admin API and waits until ingress accepts its app key.
    pub async fn configure(&self, tenant_id: Uuid, app_key: &str, app_secret: &str, tag: &str) {
        let token = self.token(tenant_id, Role::Admin);
        let put = reqwest::Method::PUT;
        let credentials = json!({"app_key": app_key, "app_secret": app_secret});
        for (path, body) in [
            ("/api/v1/integrations/omie/credentials", credentials),
            ("/api/v1/integrations/omie/tag", json!({"tag": tag})),
            ("/api/v1/integrations/omie/template", json!({"template": "users"})),
        ] {
            let response = self.command(put.clone(), path, &token, body).await;
            assert_eq!(response.status(), 202, "{path}: {}", response.text().await.unwrap_or_default());
        }
        self.wait_for_app_key(app_key).await;
    }

    pub async fn wait_for_app_key(&self, app_key: &str) {
        eventually("the projector to record the app key", Duration::from_secs(20), || async {
            let mut conn = self.db.connect().await;
            omie_sync_store::integrations::owner_of_app_key(&mut conn, app_key).await.ok().flatten()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(REGISTRY_REFRESH_MS * 3)).await;
    }

    pub async fn post_webhook(&self, body: impl Into<reqwest::Body>, query: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/webhooks/omie/users{query}", self.ingress_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("ingress answers")
    }

    /// Writes `envelope` to this test's topic as a service would, for states no request makes.
    pub async fn append(&self, envelope: &Envelope) {
        let producer: FutureProducer = kafka::producer_config(&self.brokers, 30_000).create().expect("a producer");
        let log = EventLog::new(producer, self.topic.clone(), Duration::from_secs(30), ProduceMetrics::detached());
        log.append(envelope).await.expect("the broker takes the event");
    }

    /// Waits until the projector has applied `records` log records of this test's topic.
    pub async fn wait_applied(&self, records: i64) {
        let group = self.group.clone();
        eventually(&format!("{records} records applied"), Duration::from_secs(30), || async {
            (self.db.applied(&group).await >= records).then_some(())
        })
        .await;
    }

    /// Stops the live projector alone; ingress and the database stay up.
    pub async fn stop_projector(&self) {
        self.projector.stop().await;
    }

    pub async fn stop(self) {
        self.ingress.stop(true).await;
        self.projector.stop().await;
    }
}

fn chrono_like_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}
