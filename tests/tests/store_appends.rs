//! The append-only tables are written with one array per column, outside Diesel's typed insert:
//! every field of every row must come back as written, absent values included, and a row whose id
//! is already stored is left as it was.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use omie_sync_e2e::db::TestDb;
use omie_sync_store::events::{self, EventRow};
use omie_sync_store::history::{self, HistoryEntry};
use omie_sync_store::schema;
use omie_sync_store::timeline::{self, TimelineEntry};
use serde_json::json;
use uuid::Uuid;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + seconds, 0).expect("valid timestamp")
}

fn event(n: u128, subject: Option<&str>, trace_id: Option<&str>) -> EventRow {
    EventRow {
        id: Uuid::from_u128(n),
        tenant_id: Uuid::from_u128(1_000 + n),
        event_type: format!("client.upserted.{n}"),
        subject: subject.map(str::to_owned),
        occurred_at: at(n as i64),
        recorded_at: at(n as i64 + 1),
        log_partition: n as i32,
        log_offset: 10 * n as i64,
        actor: json!({"kind": "user", "name": format!("Ana {n}")}),
        payload: json!({"record": {"codigo_cliente_omie": n, "tags": [{"tag": "Espresso"}], "ok": true}}),
        trace_id: trace_id.map(str::to_owned),
    }
}

fn timeline_entry(n: u128, detail: Option<&str>) -> TimelineEntry {
    TimelineEntry {
        id: Uuid::from_u128(n),
        tenant_id: Uuid::from_u128(1_000 + n),
        omie_code: 500 + n as i64,
        event_id: Uuid::from_u128(2_000 + n),
        event_type: "client.upserted".into(),
        verdict: format!("verdict-{n}"),
        detail: detail.map(str::to_owned),
        at: at(n as i64),
        log_partition: n as i32,
        log_offset: 7 * n as i64,
    }
}

fn history_entry(n: u128, subject: Option<&str>) -> HistoryEntry {
    HistoryEntry {
        id: Uuid::from_u128(n),
        tenant_id: Uuid::from_u128(1_000 + n),
        at: at(n as i64),
        action: format!("action-{n}"),
        actor: json!({"kind": "system"}),
        subject: subject.map(str::to_owned),
        details: json!({"n": n as u64, "nested": [1, "two", null]}),
        event_id: Uuid::from_u128(3_000 + n),
        log_offset: 3 * n as i64,
        ordinal: n as i16,
    }
}

#[tokio::test]
async fn appended_rows_come_back_field_for_field_and_a_stored_id_is_kept() {
    let db = TestDb::create();
    let mut conn = db.connect().await;

    let written = vec![event(1, Some("501"), Some("4bf92f3577b34da6a3ce929d0e0e4736")), event(2, None, None)];
    events::insert(&mut conn, &written).await.expect("insert events");
    let mut again = event(1, Some("changed"), None);
    again.payload = json!({"changed": true});
    events::insert(&mut conn, &[again, event(3, None, None)]).await.expect("insert events again");
    let stored: Vec<EventRow> = schema::events::table
        .order(schema::events::id)
        .select(EventRow::as_select())
        .load(&mut conn)
        .await
        .expect("read events");
    assert_eq!(stored, [written[0].clone(), written[1].clone(), event(3, None, None)]);

    let written = vec![timeline_entry(1, Some("sem e-mail")), timeline_entry(2, None)];
    timeline::insert(&mut conn, &written).await.expect("insert timeline");
    timeline::insert(&mut conn, &[timeline_entry(1, Some("changed"))]).await.expect("insert timeline again");
    let stored: Vec<TimelineEntry> = schema::record_timeline::table
        .order(schema::record_timeline::id)
        .select(TimelineEntry::as_select())
        .load(&mut conn)
        .await
        .expect("read timeline");
    assert_eq!(stored, written);

    let written = vec![history_entry(1, Some("501")), history_entry(2, None)];
    history::insert(&mut conn, &written).await.expect("insert history");
    history::insert(&mut conn, &[history_entry(2, Some("changed"))]).await.expect("insert history again");
    let stored: Vec<HistoryEntry> = schema::history::table
        .order(schema::history::id)
        .select(HistoryEntry::as_select())
        .load(&mut conn)
        .await
        .expect("read history");
    assert_eq!(stored, written);

    events::insert(&mut conn, &[]).await.expect("an empty batch writes nothing");
}
