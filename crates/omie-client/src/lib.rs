//! A client for the part of Omie's API this product uses (OMIE.md): `ListarClientes`,
//! `ListarClientesResumido` and `ConsultarCliente` on `geral/clientes/`.
//!
//! Every fault is typed ([`OmieError`]) and handled as Omie prescribes: bad credentials are never
//! retried; a redundant call waits the stated time and retries once; a misuse block stops every
//! call of that method and app key until it ends (calls during the block fail locally, so they
//! cannot extend it); "already running", 429, server errors and timeouts back off and retry a
//! bounded number of times.
//! Client-side limits keep us under Omie's: at most `calls_per_minute` calls and
//! `max_concurrent` calls in flight per app key and method. Handles made with
//! [`OmieClient::answering_at_once`] share those limits and any block with the client they came
//! from, so a button pressed during a sync neither crosses Omie's limits nor calls into a block.

pub mod fault;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

pub use fault::OmieError;

/// Told of every fault Omie answers, the retried ones included (for metrics).
pub trait FaultObserver: Send + Sync {
    fn observe(&self, method: &'static str, fault: &OmieError);
}

/// An app's keys. The secret is only ever put in a request body.
#[derive(Clone)]
pub struct Credentials {
    pub app_key: String,
    pub app_secret: SecretString,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Omie's base URL (`https://app.omie.com.br`, or omie-sim's address).
    pub base_url: String,
    pub timeout: Duration,
    /// Omie allows 240 per minute per IP, app key and method.
    pub calls_per_minute: u32,
    /// Omie allows 4 concurrent calls per IP, app key and method.
    pub max_concurrent: usize,
    /// Pause before retrying "method already running" (Omie suggests ~10 s).
    pub already_running_pause: Duration,
    /// First pause after a 429, a server error or a timeout; doubled on each retry.
    pub too_many_requests_pause: Duration,
    /// Retries of "already running", 429, server errors and timeouts before giving up (four
    /// spaced 429 retries outlast Omie's one-minute window).
    pub max_retries: u32,
    /// Whether a redundant call waits the time Omie states and is retried once.
    pub wait_when_redundant: bool,
}

impl Settings {
    pub fn new(base_url: impl Into<String>) -> Settings {
        Settings {
            base_url: base_url.into(),
            timeout: Duration::from_secs(30),
            calls_per_minute: 240,
            max_concurrent: 4,
            already_running_pause: Duration::from_secs(10),
            too_many_requests_pause: Duration::from_secs(5),
            max_retries: 4,
            wait_when_redundant: true,
        }
    }
}

/// `ListarClientes` parameters (the subset we send; Omie ignores absent keys).
#[derive(Debug, Clone, Serialize)]
pub struct ListarClientes {
    pub pagina: u32,
    pub registros_por_pagina: u32,
    pub apenas_importado_api: &'static str,
    #[serde(rename = "clientesFiltro", skip_serializing_if = "Option::is_none")]
    pub clientes_filtro: Option<Value>,
}

impl ListarClientes {
    pub fn page(pagina: u32, registros_por_pagina: u32) -> ListarClientes {
        ListarClientes { pagina, registros_por_pagina, apenas_importado_api: "N", clientes_filtro: None }
    }
}

/// One page of `ListarClientes`. Rows are kept raw: they go to the event log as Omie sent them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientesPage {
    #[serde(default, deserialize_with = "loose_u32")]
    pub pagina: u32,
    #[serde(default, deserialize_with = "loose_u32")]
    pub total_de_paginas: u32,
    #[serde(default, deserialize_with = "loose_u32")]
    pub registros: u32,
    #[serde(default, deserialize_with = "loose_u32")]
    pub total_de_registros: u32,
    #[serde(default)]
    pub clientes_cadastro: Vec<Value>,
}

/// One row of `ListarClientesResumido` (its code field is `codigo_cliente`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClienteResumido {
    #[serde(deserialize_with = "loose_i64")]
    pub codigo_cliente: i64,
    #[serde(default)]
    pub razao_social: Option<String>,
    #[serde(default)]
    pub cnpj_cpf: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ResumidoPage {
    #[serde(default)]
    clientes_cadastro_resumido: Vec<ClienteResumido>,
}

