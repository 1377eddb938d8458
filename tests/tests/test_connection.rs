//! Test connection: right keys pass; one character off fails with the invalid-credentials
//! reason; a misuse block and an unreachable Omie are told apart. Each test is recorded with
//! its actor and shows on the integration.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use omie_sim::{Company, Faults, Simulator};
use omie_sync_e2e::stack::Stack;
use omie_sync_e2e::{eventually, serve_omie};
use omie_sync_platform::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const APP_KEY: &str = "3188245610231";
const APP_SECRET: &str = "omie-sim-secret-aurora";
const TEST: &str = "/api/v1/integrations/omie/test-connection";

fn start_omie() -> (Simulator, String) {
    let company = Company { app_key: APP_KEY.into(), app_secret: APP_SECRET.into(), records: BTreeMap::new() };
    let simulator = Simulator::new(company, 1);
    let url = serve_omie(&simulator);
    (simulator, url)
}

async fn test_connection(stack: &Stack, token: &str) -> Value {
    let response = stack.command(Method::POST, TEST, token, json!({})).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_never_pass_and_every_test_is_recorded() {
    let (simulator, omie_url) = start_omie();
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);

    let missing = stack.command(Method::POST, TEST, &admin, json!({})).await;
    assert_eq!(missing.status(), 409, "no credentials yet");

    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;
    let ok = test_connection(&stack, &admin).await;
    assert_eq!(ok["outcome"], "ok");

    let one_off = &APP_SECRET[..APP_SECRET.len() - 1];
    let credentials = json!({"app_key": APP_KEY, "app_secret": one_off});
    let response = stack.command(Method::PUT, "/api/v1/integrations/omie/credentials", &admin, credentials).await;
    assert_eq!(response.status(), 202);
    stack.wait_applied(5).await;
    let refused = test_connection(&stack, &admin).await;
    assert_eq!(refused["outcome"], "invalid_credentials");
    assert!(refused["detail"].as_str().is_some_and(|detail| detail.contains("chave de acesso")), "{refused}");

    simulator.set_faults(Faults { block_seconds: Some(900), ..Faults::default() });
    let response = stack
        .command(
            Method::PUT,
            "/api/v1/integrations/omie/credentials",
            &admin,
            json!({"app_key": APP_KEY, "app_secret": APP_SECRET}),
        )
        .await;
    assert_eq!(response.status(), 202);
    stack.wait_applied(7).await;
    let blocked = test_connection(&stack, &admin).await;
    assert_eq!(blocked["outcome"], "blocked");
    assert!(blocked["blocked_until"].is_string());
    stack.wait_applied(8).await;

    let history: Value = stack.read("/api/v1/history", &admin).await.json().await.expect("history");
    let tests: Vec<&Value> =
        history["items"].as_array().expect("items").iter().filter(|row| row["action"] == "connection_tested").collect();
    let outcomes: Vec<&str> = tests.iter().map(|row| row["details"]["outcome"].as_str().expect("outcome")).collect();
    assert_eq!(outcomes, ["blocked", "invalid_credentials", "ok"], "newest first");
    assert!(tests.iter().all(|row| row["actor"]["kind"] == "espresso_user"), "the actor is recorded");
    let (_, integration) = stack.get_json("/api/v1/integration", &admin).await;
    let connection = &integration["connection"];
    assert_eq!(connection["status"], "blocked", "the last test shows on the integration: {integration}");
    assert_eq!(connection["tested_by"]["name"], "Test Admin", "{integration}");
    assert!(connection["tested_at"].is_string() && connection["detail"].is_string(), "{integration}");
    let dump = stack.db.dump().await.to_string();
    assert!(!dump.contains(APP_SECRET), "the secret never enters the log or the projections");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_omie_is_reported_as_unavailable() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;
    let unavailable = test_connection(&stack, &stack.token(tenant, Role::Financeiro)).await;
    assert_eq!(unavailable["outcome"], "omie_unavailable");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redundant_call_is_answered_at_once_not_waited_out() {
    let (simulator, omie_url) = start_omie();
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;
    simulator.set_faults(Faults { redundant_window_secs: Some(60), ..Faults::default() });
    assert_eq!(test_connection(&stack, &admin).await["outcome"], "ok");

    let started = Instant::now();
    let repeated = test_connection(&stack, &admin).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered without waiting Omie's 60 s: {:?}",
        started.elapsed()
    );
    assert_eq!(repeated["outcome"], "omie_unavailable", "{repeated}");
    assert!(repeated["detail"].as_str().is_some_and(|detail| detail.contains("test again in")), "{repeated}");
    assert_eq!(simulator.calls().get("ListarClientes").copied(), Some(2), "no retry behind the button");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_met_by_a_sync_holds_for_the_connection_test_too() {
    let (simulator, omie_url) = start_omie();
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    stack.configure(tenant, APP_KEY, APP_SECRET, "Espresso").await;
    simulator.set_faults(Faults { block_seconds: Some(900), ..Faults::default() });

    let sync = stack.command(Method::POST, "/api/v1/integrations/omie/sync", &admin, json!({})).await;
    assert_eq!(sync.status(), 202);
    eventually("the sync to meet the block", Duration::from_secs(20), || async {
        simulator.calls().contains_key("ListarClientes").then_some(())
    })
    .await;
    let blocked = test_connection(&stack, &admin).await;
    assert_eq!(blocked["outcome"], "blocked", "{blocked}");
    assert!(blocked["blocked_until"].is_string(), "{blocked}");
    assert_eq!(
        simulator.calls().get("ListarClientes").copied(),
        Some(1),
        "the test did not call into the block (each call would extend it)"
    );
    stack.stop().await;
}
