//! `projector replay`: folds the event log into a shadow schema while the live projector keeps
//! serving, with the same rules and the same batch code. Then, by mode:
//! - **rebuild**: holds the live offsets (the live projector's next batch waits; readers do not),
//!   brings the shadow to exactly the live position, and in one transaction puts the shadow's
//!   tables in place of the live ones (every tenant) or copies one tenant's rows over;
//! - **dry run**: the same up to the comparison, then rolls back and reports what would change;
//! - **past state** (`--until`): stops early and keeps the shadow schema for inspection.
//!
//! Every run is audited: `operator.replay_started` and `operator.replay_finished` for each tenant
//! in scope, so each tenant's history shows who replayed what, when, and what it changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use indicatif::{ProgressBar, ProgressStyle};
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::{
    Actor, ActorKind, Envelope, Event, ReplayCounts, ReplayFinished, ReplayMode, ReplayScope, ReplayStarted, ids,
};
use omie_sync_platform::config::SharedConfig;
use omie_sync_platform::event_log::EventLog;
use omie_sync_platform::kafka;
use omie_sync_platform::metrics::ProduceMetrics;
use omie_sync_store::errors::{ImportError, STATUS_OPEN};
use omie_sync_store::shadow::{self, Shadow};
use omie_sync_store::users::User;
use omie_sync_store::{errors, events, users};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use uuid::Uuid;

use crate::apply::{self, LogRecord, OffsetScope};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the log may stay silent while records are still expected.
const READ_STALL: Duration = Duration::from_secs(30);
/// How long a replay waits for a live projector that is behind the shadow.
const LIVE_CATCH_UP: Duration = Duration::from_secs(120);
const SAMPLES: usize = 5;
/// How long the swap waits for a live table's lock before it copies rows instead.
const MOVE_LOCK_WAIT: Duration = Duration::from_millis(500);
/// The tables the fold reads, unqualified: the shadow connection's search path names the shadow.
const ANALYZE_SHADOW: &str = "ANALYZE events, users, omie_records, import_errors, integrations, sync_runs, sync_seen";

#[derive(Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub shared: SharedConfig,
    /// The live projector's consumer group: its offsets are where the live state stands.
    #[arg(long, env = "PROJECTOR_GROUP_ID", value_name = "PROJECTOR_GROUP_ID", default_value = "omie-sync-projector")]
    pub group_id: String,
    /// Rebuild one tenant; every other tenant's rows stay exactly as they are.
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<Uuid>,
    /// Stop early and keep the result aside: an RFC 3339 instant (events recorded up to it) or a
    /// log offset (each partition up to and including it).
    #[arg(long, value_name = "TIME|OFFSET", value_parser = Until::parse, conflicts_with = "dry_run")]
    pub until: Option<Until>,
    /// Build aside, compare with live and report what would change; nothing live is touched.
    /// Exit code 1 when something would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Who runs the replay, for the history.
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Events applied per transaction.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub batch: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Where a past-state replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Each partition up to and including this offset.
    Offset(i64),
    /// Events recorded up to this instant.
    Time(DateTime<Utc>),
}

impl Until {
    pub fn parse(text: &str) -> Result<Until, String> {
        if let Ok(offset) = text.parse::<i64>() {
            return if offset >= 0 { Ok(Until::Offset(offset)) } else { Err("an offset is 0 or more".into()) };
        }
        DateTime::parse_from_rfc3339(text)
            .map(|instant| Until::Time(instant.with_timezone(&Utc)))
            .map_err(|_| "expected an RFC 3339 instant (2026-12-01T12:00:00Z) or a log offset (12345)".into())
    }

    fn describe(self) -> String {
        match self {
            Until::Offset(offset) => offset.to_string(),
            Until::Time(instant) => instant.to_rfc3339(),
        }
    }
}