type Key = (String, &'static str);

#[derive(Clone)]
pub struct OmieClient {
    http: reqwest::Client,
    settings: Settings,
    limits: Arc<Limits>,
    observer: Option<Arc<dyn FaultObserver>>,
}

/// What every handle of one client shares, per app key and method.
struct Limits {
    rate: DefaultKeyedRateLimiter<Key>,
    in_flight: Mutex<HashMap<Key, Arc<Semaphore>>>,
    blocked_until: Mutex<HashMap<Key, Instant>>,
}

impl OmieClient {
    pub fn new(settings: Settings) -> Result<OmieClient, OmieError> {
        let per_minute = NonZeroU32::new(settings.calls_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|error| OmieError::Transport(error.to_string()))?;
        let limits = Limits {
            rate: RateLimiter::keyed(Quota::per_minute(per_minute)),
            in_flight: Mutex::new(HashMap::new()),
            blocked_until: Mutex::new(HashMap::new()),
        };
        Ok(OmieClient { http, settings, limits: Arc::new(limits), observer: None })
    }

    /// A handle for someone waiting on the answer: every fault is answered at once, without
    /// the pauses and retries, while the limits and blocks stay shared with `self`.
    pub fn answering_at_once(&self) -> OmieClient {
        let mut handle = self.clone();
        handle.settings.max_retries = 0;
        handle.settings.wait_when_redundant = false;
        handle
    }

    pub fn with_observer(mut self, observer: Arc<dyn FaultObserver>) -> OmieClient {
        self.observer = Some(observer);
        self
    }

    pub async fn listar_clientes(
        &self,
        credentials: &Credentials,
        params: &ListarClientes,
    ) -> Result<ClientesPage, OmieError> {
        let param = serde_json::to_value(params).map_err(|error| OmieError::Transport(error.to_string()))?;
        match self.call(credentials, "ListarClientes", param).await {
            Ok(body) => serde_json::from_value(body).map_err(|error| OmieError::Unexpected {
                status: 200,
                message: format!("unreadable ListarClientes page: {error}"),
            }),
            Err(OmieError::NoRecords) => Ok(ClientesPage { pagina: params.pagina, ..ClientesPage::default() }),
            Err(error) => Err(error),
        }
    }

    pub async fn listar_clientes_resumido(
        &self,
        credentials: &Credentials,
        params: &ListarClientes,
    ) -> Result<Vec<ClienteResumido>, OmieError> {
        let param = serde_json::to_value(params).map_err(|error| OmieError::Transport(error.to_string()))?;
        match self.call(credentials, "ListarClientesResumido", param).await {
            Ok(body) => serde_json::from_value::<ResumidoPage>(body)
                .map(|page| page.clientes_cadastro_resumido)
                .map_err(|error| OmieError::Unexpected { status: 200, message: error.to_string() }),
            Err(OmieError::NoRecords) => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    }

    /// The record itself (Omie answers it at the top level, not wrapped).
    pub async fn consultar_cliente(
        &self,
        credentials: &Credentials,
        codigo_cliente_omie: i64,
    ) -> Result<Value, OmieError> {
        self.call(credentials, "ConsultarCliente", json!({"codigo_cliente_omie": codigo_cliente_omie})).await
    }

    async fn call(&self, credentials: &Credentials, method: &'static str, param: Value) -> Result<Value, OmieError> {
        let key: Key = (credentials.app_key.clone(), method);
        let mut redundant_retried = false;
        let mut retries = 0;
        let mut pause = self.settings.too_many_requests_pause;
        loop {
            if let Some(remaining) = self.block_remaining(&key) {
                return Err(OmieError::Blocked(remaining));
            }
            let outcome = self.call_once(credentials, &key, method, &param).await;
            match outcome {
                Err(OmieError::Redundant(wait)) if self.settings.wait_when_redundant && !redundant_retried => {
                    redundant_retried = true;
                    tokio::time::sleep(wait + Duration::from_secs(1)).await;
                }
                Err(OmieError::Blocked(duration)) => {
                    self.block(&key, duration);
                    return Err(OmieError::Blocked(duration));
                }
                Err(OmieError::AlreadyRunning) if retries < self.settings.max_retries => {
                    retries += 1;
                    tokio::time::sleep(self.settings.already_running_pause).await;
                }
                Err(error)
                    if (error == OmieError::TooManyRequests || error.is_transient())
                        && retries < self.settings.max_retries =>
                {
                    retries += 1;
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        credentials: &Credentials,
        key: &Key,
        method: &'static str,
        param: &Value,
    ) -> Result<Value, OmieError> {
        let permits = {
            let mut in_flight = self.limits.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(
                in_flight.entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.settings.max_concurrent))),
            )
        };
        let _permit = permits.acquire_owned().await.map_err(|error| OmieError::Transport(error.to_string()))?;
        self.limits.rate.until_key_ready(key).await;
        let body = json!({
            "call": method,
            "app_key": credentials.app_key,
            "app_secret": credentials.app_secret.expose_secret(),
            "param": [param],
        });
        let url = format!("{}/api/v1/geral/clientes/", self.settings.base_url.trim_end_matches('/'));
        let span = tracing::info_span!(
            "omie.call",
            otel.name = %format!("Omie {method}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "omie",
            rpc.method = method,
            http.request.method = "POST",
            url.full = %url,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let outcome = async {
            let response = self.http.post(url).json(&body).send().await.map_err(|error| {
                if error.is_timeout() {
                    OmieError::Transport(format!("no answer within {} s", self.settings.timeout.as_secs()))
                } else {
                    OmieError::Transport(error.without_url().to_string())
                }
            })?;
            let status = response.status().as_u16();
            tracing::Span::current().record("http.response.status_code", status);
            let bytes = response.bytes().await.map_err(|error| OmieError::Transport(error.to_string()))?;
            if let Some(fault) = fault::classify(status, &bytes) {
                return Err(fault);
            }
            serde_json::from_slice(&bytes)
                .map_err(|error| OmieError::Unexpected { status, message: format!("not JSON: {error}") })
        }
        .instrument(span.clone())
        .await;
        if let Err(fault) = &outcome {
            span.record("error.type", fault.code());
            if !matches!(fault, OmieError::NoRecords) {
                span.record("otel.status_code", "ERROR");
                tracing::debug!(parent: &span, method, %fault, "Omie fault");
                if let Some(observer) = &self.observer {
                    observer.observe(method, fault);
                }
            }
        }
        outcome
    }

    fn block_remaining(&self, key: &Key) -> Option<Duration> {
        let blocked = self.limits.blocked_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        blocked.get(key).and_then(|until| until.checked_duration_since(Instant::now()))
    }

    fn block(&self, key: &Key, duration: Duration) {
        let mut blocked = self.limits.blocked_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        blocked.insert(key.clone(), Instant::now() + duration);
    }
}

fn loose_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or_default(),
        Value::String(text) => text.trim().parse().unwrap_or_default(),
        _ => 0,
    })
}

fn loose_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(number) => number.as_i64().ok_or_else(|| serde::de::Error::custom("not an integer")),
        Value::String(text) => text.trim().parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("codigo_cliente is neither a number nor a string")),
    }
}
