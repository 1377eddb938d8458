//! The fixture manifest and hand-made webhooks, posted as Omie would.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::repo_root;
use crate::stack::Stack;

pub struct Manifest {
    pub app_key: String,
    pub app_secret: String,
    pub tag: String,
    /// (file name, body bytes, expected HTTP status), in order.
    pub cases: Vec<(String, Vec<u8>, u16)>,
}

pub fn manifest() -> Manifest {
    let dir = repo_root().join("tests/fixtures/omie");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("webhooks/manifest.json")).expect("manifest")).expect("JSON");
    let text = |key: &str| manifest[key].as_str().expect("a string field").to_owned();
    let cases = manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            let file = case["file"].as_str().expect("file");
            let status = u16::try_from(case["expect"]["http"].as_u64().expect("http")).expect("a status");
            (file.to_owned(), std::fs::read(dir.join(file)).expect("fixture"), status)
        })
        .collect();
    Manifest { app_key: text("app_key"), app_secret: text("app_secret"), tag: text("tag"), cases }
}

impl Manifest {
    /// Configures `tenant` with the manifest's keys, posts every case in order (checking each
    /// status) and waits until the projector applied them all.
    pub async fn replay(&self, stack: &Stack, tenant: Uuid) {
        stack.configure(tenant, &self.app_key, &self.app_secret, &self.tag).await;
        let mut recorded = 3;
        for (file, body, status) in &self.cases {
            let response = stack.post_webhook(body.clone(), "").await;
            assert_eq!(response.status().as_u16(), *status, "{file}");
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if answer["status"] == "recorded" {
                recorded += 1;
            }
        }
        stack.wait_applied(recorded).await;
    }
}

/// A `ClienteFornecedor.*` webhook of `record`, by an Omie user named `author`.
pub fn webhook(app_key: &str, topic: &str, record: &Value, author: &str) -> Vec<u8> {
    let body = json!({
        "messageId": Uuid::new_v4(),
        "topic": topic,
        "event": record,
        "author": {"email": format!("{}@empresa-demo.com.br", author.to_lowercase().replace(' ', ".")), "name": author, "userId": 4512},
        "appKey": app_key,
        "appHash": "empresa-demo-a1b2c3d4",
        "origin": "omie-connect-2.0",
    });
    serde_json::to_vec(&body).expect("JSON")
}