/// What a replay did or would do.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub replay_id: Uuid,
    pub mode: ReplayMode,
    /// The schema a past state was kept in.
    pub kept_schema: Option<String>,
    pub counts: ReplayCounts,
    /// Rows that differ between live and rebuilt, per table (a changed row counts twice).
    pub differing_rows: Vec<(&'static str, i64)>,
    /// A few of the differing users and errors, one line each.
    pub samples: Vec<String>,
    pub duration: Duration,
}

impl ReplayReport {
    pub fn differences(&self) -> bool {
        self.differing_rows.iter().any(|(_, rows)| *rows > 0)
    }

    pub fn render(&self) -> String {
        let counts = &self.counts;
        let seconds = self.duration.as_secs_f64();
        let mut lines = vec![format!(
            "replay {} ({:?}): {} events read, {} applied in {seconds:.1} s ({:.0} events/s)",
            self.replay_id,
            self.mode,
            counts.events_read,
            counts.events_applied,
            counts.events_read as f64 / seconds.max(0.001)
        )];
        if let Some(schema) = &self.kept_schema {
            lines.push(format!("the past state is in schema {schema}; drop it with: DROP SCHEMA {schema} CASCADE"));
            return lines.join("\n") + "\n";
        }
        let verb = if self.mode == ReplayMode::DryRun { "would change" } else { "changed" };
        lines.push(format!(
            "users {verb}: {} created, {} updated, {} deactivated, {} reactivated, {} removed",
            counts.users_created,
            counts.users_updated,
            counts.users_deactivated,
            counts.users_reactivated,
            counts.users_removed
        ));
        lines.push(format!(
            "errors {verb}: {} opened, {} resolved, {} otherwise changed",
            counts.errors_opened, counts.errors_resolved, counts.errors_changed
        ));
        let differing: Vec<String> = self
            .differing_rows
            .iter()
            .filter(|(_, rows)| *rows > 0)
            .map(|(table, rows)| format!("{table} {rows}"))
            .collect();
        lines.push(if differing.is_empty() {
            "no row differs between live and rebuilt".to_owned()
        } else {
            format!("differing rows (a changed row counts twice): {}", differing.join(", "))
        });
        lines.extend(self.samples.iter().map(|sample| format!("  {sample}")));
        lines.join("\n") + "\n"
    }
}

pub async fn run(args: &ReplayArgs) -> anyhow::Result<ReplayReport> {
    run_until_interrupted(args, std::future::pending()).await
}

