//! The OpenAPI documents: generated from the code, checked in under `schemas/openapi/` (a drift
//! test, `make schemas` regenerates them), and true — every documented operation is called here,
//! and each request body and answer validates against the document, with a documented status.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use omie_sim::Simulator;
use omie_sim::generator::{self, CompanySpec};
use omie_sync_e2e::stack::Stack;
use omie_sync_e2e::{eventually, fixtures, repo_root, serve_omie};
use omie_sync_platform::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use utoipa::OpenApi as _;
use uuid::Uuid;

fn documents() -> [(&'static str, utoipa::openapi::OpenApi); 2] {
    [("ingress", ingress::openapi::ApiDoc::openapi()), ("projector", projector::api::ApiDoc::openapi())]
}

#[test]
fn the_checked_in_documents_match_the_code() {
    for (name, document) in documents() {
        let path = repo_root().join(format!("schemas/openapi/{name}.json"));
        let rendered = omie_sync_platform::openapi::render(&document);
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("schemas/openapi");
            std::fs::write(&path, rendered).expect("write the document");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == rendered, "schemas/openapi/{name}.json drifted from the code; run `make schemas`");
    }
}

/// One service's document, and the operations a test has called.
struct Contract {
    document: Value,
    called: Mutex<BTreeSet<(String, String)>>,
}

impl Contract {
    fn new(document: &utoipa::openapi::OpenApi) -> Contract {
        Contract { document: serde_json::to_value(document).expect("JSON"), called: Mutex::default() }
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let paths = self.document["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().expect("a path item").keys().map(move |method| (method.clone(), path.clone()))
            })
            .collect()
    }

    /// Where `value` breaks `schema`, resolved within the document.
    fn problems(&self, schema: &Value, value: &Value) -> Vec<String> {
        let root = json!({"allOf": [schema], "components": self.document["components"]});
        let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
        validator.iter_errors(value).map(|error| format!("{error} at {}", error.instance_path())).collect()
    }

    fn validate(&self, schema: &Value, value: &Value, what: &str) {
        let problems = self.problems(schema, value);
        assert!(problems.is_empty(), "{what} does not match the document: {problems:?}\n{value}");
    }

    fn check(&self, method: &Method, template: &str, request: Option<&Value>, status: u16, answer: &Value) {
        let method = method.as_str().to_lowercase();
        let operation = &self.document["paths"][template][&method];
        assert!(operation.is_object(), "{method} {template} is not documented");
        if let Some(body) = request {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {template} documents no request body");
            self.validate(schema, body, &format!("the request of {method} {template}"));
        }
        let response = &operation["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {template} answered {status}, which is not documented: {answer}");
        if let Some((_, media)) = response["content"].as_object().and_then(|content| content.iter().next()) {
            self.validate(&media["schema"], answer, &format!("the {status} of {method} {template}"));
        }
        self.called.lock().expect("lock").insert((method, template.to_owned()));
    }
}

struct Client<'a> {
    stack: &'a Stack,
    ingress: Contract,
    projector: Contract,
}

