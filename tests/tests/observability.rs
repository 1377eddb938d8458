//! What ops teams look at: one trace from Omie's POST to the database row, the `/metrics` of both
//! services after the fixture manifest, and logs that keep secrets and personal data out.
//!
//! Each test sets up the process's telemetry itself (nextest runs every test in its own process).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omie_sim::Simulator;
use omie_sim::generator::{self, CompanySpec};
use omie_sync_e2e::fixtures::{manifest, webhook};
use omie_sync_e2e::otlp::{OtlpReceiver, SpanKind, attribute, hex};
use omie_sync_e2e::stack::Stack;
use omie_sync_e2e::{eventually, serve_omie, telemetry_with};
use omie_sync_platform::auth::Role;
use omie_sync_platform::telemetry::Export;
use serde_json::{Value, json};
use uuid::Uuid;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn client(code: i64, email: &str) -> Value {
    json!({
        "codigo_cliente_omie": code,
        "razao_social": format!("Cliente {code} Ltda"),
        "email": email,
        "tags": [{"tag": "Espresso"}],
        "inativo": "N",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_is_one_trace_from_the_post_to_the_database_row() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = telemetry_with(std::io::sink, Export::OtlpHttp(receiver.url()));
    let stack = Stack::start().await;
    let fixtures = manifest();
    let tenant = Uuid::new_v4();
    stack.configure(tenant, &fixtures.app_key, &fixtures.app_secret, &fixtures.tag).await;
    stack.wait_applied(3).await;

    // A caller that sends a traceparent has its trace continued; alone in the log, the record
    // is a batch of one.
    let valid =
        webhook(&fixtures.app_key, "ClienteFornecedor.Incluido", &client(700, "ana.trace@cliente.com.br"), "Ana");
    let response = stack
        .http
        .post(format!("{}/api/v1/webhooks/omie/users", stack.ingress_url))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .body(valid)
        .send()
        .await
        .expect("ingress answers");
    assert_eq!(response.status(), 200);
    stack.wait_applied(4).await;

    // Omie sends none: ingress starts the trace; the error row carries it.
    let failing_body = webhook(&fixtures.app_key, "ClienteFornecedor.Incluido", &client(701, ""), "Ana");
    let message_id = serde_json::from_slice::<Value>(&failing_body).expect("JSON")["messageId"]
        .as_str()
        .expect("a messageId")
        .to_owned();
    assert_eq!(stack.post_webhook(failing_body, "").await.status(), 200);
    stack.wait_applied(5).await;

    let (spans, failing_trace) =
        eventually("the spans of both webhooks to be exported", Duration::from_secs(30), || {
            telemetry.flush();
            let spans = receiver.spans();
            let failing_trace = spans
                .iter()
                .find(|span| attribute(span, "omie.message_id").as_deref() == Some(message_id.as_str()))
                .map(|span| hex(&span.trace_id));
            let done = failing_trace.as_ref().is_some_and(|trace| {
                spans.iter().any(|span| hex(&span.trace_id) == *trace && span.kind == SpanKind::Consumer as i32)
            }) && spans
                .iter()
                .any(|span| hex(&span.trace_id) == CALLER_TRACE && span.kind == SpanKind::Client as i32);
            async move { done.then(|| (spans, failing_trace.unwrap_or_default())) }
        })
        .await;

    let trace: Vec<_> = spans.iter().filter(|span| hex(&span.trace_id) == CALLER_TRACE).collect();
    let of_kind =
        |kind: SpanKind| -> Vec<_> { trace.iter().filter(|span| span.kind == kind as i32).copied().collect() };

    let server = of_kind(SpanKind::Server);
    let [server] = server.as_slice() else { panic!("one HTTP server span in the trace: {server:?}") };
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN, "the caller's traceparent is the parent");
    assert_eq!(attribute(server, "http.route").as_deref(), Some("/api/v1/webhooks/omie/users"));
    assert_eq!(attribute(server, "http.response.status_code").as_deref(), Some("200"));

    let producer = of_kind(SpanKind::Producer);
    let [producer] = producer.as_slice() else { panic!("one producer span in the trace: {producer:?}") };
    assert_eq!(producer.parent_span_id, server.span_id, "the producer span is inside the request");
    assert_eq!(producer.name, format!("send {}", stack.topic));
    for (key, value) in [
        ("messaging.system", "kafka"),
        ("messaging.operation.type", "send"),
        ("messaging.destination.name", stack.topic.as_str()),
        ("messaging.kafka.message.key", tenant.to_string().as_str()),
    ] {
        assert_eq!(attribute(producer, key).as_deref(), Some(value), "producer {key}");
    }
    assert!(
        attribute(producer, "messaging.kafka.offset").is_some()
            && attribute(producer, "messaging.destination.partition.id").is_some()
    );

    let consumer = of_kind(SpanKind::Consumer);
    let [consumer] = consumer.as_slice() else { panic!("one consumer span in the trace: {consumer:?}") };
    assert_eq!(consumer.name, format!("process {}", stack.topic));
    assert!(
        consumer.links.iter().any(|link| link.span_id == producer.span_id && link.trace_id == producer.trace_id),
        "the consumer span links the producer's context"
    );
    for (key, value) in [
        ("messaging.system", "kafka"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", stack.topic.as_str()),
        ("messaging.consumer.group.name", stack.group.as_str()),
        ("messaging.batch.message_count", "1"),
        ("messaging.kafka.message.key", tenant.to_string().as_str()),
    ] {
        assert_eq!(attribute(consumer, key).as_deref(), Some(value), "consumer {key}");
    }

    let database: Vec<_> =
        of_kind(SpanKind::Client).into_iter().filter(|span| span.parent_span_id == consumer.span_id).collect();
    assert!(
        database.iter().all(|span| attribute(span, "db.system.name").as_deref() == Some("postgresql")),
        "{database:?}"
    );
    let summaries: Vec<String> = database.iter().filter_map(|span| attribute(span, "db.query.summary")).collect();
    for expected in ["INSERT events", "INSERT users", "INSERT consumer_offsets"] {
        assert!(summaries.iter().any(|summary| summary == expected), "{expected} among {summaries:?}");
    }
    let everything = format!("{spans:?}");
    assert!(!everything.contains("ana.trace@cliente.com.br"), "bind values (personal data) never reach a span");

    // The failing webhook's trace id is on its event and error rows, and in the read API.
    let admin = stack.token(tenant, Role::Admin);
    let (status, errors) = stack.get_json("/api/v1/errors?kind=missing_email", &admin).await;
    assert_eq!(status, 200, "{errors}");
    assert_eq!(errors["items"][0]["omie_code"], 701, "{errors}");
    assert_eq!(errors["items"][0]["trace_id"], failing_trace.as_str(), "{errors}");
    let (_, timeline) = stack.get_json("/api/v1/records/701/timeline", &admin).await;
    assert_eq!(timeline["items"][0]["trace_id"], failing_trace.as_str(), "{timeline}");
    let (_, valid_timeline) = stack.get_json("/api/v1/records/700/timeline", &admin).await;
    assert_eq!(valid_timeline["items"][0]["trace_id"], CALLER_TRACE, "{valid_timeline}");
    stack.stop().await;
}

/// `name{labels} value` lines of an OpenMetrics text, by series.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the series of `name` whose labels include every one of `labels`.
fn sum(metrics: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels.iter().all(|(key, value)| series.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn metrics_of(stack: &Stack, base: &str) -> BTreeMap<String, f64> {
    let response = stack.http.get(format!("{base}/metrics")).send().await.expect("metrics answer");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    scrape(&response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_both_services_count_what_the_manifest_sent() {
    telemetry_with(std::io::sink, Export::FromEnvironment);
    let stack = Stack::start().await;
    let fixtures = manifest();
    let tenant = Uuid::new_v4();
    fixtures.replay(&stack, tenant).await;

    let raw: Value = serde_json::from_slice(
        &std::fs::read(omie_sync_e2e::repo_root().join("tests/fixtures/omie/webhooks/manifest.json"))
            .expect("manifest"),
    )
    .expect("JSON");
    let mut answered: HashMap<(&str, u16), f64> = HashMap::new();
    let mut verdicts: HashMap<String, f64> = HashMap::new();
    for case in raw["cases"].as_array().expect("cases") {
        let expect = &case["expect"];
        let status = u16::try_from(expect["http"].as_u64().expect("http")).expect("a status");
        let outcome = expect["outcome"].as_str().expect("outcome");
        let label = match (status, outcome) {
            (200, "none") => "pong",
            (200, "unprocessable") => "unprocessable",
            (200, _) => "recorded",
            (401, _) => "unknown-app-key",
            (400, _) => "invalid-json",
            other => panic!("the manifest has a case this test does not know: {other:?}"),
        };
        *answered.entry((label, status)).or_default() += 1.0;
        let verdict = match outcome {
            "user_created" => Some("created".to_owned()),
            "user_updated" => Some("updated".to_owned()),
            "user_deactivated" => Some("deactivated".to_owned()),
            "skipped_untagged" => Some("skipped-untagged".to_owned()),
            "duplicate_delivery" => Some("duplicate-delivery".to_owned()),
            "failed" => Some(format!("failed:{}", expect["error"]["kind"].as_str().expect("a kind"))),
            _ => None,
        };
        if let Some(verdict) = verdict {
            *verdicts.entry(verdict).or_default() += 1.0;
        }
    }

    let ingress = metrics_of(&stack, &stack.ingress_url).await;
    for ((outcome, status), count) in &answered {
        let status = status.to_string();
        assert_eq!(
            sum(&ingress, "omie_sync_webhooks_total", &[("outcome", outcome), ("status", &status)]),
            *count,
            "webhooks {outcome} {status}"
        );
    }
    assert_eq!(sum(&ingress, "omie_sync_webhooks_total", &[]), fixtures.cases.len() as f64);
    let recorded = answered[&("recorded", 200)] + answered[&("unprocessable", 200)];
    let commands = 3.0;
    assert_eq!(
        sum(&ingress, "omie_sync_produce_duration_seconds_count", &[("result", "acked")]),
        recorded + commands,
        "every recorded webhook and command was produced and acknowledged once"
    );

    let projector = metrics_of(&stack, &stack.projector_url).await;
    for (verdict, count) in &verdicts {
        let client_events = sum(
            &projector,
            "omie_sync_events_applied_total",
            &[("event_type", "omie.client.upserted"), ("verdict", verdict)],
        ) + sum(
            &projector,
            "omie_sync_events_applied_total",
            &[("event_type", "omie.client.deleted"), ("verdict", verdict)],
        );
        assert_eq!(client_events, *count, "events applied with verdict {verdict}");
    }
    assert_eq!(
        sum(&projector, "omie_sync_events_applied_total", &[("event_type", "omie.webhook.unprocessable")]),
        answered[&("unprocessable", 200)]
    );
    assert_eq!(sum(&projector, "omie_sync_events_applied_total", &[]), recorded + commands);
    assert_eq!(
        sum(&projector, "omie_sync_batch_size_sum", &[]),
        recorded + commands,
        "every record in one batch or another"
    );
    assert_eq!(sum(&projector, "omie_sync_dead_lettered_total", &[]), 0.0);

    let admin = stack.token(tenant, Role::Admin);
    let (_, open) = stack.get_json("/api/v1/errors?status=open&limit=1000", &admin).await;
    let mut open_by_kind: HashMap<String, f64> = HashMap::new();
    for error in open["items"].as_array().expect("items") {
        *open_by_kind.entry(error["kind"].as_str().expect("kind").to_owned()).or_default() += 1.0;
    }
    assert!(!open_by_kind.is_empty());
    for (kind, count) in &open_by_kind {
        assert_eq!(sum(&projector, "omie_sync_open_errors", &[("kind", kind)]), *count, "open {kind} errors");
    }
    assert_eq!(sum(&projector, "omie_sync_open_errors", &[]), open_by_kind.values().sum::<f64>());

    let caught_up = eventually("the consumer lag to be reported as caught up", Duration::from_secs(20), || async {
        let projector = metrics_of(&stack, &stack.projector_url).await;
        let partitions = projector.keys().filter(|series| series.starts_with("omie_sync_consumer_lag{")).count();
        (partitions > 0 && sum(&projector, "omie_sync_consumer_lag", &[]) == 0.0).then_some(partitions)
    })
    .await;
    assert_eq!(caught_up, 3, "one lag series per partition of the topic");
    stack.stop().await;
}

/// Log lines, as written.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every e-mail address written in the fixtures.
fn fixture_emails() -> Vec<String> {
    let dir = omie_sync_e2e::repo_root().join("tests/fixtures/omie/webhooks");
    let mut emails = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let text = std::fs::read_to_string(entry.expect("a fixture").path()).unwrap_or_default();
        for word in text.split(|c: char| c.is_whitespace() || "\",;:[]{}<>".contains(c)) {
            let (local, domain) = word.split_once('@').unwrap_or_default();
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') {
                emails.push(word.to_owned());
            }
        }
    }
    emails.sort();
    emails.dedup();
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_logs_hold_no_secret_token_or_email() {
    assert!(std::env::var("RUST_LOG").is_err(), "this test reads the default (info) logs; unset RUST_LOG");
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    telemetry_with(move || writer.clone(), Export::FromEnvironment);
    let stack = Stack::start().await;
    let fixtures = manifest();
    let tenant = Uuid::new_v4();
    fixtures.replay(&stack, tenant).await;

    let admin = stack.token(tenant, Role::Admin);
    let rotated =
        stack.command(reqwest::Method::POST, "/api/v1/integrations/omie/webhook-token", &admin, json!({})).await;
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.expect("JSON");
    let url = rotated["webhook_url"].as_str().expect("a webhook URL").to_owned();
    let token = url.split_once("token=").expect("the token in the URL").1.to_owned();
    let code = 8_612_300_451_i64;
    let body = webhook(&fixtures.app_key, "ClienteFornecedor.Alterado", &client(code, "sigilo@cliente.com.br"), "Ana");
    let mut accepted = false;
    for _ in 0..50 {
        stack.post_webhook(body.clone(), "?token=wrong-token").await;
        if stack.post_webhook(body.clone(), &format!("?token={token}")).await.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the rotated token is accepted");
    let refused = stack
        .command(
            reqwest::Method::PUT,
            "/api/v1/integrations/omie/credentials",
            &admin,
            json!({"app_key": "", "app_secret": "segredo-que-nao-vale"}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    // Refusals of every layer are logged: the token check, the role check, the body's decoding.
    let anonymous = stack.http.get(format!("{}/api/v1/users", stack.projector_url)).send().await.expect("answers");
    assert_eq!(anonymous.status(), 401);
    let viewer = stack.token(tenant, Role::Other);
    let tag = "/api/v1/integrations/omie/tag";
    assert_eq!(stack.command(reqwest::Method::PUT, tag, &viewer, json!({"tag": "x"})).await.status(), 403);
    assert_eq!(stack.command(reqwest::Method::PUT, tag, &admin, json!(["x"])).await.status(), 400);

    let text = logs.text();
    for problem in ["unauthenticated", "forbidden", "invalid-request", "validation-failed"] {
        assert!(
            text.lines().any(|line| line.contains("request refused") && line.contains(&format!("/problems/{problem}"))),
            "the {problem} refusal is logged:\n{text}"
        );
    }
    assert!(text.contains("webhook recorded"), "the logs were captured:\n{text}");
    let traced = text.lines().filter(|line| line.contains("webhook recorded")).all(|line| {
        line.split("trace_id=")
            .nth(1)
            .is_some_and(|rest| rest.len() >= 32 && rest[..32].bytes().all(|byte| byte.is_ascii_hexdigit()))
    });
    assert!(traced, "every webhook line carries its trace id:\n{text}");
    let mut secrets = vec![
        fixtures.app_secret.clone(),
        token,
        admin,
        "segredo-que-nao-vale".to_owned(),
        "sigilo@cliente.com.br".to_owned(),
        "admin@example.com.br".to_owned(),
    ];
    let emails = fixture_emails();
    assert!(emails.len() >= 5, "the fixtures hold e-mail addresses: {emails:?}");
    secrets.extend(emails);
    for secret in secrets {
        assert!(!text.contains(&secret), "{secret} appears in the logs:\n{text}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omie_calls_are_traced_and_their_faults_and_sync_pages_counted() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = telemetry_with(std::io::sink, Export::OtlpHttp(receiver.url()));
    let fixtures = manifest();
    let spec = CompanySpec { slug: "aurora", app_key: &fixtures.app_key, tag: &fixtures.tag };
    let records = 1_200;
    let simulator = Simulator::generated(generator::company(&spec, &fixtures.app_secret, records, 5), 5);
    let omie_url = serve_omie(&simulator);
    let stack = Stack::start_with(|config| config.omie_api_url = omie_url).await;
    let tenant = Uuid::new_v4();
    let admin = stack.token(tenant, Role::Admin);

    let wrong_secret = &fixtures.app_secret[1..];
    stack.configure(tenant, &fixtures.app_key, wrong_secret, &fixtures.tag).await;
    let test = "/api/v1/integrations/omie/test-connection";
    let refused: Value =
        stack.command(reqwest::Method::POST, test, &admin, json!({})).await.json().await.expect("JSON");
    assert_eq!(refused["outcome"], "invalid_credentials", "{refused}");

    let credentials = json!({"app_key": fixtures.app_key, "app_secret": fixtures.app_secret});
    let put = stack.command(reqwest::Method::PUT, "/api/v1/integrations/omie/credentials", &admin, credentials).await;
    assert_eq!(put.status(), 202);
    stack.wait_applied(5).await;
    let started: Value = stack
        .command(reqwest::Method::POST, "/api/v1/integrations/omie/sync", &admin, json!({}))
        .await
        .json()
        .await
        .expect("JSON");
    let sync_id = started["sync_id"].as_str().expect("a sync id").to_owned();
    let run = eventually("the sync to complete", Duration::from_secs(60), || async {
        let (_, run) = stack.get_json(&format!("/api/v1/syncs/{sync_id}"), &admin).await;
        (run["status"] == "completed").then_some(run)
    })
    .await;
    let pages = records.div_ceil(500) as f64;
    assert_eq!(run["pages_done"].as_f64(), Some(pages), "{run}");

    let ingress = metrics_of(&stack, &stack.ingress_url).await;
    assert_eq!(
        sum(&ingress, "omie_sync_omie_faults_total", &[("method", "ListarClientes"), ("code", "invalid_credentials")]),
        1.0
    );
    assert_eq!(sum(&ingress, "omie_sync_omie_faults_total", &[]), 1.0, "no other fault happened");
    assert_eq!(sum(&ingress, "omie_sync_sync_pages_total", &[]), pages);

    let spans = eventually("the sync's spans to be exported", Duration::from_secs(30), || {
        telemetry.flush();
        let spans = receiver.spans();
        let done = spans.iter().any(|span| span.name == "full sync");
        async move { done.then_some(spans) }
    })
    .await;
    let route_of = |route: &str| {
        spans
            .iter()
            .find(|span| {
                span.kind == SpanKind::Server as i32 && attribute(span, "http.route").as_deref() == Some(route)
            })
            .unwrap_or_else(|| panic!("no server span for {route}"))
    };
    let tested = route_of(test);
    let omie_calls: Vec<_> = spans.iter().filter(|span| span.parent_span_id == tested.span_id).collect();
    let call = omie_calls
        .iter()
        .find(|span| span.name == "Omie ListarClientes")
        .unwrap_or_else(|| panic!("the test connection's Omie call is traced: {omie_calls:?}"));
    assert_eq!(call.kind, SpanKind::Client as i32);
    assert_eq!(attribute(call, "error.type").as_deref(), Some("invalid_credentials"));
    assert!(
        omie_calls.iter().any(|span| span.kind == SpanKind::Producer as i32),
        "the connection test's event is produced inside the request"
    );

    let requested = route_of("/api/v1/integrations/omie/sync");
    let sync = spans.iter().find(|span| span.name == "full sync").expect("the sync's span");
    assert!(
        sync.links.iter().any(|link| link.span_id == requested.span_id),
        "the sync links the request that started it"
    );
    let inside: Vec<_> = spans.iter().filter(|span| span.parent_span_id == sync.span_id).collect();
    let listed = inside.iter().filter(|span| span.name == "Omie ListarClientes").count();
    assert_eq!(listed as f64, pages, "one Omie call per page");
    let produced = inside.iter().filter(|span| span.kind == SpanKind::Producer as i32).count();
    assert_eq!(produced, records + pages as usize + 1, "a row per record, a progress event per page, the completion");
    stack.stop().await;
}