/// Runs a replay; when `interrupted` resolves first (to what interrupted it), the run stops, its
/// shadow is dropped and it is recorded as failed, as any failure is.
pub async fn run_until_interrupted(
    args: &ReplayArgs,
    interrupted: impl Future<Output = String>,
) -> anyhow::Result<ReplayReport> {
    args.shared.validate()?;
    let clock = Instant::now();
    let replay_id = Uuid::now_v7();
    let mode = match (args.dry_run, args.until) {
        (true, _) => ReplayMode::DryRun,
        (false, Some(_)) => ReplayMode::PastState,
        (false, None) => ReplayMode::Rebuild,
    };
    let scope = ReplayScope { tenant: args.tenant, until: args.until.map(Until::describe) };
    let database_url = &args.shared.database_url;
    let mut live = AsyncPgConnection::establish(database_url).await.context("cannot connect to DATABASE_URL")?;
    let tenants = match args.tenant {
        Some(tenant) => vec![tenant],
        None => events::tenants(&mut live).await?,
    };
    let producer: FutureProducer = kafka::producer_config(&args.shared.kafka_brokers, 10_000)
        .create()
        .context("cannot create the Kafka producer (check KAFKA_BROKERS)")?;
    let log =
        EventLog::new(producer, args.shared.events_topic.clone(), Duration::from_secs(10), ProduceMetrics::detached());
    let audit = Audit { log: &log, operator: &args.operator, tenants: &tenants };
    let shadow = Shadow::for_replay(replay_id);
    shadow.claim(&mut live).await?;
    for schema in Shadow::drop_abandoned(&mut live).await? {
        tracing::info!(%schema, "dropped a schema an interrupted replay left behind");
    }
    // Where the log ends is read before the replay's own audit events land in it: a stopped live
    // projector that had applied everything is then not behind the replay.
    let reader = LogReader::open(args, &shadow)?;
    audit.record(|_| Event::ReplayStarted(ReplayStarted { replay_id, mode, scope: scope.clone() })).await?;

    let create = {
        let (shadow, url) = (shadow.clone(), database_url.clone());
        tokio::task::spawn_blocking(move || shadow.create(&url))
    };
    let created = create
        .await
        .context("the shadow schema task panicked")
        .and_then(|created| created.map_err(anyhow::Error::from));
    let outcome = match created {
        Ok(()) => tokio::select! {
            outcome = replay_into(args, mode, &shadow, &mut live, reader) => outcome,
            by = interrupted => {
                // The connection stopped mid-statement: closing it rolls back its transaction.
                live = AsyncPgConnection::establish(database_url).await.context("cannot connect to DATABASE_URL")?;
                Err(anyhow::anyhow!("interrupted by {by}; nothing live changed"))
            }
        },
        Err(error) => Err(error),
    };
    if mode == ReplayMode::PastState
        && outcome.is_ok()
        && let Err(error) = shadow
            .keep(
                &mut live,
                &format!("past state kept by replay {replay_id} up to {}", scope.until.as_deref().unwrap_or("the end")),
            )
            .await
    {
        tracing::warn!(%error, schema = shadow.name(), "could not mark the kept schema; the next replay may drop it");
    }
    if (mode != ReplayMode::PastState || outcome.is_err())
        && let Err(error) = shadow.drop(&mut live).await
    {
        tracing::warn!(%error, schema = shadow.name(), "could not drop the shadow schema; drop it by hand");
    }
    let (counts, verdict) = match &outcome {
        Ok(built) => (built.counts.clone(), ("completed".to_owned(), None)),
        Err(error) => (ReplayCounts::default(), ("failed".to_owned(), Some(format!("{error:#}")))),
    };
    let duration = clock.elapsed();
    let recorded = audit
        .record(|_| {
            Event::ReplayFinished(ReplayFinished {
                replay_id,
                mode,
                scope: scope.clone(),
                outcome: verdict.0.clone(),
                reason: verdict.1.clone(),
                counts: counts.clone(),
                duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .await;
    log.flush(Duration::from_secs(5));
    let built = outcome?;
    recorded?;
    Ok(ReplayReport {
        replay_id,
        mode,
        kept_schema: (mode == ReplayMode::PastState).then(|| shadow.name().to_owned()),
        counts: built.counts,
        differing_rows: built.differing_rows,
        samples: built.samples,
        duration,
    })
}

struct Built {
    counts: ReplayCounts,
    differing_rows: Vec<(&'static str, i64)>,
    samples: Vec<String>,
}

async fn replay_into(
    args: &ReplayArgs,
    mode: ReplayMode,
    shadow: &Shadow,
    live: &mut AsyncPgConnection,
    mut reader: LogReader,
) -> anyhow::Result<Built> {
    if !shadow.same_migrations(live).await? {
        bail!(
            "the live schema and this projector's migrations differ: run this projector's `migrate` first, or replay with the projector that matches the live schema"
        );
    }
    let shadow_conn = shadow.connect(&args.shared.database_url).await?;
    let mut counts = ReplayCounts::default();
    let targets = reader.targets(args.until)?;
    reader.progress_to(&targets, args.quiet);
    let reading = Instant::now();
    let mut shadow_conn = reader.read_to(&targets, shadow_conn, &mut counts).await?;
    tracing::info!(
        events = counts.events_read,
        applied = counts.events_applied,
        seconds = reading.elapsed().as_secs_f64(),
        "replay folded the log aside"
    );
    if mode == ReplayMode::PastState {
        reader.progress.finish_and_clear();
        return Ok(Built { counts, differing_rows: Vec::new(), samples: Vec::new() });
    }
    let ending = match mode {
        ReplayMode::Rebuild if args.tenant.is_none() && takeover_clear(shadow, live).await? => Ending::MoveTables,
        ReplayMode::Rebuild => Ending::CopyRows,
        _ => Ending::Compare,
    };
    if ending == Ending::MoveTables {
        let preparing = Instant::now();
        shadow.prepare_takeover(&args.shared.database_url).await?;
        tracing::info!(seconds = preparing.elapsed().as_secs_f64(), "replay made the rebuilt tables fit to go live");
    }
    let deadline = Instant::now() + LIVE_CATCH_UP;
    loop {
        live.batch_execute("BEGIN").await?;
        let finished = finish(args, ending, shadow, live, &mut shadow_conn, &mut reader, &mut counts).await;
        match finished {
            Ok(Some(built)) => {
                let end = if ending == Ending::Compare { "ROLLBACK" } else { "COMMIT" };
                live.batch_execute(end).await?;
                reader.progress.finish_and_clear();
                return Ok(built);
            }
            Ok(None) => {
                live.batch_execute("ROLLBACK").await?;
                if Instant::now() >= deadline {
                    bail!(
                        "the live projector (group {}) stayed behind the log for {} s; start it, or wait until it \
                         catches up, and replay again",
                        args.group_id,
                        LIVE_CATCH_UP.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                let _ = live.batch_execute("ROLLBACK").await;
                return Err(error);
            }
        }
    }
}

/// Inside the live transaction: hold the live offsets, bring the shadow to the live position,
/// compare, and (rebuild) swap. `None` when the live projector is behind the shadow and the
/// replay must wait for it (a one-tenant rebuild or a dry run cannot move the live offsets).
async fn finish(
    args: &ReplayArgs,
    ending: Ending,
    shadow: &Shadow,
    live: &mut AsyncPgConnection,
    shadow_conn: &mut AsyncPgConnection,
    reader: &mut LogReader,
    counts: &mut ReplayCounts,
) -> anyhow::Result<Option<Built>> {
    let topic = &args.shared.events_topic;
    // Live must stand still from here to the end: the shadow is brought to its position on
    // another connection, and the comparison reads both. A dry run holds it as a rebuild does,
    // so that it reports exactly what the rebuild would change; it rolls back.
    let live_offsets = shadow::hold_live_offsets(live, &args.group_id, topic).await?;
    if let Some(unknown) = live_offsets.keys().find(|partition| !reader.positions.contains_key(partition)) {
        bail!(
            "the live projector has applied partition {unknown} of {topic}, which this replay does not read; rerun it"
        );
    }
    // A live projector that never ran (no offsets, no events) is a bootstrap: the rebuild becomes
    // the live state and its offsets. Offsets missing beside existing events mean another group.
    let bootstrap = live_offsets.is_empty() && !events::any(live).await?;
    if live_offsets.is_empty() && !bootstrap {
        bail!(
            "no offsets for consumer group {} on {topic}, yet the projections hold events: is PROJECTOR_GROUP_ID the \
             live projector's?",
            args.group_id
        );
    }
    let live_behind = reader
        .positions
        .iter()
        .any(|(partition, &position)| position > live_offsets.get(partition).copied().unwrap_or(0));
    if live_behind && !(bootstrap && ending != Ending::Compare && args.tenant.is_none()) {
        return Ok(None);
    }
    let targets: HashMap<i32, i64> = reader
        .positions
        .iter()
        .map(|(&partition, &position)| (partition, position.max(live_offsets.get(&partition).copied().unwrap_or(0))))
        .collect();
    // On a connection of its own: the first pass's stays with this function's caller.
    let catch_up = shadow.connect(&args.shared.database_url).await?;
    reader.read_to(&targets, catch_up, counts).await?;

    let comparing = Instant::now();
    let tenants = args.tenant.map(|tenant| vec![tenant]);
    let scope = tenants.as_deref();
    let mut samples = Vec::new();
    compare_users(
        users::of_scope(live, scope).await?,
        users::of_scope(shadow_conn, scope).await?,
        counts,
        &mut samples,
    );
    compare_errors(
        errors::of_scope(live, scope).await?,
        errors::of_scope(shadow_conn, scope).await?,
        counts,
        &mut samples,
    );
    let differing_rows = shadow.differing_rows(live, scope).await?;
    tracing::info!(seconds = comparing.elapsed().as_secs_f64(), "replay compared live and rebuilt");
    let swapping = Instant::now();
    if ending != Ending::Compare {
        // Checked again under the lock: what hangs on the live tables may have changed meanwhile.
        let moved =
            ending == Ending::MoveTables && takeover_clear(shadow, live).await? && move_tables(shadow, live).await?;
        if !moved {
            shadow.replace_live(live, scope).await?;
        }
        if bootstrap {
            // Nothing ran live: the rebuild's dead letters and position become the live ones.
            shadow.adopt_dead_letters(live).await?;
            shadow::advance_live_offsets(live, &args.group_id, topic, &reader.positions).await?;
        }
        tracing::info!(seconds = swapping.elapsed().as_secs_f64(), "replay swapped the rebuilt rows in");
    }
    Ok(Some(Built { counts: counts.clone(), differing_rows, samples }))
}

/// Moves the shadow's tables into place; `false` (and nothing moved) when that fails, mostly
/// because a table stays locked by someone else: readers queue behind a move that waits, so it
/// waits only briefly, and copying rows, which readers do not wait for, takes over.
async fn move_tables(shadow: &Shadow, live: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    live.batch_execute(&format!("SAVEPOINT take_over; SET LOCAL lock_timeout = {}", MOVE_LOCK_WAIT.as_millis()))
        .await?;
    match shadow.take_over_live(live).await {
        Ok(()) => {
            live.batch_execute("RELEASE SAVEPOINT take_over; SET LOCAL lock_timeout TO DEFAULT").await?;
            Ok(true)
        }
        Err(error) => {
            tracing::warn!(%error, "the rebuilt tables could not be moved into place: the rebuild copies its rows instead");
            live.batch_execute("ROLLBACK TO SAVEPOINT take_over").await?;
            Ok(false)
        }
    }
}

/// How a run ends once the shadow stands at the live position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A dry run: compare, change nothing.
    Compare,
    /// A one-tenant rebuild, or one whose live tables carry objects of their own.
    CopyRows,
    /// A rebuild of every tenant whose shadow tables were prepared to become the live ones.
    MoveTables,
}

/// Whether a rebuild of every tenant may move its tables into place of the live ones, rather
/// than copy its rows over them.
async fn takeover_clear(shadow: &Shadow, live: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    let blockers = shadow.takeover_blockers(live).await?;
    if !blockers.is_empty() {
        tracing::warn!(
            blockers = %blockers.join("; "),
            "other objects hang on the live tables: the rebuild copies its rows over them instead of swapping tables"
        );
    }
    Ok(blockers.is_empty())
}

fn compare_users(live: Vec<User>, rebuilt: Vec<User>, counts: &mut ReplayCounts, samples: &mut Vec<String>) {
    let mut live: HashMap<Uuid, User> = live.into_iter().map(|user| (user.id, user)).collect();
    let mut sample = |what: &str, user: &User| {
        if samples.len() < SAMPLES * 2 {
            samples.push(format!("user {what}: {} {} <{}>", user.omie_code, user.name, user.email));
        }
    };
    let mut rebuilt = rebuilt;
    rebuilt.sort_by_key(|user| user.omie_code);
    for user in rebuilt {
        match live.remove(&user.id) {
            None => {
                counts.users_created += 1;
                sample("created", &user);
            }
            Some(before) if before == user => {}
            Some(before) if before.active && !user.active => {
                counts.users_deactivated += 1;
                sample("deactivated", &user);
            }
            Some(before) if !before.active && user.active => {
                counts.users_reactivated += 1;
                sample("reactivated", &user);
            }
            Some(_) => {
                counts.users_updated += 1;
                sample("updated", &user);
            }
        }
    }
    for user in live.values() {
        counts.users_removed += 1;
        sample("removed", user);
    }
}

fn compare_errors(
    live: Vec<ImportError>,
    rebuilt: Vec<ImportError>,
    counts: &mut ReplayCounts,
    samples: &mut Vec<String>,
) {
    let mut live: HashMap<Uuid, ImportError> = live.into_iter().map(|error| (error.id, error)).collect();
    let mut sample = |what: &str, error: &ImportError| {
        if samples.len() < SAMPLES * 4 {
            let code = error.omie_code.map_or_else(|| "-".to_owned(), |code| code.to_string());
            samples.push(format!("error {what}: {} {code} {}", error.kind, error.message));
        }
    };
    for error in rebuilt {
        let before = live.remove(&error.id);
        let was_open = before.as_ref().is_some_and(|before| before.status == STATUS_OPEN);
        let is_open = error.status == STATUS_OPEN;
        match before {
            Some(before) if before == error => {}
            _ if is_open && !was_open => {
                counts.errors_opened += 1;
                sample("opened", &error);
            }
            _ if was_open && !is_open => {
                counts.errors_resolved += 1;
                sample("resolved", &error);
            }
            _ => {
                counts.errors_changed += 1;
                sample("changed", &error);
            }
        }
    }
    for error in live.into_values() {
        if error.status == STATUS_OPEN {
            counts.errors_resolved += 1;
            sample("resolved", &error);
        } else {
            counts.errors_changed += 1;
            sample("removed", &error);
        }
    }
}

/// Appends the replay's audit events, one per tenant in scope, as the operator.
struct Audit<'a> {
    log: &'a EventLog,
    operator: &'a str,
    tenants: &'a [Uuid],
}

impl Audit<'_> {
    async fn record(&self, event: impl Fn(Uuid) -> Event) -> anyhow::Result<()> {
        for &tenant in self.tenants {
            let now = Utc::now();
            let envelope = Envelope {
                id: Uuid::now_v7(),
                schema_version: SCHEMA_VERSION,
                tenant_id: tenant,
                integration_id: ids::integration_id(tenant),
                occurred_at: now,
                recorded_at: now,
                actor: Actor {
                    kind: ActorKind::Operator,
                    id: Some(self.operator.to_owned()),
                    name: Some(self.operator.to_owned()),
                    email: None,
                },
                subject: None,
                correlation_id: None,
                causation_id: None,
                event: event(tenant),
            };
            self.log.append(&envelope).await.context("cannot record the replay's audit event in the log")?;
        }
        Ok(())
    }
}

/// Reads the events topic from the beginning, partition by partition up to a target, and applies
/// what is in scope to the shadow in batches.
struct LogReader {
    consumer: StreamConsumer,
    topic: String,
    scope: OffsetScope,
    tenant_key: Option<String>,
    until_time: Option<DateTime<Utc>>,
    batch: usize,
    /// Next offset to read, per partition.
    positions: HashMap<i32, i64>,
    /// Partitions paused at a target, to seek back to their position before reading on.
    paused: HashSet<i32>,
    highs: HashMap<i32, i64>,
    progress: ProgressBar,
}

impl LogReader {
    fn open(args: &ReplayArgs, shadow: &Shadow) -> anyhow::Result<LogReader> {
        let topic = args.shared.events_topic.clone();
        let consumer: StreamConsumer = kafka::consumer_config(&args.shared.kafka_brokers, shadow.name())
            // No lag metric here, and rdkafka's default context would log every statistics report.
            .set("statistics.interval.ms", "0")
            .create()
            .context("cannot create the Kafka consumer (check KAFKA_BROKERS)")?;
        let metadata =
            consumer.fetch_metadata(Some(&topic), KAFKA_TIMEOUT).context("cannot read the topic's metadata")?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|found| found.name() == topic)
            .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
            .collect();
        if partitions.is_empty() {
            bail!("the topic {topic} does not exist or has no partitions (check EVENTS_TOPIC)");
        }
        let mut positions = HashMap::new();
        let mut highs = HashMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)?;
            if low > 0 {
                bail!(
                    "partition {partition} of {topic} no longer starts at offset 0 (it starts at {low}): the log lost \
                     events to retention, so a rebuild would lose them too; the topic needs retention.ms=-1"
                );
            }
            positions.insert(partition, low);
            highs.insert(partition, high);
            assignment.add_partition_offset(&topic, partition, Offset::Offset(low))?;
        }
        consumer.assign(&assignment)?;
        Ok(LogReader {
            consumer,
            scope: OffsetScope { group: format!("replay-{}", shadow.name()), topic: topic.clone() },
            topic,
            tenant_key: args.tenant.map(|tenant| tenant.to_string()),
            until_time: match args.until {
                Some(Until::Time(instant)) => Some(instant),
                _ => None,
            },
            batch: args.batch as usize,
            positions,
            paused: HashSet::new(),
            highs,
            progress: ProgressBar::hidden(),
        })
    }

    /// Where the first pass stops: the end of the log as it was when the replay began, or the
    /// `--until` offset.
    fn targets(&self, until: Option<Until>) -> anyhow::Result<HashMap<i32, i64>> {
        Ok(self
            .highs
            .iter()
            .map(|(&partition, &high)| match until {
                Some(Until::Offset(offset)) => (partition, high.min(offset.saturating_add(1))),
                _ => (partition, high),
            })
            .collect())
    }

    fn progress_to(&mut self, targets: &HashMap<i32, i64>, quiet: bool) {
        let total: i64 = targets
            .iter()
            .map(|(partition, target)| target - self.positions.get(partition).copied().unwrap_or(0))
            .sum();
        let total = u64::try_from(total).unwrap_or(0);
        self.progress = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
        self.progress.set_style(
            ProgressStyle::with_template("  replay [{bar:32.cyan/blue}] {pos}/{len} events · {per_sec} · ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▉ "),
        );
    }

    /// Reads until every partition's position reached its target, applying in-scope records
    /// through `shadow`, which it hands back. The next batch is read while the previous one is
    /// written, on a task of its own so the two use both cores.
    async fn read_to(
        &mut self,
        targets: &HashMap<i32, i64>,
        shadow: AsyncPgConnection,
        counts: &mut ReplayCounts,
    ) -> anyhow::Result<AsyncPgConnection> {
        let (batches, mut to_apply) = tokio::sync::mpsc::channel::<Vec<LogRecord>>(2);
        let scope = self.scope.clone();
        let applying = tokio::spawn(async move {
            let mut shadow = shadow;
            let (mut applied, mut batches_applied) = (0, 0u64);
            while let Some(batch) = to_apply.recv().await {
                // No dead-letter topic: the live projector already sent those records there.
                let report = apply::apply_batch(&mut shadow, &scope, &batch, None).await?;
                applied += u64::try_from(report.applied + report.dead_lettered).unwrap_or(u64::MAX);
                batches_applied += 1;
                // The shadow's tables grow from empty faster than autovacuum notices: without fresh
                // statistics the planner keeps scanning them whole. Analyse as they double.
                if batches_applied.is_power_of_two() {
                    shadow.batch_execute(ANALYZE_SHADOW).await?;
                }
            }
            Ok::<_, anyhow::Error>((shadow, applied))
        });
        let read = self.read_batches(targets, batches).await;
        // A writer that failed is the cause of the reader's failure to hand it batches.
        let (shadow, applied) = applying.await.context("the replay's writer panicked")??;
        counts.events_read += read?;
        counts.events_applied += applied;
        Ok(shadow)
    }

    /// Sends the in-scope records up to `targets` in batches; returns how many records it read.
    async fn read_batches(
        &mut self,
        targets: &HashMap<i32, i64>,
        batches: tokio::sync::mpsc::Sender<Vec<LogRecord>>,
    ) -> anyhow::Result<u64> {
        let mut read = 0;
        let mut pending: Vec<LogRecord> = Vec::with_capacity(self.batch);
        let mut stopped: BTreeMap<i32, ()> = BTreeMap::new();
        for (&partition, &target) in targets {
            if self.positions.get(&partition).copied().unwrap_or(0) >= target {
                stopped.insert(partition, ());
                if !self.paused.contains(&partition) {
                    self.pause(partition)?;
                }
            } else if self.paused.remove(&partition) {
                self.resume(partition)?;
            }
        }
        while stopped.len() < targets.len() {
            let received = tokio::time::timeout(READ_STALL, self.consumer.recv())
                .await
                .map_err(|_| anyhow::anyhow!("the log stopped delivering records for {} s", READ_STALL.as_secs()))?;
            let message = match received {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "consumer error while replaying; reading on");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (partition, offset) = (message.partition(), message.offset());
            let target = targets.get(&partition).copied().unwrap_or(0);
            let position = self.positions.get(&partition).copied().unwrap_or(0);
            if offset < position || stopped.contains_key(&partition) {
                continue;
            }
            if offset > position {
                // Offsets of this topic are contiguous: a gap means records were fetched and
                // dropped while the partition was stopped. Read them again.
                self.consumer.seek(&self.topic, partition, Offset::Offset(position), KAFKA_TIMEOUT)?;
                continue;
            }
            let past_until = self.until_time.is_some_and(|until| {
                message.timestamp().to_millis().and_then(DateTime::from_timestamp_millis).is_some_and(|at| at > until)
            });
            if offset >= target || past_until {
                stopped.insert(partition, ());
                self.pause(partition)?;
                continue;
            }
            self.positions.insert(partition, offset + 1);
            read += 1;
            self.progress.inc(1);
            let in_scope = match (&self.tenant_key, message.key()) {
                (None, _) => true,
                (Some(wanted), Some(key)) => key == wanted.as_bytes(),
                (Some(_), None) => false,
            };
            if in_scope {
                pending.push(LogRecord::from_message(&message));
            }
            if offset + 1 >= target {
                stopped.insert(partition, ());
                self.pause(partition)?;
            }
            if pending.len() >= self.batch {
                let full = std::mem::replace(&mut pending, Vec::with_capacity(self.batch));
                batches.send(full).await.map_err(|_| anyhow::anyhow!("the replay's writer stopped"))?;
            }
        }
        if !pending.is_empty() {
            batches.send(pending).await.map_err(|_| anyhow::anyhow!("the replay's writer stopped"))?;
        }
        Ok(read)
    }

    /// Reads a paused partition on from its position (the records fetched past the target while
    /// it ran were dropped).
    fn resume(&self, partition: i32) -> anyhow::Result<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        let position = self.positions.get(&partition).copied().unwrap_or(0);
        self.consumer.resume(&list)?;
        self.consumer.seek(&self.topic, partition, Offset::Offset(position), KAFKA_TIMEOUT)?;
        Ok(())
    }

    fn pause(&mut self, partition: i32) -> anyhow::Result<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        self.consumer.pause(&list)?;
        self.paused.insert(partition);
        Ok(())
    }
}
