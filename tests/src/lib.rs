//! The end-to-end harness: each test gets its own PostgreSQL database and its own Kafka topic on
//! the real broker that `make test` starts (Tansu), and runs both services in-process over real
//! HTTP. Nothing is mocked except Omie itself.

pub mod db;
pub mod fixtures;
pub mod otlp;
pub mod stack;
pub mod stream;

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use omie_sync_platform::telemetry::{self, Telemetry};

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// The test process's logs and traces, set up once (as each service's `main` does); a test that
/// reads its own logs or spans sets them up with [`telemetry_with`] before anything else.
pub fn telemetry() -> &'static Telemetry {
    TELEMETRY.get_or_init(|| telemetry::init("omie-sync-tests"))
}

/// [`telemetry`] with the logs written to `writer` and the spans exported as `export` says; the
/// first call of the process wins.
pub fn telemetry_with<W>(writer: W, export: telemetry::Export) -> &'static Telemetry
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    TELEMETRY.get_or_init(|| telemetry::init_with("omie-sync-tests", writer, export))
}

/// The broker `make test` started (`TEST_KAFKA_BROKERS`).
pub fn kafka_brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS is not set: run the tests with `make test`, which starts the Kafka-API broker")
}

/// A service run as its own process; killed and reaped when dropped, so a failing test leaves
/// nothing running.
pub struct ServiceProcess(pub std::process::Child);

impl ServiceProcess {
    /// SIGKILL, as a crash would.
    pub fn kill_9(mut self) {
        self.0.kill().expect("SIGKILL the service");
        self.0.wait().expect("reap the service");
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A company of `records` clients tagged `Espresso`, each with a name and a usable e-mail: each
/// one becomes a user.
pub fn users_only_company(app_key: &str, app_secret: &str, records: i64) -> omie_sim::Company {
    let records = (1..=records)
        .map(|code| {
            let record = serde_json::json!({
                "codigo_cliente_omie": code,
                "razao_social": format!("Empresa {code}"),
                "email": format!("u{code}@aurora.com.br"),
                "tags": [{"tag": "Espresso"}],
            });
            (code, record)
        })
        .collect();
    omie_sim::Company { app_key: app_key.into(), app_secret: app_secret.into(), records }
}

/// Serves `simulator` on a free port in the background; its base URL.
pub fn serve_omie(simulator: &omie_sim::Simulator) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(simulator.clone().serve(listener).expect("serve omie-sim"));
    url
}

/// Polls `check` until it yields a value or `timeout` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The repository root (fixtures, scripts).
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
