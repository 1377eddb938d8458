//! Broker unreachable: the webhook gets 503 and nothing is recorded; broker back: Omie's retry
//! is recorded exactly once. A full sync that loses the broker keeps its slot until its failure
//! is recorded, never "running" for good.
//!
//! A fault case, so it runs on librdkafka's mock cluster: Tansu 0.6 cannot take an
//! idempotent producer's epoch bump after a delivery timeout (see the README), Apache Kafka and
//! the mock cluster can.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sim::{Faults, Simulator};
use omie_sync_e2e::stack::Stack;
use omie_sync_e2e::{eventually, repo_root, serve_omie, users_only_company};
use omie_sync_platform::auth::Role;
use omie_sync_store::schema::{events, users};
use rdkafka::mocking::MockCluster;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const BROKER: i32 = 1;
const APP_KEY: &str = "3188245610231";
const APP_SECRET: &str = "omie-sim-secret-aurora";
const SYNC: &str = "/api/v1/integrations/omie/sync";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_during_an_outage_is_refused_then_recorded_once_on_retry() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = format!("omie-sync.events.outage-{}", Uuid::new_v4().simple());
    cluster.create_topic(&topic, 3, 1).expect("topic");
    let stack = Stack::start_on(&cluster.bootstrap_servers(), &topic, |config| config.produce_timeout_ms = 1_500).await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, "5550001112223", "secret", "Espresso").await;
    stack.wait_applied(3).await;

    let body = std::fs::read_to_string(repo_root().join("tests/fixtures/omie/webhooks/01-incluido-tagged-valid.json"))
        .expect("fixture")
        .replace("3188245610231", "5550001112223");

    cluster.broker_down(BROKER).expect("broker down");
    let refused = stack.post_webhook(body.clone(), "").await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"), "503 tells Omie when to retry");
    let problem: Value = refused.json().await.expect("problem body");
    assert_eq!(problem["type"], "/problems/broker-unavailable");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stack.db.applied(&stack.group).await, 3, "nothing is recorded during the outage");

    cluster.broker_up(BROKER).expect("broker up");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let response = stack.post_webhook(body.clone(), "").await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503, "while the producer reconnects only 503 is acceptable");
        assert!(attempts < 60, "the broker is back but the webhook is still refused");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A refused attempt that reached the broker late would be a second record of the same event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.wait_applied(4).await;

    let mut conn = stack.db.connect().await;
    let event_id = omie_sync_events::ids::webhook_event_id(tenant, "7b1d6e2a-41c5-5f0e-9c33-2a6f1d7e9b01");
    let recorded: i64 =
        events::table.filter(events::id.eq(event_id)).count().get_result(&mut conn).await.expect("count");
    assert_eq!(recorded, 1, "the webhook is recorded exactly once");
    let made: i64 =
        users::table.filter(users::tenant_id.eq(tenant)).count().get_result(&mut conn).await.expect("count");
    assert_eq!(made, 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_events_the_broker_refuses_holds_its_slot_then_ends_failed() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = format!("omie-sync.events.outage-{}", Uuid::new_v4().simple());
    cluster.create_topic(&topic, 3, 1).expect("topic");
    let simulator = Simulator::new(users_only_company(APP_KEY, APP_SECRET, 3), 1);
    let omie_url = serve_omie(&simulator);
    let stack = Stack::start_on(&cluster.bootstrap_servers(), &topic, |config| {
        config.produce_timeout_ms = 1_500;
        config.omie_api_url = omie_url;
        config.omie_timeout_ms = 20_000;
    })
    .await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;

    // The first page takes 5 s to come back: the broker goes down while it is on its way.
    simulator.set_faults(Faults { latency_ms: 5_000, ..Faults::default() });
    let started = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(started.status(), 202);
    let sync_id = started.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("sync_id").to_owned();
    let progress = |sync_id: String| {
        let stack = &stack;
        let admin = &admin;
        async move { stack.get_json(&format!("/api/v1/syncs/{sync_id}"), admin).await.1 }
    };
    eventually("the run to show running", Duration::from_secs(4), || async {
        (progress(sync_id.clone()).await["status"] == "running").then_some(())
    })
    .await;
    cluster.broker_down(BROKER).expect("broker down");

    // Past the run's own append retries (about 20 s): it keeps its slot while it cannot record
    // how it ended, so a second run is refused instead of started beside it.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let refused = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(refused.status(), 409, "the stuck run still holds the tenant's slot");
    let problem: Value = refused.json().await.expect("problem");
    assert_eq!(problem["sync_id"], sync_id.as_str(), "{problem}");

    cluster.broker_up(BROKER).expect("broker up");
    let ended = eventually("the run to end", Duration::from_secs(90), || async {
        let run = progress(sync_id.clone()).await;
        (run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(ended["failure_reason"].as_str().is_some_and(|reason| reason.contains("event log")), "{ended}");

    simulator.set_faults(Faults::default());
    let again = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(again.status(), 202, "the slot is free once the failure is recorded");
    stack.stop().await;
}
