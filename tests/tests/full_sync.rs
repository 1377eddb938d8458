//! A 5,000-record full sync of a generated company end to end: counts match the company exactly
//! (tagged valid → users, tagged invalid → errors by kind, untagged or inactive → nothing), progress in order, one sync at a time,
//! and an ingress killed mid-sync leaves a failed run, never a "running" one, and no duplicates.

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sim::generator::{self, CompanySpec, EmailTruth, Truth};
use omie_sim::{Faults, Simulator};
use omie_sync_e2e::stack::Stack;
use omie_sync_e2e::{ServiceProcess, eventually, serve_omie, stream, users_only_company};
use omie_sync_events::{Envelope, Event, SyncRequested};
use omie_sync_platform::auth::Role;
use omie_sync_store::schema::{events, history, import_errors, users};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const APP_KEY: &str = "3188245610231";
const APP_SECRET: &str = "omie-sim-secret-aurora";
const SYNC: &str = "/api/v1/integrations/omie/sync";

/// What the projector must make of each record of a generated company, from how the generator
/// made it (not by parsing it back): listed in code order, a tagged active record with a usable
/// address becomes a user unless an earlier user holds that address; missing and malformed
/// addresses are errors; untagged or inactive records make nothing.
fn outcomes(truths: &BTreeMap<i64, Truth>) -> BTreeMap<i64, &'static str> {
    let mut owners = HashSet::new();
    truths
        .iter()
        .map(|(code, truth)| {
            let outcome = match &truth.email {
                _ if !truth.tagged || truth.inactive => "nothing",
                EmailTruth::Missing => "missing_email",
                EmailTruth::Malformed => "invalid_email",
                EmailTruth::Usable(address) if !owners.insert(address) => "duplicate_email",
                EmailTruth::Usable(_) => "users",
            };
            (*code, outcome)
        })
        .collect()
}

fn tally(outcomes: &BTreeMap<i64, &'static str>) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes.values() {
        *counts.entry(*outcome).or_default() += 1;
    }
    counts
}

/// omie-sim serving a generated 5,000-record company, and what each record must become.
fn start_omie() -> (Simulator, String, BTreeMap<i64, &'static str>) {
    let spec = CompanySpec { slug: "aurora", app_key: APP_KEY, tag: "Espresso" };
    let generated = generator::company(&spec, APP_SECRET, 5_000, 21);
    let outcomes = outcomes(&generated.truths);
    let simulator = Simulator::generated(generated, 3);
    let url = serve_omie(&simulator);
    (simulator, url, outcomes)
}

async fn progress(stack: &Stack, token: &str, sync_id: &str) -> Option<Value> {
    let response = stack.read(&format!("/api/v1/syncs/{sync_id}"), token).await;
    (response.status() == 200).then_some(())?;
    response.json().await.ok()
}

async fn wait_finished(stack: &Stack, token: &str, sync_id: &str) -> Value {
    eventually("the sync to finish", Duration::from_secs(120), || async {
        progress(stack, token, sync_id).await.filter(|run| run["status"] != "running")
    })
    .await
}

async fn active_users(stack: &Stack, tenant: Uuid) -> i64 {
    let mut conn = stack.db.connect().await;
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::active.eq(true))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count active users")
}

