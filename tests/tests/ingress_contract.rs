//! Each bad input of the webhook table (README) gets its documented status and a problem+json body; no request
//! makes ingress answer 500 or crash.

use omie_sync_e2e::repo_root;
use omie_sync_e2e::stack::{Stack, spawn_ingress};
use omie_sync_platform::auth::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const APP_KEY: &str = "3188245610231";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/omie/webhooks").join(name)).expect("fixture")
}

/// Asserts the status and that the body is a problem of `problem_type`; returns the body.
async fn assert_problem(response: reqwest::Response, status: u16, problem_type: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().expect("content type").to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["type"], format!("/problems/{problem_type}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].as_str().is_some_and(|detail| !detail.is_empty()));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_bad_inputs_get_their_documented_answers() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "secret", "Espresso").await;

    let ping = stack.post_webhook(r#"{"ping":"omie"}"#, "").await;
    assert_eq!(ping.status(), 200);

    let huge = format!(r#"{{"appKey":"{APP_KEY}","pad":"{}"}}"#, "x".repeat(300 * 1024));
    let body = assert_problem(stack.post_webhook(huge, "").await, 413, "payload-too-large").await;
    assert_eq!(body["limit_bytes"], 256 * 1024);

    for not_an_object in ["messageId=abc&topic=x", "[1,2]", "\"text\"", "null", "", "{\"appKey\": "] {
        assert_problem(stack.post_webhook(not_an_object, "").await, 400, "invalid-json").await;
    }
    assert_problem(stack.post_webhook("{}", "").await, 401, "unknown-app-key").await;
    assert_problem(stack.post_webhook(fixture("17-unknown-appkey.json"), "").await, 401, "unknown-app-key").await;
    assert_problem(stack.post_webhook(r#"{"appKey": 12, "topic": 3}"#, "").await, 401, "unknown-app-key").await;

    // A webhook token, once rotated, is required and compared exactly.
    let admin = stack.token(tenant, Role::Admin);
    let rotated = stack.command(Method::POST, "/api/v1/integrations/omie/webhook-token", &admin, json!({})).await;
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.expect("JSON");
    let url = rotated["webhook_url"].as_str().expect("webhook_url");
    let token = url.split("?token=").nth(1).expect("token in the URL").to_owned();
    stack.wait_applied(4).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let valid = fixture("01-incluido-tagged-valid.json");
    assert_problem(stack.post_webhook(valid.clone(), "").await, 401, "invalid-webhook-token").await;
    assert_problem(stack.post_webhook(valid.clone(), "?token=wrong").await, 401, "invalid-webhook-token").await;
    let wrong_case = format!("?token={}", token.to_uppercase());
    if wrong_case != format!("?token={token}") {
        assert_problem(stack.post_webhook(valid.clone(), &wrong_case).await, 401, "invalid-webhook-token").await;
    }
    assert_eq!(stack.post_webhook(valid, &format!("?token={token}")).await.status(), 200);
    stack.wait_applied(5).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_answers_429_with_retry_after() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "secret", "Espresso").await;
    let mut config = omie_sync_e2e::stack::ingress_config(&stack.db.url, &stack.brokers, &stack.topic);
    config.rate_per_second = 1;
    config.rate_burst = 2;
    let (strict, handle) = spawn_ingress(config).await;
    let post = |body: String| {
        let url = format!("{strict}/api/v1/webhooks/omie/users");
        let http = stack.http.clone();
        async move { http.post(url).body(body).send().await.expect("ingress answers") }
    };
    let valid = fixture("01-incluido-tagged-valid.json");
    assert_eq!(post(valid.clone()).await.status(), 200);
    // The first append may wait for the producer to connect; past the burst, one is refused.
    let mut answers = Vec::new();
    let limited = loop {
        let response = post(valid.clone()).await;
        answers.push(response.status().as_u16());
        if response.status() == 429 || answers.len() == 10 {
            break response;
        }
    };
    assert!(answers.len() <= 4, "the limit of 1/s with a burst of 2 held: {answers:?}");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after));
    assert_problem(limited, 429, "rate-limited").await;
    let other_key = post(fixture("17-unknown-appkey.json")).await;
    assert_eq!(other_key.status(), 401, "unknown keys are refused before they are counted");
    handle.stop(true).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_makes_ingress_answer_500() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "secret", "Espresso").await;
    let template: Value = serde_json::from_str(&fixture("01-incluido-tagged-valid.json")).expect("JSON");
    let mut rng = StdRng::seed_from_u64(2026);
    let weird = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!("S"),
        json!([]),
        json!({}),
        json!([{"tag": 5}]),
        json!("x".repeat(5000)),
    ];
    for round in 0..300 {
        let body = match round % 3 {
            0 => (0..rng.random_range(0..200)).map(|_| rng.random::<u8>()).collect::<Vec<u8>>(),
            _ => {
                let mut value = template.clone();
                for _ in 0..rng.random_range(1..4) {
                    let replacement = weird[rng.random_range(0..weird.len())].clone();
                    let event_is_object = value["event"].is_object();
                    match rng.random_range(0..6) {
                        3 | 4 if !event_is_object => value["event"] = replacement,
                        0 => value["event"] = replacement,
                        1 => value["topic"] = replacement,
                        2 => value["messageId"] = replacement,
                        3 => value["event"]["codigo_cliente_omie"] = replacement,
                        4 => value["event"]["tags"] = replacement,
                        _ => value["author"] = replacement,
                    }
                }
                serde_json::to_vec(&value).expect("JSON")
            }
        };
        let response = stack.post_webhook(body, "").await;
        let status = response.status().as_u16();
        assert!([200, 400, 401, 413].contains(&status), "round {round}: unexpected {status}");
        if status != 200 {
            let content_type = response.headers()["content-type"].to_str().expect("content type").to_owned();
            assert_eq!(content_type, "application/problem+json", "round {round}");
        }
    }
    let health = stack.http.get(format!("{}/health", stack.ingress_url)).send().await.expect("still serving");
    assert_eq!(health.status(), 200);
    let unknown = stack.http.get(format!("{}/nowhere", stack.ingress_url)).send().await.expect("answers");
    assert_problem(unknown, 404, "not-found").await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_are_validated_and_authorised() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    let put = Method::PUT;
    let credentials = "/api/v1/integrations/omie/credentials";

    let anonymous =
        stack.http.put(format!("{}{credentials}", stack.ingress_url)).json(&json!({})).send().await.unwrap();
    assert_problem(anonymous, 401, "unauthenticated").await;
    assert_problem(stack.command(put.clone(), credentials, "not.a.jwt", json!({})).await, 401, "unauthenticated").await;
    let viewer = stack.token(tenant, Role::Other);
    assert_problem(stack.command(put.clone(), credentials, &viewer, json!({})).await, 403, "forbidden").await;

    let invalid = stack.command(put.clone(), credentials, &admin, json!({"app_key": "12 34", "app_secret": ""})).await;
    let body = assert_problem(invalid, 422, "validation-failed").await;
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|error| error["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["app_key", "app_secret"]);
    let response = stack.command(put.clone(), "/api/v1/integrations/omie/tag", &admin, json!({"tag": "   "})).await;
    assert_problem(response, 422, "validation-failed").await;
    let response =
        stack.command(put.clone(), "/api/v1/integrations/omie/template", &admin, json!({"template": "invoices"})).await;
    assert_problem(response, 422, "validation-failed").await;
    let malformed = stack
        .http
        .put(format!("{}{credentials}", stack.ingress_url))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"app_key\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "invalid-request").await;
    // serde would read a struct from an array of its fields: a command body must be an object.
    let listed = stack.command(put.clone(), "/api/v1/integrations/omie/tag", &admin, json!(["Espresso"])).await;
    let problem = assert_problem(listed, 400, "invalid-request").await;
    assert!(problem["detail"].as_str().is_some_and(|detail| detail.contains("object")), "{problem}");
    let numeric = stack
        .command(put.clone(), credentials, &admin, json!({"app_key": APP_KEY, "app_secret": 987654321987_i64}))
        .await;
    let problem = assert_problem(numeric, 400, "invalid-request").await;
    assert!(!problem.to_string().contains("987654321987"), "a wrongly typed secret is not echoed: {problem}");
    let huge = json!({"tag": "x".repeat(100 * 1024)});
    let too_large = stack.command(put.clone(), "/api/v1/integrations/omie/tag", &admin, huge).await;
    assert_problem(too_large, 413, "payload-too-large").await;

    stack.configure(tenant, APP_KEY, "the-secret-value", "Espresso").await;
    let other = stack.token(Uuid::new_v4(), Role::Admin);
    let taken = stack.command(put, credentials, &other, json!({"app_key": APP_KEY, "app_secret": "x"})).await;
    assert_problem(taken, 409, "app-key-in-use").await;

    // The secret is sealed before it enters the log and never shows in a read.
    let events = stack.db.dump().await;
    assert!(!events.to_string().contains("the-secret-value"));
    let history = stack.read("/api/v1/history", &admin).await.text().await.unwrap();
    assert!(!history.contains("the-secret-value") && !history.contains(APP_KEY), "{history}");
    assert!(history.contains("••••0231"));
    stack.stop().await;
}
