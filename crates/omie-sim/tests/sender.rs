//! The sender retries unreachable endpoints and non-2xx answers on its bounded schedule, in
//! order, then keeps the webhook in its dead-letter list.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use omie_sim::{Company, Simulator};
use serde_json::json;

#[tokio::test]
async fn an_unreachable_endpoint_ends_in_the_dead_letter_list_in_order() {
    let company = Company { app_key: "1".into(), app_secret: "s".into(), records: BTreeMap::new() };
    let simulator = Simulator::new(company, 1);
    simulator.set_retry_schedule(vec![Duration::from_millis(10); 2]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address");
    simulator.register_webhook(&format!("http://{closed}/hook"));
    simulator.upsert(7, json!({"razao_social": "Sete"}));
    simulator.remove(7);
    let started = Instant::now();
    loop {
        let (queued, delivered, dead) = simulator.webhooks();
        if queued == 0 {
            assert_eq!(delivered, 0);
            let topics: Vec<_> =
                dead.iter().map(|letter| letter.body.get("topic").cloned().unwrap_or_default()).collect();
            assert_eq!(topics, [json!(null), json!("ClienteFornecedor.Incluido"), json!("ClienteFornecedor.Excluido")]);
            assert!(dead.iter().all(|letter| letter.attempts == 3), "one try and two retries");
            assert_eq!(dead[0].body, json!({"ping": "omie"}));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the sender never gave up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers the scripted statuses in turn (then 200) and keeps every body it was sent.
fn scripted_endpoint(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let script = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let sink = Arc::clone(&received);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let server = HttpServer::new(move || {
        let (sink, script) = (Arc::clone(&sink), Arc::clone(&script));
        App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<serde_json::Value>| {
                sink.lock().expect("sink").push(body.into_inner());
                let status = script.lock().expect("script").pop_front().unwrap_or(200);
                async move { HttpResponse::build(StatusCode::from_u16(status).expect("a status")).finish() }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (url, received)
}

#[tokio::test]
async fn non_2xx_answers_are_retried_in_order_then_dead_lettered() {
    let company = Company { app_key: "1".into(), app_secret: "s".into(), records: BTreeMap::new() };
    let simulator = Simulator::new(company, 1);
    simulator.set_retry_schedule(vec![Duration::from_millis(10); 2]);
    let (url, received) = scripted_endpoint(vec![500, 502, 503, 500, 429]);
    simulator.register_webhook(&url);
    simulator.upsert(7, json!({"razao_social": "Sete"}));
    let started = Instant::now();
    let (delivered, dead) = loop {
        let (queued, delivered, dead) = simulator.webhooks();
        if queued == 0 {
            break (delivered, dead);
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the sender never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let topics: Vec<_> =
        received.lock().expect("received").iter().map(|body| body.get("topic").cloned().unwrap_or_default()).collect();
    let incluido = json!("ClienteFornecedor.Incluido");
    assert_eq!(
        topics,
        [json!(null), json!(null), json!(null), incluido.clone(), incluido.clone(), incluido],
        "the ping's three tries, then the change's: nothing overtakes a webhook being retried"
    );
    assert_eq!(delivered, 1, "the change got through on its last try");
    assert_eq!(dead.len(), 1);
    assert_eq!((&dead[0].body, dead[0].attempts, dead[0].last_status), (&json!({"ping": "omie"}), 3, Some(503)));
}