async fn count(stack: &Stack, tenant: Uuid) -> (i64, BTreeMap<String, i64>) {
    let mut conn = stack.db.connect().await;
    let users: i64 =
        users::table.filter(users::tenant_id.eq(tenant)).count().get_result(&mut conn).await.expect("users");
    let errors: Vec<(String, i64)> = import_errors::table
        .filter(import_errors::tenant_id.eq(tenant))
        .group_by(import_errors::kind)
        .select((import_errors::kind, diesel::dsl::count_star()))
        .load(&mut conn)
        .await
        .expect("errors");
    (users, errors.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_imports_exactly_what_the_company_holds() {
    let (simulator, omie_url, outcomes) = start_omie();
    let expected = tally(&outcomes);
    assert!(
        ["users", "missing_email", "invalid_email", "duplicate_email", "nothing"]
            .iter()
            .all(|outcome| expected.get(outcome).is_some_and(|count| *count > 20)),
        "the generated company exercises every outcome: {expected:?}"
    );
    simulator.set_faults(Faults { latency_ms: 150, ..Faults::default() });
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;

    let started = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(started.status(), 202);
    let sync_id = started.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("sync_id").to_owned();
    let second = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(second.status(), 409, "one sync per tenant at a time");
    assert_eq!(second.json::<Value>().await.expect("problem")["sync_id"], sync_id.as_str());

    let run = wait_finished(&stack, &admin, &sync_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        (run["pages_done"].as_i64(), run["pages_total"].as_i64(), run["rows_seen"].as_i64()),
        (Some(10), Some(10), Some(5_000))
    );
    assert_eq!(run["users_created"], expected["users"]);
    assert_eq!(
        run["records_failed"],
        expected["missing_email"] + expected["invalid_email"] + expected["duplicate_email"]
    );

    let (users, errors) = count(&stack, tenant).await;
    assert_eq!(users, expected["users"], "tagged valid records become users, untagged ones nothing");
    let mut expected_errors = expected.clone();
    expected_errors.retain(|outcome, _| outcome.ends_with("_email"));
    assert_eq!(errors, expected_errors.into_iter().map(|(kind, count)| (kind.to_owned(), count)).collect());

    let mut conn = stack.db.connect().await;
    let pages: Vec<Value> = events::table
        .filter(events::tenant_id.eq(tenant))
        .filter(events::event_type.eq("sync.page_fetched"))
        .order(events::log_offset)
        .select(events::payload)
        .load(&mut conn)
        .await
        .expect("page events");
    let order: Vec<i64> = pages.iter().map(|event| event["payload"]["page"].as_i64().expect("page")).collect();
    assert_eq!(order, (1..=10).collect::<Vec<_>>(), "progress events in order");
    let sync_actions: Vec<String> = history::table
        .filter(history::tenant_id.eq(tenant))
        .filter(history::action.like("sync_%"))
        .order(history::log_offset)
        .select(history::action)
        .load(&mut conn)
        .await
        .expect("history");
    assert_eq!(sync_actions, ["sync_started", "sync_finished"]);
    stack.stop().await;
}

fn ingress_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("ingress")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_killed_mid_sync_leaves_a_failed_run_and_no_duplicates() {
    let (simulator, omie_url, outcomes) = start_omie();
    let expected = tally(&outcomes);
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url.clone()).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;

    // A second ingress, as a process, runs the sync slowly; it is killed after a few pages.
    simulator.set_faults(Faults { latency_ms: 700, ..Faults::default() });
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("port").port();
    let child = Command::new(ingress_binary())
        .env("DATABASE_URL", &stack.db.url)
        .env("KAFKA_BROKERS", &stack.brokers)
        .env("EVENTS_TOPIC", &stack.topic)
        .env("INGRESS_PORT", port.to_string())
        .env("OMIE_API_URL", &omie_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .map(ServiceProcess)
        .expect("start the ingress binary");
    let base = format!("http://127.0.0.1:{port}");
    let started = eventually("the ingress process to serve", Duration::from_secs(20), || async {
        stack.http.post(format!("{base}{SYNC}")).bearer_auth(&admin).json(&json!({})).send().await.ok()
    })
    .await;
    assert_eq!(started.status(), 202);
    let interrupted = started.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("sync_id").to_owned();
    eventually("a few pages", Duration::from_secs(60), || async {
        progress(&stack, &admin, &interrupted).await.filter(|run| run["pages_done"].as_i64() >= Some(2))
    })
    .await;
    child.kill_9();

    // The in-process ingress stands for the restarted one: it settles the interrupted run.
    let restarted = ingress::Application::build(
        {
            let mut config = omie_sync_e2e::stack::ingress_config(&stack.db.url, &stack.brokers, &stack.topic);
            config.omie_api_url = omie_url;
            config
        },
        false,
    )
    .await
    .expect("restart ingress");
    let restarted_url = format!("http://127.0.0.1:{}", restarted.port());
    let handle = restarted.server_handle();
    tokio::spawn(restarted.run_until_stopped());
    let run = wait_finished(&stack, &admin, &interrupted).await;
    assert_eq!(run["status"], "failed", "never left running: {run}");
    assert!(run["failure_reason"].as_str().is_some_and(|reason| reason.contains("interrupted")));

    simulator.set_faults(Faults::default());
    let again = stack
        .http
        .post(format!("{restarted_url}{SYNC}"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(again.status(), 202);
    let sync_id = again.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("sync_id").to_owned();
    assert_eq!(wait_finished(&stack, &admin, &sync_id).await["status"], "completed");

    let (users, errors) = count(&stack, tenant).await;
    assert_eq!(users, expected["users"], "no duplicate users");
    assert_eq!(errors.get("missing_email").copied(), Some(expected["missing_email"]), "no duplicate errors");
    assert_eq!(errors.get("invalid_email").copied(), Some(expected["invalid_email"]));
    assert_eq!(errors.get("duplicate_email").copied(), Some(expected["duplicate_email"]));
    handle.stop(true).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_no_process_is_doing_is_settled_by_the_next_sync_request() {
    let simulator = Simulator::new(users_only_company(APP_KEY, APP_SECRET, 3), 1);
    let omie_url = serve_omie(&simulator);
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;

    // What an ingress that died mid-sync leaves when its successor could not settle the run at
    // start (the broker was down then): a run the projection shows running that nobody does.
    let lost = Uuid::now_v7();
    let requested = Event::SyncRequested(SyncRequested { sync_id: lost });
    let lost_request = stream::envelope(tenant, Uuid::now_v7(), chrono::Utc::now(), requested, None);
    stack.append(&Envelope { correlation_id: Some(lost), ..lost_request }).await;
    let lost_id = lost.to_string();
    eventually("the lost run to show running", Duration::from_secs(20), || async {
        progress(&stack, &admin, &lost_id).await.filter(|run| run["status"] == "running")
    })
    .await;

    let started = stack.command(Method::POST, SYNC, &admin, json!({})).await;
    assert_eq!(started.status(), 202, "a run nobody is doing does not block syncs");
    let sync_id = started.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("sync_id").to_owned();
    assert_ne!(sync_id, lost_id);
    let settled = wait_finished(&stack, &admin, &lost_id).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert!(settled["failure_reason"].as_str().is_some_and(|reason| reason.contains("interrupted")), "{settled}");
    let run = wait_finished(&stack, &admin, &sync_id).await;
    assert_eq!((run["status"].as_str(), run["users_created"].as_i64()), (Some("completed"), Some(3)), "{run}");
    let history: Value = stack.read("/api/v1/history", &admin).await.json().await.expect("history");
    let actor_of = |action: &str, id: &str| {
        history["items"].as_array().expect("items").iter().find_map(|row| {
            (row["action"] == action && row["details"]["sync_id"] == id).then(|| row["actor"]["kind"].clone())
        })
    };
    assert_eq!(actor_of("sync_started", &sync_id), Some(json!("espresso_user")), "{history}");
    assert_eq!(actor_of("sync_finished", &sync_id), Some(json!("system")), "the sync itself finished it: {history}");
    assert_eq!(actor_of("sync_failed", &lost_id), Some(json!("system")), "{history}");
    let (_, integration) = stack.get_json("/api/v1/integration", &admin).await;
    let last = &integration["last_sync"];
    assert_eq!(
        (last["id"].as_str(), last["status"].as_str()),
        (Some(sync_id.as_str()), Some("completed")),
        "{integration}"
    );
    assert_eq!(last["users_created"], 3, "{integration}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_missing_thirty_percent_deactivates_nobody_and_raises_the_error() {
    let (simulator, omie_url, outcomes) = start_omie();
    let expected = tally(&outcomes);
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;
    let sync = || async {
        let started = stack.command(Method::POST, SYNC, &admin, json!({})).await;
        assert_eq!(started.status(), 202);
        let sync_id = started.json::<Value>().await.expect("JSON")["sync_id"].as_str().expect("id").to_owned();
        wait_finished(&stack, &admin, &sync_id).await
    };
    let first = sync().await;
    assert_eq!(first["status"], "completed");
    let first_id = first["id"].as_str().expect("id");
    let nothing_blocked = format!("/api/v1/integrations/omie/syncs/{first_id}/confirm-deactivation");
    let refused = stack.command(Method::POST, &nothing_blocked, &admin, json!({})).await;
    assert_eq!(refused.status(), 422, "a sync that blocked nothing has nothing to confirm");

    let removed: Vec<i64> =
        outcomes.keys().copied().enumerate().filter(|(index, _)| index % 10 < 3).map(|(_, code)| code).collect();
    for &code in &removed {
        simulator.remove(code);
    }
    let second = sync().await;
    assert_eq!((second["status"].as_str(), second["users_deactivated"].as_i64()), (Some("completed"), Some(0)));
    assert_eq!(active_users(&stack, tenant).await, expected["users"], "nobody is deactivated");
    let mut conn = stack.db.connect().await;
    let blocked: Vec<String> = import_errors::table
        .filter(import_errors::tenant_id.eq(tenant))
        .filter(import_errors::kind.eq("mass_deactivation_blocked"))
        .select(import_errors::message)
        .load(&mut conn)
        .await
        .expect("errors");
    assert_eq!(blocked.len(), 1, "the guard raised its error");
    let missing_users = i64::try_from(removed.iter().filter(|code| outcomes[*code] == "users").count()).expect("count");
    let counted = format!("{missing_users} of {} active users are missing", expected["users"]);
    assert!(blocked[0].starts_with(&counted), "the error says how many: {}", blocked[0]);

    // An admin confirms: the users whose records are gone are deactivated, audited.
    let sync_id = second["id"].as_str().expect("id");
    let path = format!("/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation");
    assert_eq!(stack.command(Method::POST, &path, &admin, json!({})).await.status(), 202);
    let unknown = format!("/api/v1/integrations/omie/syncs/{}/confirm-deactivation", Uuid::new_v4());
    assert_eq!(stack.command(Method::POST, &unknown, &admin, json!({})).await.status(), 404);
    eventually("the confirmed deactivation", Duration::from_secs(30), || async {
        (active_users(&stack, tenant).await == expected["users"] - missing_users).then_some(())
    })
    .await;
    let confirmed: Vec<Value> = history::table
        .filter(history::tenant_id.eq(tenant))
        .filter(history::action.eq("mass_deactivation_confirmed"))
        .select(history::actor)
        .load(&mut conn)
        .await
        .expect("history");
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["kind"], "espresso_user");
    let status: String = import_errors::table
        .filter(import_errors::tenant_id.eq(tenant))
        .filter(import_errors::kind.eq("mass_deactivation_blocked"))
        .select(import_errors::status)
        .first(&mut conn)
        .await
        .expect("the guard's error");
    assert_eq!(status, "resolved", "confirming settles the guard's error");
    stack.stop().await;
}
