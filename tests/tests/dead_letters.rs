//! A record the projector cannot decode goes to the dead-letter topic (reason in headers) and the
//! `dead_letters` table, and does not block the records after it; `projector dlq` lists it, shows
//! it and re-drives it after a fix, and it is applied once.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sync_e2e::db::TestDb;
use omie_sync_e2e::stack::{Stack, create_topic, projector_config, shared_config, spawn_projector};
use omie_sync_e2e::{eventually, kafka_brokers, stream};
use omie_sync_events::{ClientUpserted, Event, RecordSource};
use omie_sync_store::schema::{dead_letters, events, users};
use projector::dlq::{self, DlqAction, DlqArgs};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_are_dead_lettered_and_the_rest_applied() {
    let brokers = kafka_brokers();
    let topic = format!("omie-sync.events.dlq-test-{}", Uuid::new_v4().simple());
    create_topic(&brokers, &topic, 1).await;
    create_topic(&brokers, &format!("{topic}.dlq"), 1).await;
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

fn dlq_args(stack: &Stack, action: DlqAction) -> DlqArgs {
    DlqArgs { shared: shared_config(&stack.db.url, &stack.brokers, &stack.topic), action }
}

/// Every record on the dead-letter topic: (headers, payload).
async fn dead_letter_topic(stack: &Stack) -> Vec<(BTreeMap<String, String>, Vec<u8>)> {
    let consumer: StreamConsumer =
        omie_sync_platform::kafka::consumer_config(&stack.brokers, &format!("dlq-reader-{}", Uuid::new_v4().simple()))
            .create()
            .expect("consumer");
    consumer.subscribe(&[&format!("{}.dlq", stack.topic)]).expect("subscribe");
    let message =
        tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a dead letter").expect("read");
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    (header.key.to_owned(), String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    vec![(headers, message.payload().unwrap_or_default().to_vec())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_shown_and_redriven_once_after_a_fix() {
    let stack = Stack::start().await;
    let config = stream::synthetic(5, 1, 0);
    stream::produce(&stack.brokers, &stack.topic, &config).await;
    let tenant = stream::tenant(0);
    let record = json!({"codigo_cliente_omie": 77, "razao_social": "Setenta e Sete", "email": "setenta@empresa.com.br", "tags": [{"tag": "Espresso"}]});
    let mut envelope = config[0].clone();
    envelope.id = Uuid::new_v4();
    envelope.event = Event::ClientUpserted(ClientUpserted { source: RecordSource::Webhook, record, webhook: None });
    let mut future: Value = serde_json::to_value(&envelope).expect("JSON");
    future["schema_version"] = json!(99);
    let producer: FutureProducer =
        omie_sync_platform::kafka::producer_config(&stack.brokers, 10_000).create().expect("producer");
    let sent = serde_json::to_vec(&future).expect("JSON");
    let delivery = producer
        .send(FutureRecord::to(&stack.topic).key(&tenant.to_string()).payload(&sent), Timeout::Never)
        .await
        .expect("produced");
    stack.wait_applied(config.len() as i64 + 1).await;
    let position = format!("{}:{}", delivery.partition, delivery.offset);

    let on_topic = dead_letter_topic(&stack).await;
    assert_eq!(on_topic[0].1, sent, "the original bytes");
    assert!(on_topic[0].0["dlq-reason"].contains("schema_version 99"), "{:?}", on_topic[0].0);
    assert_eq!(on_topic[0].0["dlq-original-offset"], delivery.offset.to_string());

    let listed = dlq::run(&dlq_args(&stack, DlqAction::List { limit: 10 })).await.expect("list");
    assert!(listed.starts_with(&format!("{position}  waiting  ")), "{listed}");
    let shown = dlq::run(&dlq_args(&stack, DlqAction::Show { position: position.parse().expect("position") }))
        .await
        .expect("show");
    assert!(shown.contains("\"schema_version\": 99") && shown.contains("Setenta e Sete"), "{shown}");

    let redrive = |payload_file: Option<std::path::PathBuf>, force: bool| {
        dlq_args(&stack, DlqAction::Redrive { position: position.parse().expect("position"), payload_file, force })
    };
    let refused = dlq::run(&redrive(None, false)).await.expect_err("still undecodable");
    assert!(format!("{refused:#}").contains("--payload-file"), "{refused:#}");

    future["schema_version"] = json!(1);
    let fixed = std::env::temp_dir().join(format!("fixed-{}.json", Uuid::new_v4()));
    std::fs::write(&fixed, serde_json::to_vec(&future).expect("JSON")).expect("write the fix");
    dlq::run(&redrive(Some(fixed.clone()), false)).await.expect("redrive");
    stack.wait_applied(config.len() as i64 + 2).await;
    let twice = dlq::run(&redrive(Some(fixed.clone()), false)).await.expect_err("already re-driven");
    assert!(format!("{twice:#}").contains("--force"));
    dlq::run(&redrive(Some(fixed), true)).await.expect("forced redrive");
    stack.wait_applied(config.len() as i64 + 3).await;

    let mut conn = stack.db.connect().await;
    let users: i64 = users::table.filter(users::omie_code.eq(77)).count().get_result(&mut conn).await.expect("users");
    let applied: i64 =
        events::table.filter(events::id.eq(envelope.id)).count().get_result(&mut conn).await.expect("events");
    assert_eq!((users, applied), (1, 1), "re-driven twice, applied once");
    let listed = dlq::run(&dlq_args(&stack, DlqAction::List { limit: 10 })).await.expect("list");
    assert!(listed.contains("re-driven"), "{listed}");
    stack.stop().await;
}
