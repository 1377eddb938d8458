//! Dead letters: log records this projector cannot decode. Each goes to the dead-letter topic
//! (the original key and bytes, the reason and origin in headers) and to the `dead_letters`
//! table, and the records after it are applied. `projector dlq list | show | redrive` lets an
//! operator look at them and, after a fix (a corrected payload, or a projector that now
//! understands the record), send one back onto the events topic, where it is applied once.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use clap::{Args, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use omie_sync_events::Envelope;
use omie_sync_platform::config::SharedConfig;
use omie_sync_platform::kafka;
use omie_sync_store::dead_letters::{self, DeadLetter};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error(
    "the dead-letter topic {topic} did not take the record at {position} ({source}); does the topic exist (DLQ_TOPIC)?"
)]
pub struct DeadLetterError {
    topic: String,
    position: String,
    source: KafkaError,
}

/// The dead-letter topic, written before the batch that dead-letters a record commits, so a
/// record is never only in the table.
#[derive(Clone)]
pub struct DeadLetterQueue {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterQueue {
    pub fn new(brokers: &str, topic: String) -> Result<DeadLetterQueue, KafkaError> {
        let producer = kafka::producer_config(brokers, DELIVERY_TIMEOUT.as_millis() as u64).create()?;
        Ok(DeadLetterQueue { producer, topic })
    }

    pub async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let partition = letter.log_partition.to_string();
        let offset = letter.log_offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "dlq-reason", value: Some(letter.reason.as_str()) })
            .insert(Header { key: "dlq-original-topic", value: Some(letter.topic.as_str()) })
            .insert(Header { key: "dlq-original-partition", value: Some(partition.as_str()) })
            .insert(Header { key: "dlq-original-offset", value: Some(offset.as_str()) });
        let empty: &[u8] = &[];
        let mut record =
            FutureRecord::to(&self.topic).payload(letter.payload.as_deref().unwrap_or(empty)).headers(headers);
        if let Some(key) = &letter.record_key {
            record = record.key(key.as_str());
        }
        self.producer.send(record, Timeout::After(DELIVERY_TIMEOUT)).await.map(|_| ()).map_err(|(source, _)| {
            DeadLetterError {
                topic: self.topic.clone(),
                position: format!("{}:{}", letter.log_partition, letter.log_offset),
                source,
            }
        })
    }

    /// Waits for in-flight dead letters before shutdown.
    pub fn flush(&self) {
        if let Err(error) = self.producer.flush(Timeout::After(DELIVERY_TIMEOUT)) {
            tracing::warn!(%error, "dead-letter producer flush incomplete at shutdown");
        }
    }
}

#[derive(Clone, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub shared: SharedConfig,
    #[command(subcommand)]
    pub action: DlqAction,
}

#[derive(Clone, Subcommand)]
pub enum DlqAction {
    /// The dead letters of the events topic, oldest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One dead letter: why it was set aside, its key and payload.
    Show {
        /// `partition:offset` of the record on the events topic.
        position: Position,
    },
    /// Send a dead letter back onto the events topic (same key), as it was or corrected.
    Redrive {
        /// `partition:offset` of the record on the events topic.
        position: Position,
        /// The corrected record (a JSON event envelope) to send instead of the original bytes.
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Send it again although it was re-driven before (it is still applied only once).
        #[arg(long)]
        force: bool,
    },
}

/// `partition:offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl std::str::FromStr for Position {
    type Err = String;

    fn from_str(text: &str) -> Result<Position, String> {
        let (partition, offset) = text.split_once(':').ok_or("expected partition:offset, e.g. 0:1234")?;
        Ok(Position {
            partition: partition.parse().map_err(|_| "the partition is a number")?,
            offset: offset.parse().map_err(|_| "the offset is a number")?,
        })
    }
}

