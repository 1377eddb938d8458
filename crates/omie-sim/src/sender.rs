//! The webhook sender: what Omie does after a change. Per endpoint one FIFO queue, delivered one
//! at a time in order; a `{"ping": "omie"}` on registration; a non-2xx answer or a timeout is
//! retried on a bounded schedule, then the webhook goes to the sender's own dead-letter list and
//! the queue moves on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

/// A webhook Omie gave up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub url: String,
    pub body: Value,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Value>,
    delivered: u64,
}

/// One registered endpoint with its queue and delivery task.
#[derive(Clone)]
pub struct Endpoint {
    url: String,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    dead_letters: Arc<Mutex<Vec<DeadLetter>>>,
}

impl Endpoint {
    /// Registers `url`, queues the ping and starts delivering.
    pub fn register(url: String, retry_schedule: Vec<Duration>, dead_letters: Arc<Mutex<Vec<DeadLetter>>>) -> Endpoint {
        let endpoint = Endpoint { url, queue: Arc::default(), wake: Arc::new(Notify::new()), dead_letters };
        endpoint.enqueue(serde_json::json!({"ping": "omie"}));
        tokio::spawn(endpoint.clone().deliver_forever(retry_schedule));
        endpoint
    }

    pub fn enqueue(&self, body: Value) {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pending.push_back(body);
        self.wake.notify_one();
    }

    /// (still queued, delivered with a 2xx)
    pub fn counts(&self) -> (usize, u64) {
        let queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (queue.pending.len(), queue.delivered)
    }

    async fn deliver_forever(self, retry_schedule: Vec<Duration>) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        loop {
            let next = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pending.front().cloned();
            let Some(body) = next else {
                self.wake.notified().await;
                continue;
            };
            let mut last_status = None;
            let mut delivered = false;
            let mut attempts = 0;
            for pause in std::iter::once(Duration::ZERO).chain(retry_schedule.iter().copied()) {
                tokio::time::sleep(pause).await;
                attempts += 1;
                match http.post(&self.url).json(&body).send().await {
                    Ok(response) if response.status().is_success() => {
                        delivered = true;
                        break;
                    }
                    Ok(response) => last_status = Some(response.status().as_u16()),
                    Err(_) => last_status = None,
                }
            }
            let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.pending.pop_front();
            if delivered {
                queue.delivered += 1;
            } else {
                let letter = DeadLetter { url: self.url.clone(), body, attempts, last_status };
                self.dead_letters.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(letter);
            }
        }
    }
}
