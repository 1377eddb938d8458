//! The committed `schemas/` must equal what the code generates.
//! Regenerate with `make schemas` (sets `UPDATE_SCHEMAS=1`).

use std::path::PathBuf;

use omie_sync_events::{Event, schema};

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

#[test]
fn committed_schemas_match_the_code() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for (name, generated) in schema::all() {
        let path = schemas_dir().join(&name);
        let rendered = schema::render(&generated);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &rendered).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(rendered.as_str()) {
            drifted.push(name);
        }
    }
    assert!(drifted.is_empty(), "schemas drifted from the code: {drifted:?}; run `make schemas`");
}

#[test]
fn every_catalog_type_has_a_schema() {
    let names: Vec<String> = schema::all().into_iter().map(|(name, _)| name).collect();
    for type_name in Event::TYPE_NAMES {
        let file = format!("events/{type_name}.schema.json");
        assert!(names.contains(&file), "no schema for {type_name}");
    }
}
