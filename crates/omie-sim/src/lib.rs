//! omie-sim: Omie's `geral/clientes/` API served from an in-memory company, with the fault bodies
//! and status codes Omie sends (OMIE.md), switchable fault injection, and a control API for tests.
//!
//! Control API (never part of Omie): `GET /health`; `PUT /control/faults` sets [`Faults`]; `PUT
//! /control/records/{code}` creates or replaces a record; `DELETE /control/records/{code}`
//! removes one; `POST /control/changes` `{"count"}` makes that many changes the way the company's
//! users would (see [`generator`]); `GET /control/calls` counts the API calls received per
//! method; `POST /control/webhooks` `{"url"}` registers an endpoint; `GET /control/webhooks` shows
//! the queues and the dead letters. Every change queues a webhook to each endpoint (see
//! [`sender`]).

pub mod documents;
pub mod generator;
pub mod sender;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::generator::{Change, CompanySpec, GeneratedCompany, Generator};

/// The company the simulator serves.
#[derive(Debug, Clone)]
pub struct Company {
    pub app_key: String,
    pub app_secret: String,
    /// Records by `codigo_cliente_omie`, as `ListarClientes` returns them.
    pub records: BTreeMap<i64, Value>,
}

/// Fault injection; every switch is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The identical request again within this many seconds → `Client-6` (REDUNDANT).
    pub redundant_window_secs: Option<u64>,
    /// More calls than this per minute, app key and method → 429.
    pub per_minute_limit: Option<u32>,
    /// Block every method for misuse for this many seconds (425); each call during it extends it.
    pub block_seconds: Option<u64>,
    /// More calls in flight than this per method → `Client-1880` ("already running").
    pub max_concurrent: Option<usize>,
    /// Added to every answer.
    pub latency_ms: u64,
    /// Share of calls answered with a bare 500, 0–100.
    pub error_rate_percent: u8,
}

struct State {
    company: Company,
    faults: Faults,
    recent_bodies: HashMap<String, Instant>,
    minute_windows: HashMap<String, (Instant, u32)>,
    blocked_until: Option<Instant>,
    in_flight: HashMap<String, usize>,
    calls: BTreeMap<String, u64>,
    rng: StdRng,
    endpoints: Vec<sender::Endpoint>,
    dead_letters: Arc<Mutex<Vec<sender::DeadLetter>>>,
    retry_schedule: Vec<Duration>,
    generator: Generator,
}

#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Deserialize)]
struct Call {
    #[serde(default)]
    call: String,
    #[serde(default)]
    app_key: String,
    #[serde(default)]
    app_secret: String,
    #[serde(default)]
    param: Vec<Value>,
}

fn fault(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({"faultstring": message.into(), "faultcode": code}))
}

/// Who Omie names as the author of a change made through its API.
fn api_author() -> Value {
    json!({"email": "no-reply@omie.com.br", "name": "Integração", "userId": 89})
}

impl Simulator {
    /// Serves `company`; generated changes (`POST /control/changes`) tag records `Espresso`.
    pub fn new(company: Company, seed: u64) -> Simulator {
        let generator =
            Generator::new(&CompanySpec { slug: "omie-sim", app_key: &company.app_key, tag: "Espresso" }, seed);
        Simulator::with_generator(company, generator, seed)
    }

    /// Serves a generated company; its generator makes the live changes.
    pub fn generated(generated: GeneratedCompany, seed: u64) -> Simulator {
        Simulator::with_generator(generated.company, generated.generator, seed)
    }

    fn with_generator(company: Company, generator: Generator, seed: u64) -> Simulator {
        Simulator {
            state: Arc::new(Mutex::new(State {
                company,
                faults: Faults::default(),
                recent_bodies: HashMap::new(),
                minute_windows: HashMap::new(),
                blocked_until: None,
                in_flight: HashMap::new(),
                calls: BTreeMap::new(),
                rng: StdRng::seed_from_u64(seed),
                endpoints: Vec::new(),
                dead_letters: Arc::default(),
                retry_schedule: [1, 2, 5, 10, 30].map(Duration::from_secs).to_vec(),
                generator,
            })),
        }
    }

    /// Pauses between the sender's attempts (their count bounds the retries).
    pub fn set_retry_schedule(&self, schedule: Vec<Duration>) {
        self.lock().retry_schedule = schedule;
    }

