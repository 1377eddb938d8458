//! The control API's generated changes and `geral/clientetag/`: each change reaches the
//! registered endpoint in order as the webhook Omie would send, and the API serves the new state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use omie_sim::Simulator;
use omie_sim::generator::{self, CompanySpec};
use serde_json::{Value, json};

const APP_KEY: &str = "3188245610231";
const APP_SECRET: &str = "omie-sim-secret-aurora";

type Received = Arc<Mutex<Vec<Value>>>;

fn serve(listener_bound_to: impl FnOnce(std::net::TcpListener) -> actix_web::dev::Server) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(listener_bound_to(listener));
    url
}

/// omie-sim with a generated 50-record company, and a registered endpoint that keeps what it
/// receives.
async fn start() -> (String, Received) {
    let spec = CompanySpec { slug: "aurora", app_key: APP_KEY, tag: "Espresso" };
    let simulator = Simulator::generated(generator::company(&spec, APP_SECRET, 50, 5), 5);
    let omie = serve(|listener| simulator.serve(listener).expect("serve omie-sim"));
    let received: Received = Arc::default();
    let kept = Arc::clone(&received);
    let endpoint = serve(move |listener| {
        HttpServer::new(move || {
            let kept = Arc::clone(&kept);
            App::new().route(
                "/hook",
                web::post().to(move |body: web::Json<Value>| {
                    kept.lock().expect("lock").push(body.into_inner());
                    async { HttpResponse::Ok().finish() }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run()
    });
    let registered = reqwest::Client::new()
        .post(format!("{omie}/control/webhooks"))
        .json(&json!({"url": format!("{endpoint}/hook")}))
        .send()
        .await
        .expect("register the endpoint");
    assert_eq!(registered.status(), 204);
    (omie, received)
}

async fn call(omie: &str, resource: &str, method: &str, param: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{omie}/api/v1/geral/{resource}/"))
        .json(&json!({"call": method, "app_key": APP_KEY, "app_secret": APP_SECRET, "param": [param]}))
        .send()
        .await
        .expect("omie-sim answers");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

async fn listing(omie: &str) -> Vec<Value> {
    let (status, page) =
        call(omie, "clientes", "ListarClientes", json!({"pagina": 1, "registros_por_pagina": 500})).await;
    assert_eq!(status, 200, "{page}");
    page["clientes_cadastro"].as_array().expect("rows").clone()
}

async fn wait_received(received: &Received, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let bodies = received.lock().expect("lock").clone();
        if bodies.len() >= count {
            return bodies;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "only {} of {count} webhooks arrived", bodies.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_changes_arrive_in_order_and_the_listing_follows_them() {
    let (omie, received) = start().await;
    let before = listing(&omie).await;
    let http = reqwest::Client::new();
    let made: Value = http
        .post(format!("{omie}/control/changes"))
        .json(&json!({"count": 40}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let changes = made["changes"].as_array().expect("changes").clone();
    assert_eq!(changes.len(), 40);

    let bodies = wait_received(&received, 41).await;
    assert_eq!(bodies[0], json!({"ping": "omie"}), "the ping comes first");
    for (body, change) in bodies[1..].iter().zip(&changes) {
        assert_eq!(body["topic"], change["topic"]);
        assert_eq!(body["event"]["codigo_cliente_omie"], change["codigo_cliente_omie"]);
        assert_eq!(body["appKey"], APP_KEY);
        assert!(body["appHash"].as_str().is_some_and(|hash| hash.starts_with("aurora-")));
        assert_ne!(body["author"]["name"], "Integração", "changes made in Omie's UI name the person");
        assert!(body["event"].get("info").is_none(), "webhooks leave info out");
    }

    let topic_count = |topic: &str| changes.iter().filter(|change| change["topic"] == topic).count();
    let after = listing(&omie).await;
    assert_eq!(
        after.len() + topic_count("ClienteFornecedor.Excluido"),
        before.len() + topic_count("ClienteFornecedor.Incluido")
    );
    let brasilia = chrono::FixedOffset::west_opt(3 * 3600).expect("offset");
    let today = chrono::Utc::now().with_timezone(&brasilia).format("%d/%m/%Y").to_string();
    let last_state = bodies.last().expect("a change");
    if last_state["topic"] != "ClienteFornecedor.Excluido" {
        let code = &last_state["event"]["codigo_cliente_omie"];
        let row = after.iter().find(|row| &row["codigo_cliente_omie"] == code).expect("the changed record is listed");
        assert_eq!(row["info"]["dAlt"], today.as_str(), "a change stamps info.dAlt");
        assert_eq!(row["email"], last_state["event"]["email"]);
    }

    let too_many = http.post(format!("{omie}/control/changes")).json(&json!({"count": 10_001})).send().await;
    assert_eq!(too_many.expect("answers").status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_listed_and_changed_on_clientetag_and_each_change_is_a_webhook() {
    let (omie, received) = start().await;
    wait_received(&received, 1).await;
    let record = listing(&omie).await[0].clone();
    let code = record["codigo_cliente_omie"].as_i64().expect("code");

    let (status, added) =
        call(&omie, "clientetag", "IncluirTags", json!({"nCodCliente": code, "tags": [{"tag": "Viagem"}]})).await;
    assert_eq!((status, added["cCodStatus"].as_str()), (200, Some("0")), "{added}");
    let (_, listed) = call(&omie, "clientetag", "ListarTags", json!({"nCodCliente": code})).await;
    let tags: Vec<&Value> = listed["tagsLista"].as_array().expect("tagsLista").iter().map(|tag| &tag["tag"]).collect();
    assert!(tags.contains(&&json!("Viagem")), "{listed}");
    let webhook = &wait_received(&received, 2).await[1];
    assert_eq!(webhook["topic"], "ClienteFornecedor.Alterado");
    assert!(webhook["event"]["tags"].as_array().expect("tags").contains(&json!({"tag": "Viagem"})));

    call(&omie, "clientetag", "ExcluirTags", json!({"nCodCliente": code, "tags": [{"tag": "Viagem"}]})).await;
    call(&omie, "clientetag", "ExcluirTodas", json!({"nCodCliente": code})).await;
    let (_, listed) = call(&omie, "clientetag", "ListarTags", json!({"nCodCliente": code})).await;
    assert_eq!(listed["tagsLista"], json!([]));
    assert_eq!(wait_received(&received, 4).await[3]["event"]["tags"], json!([]));

    let (status, fault) = call(&omie, "clientetag", "ListarTags", json!({"nCodCliente": 1})).await;
    assert_eq!((status, fault["faultcode"].as_str()), (500, Some("SOAP-ENV:Client-105")));

    // `cnpj_cpf` in digits only still finds the punctuated stored value.
    let document = record["cnpj_cpf"].as_str().expect("document");
    let digits: String = document.chars().filter(char::is_ascii_digit).collect();
    let filter = json!({"pagina": 1, "registros_por_pagina": 50, "clientesFiltro": {"cnpj_cpf": digits}});
    let (_, found) = call(&omie, "clientes", "ListarClientes", filter).await;
    assert_eq!(found["clientes_cadastro"][0]["codigo_cliente_omie"], code);
}
