//! Deterministic synthetic event streams, produced straight to the log: duplicates, redeliveries,
//! deletes, tag flips, inactive flips, e-mail collisions, stale sync rows, config changes and
//! archive commands.

use chrono::{DateTime, Duration, Utc};
use omie_sync_events::envelope::SCHEMA_VERSION;
use omie_sync_events::{
    Actor, ActorKind, ClientDeleted, ClientUpserted, CredentialsSet, Envelope, ErrorArchived, Event, RecordSource,
    TagSet, WebhookMeta, ids,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use uuid::Uuid;

pub fn tenant(index: usize) -> Uuid {
    Uuid::from_u128(0xA000 + index as u128)
}

/// `events_per_tenant` record events for each of `tenants`, after each tenant's configuration.
pub fn synthetic(seed: u64, tenants: usize, events_per_tenant: usize) -> Vec<Envelope> {
    let mut rng = StdRng::seed_from_u64(seed);
    let base: DateTime<Utc> = DateTime::from_timestamp(1_780_000_000, 0).expect("valid timestamp");
    let mut per_tenant: Vec<Vec<Envelope>> = Vec::new();
    let mut clock = 0i64;
    for t in 0..tenants {
        let tenant_id = tenant(t);
        let mut stream = Vec::new();
        let next = |event: Event, subject: Option<i64>, rng: &mut StdRng, clock: &mut i64| {
            *clock += 1;
            let at = base + Duration::seconds(*clock);
            let id = Uuid::from_u128(rng.random());
            envelope(tenant_id, id, at, event, subject)
        };
        stream.push(next(
            Event::CredentialsSet(CredentialsSet {
                app_key: format!("70000000000{t}"),
                app_secret_sealed: "v1.test".into(),
            }),
            None,
            &mut rng,
            &mut clock,
        ));
        stream.push(next(Event::TagSet(TagSet { tag: "Espresso".into() }), None, &mut rng, &mut clock));
        let codes = (events_per_tenant / 4).max(4) as i64;
        for _ in 0..events_per_tenant {
            let roll: f64 = rng.random();
            if roll < 0.08 && !stream.is_empty() {
                let again = stream[rng.random_range(0..stream.len())].clone();
                stream.push(again);
                continue;
            }
            let code = rng.random_range(1..=codes);
            let event = if roll < 0.15 {
                Event::ClientDeleted(ClientDeleted {
                    record: json!({"codigo_cliente_omie": code}),
                    webhook: meta("ClienteFornecedor.Excluido"),
                })
            } else if roll < 0.18 {
                Event::TagSet(TagSet { tag: if rng.random_bool(0.8) { "Espresso" } else { "Viagem" }.into() })
            } else if roll < 0.22 {
                let kind =
                    ["missing_name", "missing_email", "invalid_email", "duplicate_email"][rng.random_range(0..4)];
                Event::ErrorArchived(ErrorArchived {
                    error_id: ids::record_error_id(tenant_id, code, kind),
                    reason: rng.random_bool(0.5).then(|| "arquivado no teste".to_owned()),
                })
            } else {
                let stale = rng.random_bool(0.05);
                Event::ClientUpserted(ClientUpserted {
                    source: if stale { RecordSource::Sync } else { RecordSource::Webhook },
                    record: record(&mut rng, code, codes, stale.then_some(base)),
                    webhook: (!stale).then(|| meta("ClienteFornecedor.Alterado")),
                })
            };
            let subject = match &event {
                Event::TagSet(_) | Event::ErrorArchived(_) => None,
                _ => Some(code),
            };
            stream.push(next(event, subject, &mut rng, &mut clock));
        }
        per_tenant.push(stream);
    }
    let longest = per_tenant.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| per_tenant.iter().filter_map(move |stream| stream.get(i).cloned())).collect()
}

fn meta(topic: &str) -> WebhookMeta {
    WebhookMeta {
        message_id: Some(Uuid::nil().to_string()),
        topic: topic.into(),
        author: None,
        app_hash: None,
        origin: None,
    }
}

fn record(rng: &mut StdRng, code: i64, codes: i64, stale_before: Option<DateTime<Utc>>) -> Value {
    let tag = match rng.random_range(0..10) {
        0 | 1 => "Cliente",
        2 => "ESPRESSO",
        3 => " espresso ",
        _ => "Espresso",
    };
    let email = match rng.random_range(0..20) {
        0 => String::new(),
        1 => format!("contato{code}@@quebrado"),
        2 => format!("Pessoa{}@Empresa.com.br", rng.random_range(0..codes / 2 + 1)),
        _ => format!("pessoa{code}@empresa.com.br"),
    };
    let name = if rng.random_range(0..50) == 0 { String::new() } else { format!("Empresa {code} Ltda") };
    let mut record = json!({
        "codigo_cliente_omie": code,
        "razao_social": name,
        "email": email,
        "cnpj_cpf": format!("12.300.{:03}/0001-00", code % 1000),
        "inativo": if rng.random_range(0..10) == 0 { "S" } else { "N" },
        "tags": [{"tag": tag}],
    });
    if let Some(before) = stale_before {
        let brasilia = before - Duration::hours(3) - Duration::days(1);
        record["info"] =
            json!({"dAlt": brasilia.format("%d/%m/%Y").to_string(), "hAlt": brasilia.format("%H:%M:%S").to_string()});
    }
    record
}

/// An envelope of `event` for `tenant_id`, recorded by the system at `at`.
pub fn envelope(tenant_id: Uuid, id: Uuid, at: DateTime<Utc>, event: Event, subject: Option<i64>) -> Envelope {
    Envelope {
        id,
        schema_version: SCHEMA_VERSION,
        tenant_id,
        integration_id: ids::integration_id(tenant_id),
        occurred_at: at,
        recorded_at: at,
        actor: Actor { kind: ActorKind::System, id: None, name: None, email: None },
        subject: subject.map(|code| code.to_string()),
        correlation_id: None,
        causation_id: None,
        event,
    }
}

/// Produces `envelopes` in order (keyed by tenant) and waits for every acknowledgement.
pub async fn produce(brokers: &str, topic: &str, envelopes: &[Envelope]) {
    let producer: FutureProducer =
        omie_sync_platform::kafka::producer_config(brokers, 30_000).create().expect("producer");
    let mut deliveries = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let key = envelope.tenant_id.to_string();
        let payload = envelope.encode();
        let record = FutureRecord::to(topic).key(&key).payload(&payload);
        deliveries.push(producer.send_result(record).map_err(|(error, _)| error).expect("record queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("delivery reported").map_err(|(error, _)| error).expect("record acknowledged");
    }
}
