//! Test connection: right keys pass; one character off fails with the invalid-credentials
//! reason; a misuse block and an unreachable Omie are told apart. Each test is recorded with
//! its actor and shows on the integration.

use std::collections::BTreeMap;

use omie_sim::{Company, Faults, Simulator};
use omie_sync_e2e::stack::Stack;
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(simulator.clone().serve(listener).expect("serve omie-sim"));
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
