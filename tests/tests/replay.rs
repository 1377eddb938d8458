//! `projector replay`: a rebuild from offset 0 equals the live state row for row; a one-tenant
//! rebuild leaves every other tenant byte-identical; a dry run reports exactly what a rebuild then
//! changes; reads keep answering during a rebuild under concurrent webhooks; every run is audited.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use omie_sync_e2e::fixtures::webhook;
use omie_sync_e2e::stack::{Stack, shared_config};
use omie_sync_e2e::stream::{self, produce, synthetic};
use omie_sync_events::ReplayMode;
use omie_sync_platform::auth::Role;
use omie_sync_store::schema::{history, import_errors, users};
use omie_sync_store::shadow::Shadow;
use projector::replay::{self, ReplayArgs, Until};
use serde_json::{Value, json};
use uuid::Uuid;

fn args(stack: &Stack, tenant: Option<Uuid>) -> ReplayArgs {
    ReplayArgs {
        shared: shared_config(&stack.db.url, &stack.brokers, &stack.topic),
        group_id: stack.group.clone(),
        tenant,
        until: None,
        dry_run: false,
        operator: "ops-maria".into(),
        batch: 300,
        quiet: true,
    }
}

/// The `projector` binary beside this test's (`make test` builds it).
fn projector_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .expect("test path")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target")
        .join("projector")
}

fn dry_run(stack: &Stack, tenant: Option<Uuid>) -> ReplayArgs {
    ReplayArgs { dry_run: true, ..args(stack, tenant) }
}

/// A live stack that applied a synthetic stream of `tenants` tenants.
async fn live_stack(seed: u64, tenants: usize, events_per_tenant: usize) -> Stack {
    let stack = Stack::start().await;
    let envelopes = synthetic(seed, tenants, events_per_tenant);
    produce(&stack.brokers, &stack.topic, &envelopes).await;
    stack.wait_applied(envelopes.len() as i64).await;
    stack
}

/// A live stack with one configured tenant (tag `Espresso`) whose first `people` clients came in
/// by webhook and were applied.
async fn webhook_stack(app_key: &str, people: i64) -> (Stack, Uuid) {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, app_key, "secret-of-the-replay-tests", "Espresso").await;
    for code in 1..=people {
        post_person(&stack, app_key, code).await;
    }
    // Configuring is three events.
    stack.wait_applied(people + 3).await;
    (stack, tenant)
}

/// Posts Omie client `code`, tagged and with an e-mail of its own, as a new client.
async fn post_person(stack: &Stack, app_key: &str, code: i64) {
    let person = json!({"codigo_cliente_omie": code, "razao_social": format!("Pessoa {code}"),
                        "email": format!("p{code}@empresa-demo.com.br"), "inativo": "N", "tags": [{"tag": "Espresso"}]});
    let body = webhook(app_key, "ClienteFornecedor.Incluido", &person, "Ana");
    assert_eq!(stack.post_webhook(body, "").await.status(), 200);
}

/// Makes `shadow` with every migration, as a replay would.
async fn create_shadow(stack: &Stack, shadow: &Shadow) {
    let (shadow, url) = (shadow.clone(), stack.db.url.clone());
    tokio::task::spawn_blocking(move || shadow.create(&url)).await.expect("join").expect("a shadow");
}

/// The dump's rows of one tenant (users, errors, history), or of every other tenant.
fn rows_of(dump: &Value, tenant: Uuid, keep: bool) -> Value {
    let mut kept = json!({});
    for table in ["users", "errors", "history"] {
        let rows: Vec<Value> = dump[table]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|row| (row["tenant_id"] == tenant.to_string()) == keep)
            .cloned()
            .collect();
        kept[table] = json!(rows);
    }
    kept
}