/// Runs one `dlq` action; returns what to print.
pub async fn run(args: &DlqArgs) -> anyhow::Result<String> {
    args.shared.validate()?;
    let topic = &args.shared.events_topic;
    let mut conn =
        AsyncPgConnection::establish(&args.shared.database_url).await.context("cannot connect to DATABASE_URL")?;
    match &args.action {
        DlqAction::List { limit } => {
            let letters = dead_letters::list(&mut conn, topic, *limit).await?;
            if letters.is_empty() {
                return Ok(format!("no dead letters on {topic}\n"));
            }
            Ok(letters
                .iter()
                .map(|letter| {
                    let state = match (&letter.redriven_at, &letter.redriven_to) {
                        (Some(at), Some(to)) => format!("re-driven {} to {to}", at.to_rfc3339()),
                        _ => "waiting".to_owned(),
                    };
                    format!("{}:{}  {state}  {}\n", letter.log_partition, letter.log_offset, letter.reason)
                })
                .collect())
        }
        DlqAction::Show { position } => {
            let letter = find(&mut conn, topic, *position).await?;
            let payload = letter.payload.as_deref().unwrap_or_default();
            let shown = match serde_json::from_slice::<serde_json::Value>(payload) {
                Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
                Err(_) => match std::str::from_utf8(payload) {
                    Ok(text) => text.to_owned(),
                    Err(_) => format!("base64:{}", STANDARD.encode(payload)),
                },
            };
            Ok(format!(
                "position  {}:{}\nreason    {}\nkey       {}\nre-driven {}\npayload\n{shown}\n",
                letter.log_partition,
                letter.log_offset,
                letter.reason,
                letter.record_key.as_deref().unwrap_or("-"),
                letter.redriven_to.as_deref().unwrap_or("no"),
            ))
        }
        DlqAction::Redrive { position, payload_file, force } => {
            let letter = find(&mut conn, topic, *position).await?;
            if let (Some(to), false) = (&letter.redriven_to, force) {
                bail!(
                    "{}:{} was already re-driven to {to}; add --force to send it again",
                    position.partition,
                    position.offset
                );
            }
            let payload = match payload_file {
                Some(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
                None => letter.payload.clone().unwrap_or_default(),
            };
            let envelope = match Envelope::decode(&payload) {
                Ok(envelope) => envelope,
                Err(error) => {
                    bail!("this projector still cannot decode the record ({error}); fix it and pass --payload-file")
                }
            };
            // The tenant's key keeps the record on the tenant's partition, in its order.
            let key = envelope.tenant_id.to_string();
            if letter.record_key.as_ref().is_some_and(|original| *original != key) {
                bail!(
                    "the corrected record names tenant {key} but the original was keyed {:?}; a dead letter is re-driven to \
                     its own tenant",
                    letter.record_key.as_deref().unwrap_or_default()
                );
            }
            let producer: FutureProducer = kafka::producer_config(&args.shared.kafka_brokers, 10_000)
                .create()
                .context("cannot create the Kafka producer (check KAFKA_BROKERS)")?;
            let origin = format!("{}/{}/{}", letter.topic, letter.log_partition, letter.log_offset);
            let headers = OwnedHeaders::new().insert(Header { key: "dlq-redrive-of", value: Some(origin.as_str()) });
            let record = FutureRecord::to(topic).key(&key).payload(&payload).headers(headers);
            let delivery = producer
                .send(record, Timeout::After(DELIVERY_TIMEOUT))
                .await
                .map_err(|(error, _)| error)
                .context("the broker did not take the re-driven record")?;
            let to = format!("{}:{}", delivery.partition, delivery.offset);
            dead_letters::mark_redriven(&mut conn, &letter, Utc::now(), &to).await?;
            Ok(format!("re-driven {}:{} to {topic} {to}\n", position.partition, position.offset))
        }
    }
}

async fn find(conn: &mut AsyncPgConnection, topic: &str, position: Position) -> anyhow::Result<DeadLetter> {
    dead_letters::find(conn, topic, position.partition, position.offset).await?.with_context(|| {
        format!(
            "no dead letter at {}:{} of {topic}; `projector dlq list` shows them",
            position.partition, position.offset
        )
    })
}
