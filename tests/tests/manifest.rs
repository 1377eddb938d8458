//! The fixture manifest, posted in order to one tenant, yields every `expect` it states.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sync_e2e::repo_root;
use omie_sync_e2e::stack::Stack;
use omie_sync_platform::auth::Role;
use omie_sync_store::schema::{events, import_errors, record_timeline, users};
use serde_json::Value;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_case_has_its_expected_outcome() {
    let stack = Stack::start().await;
    let dir = repo_root().join("tests/fixtures/omie");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("webhooks/manifest.json")).expect("manifest"))
        .expect("manifest JSON");
    let tenant = Uuid::new_v4();
    let app_key = manifest["app_key"].as_str().expect("app_key");
    stack
        .configure(
            tenant,
            app_key,
            manifest["app_secret"].as_str().expect("app_secret"),
            manifest["tag"].as_str().expect("tag"),
        )
        .await;
    let mut recorded = 3; // credentials, tag and template commands
    stack.wait_applied(recorded).await;

    for case in manifest["cases"].as_array().expect("cases") {
        let file = case["file"].as_str().expect("file");
        let expect = &case["expect"];
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let before = stack.db.dump().await;
        let response = stack.post_webhook(bytes.clone(), "").await;
        let status = response.status().as_u16();
        assert_eq!(
            u64::from(status),
            expect["http"].as_u64().expect("http"),
            "{file}: {}",
            response.text().await.unwrap_or_default()
        );
        let outcome = expect["outcome"].as_str().expect("outcome");
        if status == 200 && outcome != "none" {
            recorded += 1;
        }
        stack.wait_applied(recorded).await;
        let event: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = event["event"]["codigo_cliente_omie"].as_i64();
        let mut conn = stack.db.connect().await;
        match outcome {
            "user_created" | "user_updated" | "user_deactivated" => {
                let expected = &expect["user"];
                let code = expected["omie_code"].as_i64().expect("omie_code");
                let user: omie_sync_store::users::User = users::table
                    .filter(users::tenant_id.eq(tenant))
                    .filter(users::omie_code.eq(code))
                    .select(omie_sync_store::users::User::as_select())
                    .first(&mut conn)
                    .await
                    .unwrap_or_else(|_| panic!("{file}: no user {code}"));
                assert_eq!(user.active, expected["active"].as_bool().expect("active"), "{file}");
                if let Some(name) = expected["name"].as_str() {
                    assert_eq!(user.name, name, "{file}");
                }
                if let Some(email) = expected["email"].as_str() {
                    assert_eq!(user.email, email, "{file}");
                }
                if let Some(reason) = expect["reason"].as_str() {
                    assert_eq!(user.deactivation_reason.as_deref(), Some(reason), "{file}");
                }
                let verdict = match outcome {
                    "user_created" => "created",
                    "user_updated" => "updated",
                    _ => "deactivated",
                };
                assert_eq!(last_verdict(&mut conn, tenant, code).await.as_deref(), Some(verdict), "{file}");
            }
            "failed" => {
                let expected = &expect["error"];
                let code = expected["omie_code"].as_i64().expect("omie_code");
                let kind = expected["kind"].as_str().expect("kind");
                let error: omie_sync_store::errors::ImportError = import_errors::table
                    .filter(import_errors::tenant_id.eq(tenant))
                    .filter(import_errors::omie_code.eq(code))
                    .filter(import_errors::kind.eq(kind))
                    .select(omie_sync_store::errors::ImportError::as_select())
                    .first(&mut conn)
                    .await
                    .unwrap_or_else(|_| panic!("{file}: no {kind} error for {code}"));
                assert_eq!(error.status, "open", "{file}");
                if let Some(name) = expected["name"].as_str() {
                    assert_eq!(error.name.as_deref(), Some(name), "{file}");
                }
                assert_eq!(
                    users_of(&mut conn, tenant, code).await,
                    0,
                    "{file}: a failing record must not become a user"
                );
                assert_eq!(last_verdict(&mut conn, tenant, code).await, Some(format!("failed:{kind}")), "{file}");
            }
            "skipped_untagged" => {
                let code = code.expect("fixture has a code");
                assert_eq!(users_of(&mut conn, tenant, code).await, 0, "{file}");
                assert_eq!(last_verdict(&mut conn, tenant, code).await.as_deref(), Some("skipped-untagged"), "{file}");
            }
            "duplicate_delivery" => {
                let after = stack.db.dump().await;
                for table in ["users", "errors", "history", "events"] {
                    assert_eq!(before[table], after[table], "{file}: a duplicate delivery changed {table}");
                }
                let code = code.expect("fixture has a code");
                assert_eq!(
                    last_verdict(&mut conn, tenant, code).await.as_deref(),
                    Some("duplicate-delivery"),
                    "{file}"
                );
            }
            "unprocessable" => {
                let payload: Value = events::table
                    .filter(events::tenant_id.eq(tenant))
                    .filter(events::event_type.eq("omie.webhook.unprocessable"))
                    .order(events::log_offset.desc())
                    .select(events::payload)
                    .first(&mut conn)
                    .await
                    .unwrap_or_else(|_| panic!("{file}: no unprocessable event recorded"));
                let expected_reason = match expect["reason"].as_str().expect("reason") {
                    "unsupported topic" => "unsupported_topic",
                    "no codigo_cliente_omie" => "missing_omie_code",
                    other => panic!("unknown reason {other}"),
                };
                assert_eq!(payload["payload"]["reason"], expected_reason, "{file}");
                assert_eq!(payload["payload"]["message_id"], event["messageId"], "{file}: the raw webhook is kept");
            }
            "none" => {
                let after = stack.db.dump().await;
                assert_eq!(before, after, "{file}: a rejected or ping request changed the projections");
            }
            other => panic!("{file}: unknown outcome {other}"),
        }
    }

    // Every accepted webhook and command is in the log exactly once, nothing else.
    assert_eq!(stack.db.applied(&stack.group).await, recorded);
    let token = stack.token(tenant, Role::Financeiro);
    let users: Value = stack.read("/api/v1/users", &token).await.json().await.expect("users JSON");
    let active: BTreeMap<i64, bool> = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| (user["omie_code"].as_i64().expect("code"), user["active"].as_bool().expect("active")))
        .collect();
    assert_eq!(
        active,
        BTreeMap::from([(8612300451, false), (8612300452, false), (8612300455, true), (8612300458, false)])
    );
    stack.stop().await;
}

async fn users_of(conn: &mut diesel_async::AsyncPgConnection, tenant: Uuid, code: i64) -> i64 {
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::omie_code.eq(code))
        .count()
        .get_result(conn)
        .await
        .expect("count users")
}

async fn last_verdict(conn: &mut diesel_async::AsyncPgConnection, tenant: Uuid, code: i64) -> Option<String> {
    record_timeline::table
        .filter(record_timeline::tenant_id.eq(tenant))
        .filter(record_timeline::omie_code.eq(code))
        .order(record_timeline::log_offset.desc())
        .select(record_timeline::verdict)
        .first(conn)
        .await
        .ok()
}
