//! Role and tenant checks: a `financeiro` token of tenant A configures A and cannot read or
//! change B; other roles get 403.

use omie_sync_e2e::repo_root;
use omie_sync_e2e::stack::Stack;
use omie_sync_platform::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn items(stack: &Stack, path: &str, token: &str) -> Vec<Value> {
    let response = stack.read(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.expect("JSON");
    body["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_only_ever_see_and_change_their_own_rows() {
    let stack = Stack::start().await;
    let (tenant_a, tenant_b) = (Uuid::new_v4(), Uuid::new_v4());
    let finance_a = stack.token(tenant_a, Role::Financeiro);
    let admin_b = stack.token(tenant_b, Role::Admin);

    // financeiro configures its own tenant.
    for (path, body) in [
        ("/api/v1/integrations/omie/credentials", json!({"app_key": "1110001", "app_secret": "a-secret"})),
        ("/api/v1/integrations/omie/tag", json!({"tag": "Espresso"})),
    ] {
        assert_eq!(stack.command(Method::PUT, path, &finance_a, body).await.status(), 202);
    }
    stack.wait_for_app_key("1110001").await;
    stack.configure(tenant_b, "2220002", "b-secret", "Espresso").await;

    let a_webhook =
        std::fs::read_to_string(repo_root().join("tests/fixtures/omie/webhooks/01-incluido-tagged-valid.json"))
            .expect("fixture")
            .replace("3188245610231", "1110001");
    let failing =
        std::fs::read_to_string(repo_root().join("tests/fixtures/omie/webhooks/06-incluido-missing-email.json"))
            .expect("fixture")
            .replace("3188245610231", "1110001");
    assert_eq!(stack.post_webhook(a_webhook, "").await.status(), 200);
    assert_eq!(stack.post_webhook(failing, "").await.status(), 200);
    stack.wait_applied(7).await;

    assert_eq!(items(&stack, "/api/v1/users", &finance_a).await.len(), 1);
    assert_eq!(items(&stack, "/api/v1/errors", &finance_a).await.len(), 1);
    assert!(!items(&stack, "/api/v1/records/8612300451/timeline", &finance_a).await.is_empty());
    assert!(items(&stack, "/api/v1/users", &admin_b).await.is_empty(), "B sees none of A's users");
    assert!(items(&stack, "/api/v1/errors", &admin_b).await.is_empty(), "nor its errors");
    assert!(items(&stack, "/api/v1/records/8612300451/timeline", &admin_b).await.is_empty(), "nor its timelines");
    let b_history = items(&stack, "/api/v1/history", &admin_b).await;
    let b_actions: Vec<&str> = b_history.iter().map(|row| row["action"].as_str().expect("action")).collect();
    assert_eq!(b_actions, ["template_set", "tag_set", "credentials_set"], "only B's own configuration, newest first");

    // A cannot take B's app key; the tenant of every command is the token's.
    let steal = json!({"app_key": "2220002", "app_secret": "x"});
    let response = stack.command(Method::PUT, "/api/v1/integrations/omie/credentials", &finance_a, steal).await;
    assert_eq!(response.status(), 409);

    let viewer_a = stack.token(tenant_a, Role::Other);
    for path in ["/api/v1/users", "/api/v1/errors", "/api/v1/history", "/api/v1/stats"] {
        assert_eq!(stack.read(path, &viewer_a).await.status(), 403, "{path}");
    }
    let response = stack.command(Method::PUT, "/api/v1/integrations/omie/tag", &viewer_a, json!({"tag": "X"})).await;
    assert_eq!(response.status(), 403);
    assert_eq!(stack.read("/api/v1/users", "garbage").await.status(), 401);
    let health = stack.http.get(format!("{}/health", stack.projector_url)).send().await.expect("health");
    assert_eq!(health.status(), 200, "health needs no token");
    let ready = stack.http.get(format!("{}/ready", stack.projector_url)).send().await.expect("ready");
    assert_eq!(ready.status(), 200, "readiness needs no token and sees the database");
    stack.stop().await;
}