    /// Registers a webhook endpoint: a ping is queued first, then every change.
    pub fn register_webhook(&self, url: &str) {
        let mut state = self.lock();
        let endpoint =
            sender::Endpoint::register(url.to_owned(), state.retry_schedule.clone(), Arc::clone(&state.dead_letters));
        state.endpoints.push(endpoint);
    }

    /// Webhooks still queued and delivered, summed over the endpoints, and the dead letters.
    pub fn webhooks(&self) -> (usize, u64, Vec<sender::DeadLetter>) {
        let state = self.lock();
        let (queued, delivered) = state
            .endpoints
            .iter()
            .map(sender::Endpoint::counts)
            .fold((0, 0), |(queued, delivered), (q, d)| (queued + q, delivered + d));
        let dead = state.dead_letters.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        (queued, delivered, dead)
    }

    /// Queues the webhook Omie would send for a change of `record` by `author`.
    fn notify(state: &State, topic: &str, record: &Value, author: &Value) {
        let message_id = uuid::Uuid::new_v4();
        let body = generator::webhook_body(
            message_id,
            topic,
            record,
            author,
            &state.company.app_key,
            state.generator.app_hash(),
        );
        for endpoint in &state.endpoints {
            endpoint.enqueue(body.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.lock();
        state.blocked_until = faults.block_seconds.map(|seconds| Instant::now() + Duration::from_secs(seconds));
        state.faults = faults;
    }

    /// Creates or replaces a record; queues `ClienteFornecedor.Incluido` or `.Alterado`.
    pub fn upsert(&self, code: i64, mut record: Value) {
        record["codigo_cliente_omie"] = json!(code);
        let mut state = self.lock();
        let change =
            if state.company.records.contains_key(&code) { Change::Changed(record) } else { Change::Included(record) };
        Simulator::record_change(&mut state, change, &api_author());
    }

    /// Deletes a record; queues `ClienteFornecedor.Excluido` with its last state.
    pub fn remove(&self, code: i64) -> Option<Value> {
        let mut state = self.lock();
        let removed = state.company.records.get(&code)?.clone();
        Simulator::record_change(&mut state, Change::Deleted(removed.clone()), &api_author());
        Some(removed)
    }

    /// Makes `count` changes as the company's users would in Omie's UI, each queueing its
    /// webhook; returns them in order.
    pub fn generate_changes(&self, count: usize) -> Vec<Change> {
        let mut guard = self.lock();
        let state = &mut *guard;
        (0..count)
            .map(|_| {
                let change = state.generator.change(&state.company.records);
                let author = state.generator.author();
                Simulator::record_change(state, change.clone(), &author);
                change
            })
            .collect()
    }

    /// Applies a change: stamps `info` with the time of the change (Brasília, as Omie writes
    /// it), stores it and queues the webhook.
    fn record_change(state: &mut State, change: Change, author: &Value) {
        let change = match change {
            Change::Included(record) => Change::Included(stamped(record, author, true)),
            Change::Changed(record) => Change::Changed(stamped(record, author, false)),
            deleted @ Change::Deleted(_) => deleted,
        };
        Simulator::notify(state, change.topic(), change.record(), author);
        change.apply_to(&mut state.company.records);
    }

    /// Calls received so far, per method.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Serves the API and the control API on `listener`.
    pub fn serve(self, listener: std::net::TcpListener) -> std::io::Result<Server> {
        let data = web::Data::new(self);
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(8 * 1024 * 1024))
                .route("/api/v1/geral/clientes/", web::post().to(clientes_api))
                .route("/api/v1/geral/clientetag/", web::post().to(clientetag_api))
                .route("/health", web::get().to(HttpResponse::Ok))
                .route("/control/faults", web::put().to(put_faults))
                .route("/control/records/{code}", web::put().to(put_record))
                .route("/control/records/{code}", web::delete().to(delete_record))
                .route("/control/changes", web::post().to(post_changes))
                .route("/control/calls", web::get().to(get_calls))
                .route("/control/webhooks", web::post().to(post_webhook))
                .route("/control/webhooks", web::get().to(get_webhooks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run())
    }

    /// Admission: every check Omie makes before it runs a method, in its order; `Some` refuses.
    fn admit(&self, call: &Call, raw: &str) -> Option<HttpResponse> {
        let mut state = self.lock();
        *state.calls.entry(call.call.clone()).or_default() += 1;
        if call.app_key != state.company.app_key || call.app_secret != state.company.app_secret {
            return Some(fault(403, "SOAP-ENV:Server", "A chave de acesso não está preenchida ou não é válida."));
        }
        let now = Instant::now();
        if let Some(until) = state.blocked_until.filter(|until| *until > now) {
            let extended = until + Duration::from_secs(60);
            state.blocked_until = Some(extended);
            let seconds = extended.duration_since(now).as_secs();
            return Some(fault(
                425,
                "MISUSE_API_PROCESS",
                format!("API bloqueada por consumo indevido. Tente novamente em {seconds} segundos."),
            ));
        }
        if let Some(limit) = state.faults.per_minute_limit {
            let window = state.minute_windows.entry(format!("{}:{}", call.app_key, call.call)).or_insert((now, 0));
            if now.duration_since(window.0) >= Duration::from_secs(60) {
                *window = (now, 0);
            }
            window.1 += 1;
            if window.1 > limit {
                return Some(HttpResponse::TooManyRequests().body("429: Too many Requests"));
            }
        }
        if let Some(window) = state.faults.redundant_window_secs {
            let window = Duration::from_secs(window);
            if let Some(seen) = state.recent_bodies.get(raw).copied().filter(|seen| now.duration_since(*seen) < window)
            {
                let wait = (window - now.duration_since(seen)).as_secs().max(1);
                return Some(fault(
                    500,
                    "SOAP-ENV:Client-6",
                    format!(
                        "ERROR: Consumo redundante detectado. Aguarde {wait} segundos para tentar novamente (REDUNDANT)."
                    ),
                ));
            }
            state.recent_bodies.insert(raw.to_owned(), now);
        }
        let error_rate = state.faults.error_rate_percent;
        if error_rate > 0 && state.rng.random_range(0..100) < error_rate {
            return Some(HttpResponse::InternalServerError().body("Internal Server Error"));
        }
        None
    }

    fn run(&self, call: &Call) -> HttpResponse {
        let param = call.param.first().cloned().unwrap_or(Value::Null);
        let state = self.lock();
        match call.call.as_str() {
            "ListarClientes" | "ListarClientesResumido" => {
                let page = param["pagina"].as_u64().unwrap_or(1).max(1) as usize;
                let per_page = param["registros_por_pagina"].as_u64().unwrap_or(50).clamp(1, 500) as usize;
                let matching: Vec<&Value> =
                    state.company.records.values().filter(|record| matches_filter(record, &param)).collect();
                let total_pages = matching.len().div_ceil(per_page);
                if page > total_pages {
                    return fault(
                        500,
                        "SOAP-ENV:Client-5113",
                        format!("ERROR: Não existem registros para a página [{page}]!"),
                    );
                }
                let rows: Vec<Value> = matching
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|record| (*record).clone())
                    .collect();
                let count = rows.len();
                if call.call == "ListarClientes" {
                    HttpResponse::Ok().json(json!({
                        "pagina": page, "total_de_paginas": total_pages, "registros": count,
                        "total_de_registros": matching.len(), "clientes_cadastro": rows,
                    }))
                } else {
                    let summaries: Vec<Value> = rows
                        .iter()
                        .map(|row| json!({"codigo_cliente": row["codigo_cliente_omie"], "razao_social": row["razao_social"], "nome_fantasia": row["nome_fantasia"], "cnpj_cpf": row["cnpj_cpf"]}))
                        .collect();
                    HttpResponse::Ok().json(json!({
                        "pagina": page, "total_de_paginas": total_pages, "registros": count,
                        "total_de_registros": matching.len(), "clientes_cadastro_resumido": summaries,
                    }))
                }
            }
            "ConsultarCliente" => {
                let found = match param["codigo_cliente_omie"].as_i64() {
                    Some(code) => state.company.records.get(&code),
                    None => state.company.records.values().find(|record| {
                        !param["codigo_cliente_integracao"].is_null()
                            && record["codigo_cliente_integracao"] == param["codigo_cliente_integracao"]
                    }),
                };
                match found {
                    Some(record) => HttpResponse::Ok().json(record),
                    None => {
                        let code = param
                            .get("codigo_cliente_omie")
                            .or(param.get("codigo_cliente_integracao"))
                            .cloned()
                            .unwrap_or(Value::Null);
                        fault(
                            500,
                            "SOAP-ENV:Client-105",
                            format!("ERROR: Cliente não cadastrado para o Código [{code}] !"),
                        )
                    }
                }
            }
            other => fault(500, "SOAP-ENV:Client-8", format!("ERROR: Método [{other}] não encontrado!")),
        }
    }
}

impl Simulator {
    /// `geral/clientetag/`: a record's tags, listed and changed; a change queues `.Alterado`.
    fn run_tags(&self, call: &Call) -> HttpResponse {
        let param = call.param.first().cloned().unwrap_or(Value::Null);
        let code = param["nCodCliente"].as_i64().unwrap_or_default();
        let mut state = self.lock();
        let Some(record) = state.company.records.get(&code).cloned() else {
            return fault(
                500,
                "SOAP-ENV:Client-105",
                format!("ERROR: Cliente não cadastrado para o Código [{code}] !"),
            );
        };
        let mut tags: Vec<Value> = record["tags"].as_array().cloned().unwrap_or_default();
        let named: Vec<Value> =
            param["tags"].as_array().into_iter().flatten().filter_map(|tag| tag.get("tag").cloned()).collect();
        let status = match call.call.as_str() {
            "ListarTags" => {
                let listed: Vec<Value> = tags
                    .iter()
                    .enumerate()
                    .map(|(index, tag)| json!({"tag": tag["tag"], "nCodTag": index + 1}))
                    .collect();
                return HttpResponse::Ok().json(json!({
                    "nCodCliente": code, "cCodIntCliente": record["codigo_cliente_integracao"], "tagsLista": listed,
                }));
            }
            "IncluirTags" => {
                for tag in named {
                    if !tags.iter().any(|own| own["tag"] == tag) {
                        tags.push(json!({"tag": tag}));
                    }
                }
                "Tags incluídas com sucesso!"
            }
            "ExcluirTags" => {
                tags.retain(|own| !named.contains(&own["tag"]));
                "Tags excluídas com sucesso!"
            }
            "ExcluirTodas" => {
                tags.clear();
                "Todas as tags foram excluídas com sucesso!"
            }
            other => return fault(500, "SOAP-ENV:Client-8", format!("ERROR: Método [{other}] não encontrado!")),
        };
        let mut changed = record.clone();
        changed["tags"] = json!(tags);
        Simulator::record_change(&mut state, Change::Changed(changed), &api_author());
        HttpResponse::Ok().json(json!({
            "nCodCliente": code, "cCodIntCliente": record["codigo_cliente_integracao"],
            "cCodStatus": "0", "cDescStatus": status,
        }))
    }
}

/// `record` with `info.dAlt`/`hAlt`/`uAlt` set to now (and `dInc`/`hInc`/`uInc` too when new).
fn stamped(mut record: Value, author: &Value, new: bool) -> Value {
    let brasilia = chrono::FixedOffset::west_opt(3 * 3600).expect("UTC−3 is a valid offset");
    let now = chrono::Utc::now().with_timezone(&brasilia);
    let (date, time) = (now.format("%d/%m/%Y").to_string(), now.format("%H:%M:%S").to_string());
    let user =
        author["email"].as_str().and_then(|email| email.split('@').next()).unwrap_or("WEBSERVICE").to_uppercase();
    if !record["info"].is_object() {
        record["info"] = json!({});
    }
    let info = &mut record["info"];
    if new || info["dInc"].is_null() {
        info["dInc"] = json!(date);
        info["hInc"] = json!(time);
        info["uInc"] = json!(user);
    }
    info["dAlt"] = json!(date);
    info["hAlt"] = json!(time);
    info["uAlt"] = json!(user);
    record
}

/// `clientesFiltro` (code, e-mail, inativo, tags) and `clientesPorCodigo`.
fn matches_filter(record: &Value, param: &Value) -> bool {
    if let Some(codes) = param["clientesPorCodigo"].as_array() {
        let wanted: Vec<&Value> = codes.iter().map(|code| code.get("codigo_cliente_omie").unwrap_or(code)).collect();
        if !wanted.contains(&&record["codigo_cliente_omie"]) {
            return false;
        }
    }
    let filter = &param["clientesFiltro"];
    for key in ["codigo_cliente_omie", "email", "inativo"] {
        if !filter[key].is_null() && filter[key] != record[key] {
            return false;
        }
    }
    if let Some(wanted) = filter["cnpj_cpf"].as_str() {
        let digits = |text: &str| text.chars().filter(char::is_ascii_digit).collect::<String>();
        if digits(wanted) != digits(record["cnpj_cpf"].as_str().unwrap_or_default()) {
            return false;
        }
    }
    if let Some(tags) = filter["tags"].as_array() {
        let has = |wanted: &Value| {
            record["tags"].as_array().is_some_and(|own| own.iter().any(|tag| tag["tag"] == wanted["tag"]))
        };
        if !tags.iter().all(has) {
            return false;
        }
    }
    true
}

async fn clientes_api(simulator: web::Data<Simulator>, body: String) -> HttpResponse {
    call_api(&simulator, &body, Simulator::run).await
}

async fn clientetag_api(simulator: web::Data<Simulator>, body: String) -> HttpResponse {
    call_api(&simulator, &body, Simulator::run_tags).await
}

/// One API call: admission, the concurrency check, latency, then `method`.
async fn call_api(simulator: &Simulator, body: &str, method: fn(&Simulator, &Call) -> HttpResponse) -> HttpResponse {
    let Ok(call) = serde_json::from_str::<Call>(body) else {
        return fault(500, "SOAP-ENV:Client-1", "ERROR: Requisição inválida (JSON).");
    };
    if let Some(refused) = simulator.admit(&call, body) {
        return refused;
    }
    let (latency, over_capacity) = {
        let mut state = simulator.lock();
        let limit = state.faults.max_concurrent;
        let latency = Duration::from_millis(state.faults.latency_ms);
        let running = state.in_flight.entry(call.call.clone()).or_default();
        *running += 1;
        (latency, limit.is_some_and(|limit| *running > limit))
    };
    let answer = if over_capacity {
        fault(
            500,
            "SOAP-ENV:Client-1880",
            "Já existe uma requisição desse método sendo executada para a mesma chave de acesso.",
        )
    } else {
        tokio::time::sleep(latency).await;
        method(simulator, &call)
    };
    if let Some(running) = simulator.lock().in_flight.get_mut(&call.call) {
        *running -= 1;
    }
    answer
}

async fn put_faults(simulator: web::Data<Simulator>, faults: web::Json<Faults>) -> HttpResponse {
    simulator.set_faults(faults.into_inner());
    HttpResponse::NoContent().finish()
}

async fn put_record(simulator: web::Data<Simulator>, code: web::Path<i64>, record: web::Json<Value>) -> HttpResponse {
    simulator.upsert(code.into_inner(), record.into_inner());
    HttpResponse::NoContent().finish()
}

async fn delete_record(simulator: web::Data<Simulator>, code: web::Path<i64>) -> HttpResponse {
    match simulator.remove(code.into_inner()) {
        Some(_) => HttpResponse::NoContent().finish(),
        None => HttpResponse::NotFound().finish(),
    }
}

#[derive(Deserialize)]
struct ChangesRequest {
    count: usize,
}

/// At most this many generated changes per request, so one call cannot hold the lock for long.
const MAX_CHANGES_PER_REQUEST: usize = 10_000;

async fn post_changes(simulator: web::Data<Simulator>, request: web::Json<ChangesRequest>) -> HttpResponse {
    if request.count > MAX_CHANGES_PER_REQUEST {
        return HttpResponse::BadRequest()
            .json(json!({"error": format!("count must be at most {MAX_CHANGES_PER_REQUEST}")}));
    }
    let changes: Vec<Value> = simulator
        .generate_changes(request.count)
        .iter()
        .map(|change| json!({"topic": change.topic(), "codigo_cliente_omie": change.code()}))
        .collect();
    HttpResponse::Ok().json(json!({"changes": changes}))
}

async fn get_calls(simulator: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(simulator.calls())
}

#[derive(Deserialize)]
struct Registration {
    url: String,
}

async fn post_webhook(simulator: web::Data<Simulator>, registration: web::Json<Registration>) -> HttpResponse {
    simulator.register_webhook(&registration.url);
    HttpResponse::NoContent().finish()
}

async fn get_webhooks(simulator: web::Data<Simulator>) -> HttpResponse {
    let (queued, delivered, dead_letters) = simulator.webhooks();
    HttpResponse::Ok().json(json!({"queued": queued, "delivered": delivered, "dead_letters": dead_letters}))
}
