//! The fixture manifest (`<fixtures>/manifest.json`): the demo tenant's credentials and the
//! webhooks to replay against it, each with the HTTP answer it must get.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct ManifestFile {
    app_key: String,
    app_secret: String,
    tag: String,
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    /// Relative to the parent of the fixtures directory (`webhooks/01-….json`).
    file: String,
    expect: Expectation,
}

#[derive(Debug, Deserialize)]
struct Expectation {
    http: u16,
    #[serde(default)]
    outcome: Option<String>,
}

#[derive(Debug)]
pub struct Manifest {
    pub app_key: String,
    pub app_secret: String,
    pub tag: String,
    pub cases: Vec<Case>,
}

#[derive(Debug)]
pub struct Case {
    /// The file name, for the report.
    pub name: String,
    pub expected_status: u16,
    /// What the projector should make of it; shown next to the status, not checked here.
    pub outcome: String,
    /// The raw bytes to post, whatever they are (one case is deliberately not JSON).
    pub body: Vec<u8>,
    pub message_id: Option<String>,
}

/// Reads the manifest and every case file, so a missing file fails before anything is sent.
pub fn load(fixtures: &Path) -> Result<Manifest> {
    let path = fixtures.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: ManifestFile =
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid manifest", path.display()))?;
    let base = fixtures.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let cases = manifest
        .cases
        .into_iter()
        .map(|case| {
            let path = base.join(&case.file);
            let body =
                std::fs::read(&path).with_context(|| format!("cannot read the manifest case {}", path.display()))?;
            Ok(Case {
                name: path.file_name().map_or_else(|| case.file.clone(), |name| name.to_string_lossy().into_owned()),
                expected_status: case.expect.http,
                outcome: case.expect.outcome.unwrap_or_else(|| "-".into()),
                message_id: message_id_of(&body),
                body,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Manifest { app_key: manifest.app_key, app_secret: manifest.app_secret, tag: manifest.tag, cases })
}

/// The `messageId` a body carries, if it is a JSON object with one (a ping has none).
fn message_id_of(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("messageId")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_read_only_from_json_objects() {
        assert_eq!(message_id_of(br#"{"messageId": "abc", "topic": "x"}"#).as_deref(), Some("abc"));
        assert_eq!(message_id_of(br#"{"ping": "omie"}"#), None);
        assert_eq!(message_id_of(b"messageId=abc&topic=x"), None);
        assert_eq!(message_id_of(br#"{"messageId": 7}"#), None);
    }

    #[test]
    fn loads_the_repository_fixtures() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/omie/webhooks");
        let manifest = load(&fixtures).expect("the repository's manifest loads");
        assert_eq!(manifest.app_key.len(), 13);
        assert!(!manifest.cases.is_empty());
        for case in &manifest.cases {
            assert!(!case.body.is_empty(), "{}", case.name);
            assert!(!case.name.contains('/'), "{}", case.name);
        }
    }
}
