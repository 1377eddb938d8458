//! The rebuild benchmark (`make bench`): `REBUILD_EVENTS` synthetic events (default 1,000,000:
//! redeliveries, deletes, tag and inactive flips, e-mail collisions, stale sync rows, config
//! changes and archive commands over 20 tenants) are produced to a fresh topic on the test broker
//! (`REBUILD_PARTITIONS` partitions, default 48),
//! then `projector replay` (release build) rebuilds every projection from offset 0 into a fresh
//! database. Prints events/s and the replay process's peak memory, for BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use omie_sync_e2e::db::TestDb;
use omie_sync_e2e::stack::create_topic;
use omie_sync_e2e::{kafka_brokers, stream};
use uuid::Uuid;

const TENANTS: usize = 20;
/// Partitions of the events topic unless `REBUILD_PARTITIONS` says otherwise: Tansu's SQLite
/// engine reads a partition in time quadratic in its length, so on fewer of them the dev broker,
/// not the replay, sets the pace (`BENCHMARKS.md`).
const PARTITIONS: i32 = 48;
/// Events per tenant in one produced chunk, so the producer's memory stays bounded.
const CHUNK_PER_TENANT: usize = 2_500;

fn main() {
    let events: usize = std::env::var("REBUILD_EVENTS").ok().and_then(|value| value.parse().ok()).unwrap_or(1_000_000);
    let partitions: i32 =
        std::env::var("REBUILD_PARTITIONS").ok().and_then(|value| value.parse().ok()).unwrap_or(PARTITIONS);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let brokers = kafka_brokers();
    let topic = format!("omie-sync.events.bench-{}", Uuid::new_v4().simple());
    let db = TestDb::create();

    let produced = Instant::now();
    let mut total = 0;
    runtime.block_on(async {
        create_topic(&brokers, &topic, partitions).await;
        create_topic(&brokers, &format!("{topic}.dlq"), 1).await;
        let mut seed = 0;
        while total < events {
            let per_tenant = ((events - total) / TENANTS).clamp(1, CHUNK_PER_TENANT);
            let chunk = stream::synthetic(seed, TENANTS, per_tenant);
            stream::produce(&brokers, &topic, &chunk).await;
            total += chunk.len();
            seed += 1;
        }
    });
    let produce_seconds = produced.elapsed().as_secs_f64();
    eprintln!("produced {total} events to {partitions} partitions in {produce_seconds:.1} s");

    let projector = sibling_binary("projector");
    let started = Instant::now();
    let mut child = Command::new(&projector)
        .args(["replay", "--quiet", "--batch", "5000", "--operator", "bench"])
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", &brokers)
        .env("EVENTS_TOPIC", &topic)
        .env("PROJECTOR_GROUP_ID", "bench")
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap_or_else(|error| panic!("run {}: {error} (make bench builds it)", projector.display()));
    let mut peak_kib = 0;
    let status = loop {
        peak_kib = peak_kib.max(high_water_mark_kib(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait().expect("wait for the replay") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "the replay failed: {status}");
    println!("| {total} | {seconds:.1} | {:.0} | {:.0} |", total as f64 / seconds, peak_kib as f64 / 1024.0);
}

/// A binary built next to this benchmark (`target/release/<name>`).
fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("benchmark path");
    exe.parent().and_then(|deps| deps.parent()).expect("target directory").join(name)
}

/// The process's peak resident memory so far (`VmHWM`), in KiB.
fn high_water_mark_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
