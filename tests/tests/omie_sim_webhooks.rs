//! omie-sim's sender retries while ingress answers 503, and every change ends applied exactly
//! once. The outage is a fault case, so it runs on librdkafka's mock cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sim::{Company, Simulator};
use omie_sync_e2e::eventually;
use omie_sync_e2e::stack::Stack;
use omie_sync_store::schema::{events, history, users};
use rdkafka::mocking::MockCluster;
use serde_json::json;
use uuid::Uuid;

const APP_KEY: &str = "3188245610231";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_retries_through_a_503_and_each_change_is_applied_once() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = format!("omie-sync.events.sender-{}", Uuid::new_v4().simple());
    cluster.create_topic(&topic, 3, 1).expect("topic");
    let stack = Stack::start_on(&cluster.bootstrap_servers(), &topic, |config| config.produce_timeout_ms = 1_000).await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "omie-sim-secret-aurora", "Espresso").await;

    let company =
        Company { app_key: APP_KEY.into(), app_secret: "omie-sim-secret-aurora".into(), records: BTreeMap::new() };
    let simulator = Simulator::new(company, 5);
    simulator.set_retry_schedule(vec![Duration::from_millis(500); 40]);
    simulator.register_webhook(&format!("{}/api/v1/webhooks/omie/users", stack.ingress_url));
    eventually("the registration ping", Duration::from_secs(10), || async {
        (simulator.webhooks().1 == 1).then_some(())
    })
    .await;

    cluster.broker_down(1).expect("broker down");
    for code in 1..=5 {
        let record = json!({"razao_social": format!("Empresa {code}"), "email": format!("e{code}@x.com.br"), "tags": [{"tag": "Espresso"}]});
        simulator.upsert(code, record);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(simulator.webhooks().1, 1, "nothing is delivered while ingress answers 503");
    cluster.broker_up(1).expect("broker up");

    eventually("every webhook delivered", Duration::from_secs(60), || async {
        let (queued, delivered, dead) = simulator.webhooks();
        assert!(dead.is_empty(), "no webhook may be given up: {dead:?}");
        (queued == 0 && delivered == 6).then_some(())
    })
    .await;
    eventually("every change applied", Duration::from_secs(30), || async {
        let mut conn = stack.db.connect().await;
        let made: i64 = users::table.filter(users::tenant_id.eq(tenant)).count().get_result(&mut conn).await.ok()?;
        (made == 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut conn = stack.db.connect().await;
    let recorded: i64 = events::table
        .filter(events::tenant_id.eq(tenant))
        .filter(events::event_type.eq("omie.client.upserted"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("events");
    assert_eq!(recorded, 5, "each change is one event, however often it was retried");
    let created: i64 = history::table
        .filter(history::tenant_id.eq(tenant))
        .filter(history::action.eq("user_created"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("history");
    assert_eq!(created, 5, "and is applied once");
    stack.stop().await;
}
