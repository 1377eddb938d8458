//! The integrations centre's reads: the manifest's errors, logs, related events and history;
//! filters, search and cursor pages that neither lose nor repeat rows while new ones arrive;
//! archive → reopen → resolve; tenant isolation and roles on every route.

use std::collections::{BTreeMap, HashSet};

use omie_sync_e2e::fixtures::{self, webhook};
use omie_sync_e2e::stack::Stack;
use omie_sync_platform::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const INCLUDED: &str = "ClienteFornecedor.Incluido";
const CHANGED: &str = "ClienteFornecedor.Alterado";
const APP_KEY: &str = "5550001112223";

fn person(code: i64, email: &str, tagged: bool) -> Value {
    let tags = if tagged { json!([{"tag": "Cliente"}, {"tag": "Espresso"}]) } else { json!([{"tag": "Cliente"}]) };
    json!({
        "codigo_cliente_omie": code,
        "razao_social": format!("Pessoa {code:03} da Silva"),
        "nome_fantasia": format!("Pessoa {code:03}"),
        "cnpj_cpf": format!("{code:03}.{code:03}.{code:03}-{:02}", code % 100),
        "pessoa_fisica": "S",
        "email": email,
        "inativo": "N",
        "tags": tags,
    })
}

/// Every page of a list, following `next_cursor`; `between` runs after each page.
async fn all_pages(stack: &Stack, path: &str, token: &str, mut between: impl AsyncFnMut()) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = stack.get_json(&url, token).await;
        assert_eq!(status, 200, "{url}: {page}");
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        between().await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| item["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_yields_its_errors_logs_related_events_and_history() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    fixtures::manifest().replay(&stack, tenant).await;
    let token = stack.token(tenant, Role::Financeiro);

    let (_, errors) = stack.get_json("/api/v1/errors", &token).await;
    let errors = errors["items"].as_array().expect("items").clone();
    let by_kind: BTreeMap<&str, &Value> =
        errors.iter().map(|error| (error["kind"].as_str().expect("kind"), error)).collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(
        by_kind.keys().copied().collect::<Vec<_>>(),
        ["duplicate_email", "invalid_email", "missing_email", "unprocessable_webhook"]
    );
    assert_eq!(by_kind["missing_email"]["omie_code"], 8612300453_i64);
    assert_eq!(by_kind["missing_email"]["name"], "Rafael Augusto Nogueira");
    assert_eq!(by_kind["invalid_email"]["omie_code"], 8612300454_i64);
    assert_eq!(by_kind["duplicate_email"]["omie_code"], 8612300459_i64);
    assert!(by_kind["unprocessable_webhook"]["omie_code"].is_null());
    assert!(errors.iter().all(|error| error["status"] == "open" && error["occurrences"] == 1));

    for error in &errors {
        let id = error["id"].as_str().expect("id");
        let kind = error["kind"].as_str().expect("kind");
        let (status, log) = stack.get_json(&format!("/api/v1/errors/{id}/log"), &token).await;
        assert_eq!(status, 200);
        let entries = log["items"].as_array().expect("items");
        assert_eq!(entries.len(), 1, "one failing event each: {log}");
        let entry = &entries[0];
        assert_eq!(entry["rule"], kind);
        assert!(!entry["reason"].as_str().expect("reason").is_empty());
        let how_to_fix = entry["how_to_fix"].as_str().expect("how_to_fix");
        assert!(how_to_fix.contains("Omie"), "{how_to_fix}");
        if let Some(code) = error["omie_code"].as_i64() {
            assert_eq!(entry["input"]["record"]["codigo_cliente_omie"], code, "the raw input: {entry}");
            assert!(how_to_fix.contains(&code.to_string()), "{how_to_fix}");
        }
        let (_, related) = stack.get_json(&format!("/api/v1/errors/{id}/related"), &token).await;
        let verdicts: Vec<&str> = related["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|event| event["verdict"].as_str().expect("verdict"))
            .collect();
        assert_eq!(verdicts, [format!("failed:{kind}")], "{related}");
    }

    let history = all_pages(&stack, "/api/v1/history?limit=5", &token, async || {}).await;
    let mut actions: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &history {
        *actions.entry(row["action"].as_str().expect("action")).or_default() += 1;
    }
    assert_eq!(
        actions,
        BTreeMap::from([
            ("credentials_set", 1),
            ("tag_set", 1),
            ("template_set", 1),
            ("user_created", 4),
            ("user_updated", 1),
            ("user_deactivated", 3),
            ("import_failed", 4),
        ])
    );
    let created = history.iter().find(|row| row["action"] == "user_created").expect("a creation");
    assert_eq!(created["actor"]["kind"], "omie_user", "webhooks are the Omie author's actions");
    let configured = history.iter().find(|row| row["action"] == "tag_set").expect("the tag command");
    assert_eq!(
        (configured["actor"]["kind"].as_str(), configured["actor"]["name"].as_str()),
        (Some("espresso_user"), Some("Test Admin"))
    );
    let times: Vec<&str> = history.iter().map(|row| row["at"].as_str().expect("at")).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "newest first");

    let (_, integration) = stack.get_json("/api/v1/integration", &token).await;
    assert_eq!(integration["app_key"], "••••0231");
    assert_eq!(integration["tag"], "Espresso");
    assert_eq!(integration["connection"]["status"], "untested");
    assert!(integration["webhook"]["url"].as_str().expect("url").ends_with("/api/v1/webhooks/omie/users"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_search_and_page_without_losing_or_repeating_rows() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "secret-of-the-read-test", "Espresso").await;
    let token = stack.token(tenant, Role::Admin);
    let mut recorded = 3;
    for code in 1..=60 {
        let email = if code % 10 == 0 { String::new() } else { format!("pessoa{code}@empresa-demo.com.br") };
        let author = if code % 2 == 0 { "Ana Cadastro" } else { "Bruno Financeiro" };
        let response = stack.post_webhook(webhook(APP_KEY, INCLUDED, &person(code, &email, true), author), "").await;
        assert_eq!(response.status(), 200);
        recorded += 1;
    }
    for code in [3, 4, 5] {
        let email = format!("pessoa{code}@empresa-demo.com.br");
        stack.post_webhook(webhook(APP_KEY, CHANGED, &person(code, &email, false), "Ana Cadastro"), "").await;
        recorded += 1;
    }
    stack.wait_applied(recorded).await;

    // Paging while users keep arriving: every user present at the start is seen exactly once.
    let (_, before) = stack.get_json("/api/v1/users?limit=1000", &token).await;
    let present: HashSet<String> = ids(before["items"].as_array().expect("items")).into_iter().collect();
    assert_eq!(present.len(), 54, "60 records, 6 without e-mail");
    let mut next_code = 100;
    let paged = all_pages(&stack, "/api/v1/users?limit=7", &token, async || {
        for _ in 0..3 {
            next_code += 1;
            let body = webhook(
                APP_KEY,
                INCLUDED,
                &person(next_code, &format!("nova{next_code}@empresa-demo.com.br"), true),
                "Ana Cadastro",
            );
            assert_eq!(stack.post_webhook(body, "").await.status(), 200);
        }
    })
    .await;
    let seen = ids(&paged);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no user repeated across pages");
    assert!(present.iter().all(|id| unique.contains(id)), "no user lost across pages");

    let (_, inactive) = stack.get_json("/api/v1/users?active=false", &token).await;
    let inactive = inactive["items"].as_array().expect("items");
    let codes: HashSet<i64> = inactive.iter().map(|user| user["omie_code"].as_i64().expect("code")).collect();
    assert_eq!(codes, HashSet::from([3, 4, 5]));
    assert!(
        inactive
            .iter()
            .all(|user| user["last_change"]["why"] == "deactivated" && user["last_change"]["detail"] == "untagged"),
        "{inactive:?}"
    );

    let search = async |query: &str| -> Vec<i64> {
        let (status, page) = stack.get_json(&format!("/api/v1/users?{query}"), &token).await;
        assert_eq!(status, 200, "{query}: {page}");
        page["items"].as_array().expect("items").iter().map(|user| user["omie_code"].as_i64().expect("code")).collect()
    };
    assert_eq!(search("q=pessoa%20017").await, [17], "by name");
    assert_eq!(search("q=PESSOA23%40EMPRESA").await, [23], "by e-mail, case-insensitively");
    assert_eq!(search("q=041041041").await, [41], "by document, punctuation ignored");
    assert_eq!(search("q=42").await, [42], "by the whole Omie code (and nothing else holds 42)");
    assert_eq!(search("q=%25").await, Vec::<i64>::new(), "a % is a literal, not a wildcard");
    assert_eq!(search("q=pessoa%20003&active=true").await, Vec::<i64>::new());

    let (_, errors) = stack.get_json("/api/v1/errors?kind=missing_email&status=open", &token).await;
    assert_eq!(errors["items"].as_array().expect("items").len(), 6);
    let (_, errors) = stack.get_json("/api/v1/errors?kind=invalid_email", &token).await;
    assert_eq!(errors["items"], json!([]));
    let (_, found) = stack.get_json("/api/v1/errors?q=pessoa%20030", &token).await;
    assert_eq!(found["items"][0]["omie_code"], 30);
    // Errors and history page the same way while failing records and new users keep arriving.
    let mut failing_code = 200;
    let paged_errors = all_pages(&stack, "/api/v1/errors?limit=4", &token, async || {
        failing_code += 1;
        let body = webhook(APP_KEY, INCLUDED, &person(failing_code, "", true), "Ana Cadastro");
        assert_eq!(stack.post_webhook(body, "").await.status(), 200);
    })
    .await;
    let error_ids = ids(&paged_errors);
    assert_eq!(error_ids.iter().collect::<HashSet<_>>().len(), error_ids.len(), "no error repeated");
    assert!(paged_errors.iter().filter(|error| error["omie_code"].as_i64() <= Some(60)).count() == 6, "none lost");

    let arrived = next_code - 100;
    stack.wait_applied(recorded + arrived + (failing_code - 200)).await;
    let filtered = "/api/v1/history?limit=1000&action=user_created,user_deactivated";
    let (_, snapshot) = stack.get_json(filtered, &token).await;
    let snapshot = ids(snapshot["items"].as_array().expect("items"));
    assert_eq!(snapshot.len() as i64, 54 + arrived + 3);
    let history =
        all_pages(&stack, "/api/v1/history?limit=9&action=user_created,user_deactivated", &token, async || {
            next_code += 1;
            let body = webhook(
                APP_KEY,
                INCLUDED,
                &person(next_code, &format!("nova{next_code}@empresa-demo.com.br"), true),
                "Ana Cadastro",
            );
            assert_eq!(stack.post_webhook(body, "").await.status(), 200);
        })
        .await;
    let seen: HashSet<String> = ids(&history).into_iter().collect();
    assert_eq!(seen.len(), history.len(), "no history row repeated");
    assert!(snapshot.iter().all(|id| seen.contains(id)), "no history row lost");
    stack.wait_applied(recorded + (next_code - 100) + (failing_code - 200)).await;
    let count = async |query: &str| -> usize {
        all_pages(&stack, &format!("/api/v1/history?limit=1000&{query}"), &token, async || {}).await.len()
    };
    assert_eq!(count("action=user_created&actor_kind=omie_user&actor=bruno").await, 30);
    assert_eq!(count("action=import_failed&actor=ANA%20CADASTRO").await as i64, 6 + failing_code - 200);
    assert_eq!(count("actor_kind=espresso_user").await, 3, "the three configuration commands");
    assert_eq!(count("until=2001-01-01T00:00:00Z").await, 0);
    let everything = count("").await;
    assert_eq!(count("from=2001-01-01T00:00:00Z&until=2100-01-01T00:00:00Z").await, everything);

    for (query, mentions) in [
        ("/api/v1/users?limit=0", "limit"),
        ("/api/v1/users?limit=1001", "limit"),
        ("/api/v1/users?cursor=not-a-cursor", "cursor"),
        ("/api/v1/users?active=maybe", "active"),
        ("/api/v1/errors?status=forgotten", "status"),
        ("/api/v1/errors?kind=typo", "kind"),
        ("/api/v1/history?actor_kind=robot", "actor_kind"),
        ("/api/v1/history?from=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "from"),
        ("/api/v1/history?from=yesterday", "from"),
        // A forged cursor at 4714 BC: well-formed, but no instant PostgreSQL stores.
        (
            "/api/v1/users?cursor=eyJhdCI6Ii00NzE0LTAxLTAxVDAwOjAwOjAwWiIsImlkIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIn0",
            "cursor",
        ),
        ("/api/v1/users?q=%00", "NUL"),
        ("/api/v1/errors?q=a%00b", "NUL"),
        ("/api/v1/history?actor=%00", "actor"),
        ("/api/v1/history?action=user_created,%00", "action"),
    ] {
        let (status, problem) = stack.get_json(query, &token).await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(problem["type"], "/problems/invalid-request", "{query}");
        assert!(problem["detail"].as_str().expect("detail").contains(mentions), "{query}: {problem}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_error_shows_who_reopens_on_failure_and_resolves_when_fixed() {
    let stack = Stack::start().await;
    let tenant = Uuid::new_v4();
    stack.configure(tenant, APP_KEY, "secret-of-the-archive-test", "Espresso").await;
    let admin = stack.token(tenant, Role::Admin);
    let broken = person(7, "sete@@quebrado", true);
    assert_eq!(stack.post_webhook(webhook(APP_KEY, INCLUDED, &broken, "Ana Cadastro"), "").await.status(), 200);
    stack.wait_applied(4).await;
    let (_, errors) = stack.get_json("/api/v1/errors", &admin).await;
    let id = errors["items"][0]["id"].as_str().expect("an error").to_owned();

    let archive = format!("/api/v1/errors/{id}/archive");
    let long = "x".repeat(501);
    assert_eq!(stack.command(Method::POST, &archive, &admin, json!({"reason": long})).await.status(), 422);
    let unknown = format!("/api/v1/errors/{}/archive", Uuid::new_v4());
    assert_eq!(stack.command(Method::POST, &unknown, &admin, json!({})).await.status(), 404);
    let archived = stack.command(Method::POST, &archive, &admin, json!({"reason": "cliente antigo"})).await;
    assert_eq!(archived.status(), 202);
    assert_eq!(
        stack.command(Method::POST, &archive, &admin, json!({})).await.status(),
        202,
        "archiving again is harmless"
    );
    stack.wait_applied(6).await;

    let (_, error) = stack.get_json(&format!("/api/v1/errors/{id}"), &admin).await;
    assert_eq!(error["status"], "archived");
    assert_eq!(error["archived"]["reason"], "cliente antigo");
    assert_eq!(error["archived"]["by"]["name"], "Test Admin");
    assert_eq!(error["archived"]["by"]["kind"], "espresso_user");
    let (_, listed) = stack.get_json("/api/v1/errors?status=archived", &admin).await;
    assert_eq!(ids(listed["items"].as_array().expect("items")), std::slice::from_ref(&id));
    let (_, history) = stack.get_json("/api/v1/history?action=error_archived", &admin).await;
    let rows = history["items"].as_array().expect("items");
    assert_eq!(rows.len(), 1, "the second archive changed nothing: {history}");
    assert_eq!(
        (rows[0]["actor"]["name"].as_str(), rows[0]["details"]["reason"].as_str()),
        (Some("Test Admin"), Some("cliente antigo"))
    );
    assert_eq!(rows[0]["subject"], "7");

    assert_eq!(stack.post_webhook(webhook(APP_KEY, CHANGED, &broken, "Ana Cadastro"), "").await.status(), 200);
    stack.wait_applied(7).await;
    let (_, error) = stack.get_json(&format!("/api/v1/errors/{id}"), &admin).await;
    assert_eq!((error["status"].as_str(), error["occurrences"].as_i64()), (Some("open"), Some(2)), "{error}");
    assert!(error["archived"].is_null());
    let (_, log) = stack.get_json(&format!("/api/v1/errors/{id}/log"), &admin).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 2);

    let fixed = person(7, "sete@empresa-demo.com.br", true);
    assert_eq!(stack.post_webhook(webhook(APP_KEY, CHANGED, &fixed, "Ana Cadastro"), "").await.status(), 200);
    stack.wait_applied(8).await;
    let (_, error) = stack.get_json(&format!("/api/v1/errors/{id}"), &admin).await;
    assert_eq!(error["status"], "resolved");
    let (_, related) = stack.get_json(&format!("/api/v1/errors/{id}/related"), &admin).await;
    let verdicts: Vec<&str> = related["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|event| event["verdict"].as_str().expect("verdict"))
        .collect();
    assert_eq!(verdicts, ["failed:invalid_email", "failed:invalid_email", "created"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_reaches_another_tenants_rows_and_roles_are_checked() {
    let stack = Stack::start().await;
    let owner = Uuid::new_v4();
    fixtures::manifest().replay(&stack, owner).await;
    let owner_token = stack.token(owner, Role::Admin);
    let (_, errors) = stack.get_json("/api/v1/errors", &owner_token).await;
    let error_id = errors["items"][0]["id"].as_str().expect("an error").to_owned();
    let (_, users) = stack.get_json("/api/v1/users", &owner_token).await;
    let code = users["items"][0]["omie_code"].as_i64().expect("a user");

    let stranger = stack.token(Uuid::new_v4(), Role::Admin);
    for list in ["/api/v1/users", "/api/v1/errors", "/api/v1/history"] {
        let (status, page) = stack.get_json(list, &stranger).await;
        assert_eq!((status, page["items"].clone()), (200, json!([])), "{list}");
    }
    for path in [
        format!("/api/v1/errors/{error_id}"),
        format!("/api/v1/errors/{error_id}/log"),
        format!("/api/v1/errors/{error_id}/related"),
    ] {
        let (status, problem) = stack.get_json(&path, &stranger).await;
        assert_eq!((status, problem["type"].as_str()), (404, Some("/problems/not-found")), "{path}");
    }
    let (_, timeline) = stack.get_json(&format!("/api/v1/records/{code}/timeline"), &stranger).await;
    assert_eq!(timeline["items"], json!([]));
    let (_, integration) = stack.get_json("/api/v1/integration", &stranger).await;
    assert_eq!((integration["configured"].as_bool(), integration["app_key"].is_null()), (Some(false), true));
    let archive = format!("/api/v1/errors/{error_id}/archive");
    assert_eq!(stack.command(Method::POST, &archive, &stranger, json!({})).await.status(), 404);

    let other_role = stack.token(owner, Role::Other);
    let reads = [
        "/api/v1/integration".to_owned(),
        "/api/v1/users".to_owned(),
        "/api/v1/errors".to_owned(),
        format!("/api/v1/errors/{error_id}"),
        format!("/api/v1/errors/{error_id}/log"),
        format!("/api/v1/errors/{error_id}/related"),
        "/api/v1/history".to_owned(),
        format!("/api/v1/records/{code}/timeline"),
        "/api/v1/stats".to_owned(),
        format!("/api/v1/syncs/{}", Uuid::new_v4()),
    ];
    for path in &reads {
        assert_eq!(stack.get_json(path, &other_role).await.0, 403, "{path}");
        let anonymous = stack.http.get(format!("{}{path}", stack.projector_url)).send().await.expect("answers");
        assert_eq!(anonymous.status(), 401, "{path}");
        let allowed = if path.starts_with("/api/v1/syncs") { 404 } else { 200 };
        assert_eq!(stack.get_json(path, &stack.token(owner, Role::Financeiro)).await.0, allowed, "{path}");
    }
    assert_eq!(stack.command(Method::POST, &archive, &other_role, json!({})).await.status(), 403);
    for open in ["/health", "/ready", "/openapi.json"] {
        for base in [&stack.ingress_url, &stack.projector_url] {
            let response = stack.http.get(format!("{base}{open}")).send().await.expect("answers");
            assert_eq!(response.status(), 200, "{base}{open}");
        }
    }
    stack.stop().await;
}
