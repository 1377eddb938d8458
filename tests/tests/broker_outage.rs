//! Broker unreachable: the webhook gets 503 and nothing is recorded; broker back: Omie's retry
//! is recorded exactly once.
//!
//! A fault case, so it runs on librdkafka's mock cluster: Tansu 0.6 cannot take an
//! idempotent producer's epoch bump after a delivery timeout (see the README), Apache Kafka and
//! the mock cluster can.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sync_e2e::repo_root;
use omie_sync_e2e::stack::Stack;
use omie_sync_store::schema::{events, users};
use rdkafka::mocking::MockCluster;
use uuid::Uuid;

const BROKER: i32 = 1;

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
    let problem: serde_json::Value = refused.json().await.expect("problem body");
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
