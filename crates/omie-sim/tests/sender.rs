//! The sender gives up after its bounded schedule and keeps the webhook in its dead-letter list.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