/// The dump without the rows the replay's own audit events add.
fn without_audit(mut dump: Value) -> Value {
    let history = dump["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|row| !row["action"].as_str().is_some_and(|action| action.starts_with("replay_")));
    dump["history"] = json!(history.cloned().collect::<Vec<_>>());
    let events = dump["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|row| !row[1].as_str().is_some_and(|event_type| event_type.starts_with("operator.replay")));
    dump["events"] = json!(events.cloned().collect::<Vec<_>>());
    dump
}

async fn replay_history(stack: &Stack, tenant: Uuid) -> Vec<(String, Value)> {
    let mut conn = stack.db.connect().await;
    history::table
        .filter(history::tenant_id.eq(tenant))
        .filter(history::action.like("replay_%"))
        .order(history::at)
        .select((history::action, history::actor))
        .load(&mut conn)
        .await
        .expect("history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_streams_rebuilt_from_offset_zero_equal_the_live_state_row_for_row() {
    // Two fixed streams, and a new one each run: a failure names its seed to reproduce it.
    let fresh =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(13, |elapsed| elapsed.as_secs());
    for seed in [11, 12, fresh] {
        let stack = live_stack(seed, 3, 250).await;
        let report = replay::run(&dry_run(&stack, None)).await.expect("dry run");
        assert!(report.counts.events_applied > 700, "seed {seed}: {report:?}");
        assert!(!report.differences(), "seed {seed}: rebuilt differs from live: {}", report.render());
        assert_eq!(report.mode, ReplayMode::DryRun);

        let (before, catalog) = (stack.db.dump().await, stack.db.catalog().await);
        let rebuilt = replay::run(&args(&stack, None)).await.expect("rebuild");
        assert!(!rebuilt.differences(), "{}", rebuilt.render());
        // The rebuilt tables took the live ones' place: as durable and indexed, nothing left aside.
        assert_eq!(stack.db.catalog().await, catalog, "seed {seed}: the swap changed the schema");
        // Each tenant's audit events sit in its own partition: wait for every tenant's.
        omie_sync_e2e::eventually("the audit events applied", Duration::from_secs(20), || async {
            for index in 0..3 {
                (replay_history(&stack, stream::tenant(index)).await.len() == 4).then_some(())?;
            }
            Some(())
        })
        .await;
        assert_eq!(without_audit(stack.db.dump().await), without_audit(before), "seed {seed}: the swap changed rows");
        for index in 0..3 {
            let audit = replay_history(&stack, stream::tenant(index)).await;
            let actions: Vec<&str> = audit.iter().map(|(action, _)| action.as_str()).collect();
            assert_eq!(actions, ["replay_started", "replay_finished", "replay_started", "replay_finished"]);
            assert!(audit.iter().all(|(_, actor)| actor["kind"] == "operator" && actor["name"] == "ops-maria"));
        }
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_tenant_rebuild_repairs_that_tenant_and_leaves_the_others_byte_identical() {
    let stack = live_stack(21, 3, 200).await;
    let (repaired, untouched) = (stream::tenant(0), stream::tenant(1));
    let mut conn = stack.db.connect().await;
    // Two drifts, as a bug or a rule change would leave them: one in each tenant.
    for tenant in [repaired, untouched] {
        diesel::update(users::table.filter(users::tenant_id.eq(tenant)))
            .set(users::name.eq("DRIFTED"))
            .execute(&mut conn)
            .await
            .expect("drift");
    }
    let before = stack.db.dump().await;
    let report = replay::run(&args(&stack, Some(repaired))).await.expect("rebuild one tenant");
    assert!(report.counts.users_updated > 0, "{}", report.render());
    let after = stack.db.dump().await;
    assert_eq!(rows_of(&after, untouched, true), rows_of(&before, untouched, true), "the other tenant is untouched");
    assert_eq!(rows_of(&after, stream::tenant(2), true), rows_of(&before, stream::tenant(2), true));
    let names: Vec<String> =
        users::table.filter(users::tenant_id.eq(repaired)).select(users::name).load(&mut conn).await.expect("names");
    assert!(!names.is_empty() && names.iter().all(|name| name != "DRIFTED"), "the tenant was rebuilt");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_exactly_the_rows_a_rebuild_then_changes() {
    let stack = live_stack(31, 2, 300).await;
    let mut conn = stack.db.connect().await;
    // As after a rule change: some users differ, one is wrongly inactive, one error is missing.
    let active: Vec<Uuid> = users::table
        .filter(users::active.eq(true))
        .order(users::id)
        .select(users::id)
        .limit(4)
        .load(&mut conn)
        .await
        .expect("users");
    assert_eq!(active.len(), 4);
    diesel::update(users::table.filter(users::id.eq_any(&active[..3])))
        .set(users::email.eq("antes@regra-antiga.com.br"))
        .execute(&mut conn)
        .await
        .expect("drift");
    diesel::update(users::table.filter(users::id.eq(active[3])))
        .set(users::active.eq(false))
        .execute(&mut conn)
        .await
        .expect("drift");
    let open_error: Uuid = import_errors::table
        .filter(import_errors::status.eq("open"))
        .order(import_errors::id)
        .select(import_errors::id)
        .first(&mut conn)
        .await
        .expect("an open error");
    diesel::delete(omie_sync_store::schema::error_events::table)
        .filter(omie_sync_store::schema::error_events::error_id.eq(open_error))
        .execute(&mut conn)
        .await
        .expect("drift");
    diesel::delete(import_errors::table.filter(import_errors::id.eq(open_error)))
        .execute(&mut conn)
        .await
        .expect("drift");

    let report = replay::run(&dry_run(&stack, None)).await.expect("dry run");
    let counts = &report.counts;
    assert_eq!(
        (
            counts.users_updated,
            counts.users_reactivated,
            counts.errors_opened,
            counts.users_created,
            counts.users_deactivated
        ),
        (3, 1, 1, 0, 0),
        "{}",
        report.render()
    );
    let before = stack.db.dump().await;
    replay::run(&args(&stack, None)).await.expect("rebuild");
    let after = stack.db.dump().await;
    let changed_users: BTreeSet<String> = diff_ids(&before["users"], &after["users"]);
    let expected: BTreeSet<String> = active.iter().map(Uuid::to_string).collect();
    assert_eq!(changed_users, expected, "the rebuild changed exactly the users the dry run reported");
    let changed_errors = diff_ids(&before["errors"], &after["errors"]);
    assert_eq!(changed_errors, BTreeSet::from([open_error.to_string()]));

    // The binary: a dry run now finds nothing and exits 0; after another drift it exits 1.
    let binary = projector_binary();
    let run_binary = || {
        Command::new(&binary)
            .args(["replay", "--dry-run", "--quiet"])
            .env("DATABASE_URL", &stack.db.url)
            .env("KAFKA_BROKERS", &stack.brokers)
            .env("EVENTS_TOPIC", &stack.topic)
            .env("PROJECTOR_GROUP_ID", &stack.group)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run projector replay")
    };
    let clean = run_binary();
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    diesel::update(users::table.filter(users::id.eq(active[0])))
        .set(users::name.eq("DRIFTED"))
        .execute(&mut conn)
        .await
        .expect("drift");
    let drifted = run_binary();
    let output = String::from_utf8_lossy(&drifted.stdout);
    assert_eq!(drifted.status.code(), Some(1), "{output}");
    assert!(output.contains("1 updated") && output.contains("user updated"), "{output}");
    stack.stop().await;
}

fn diff_ids(before: &Value, after: &Value) -> BTreeSet<String> {
    let index = |rows: &Value| -> std::collections::BTreeMap<String, Value> {
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|row| (row["id"].as_str().expect("id").to_owned(), row.clone()))
            .collect()
    };
    let (before, after) = (index(before), index(after));
    before.keys().chain(after.keys()).filter(|id| before.get(*id) != after.get(*id)).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_keep_answering_during_a_rebuild_under_concurrent_webhooks() {
    let app_key = "6660001112223";
    let (stack, tenant) = webhook_stack(app_key, 300).await;
    let token = stack.token(tenant, Role::Financeiro);

    let reads = async {
        let mut answers = 0;
        let mut lowest_seen = 300;
        for _ in 0..200 {
            let (status, stats) = stack.get_json("/api/v1/stats", &token).await;
            assert_eq!(status, 200, "{stats}");
            let active = stats["users"]["active"].as_i64().expect("active");
            assert!(active >= lowest_seen, "never a partial state: {active} active after {lowest_seen}");
            lowest_seen = active;
            let (status, _) = stack.get_json("/api/v1/users?limit=50", &token).await;
            assert_eq!(status, 200);
            answers += 2;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    };
    let writes = async {
        for code in 301..=400 {
            post_person(&stack, app_key, code).await;
        }
    };
    let rebuild_args = args(&stack, None);
    let rebuild = replay::run(&rebuild_args);
    let (answers, (), rebuilt) = tokio::join!(reads, writes, rebuild);
    assert_eq!(answers, 400);
    rebuilt.expect("rebuild under load");

    omie_sync_e2e::eventually("every webhook applied", Duration::from_secs(30), || async {
        let (_, stats) = stack.get_json("/api/v1/stats", &token).await;
        (stats["users"]["active"] == 400).then_some(())
    })
    .await;
    let report = replay::run(&dry_run(&stack, None)).await.expect("dry run");
    assert!(!report.differences(), "live continued from the right offsets: {}", report.render());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_state_is_kept_aside_a_wrong_group_is_refused_and_live_is_untouched() {
    let stack = live_stack(41, 1, 200).await;
    let before = without_audit(stack.db.dump().await);
    let past = ReplayArgs { until: Some(Until::Offset(20)), ..args(&stack, None) };
    let report = replay::run(&past).await.expect("past state");
    let schema = report.kept_schema.clone().expect("a kept schema");
    assert!(report.counts.events_read <= 21 * 3, "{report:?}");
    let mut conn = stack.db.connect().await;
    let rows: Vec<Count> = diesel::sql_query(format!("SELECT count(*) AS n FROM {schema}.events"))
        .load(&mut conn)
        .await
        .expect("the kept schema");
    assert!(rows[0].n > 0 && rows[0].n <= 63, "{}", rows[0].n);
    // A rebuild against another group's offsets would delete what the real live projector applied.
    let wrong_group = ReplayArgs { group_id: "not-the-live-group".into(), ..args(&stack, None) };
    let refused = replay::run(&wrong_group).await.expect_err("refused");
    assert!(format!("{refused:#}").contains("PROJECTOR_GROUP_ID"), "{refused:#}");
    assert_eq!(without_audit(stack.db.dump().await), before, "live is untouched");
    diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut conn).await.expect("drop");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_keeps_what_others_added_to_the_live_tables() {
    let stack = live_stack(23, 2, 150).await;
    let mut conn = stack.db.connect().await;
    conn.batch_execute(
        "CREATE VIEW active_people AS SELECT id, email FROM users WHERE active; \
         GRANT SELECT ON users TO PUBLIC; GRANT SELECT (action) ON history TO PUBLIC; \
         CREATE INDEX users_by_name ON users (name); COMMENT ON COLUMN users.email IS 'work e-mail'; \
         ALTER TABLE events SET (fillfactor = 90)",
    )
    .await
    .expect("what others add");
    let hanging = [
        "a comment on users",
        "events stores with fillfactor=90",
        "history grants SELECT on action to PUBLIC",
        "index users_by_name on users",
        "users grants SELECT to PUBLIC",
        "view active_people reads users",
    ];
    // A shadow made by the migrations, to ask what is not theirs; claimed, or the rebuild would
    // take it for one an interrupted replay left.
    let shadow = Shadow::for_replay(Uuid::now_v7());
    shadow.claim(&mut conn).await.expect("claim");
    create_shadow(&stack, &shadow).await;
    assert_eq!(shadow.takeover_blockers(&mut conn).await.expect("blockers"), hanging);
    let (before, catalog) = (without_audit(stack.db.dump().await), stack.db.catalog().await);

    let rebuilt = replay::run(&args(&stack, None)).await.expect("rebuild");
    assert!(!rebuilt.differences(), "{}", rebuilt.render());
    // Moving the tables would have left all that behind, and dropped the view with the old
    // table: the rows were copied instead, so it all still stands on the live rows.
    assert_eq!(shadow.takeover_blockers(&mut conn).await.expect("blockers"), hanging);
    assert_eq!(stack.db.catalog().await, catalog);
    assert_eq!(without_audit(stack.db.dump().await), before);
    let viewed: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS n FROM active_people").load(&mut conn).await.expect("the view");
    let active: i64 = users::table.filter(users::active.eq(true)).count().get_result(&mut conn).await.expect("users");
    assert!(active > 0);
    assert_eq!(viewed[0].n, active);
    shadow.drop(&mut conn).await.expect("drop the shadow");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_copies_rows_rather_than_wait_for_a_long_reader() {
    let stack = live_stack(29, 2, 150).await;
    let mut long_reader = stack.db.connect().await;
    long_reader.batch_execute("BEGIN; SELECT count(*) FROM history").await.expect("a reader's transaction");
    let (before, catalog) = (without_audit(stack.db.dump().await), stack.db.catalog().await);
    // Moving the tables would wait for the reader's lock, and every read behind the move with it.
    let rebuilt = tokio::time::timeout(Duration::from_secs(60), replay::run(&args(&stack, None)))
        .await
        .expect("the rebuild waited for the reader")
        .expect("rebuild");
    long_reader.batch_execute("COMMIT").await.expect("the reader ends");
    assert!(!rebuilt.differences(), "{}", rebuilt.render());
    assert_eq!(stack.db.catalog().await, catalog);
    assert_eq!(without_audit(stack.db.dump().await), before);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_under_concurrent_webhooks_finds_nothing_to_change() {
    let app_key = "6660001112224";
    let (stack, _) = webhook_stack(app_key, 100).await;
    let applied_before = stack.db.applied(&stack.group).await;
    let dry_running = AtomicBool::new(true);
    let writes = async {
        let mut code = 101;
        // Spelled out: diesel's `RunQueryDsl::load` would be picked otherwise.
        while AtomicBool::load(&dry_running, Ordering::Relaxed) {
            post_person(&stack, app_key, code).await;
            code += 1;
        }
    };
    // The shadow catches up with what live applied while the replay read (whenever live passed
    // the replay's first target before the comparison): several runs make that all but certain.
    let dry_runs = async {
        let mut reports = Vec::new();
        for _ in 0..3 {
            reports.push(replay::run(&dry_run(&stack, None)).await);
        }
        dry_running.store(false, Ordering::Relaxed);
        reports
    };
    let (reports, ()) = tokio::join!(dry_runs, writes);
    let reports: Vec<_> = reports.into_iter().map(|report| report.expect("dry run")).collect();
    for report in &reports {
        assert!(!report.differences(), "live and rebuilt agree at the live position: {}", report.render());
    }
    // Each run's own audit event is one more record; the rest arrived while they ran.
    let read_most = reports.iter().map(|report| report.counts.events_read).max().unwrap_or(0);
    assert!(read_most > u64::try_from(applied_before).expect("count") + 3, "{reports:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_runs_while_the_live_projector_is_stopped_after_catching_up() {
    let stack = live_stack(31, 2, 100).await;
    stack.stop_projector().await;
    // The consumer stops between batches: let it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = without_audit(stack.db.dump().await);
    let rebuilt = replay::run(&args(&stack, None)).await.expect("a rebuild with live stopped");
    assert!(!rebuilt.differences(), "{}", rebuilt.render());
    assert_eq!(without_audit(stack.db.dump().await), before);
    stack.stop().await;
}

/// The `replay_…` schemas of the test database.
async fn replay_schemas(conn: &mut diesel_async::AsyncPgConnection) -> BTreeSet<String> {
    let rows: Vec<SchemaName> =
        diesel::sql_query("SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE 'replay\\_%'")
            .load(conn)
            .await
            .expect("schemas");
    rows.into_iter().map(|row| row.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_drops_what_interrupted_replays_left_and_keeps_the_rest() {
    let stack = live_stack(37, 1, 100).await;
    let mut conn = stack.db.connect().await;
    create_shadow(&stack, &Shadow::for_replay(Uuid::now_v7())).await;
    let retired = format!("{}_retired", Shadow::for_replay(Uuid::now_v7()).name());
    conn.batch_execute(&format!("CREATE SCHEMA {retired}")).await.expect("an abandoned retired schema");
    // A replay still running holds its claim on another session.
    let running = Shadow::for_replay(Uuid::now_v7());
    let mut running_session = stack.db.connect().await;
    running.claim(&mut running_session).await.expect("claim");
    create_shadow(&stack, &running).await;
    let kept = replay::run(&ReplayArgs { until: Some(Until::Offset(10)), ..args(&stack, None) })
        .await
        .expect("a past state")
        .kept_schema
        .expect("kept");

    replay::run(&dry_run(&stack, None)).await.expect("dry run");
    assert_eq!(replay_schemas(&mut conn).await, BTreeSet::from([kept, running.name().to_owned()]));
    running.drop(&mut conn).await.expect("drop");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stopped_by_sigterm_drops_its_shadow_and_says_so() {
    let stack = live_stack(43, 1, 100).await;
    stack.stop_projector().await;
    // Live is now behind the log: the replay waits for it, which leaves time to stop it.
    produce(&stack.brokers, &stack.topic, &synthetic(44, 1, 5)).await;
    let binary = projector_binary();
    let child = Command::new(&binary)
        .args(["replay", "--quiet"])
        .env("DATABASE_URL", &stack.db.url)
        .env("KAFKA_BROKERS", &stack.brokers)
        .env("EVENTS_TOPIC", &stack.topic)
        .env("PROJECTOR_GROUP_ID", &stack.group)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run projector replay");
    let mut conn = stack.db.connect().await;
    omie_sync_e2e::eventually("the replay's shadow", Duration::from_secs(30), || async {
        (!replay_schemas(&mut stack.db.connect().await).await.is_empty()).then_some(())
    })
    .await;
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM; nothing live changed"), "{stderr}");
    assert_eq!(replay_schemas(&mut conn).await, BTreeSet::new(), "{stderr}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_tenant_live_lost_a_dry_run_counts_every_rebuilt_row_of_that_tenant_only() {
    let stack = live_stack(47, 2, 150).await;
    let tenant = stream::tenant(0);
    let mut conn = stack.db.connect().await;
    // Every projection table, with how to pick the tenant's rows; referencing tables first.
    let tables = [
        ("error_events", "error_id IN (SELECT id FROM import_errors WHERE tenant_id = $1)"),
        ("sync_seen", "sync_id IN (SELECT id FROM sync_runs WHERE tenant_id = $1)"),
        ("integrations", "tenant_id = $1"),
        ("events", "tenant_id = $1"),
        ("omie_records", "tenant_id = $1"),
        ("users", "tenant_id = $1"),
        ("import_errors", "tenant_id = $1"),
        ("history", "tenant_id = $1"),
        ("record_timeline", "tenant_id = $1"),
        ("sync_runs", "tenant_id = $1"),
    ];
    let mut lost = std::collections::BTreeMap::new();
    for (table, filter) in tables {
        let rows: Vec<Count> = diesel::sql_query(format!("SELECT count(*) AS n FROM {table} WHERE {filter}"))
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .load(&mut conn)
            .await
            .expect("count");
        lost.insert(table.to_owned(), rows[0].n);
        diesel::sql_query(format!("DELETE FROM {table} WHERE {filter}"))
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .execute(&mut conn)
            .await
            .expect("lose the tenant's rows");
    }
    assert!(lost["users"] > 0 && lost["events"] > 0, "{lost:?}");

    let report = replay::run(&dry_run(&stack, Some(tenant))).await.expect("dry run");
    // The other tenant's rows are out of scope, and live holding none of this tenant's, each of
    // its rebuilt rows differs once (the replay's own audit event is in both or in neither).
    let differing: std::collections::BTreeMap<String, i64> =
        report.differing_rows.iter().map(|(table, rows)| ((*table).to_owned(), *rows)).collect();
    assert_eq!(differing, lost, "{}", report.render());
    stack.stop().await;
}

#[derive(QueryableByName)]
struct SchemaName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
