//! A record the projector cannot decode is kept with the reason and does not block the records
//! after it.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sync_e2e::db::TestDb;
use omie_sync_e2e::stack::{create_topic, projector_config, spawn_projector};
use omie_sync_e2e::{eventually, kafka_brokers, stream};
use omie_sync_store::schema::{dead_letters, events};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_are_dead_lettered_and_the_rest_applied() {
    let brokers = kafka_brokers();
    let topic = format!("omie-sync.events.dlq-test-{}", Uuid::new_v4().simple());
    create_topic(&brokers, &topic, 1).await;
    let producer: FutureProducer = omie_sync_platform::kafka::producer_config(&brokers, 10_000).create().unwrap();
    for payload in [&b"not json"[..], br#"{"type": "omie.client.upserted"}"#] {
        producer.send(FutureRecord::to(&topic).key("k").payload(payload), Timeout::Never).await.unwrap();
    }
    let valid = stream::synthetic(1, 1, 0);
    stream::produce(&brokers, &topic, &valid).await;

    let db = TestDb::create();
    let group = format!("dlq-{}", Uuid::new_v4().simple());
    let (_, stop) = spawn_projector(projector_config(&db.url, &brokers, &topic, &group)).await;
    let total = 2 + valid.len() as i64;
    eventually("every record handled", Duration::from_secs(30), || async {
        (db.applied(&group).await == total).then_some(())
    })
    .await;
    stop.stop().await;

    let mut conn = db.connect().await;
    let reasons: Vec<(i64, String)> = dead_letters::table
        .order(dead_letters::log_offset)
        .select((dead_letters::log_offset, dead_letters::reason))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(reasons.len(), 2);
    assert!(reasons.iter().all(|(_, reason)| reason.contains("not a JSON event envelope")), "{reasons:?}");
    let applied: i64 = events::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(applied, valid.len() as i64, "the records after the bad ones are applied");
}
