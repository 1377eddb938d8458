//! kill -9 of the projector in the middle of a stream, then restart: the final tables equal
//! those of a run without the kill — nothing lost, nothing applied twice.

use std::process::{Command, Stdio};
use std::time::Duration;

use omie_sync_e2e::db::TestDb;
use omie_sync_e2e::stack::{create_topic, projector_config, spawn_projector};
use omie_sync_e2e::{ServiceProcess, eventually, kafka_brokers, stream};
use uuid::Uuid;

const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

fn projector_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let binary = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("projector");
    assert!(binary.exists(), "{} is missing: build it first (`make test` does)", binary.display());
    binary
}

fn start_projector_process(db: &TestDb, brokers: &str, topic: &str, group: &str) -> ServiceProcess {
    let child = Command::new(projector_binary())
        .arg("run")
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", brokers)
        .env("EVENTS_TOPIC", topic)
        .env("PROJECTOR_GROUP_ID", group)
        .env("PROJECTOR_PORT", "0")
        .env("PROJECTOR_BATCH_MAX", "40")
        .env("RUST_LOG", std::env::var("CHILD_RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the projector binary");
    ServiceProcess(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let brokers = kafka_brokers();
    let topic = format!("omie-sync.events.crash-{}", Uuid::new_v4().simple());
    create_topic(&brokers, &topic, 3).await;
    let events = stream::synthetic(7, 3, 1_200);
    stream::produce(&brokers, &topic, &events).await;
    let total = events.len() as i64;

    let reference = TestDb::create();
    let reference_group = format!("reference-{}", Uuid::new_v4().simple());
    let (_, stop) = spawn_projector(projector_config(&reference.url, &brokers, &topic, &reference_group)).await;
    eventually("the reference run to finish", Duration::from_secs(120), || async {
        (reference.applied(&reference_group).await == total).then_some(())
    })
    .await;
    stop.stop().await;

    let crashed = TestDb::create();
    let group = format!("crashed-{}", Uuid::new_v4().simple());
    let mut kills = 0;
    for fraction in [3, 2] {
        let child = start_projector_process(&crashed, &brokers, &topic, &group);
        let threshold = total / fraction;
        eventually("progress before the kill", Duration::from_secs(120), || async {
            (crashed.applied(&group).await >= threshold).then_some(())
        })
        .await;
        child.kill_9();
        kills += 1;
        // Tansu's group coordinator hands a newcomer nothing while a dead member's session
        // (10 s) is still open, and does not rebalance when it expires; Kafka would.
        tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(2)).await;
        assert!(crashed.applied(&group).await < total, "the kill must land mid-stream");
    }
    let child = start_projector_process(&crashed, &brokers, &topic, &group);
    eventually("the restarted projector to finish", Duration::from_secs(120), || async {
        (crashed.applied(&group).await == total).then_some(())
    })
    .await;
    drop(child);

    assert_eq!(kills, 2);
    let expected = reference.dump().await;
    assert!(expected["users"].as_array().is_some_and(|users| users.len() > 100), "the stream makes users");
    assert!(expected["errors"].as_array().is_some_and(|errors| !errors.is_empty()), "and errors");
    assert_eq!(crashed.dump().await, expected);
}