impl Client<'_> {
    /// Calls one operation; `template` names it in the document, `path` is the URL path.
    async fn call(
        &self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let on_projector = method == Method::GET && !matches!(template, "/health" | "/ready");
        let (base, contract) = if on_projector {
            (&self.stack.projector_url, &self.projector)
        } else {
            (&self.stack.ingress_url, &self.ingress)
        };
        let mut request = self.stack.http.request(method.clone(), format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        contract.check(&method, template, body.as_ref(), status, &answer);
        (status, answer)
    }

    /// Calls the projector's `/health` and `/ready` too (the same handlers as the ingress's), and
    /// both services' `/metrics`, whose text body is checked as the documented string.
    async fn call_ops(&self) {
        for path in ["/health", "/ready"] {
            let response =
                self.stack.http.get(format!("{}{path}", self.stack.projector_url)).send().await.expect("answers");
            let status = response.status().as_u16();
            let answer: Value = response.json().await.expect("JSON");
            self.projector.check(&Method::GET, path, None, status, &answer);
        }
        for (base, contract) in [(&self.stack.ingress_url, &self.ingress), (&self.stack.projector_url, &self.projector)]
        {
            let response = self.stack.http.get(format!("{base}/metrics")).send().await.expect("answers");
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_owned();
            let documented = contract.document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
                .as_object()
                .and_then(|content| content.keys().next().cloned())
                .unwrap_or_default();
            assert!(content_type.starts_with(&documented), "/metrics answered {content_type}, documented {documented}");
            let text = response.text().await.expect("a body");
            assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition: {text}");
            contract.check(&Method::GET, "/metrics", None, status, &Value::String(text));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let manifest = fixtures::manifest();
    let spec = CompanySpec { slug: "aurora", app_key: &manifest.app_key, tag: &manifest.tag };
    let simulator = Simulator::generated(generator::company(&spec, &manifest.app_secret, 60, 8), 8);
    simulator.set_faults(omie_sim::Faults { latency_ms: 300, ..Default::default() });
    let omie_url = serve_omie(&simulator);
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let [(_, ingress_document), (_, projector_document)] = documents();
    let client = Client {
        stack: &stack,
        ingress: Contract::new(&ingress_document),
        projector: Contract::new(&projector_document),
    };
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);
    let token = Some(admin.as_str());
    let (get, put, post) = (Method::GET, Method::PUT, Method::POST);

    let users_page = &client.projector.document["paths"]["/api/v1/users"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(client.projector.problems(users_page, &json!({"items": [{"id": 3}]})).len() > 1, "the validator bites");
    assert!(client.projector.problems(users_page, &json!({"items": [], "next_cursor": null})).is_empty());
    for path in ["/health", "/ready"] {
        assert_eq!(client.call(get.clone(), path, path, None, None).await.0, 200);
    }
    client.call_ops().await;

    let credentials = "/api/v1/integrations/omie/credentials";
    let keys = json!({"app_key": manifest.app_key, "app_secret": manifest.app_secret});
    assert_eq!(client.call(put.clone(), credentials, credentials, token, Some(json!({"app_key": ""}))).await.0, 422);
    assert_eq!(client.call(put.clone(), credentials, credentials, token, Some(keys)).await.0, 202);
    let tag = "/api/v1/integrations/omie/tag";
    assert_eq!(client.call(put.clone(), tag, tag, token, Some(json!({"tag": manifest.tag}))).await.0, 202);
    let template = "/api/v1/integrations/omie/template";
    assert_eq!(client.call(put.clone(), template, template, token, Some(json!({"template": "users"}))).await.0, 202);
    assert_eq!(client.call(put.clone(), template, template, None, Some(json!({"template": "users"}))).await.0, 401);
    let financeiro_of_nobody = stack.token(tenant, Role::Other);
    assert_eq!(client.call(put.clone(), tag, tag, Some(&financeiro_of_nobody), Some(json!({"tag": "x"}))).await.0, 403);
    stack.wait_for_app_key(&manifest.app_key).await;

    let webhook = "/api/v1/webhooks/omie/users";
    for (file, body, expected) in &manifest.cases {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if body.is_null() {
            let response = stack
                .post_webhook(std::fs::read(repo_root().join("tests/fixtures/omie").join(file)).expect("fixture"), "")
                .await;
            let status = response.status().as_u16();
            client.ingress.check(&post, webhook, None, status, &response.json().await.expect("a problem"));
            assert_eq!(status, *expected);
            continue;
        }
        let (status, _) = client.call(post.clone(), webhook, webhook, None, Some(body)).await;
        assert_eq!(status, *expected, "{file}");
    }
    let rotate = "/api/v1/integrations/omie/webhook-token";
    let (status, rotated) = client.call(post.clone(), rotate, rotate, token, None).await;
    assert_eq!(status, 201);
    assert!(rotated["webhook_url"].as_str().is_some_and(|url| url.contains("?token=")));

    let test = "/api/v1/integrations/omie/test-connection";
    let (status, tested) = client.call(post.clone(), test, test, token, None).await;
    assert_eq!((status, tested["outcome"].as_str()), (200, Some("ok")), "{tested}");
    let sync = "/api/v1/integrations/omie/sync";
    let (status, started) = client.call(post.clone(), sync, sync, token, None).await;
    assert_eq!(status, 202);
    assert_eq!(client.call(post.clone(), sync, sync, token, None).await.0, 409);
    let sync_id = started["sync_id"].as_str().expect("sync_id").to_owned();
    let progress = "/api/v1/syncs/{sync_id}";
    eventually("the sync to complete", Duration::from_secs(60), || async {
        let (status, run) = client.call(get.clone(), progress, &format!("/api/v1/syncs/{sync_id}"), token, None).await;
        (status == 200 && run["status"] == "completed").then_some(())
    })
    .await;
    assert_eq!(
        client.call(get.clone(), progress, &format!("/api/v1/syncs/{}", Uuid::new_v4()), token, None).await.0,
        404
    );
    let confirm = "/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation";
    let unknown_sync = format!("/api/v1/integrations/omie/syncs/{}/confirm-deactivation", Uuid::new_v4());
    assert_eq!(client.call(post.clone(), confirm, &unknown_sync, token, None).await.0, 404);
    let completed = format!("/api/v1/integrations/omie/syncs/{sync_id}/confirm-deactivation");
    assert_eq!(client.call(post.clone(), confirm, &completed, token, None).await.0, 422, "it blocked nothing");

    let (_, errors) = client.call(get.clone(), "/api/v1/errors", "/api/v1/errors?limit=2", token, None).await;
    let cursor = errors["next_cursor"].as_str().expect("more than two errors");
    client.call(get.clone(), "/api/v1/errors", &format!("/api/v1/errors?limit=2&cursor={cursor}"), token, None).await;
    assert_eq!(client.call(get.clone(), "/api/v1/errors", "/api/v1/errors?status=gone", token, None).await.0, 400);
    let error_id = errors["items"][0]["id"].as_str().expect("an error").to_owned();
    for template in ["/api/v1/errors/{error_id}", "/api/v1/errors/{error_id}/log", "/api/v1/errors/{error_id}/related"]
    {
        let path = template.replace("{error_id}", &error_id);
        assert_eq!(client.call(get.clone(), template, &path, token, None).await.0, 200, "{path}");
        let unknown = template.replace("{error_id}", &Uuid::new_v4().to_string());
        assert_eq!(client.call(get.clone(), template, &unknown, token, None).await.0, 404, "{unknown}");
    }
    let archive = "/api/v1/errors/{error_id}/archive";
    let path = format!("/api/v1/errors/{error_id}/archive");
    assert_eq!(client.call(post.clone(), archive, &path, token, Some(json!({"reason": "teste"}))).await.0, 202);
    let unknown = format!("/api/v1/errors/{}/archive", Uuid::new_v4());
    assert_eq!(client.call(post.clone(), archive, &unknown, token, Some(json!({}))).await.0, 404);

    let (_, users) = client.call(get.clone(), "/api/v1/users", "/api/v1/users?active=true&limit=3", token, None).await;
    let code = users["items"][0]["omie_code"].as_i64().expect("a user");
    assert_eq!(client.call(get.clone(), "/api/v1/users", "/api/v1/users", None, None).await.0, 401);
    assert_eq!(
        client.call(get.clone(), "/api/v1/users", "/api/v1/users", Some(&financeiro_of_nobody), None).await.0,
        403
    );
    let timeline = "/api/v1/records/{omie_code}/timeline";
    assert_eq!(
        client.call(get.clone(), timeline, &format!("/api/v1/records/{code}/timeline"), token, None).await.0,
        200
    );
    assert_eq!(client.call(get.clone(), timeline, "/api/v1/records/abc/timeline", token, None).await.0, 400);
    for path in ["/api/v1/history", "/api/v1/integration", "/api/v1/stats"] {
        assert_eq!(client.call(get.clone(), path, path, token, None).await.0, 200, "{path}");
    }

    for (name, contract) in [("ingress", &client.ingress), ("projector", &client.projector)] {
        let called = contract.called.lock().expect("lock").clone();
        let missed: Vec<_> = contract.operations().difference(&called).cloned().collect();
        assert!(missed.is_empty(), "{name}: documented operations never called: {missed:?}");
    }
    stack.stop().await;
}
