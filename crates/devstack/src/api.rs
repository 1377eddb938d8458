//! The demo's HTTP calls to both services, with the retry rules of a well-behaved client:
//! 429/503 wait for `Retry-After` and resend the same bytes; a refused connection is retried
//! briefly because `make run` may start the demo while a service is still binding its port.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::{Instant, sleep};

const WEBHOOK_PATH: &str = "/api/v1/webhooks/omie/users";
/// How long an admin command may keep failing on connection errors or 503 before the tenant
/// counts as not configurable.
const COMMAND_PATIENCE: Duration = Duration::from_secs(30);
/// Throttled or unavailable answers one webhook may get before the demo gives up on the stream.
const MAX_THROTTLED: usize = 20;
const MAX_TRANSPORT_FAILURES: usize = 5;
/// Upper bound on a `Retry-After` wait, so a misconfigured limiter cannot stall the demo.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Api {
    client: Client,
    ingress: String,
    projector: String,
}

/// The answers one webhook got: every 429/503 first, then the final status.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub throttled: Vec<u16>,
    pub status: u16,
    /// The problem detail of a 4xx/5xx final answer.
    pub problem: Option<String>,
}

/// `GET /api/v1/stats` of the projector.
#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    pub users: UserCounts,
    pub errors: Vec<ErrorCount>,
    pub history_rows: i64,
    pub events_applied: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserCounts {
    pub active: i64,
    pub inactive: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldProblem>,
}

#[derive(Debug, Deserialize)]
struct FieldProblem {
    field: String,
    message: String,
}

impl Api {
    /// `ingress` and `projector` are base URLs without a trailing slash.
    pub fn new(ingress: &str, projector: &str) -> Result<Api> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api { client, ingress: ingress.to_owned(), projector: projector.to_owned() })
    }

    /// `PUT` an admin command to the ingress; it must answer 202.
    pub async fn command(&self, token: &str, path: &str, body: &Value) -> Result<()> {
        let url = format!("{}{path}", self.ingress);
        let deadline = Instant::now() + COMMAND_PATIENCE;
        let mut warned = false;
        loop {
            let response = match self.client.put(&url).bearer_auth(token).json(body).send().await {
                Ok(response) => response,
                Err(_) if Instant::now() < deadline => {
                    if !warned {
                        eprintln!(
                            "  the ingress at {} is not reachable yet; retrying for up to {} s",
                            self.ingress,
                            COMMAND_PATIENCE.as_secs()
                        );
                        warned = true;
                    }
                    sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(error) => return Err(anyhow!(error).context(format!("PUT {url}"))),
            };
            let status = response.status();
            if status == StatusCode::ACCEPTED {
                return Ok(());
            }
            if status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
                let wait = retry_after(&response);
                sleep(wait.unwrap_or(Duration::from_secs(1))).await;
                continue;
            }
            bail!("PUT {path} answered {status}: {}", problem_text(response).await);
        }
    }

    /// Posts one webhook as Omie would, resending the same bytes on 429/503.
    pub async fn deliver(&self, body: &[u8]) -> Result<Delivery> {
        let url = self.webhook_url();
        let mut throttled = Vec::new();
        let mut transport_failures = 0;
        loop {
            let sent = self.client.post(&url).header(CONTENT_TYPE, "application/json").body(body.to_vec()).send().await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    transport_failures += 1;
                    if transport_failures >= MAX_TRANSPORT_FAILURES {
                        return Err(anyhow!(error).context(format!("POST {url} failed {transport_failures} times")));
                    }
                    sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            if matches!(status, 429 | 503) {
                if throttled.len() >= MAX_THROTTLED {
                    bail!("POST {url} answered 429/503 {MAX_THROTTLED} times in a row; is Kafka up?");
                }
                throttled.push(status);
                let header_wait = retry_after(&response);
                // Drain the body so the connection goes back to the pool.
                let bytes = response.bytes().await.unwrap_or_default();
                sleep(header_wait.or_else(|| retry_after_in_body(&bytes)).unwrap_or(Duration::from_secs(1))).await;
                continue;
            }
            let problem = if status >= 400 {
                Some(problem_text(response).await)
            } else {
                // Drain the body so the connection goes back to the pool.
                response.bytes().await.ok();
                None
            };
            return Ok(Delivery { throttled, status, problem });
        }
    }

    /// A POST command on the ingress that answers at once (test connection, sync): its JSON.
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.ingress);
        let response =
            self.client.post(&url).bearer_auth(token).json(body).send().await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("POST {path} answered {status}: {}", problem_text(response).await);
        }
        response.json().await.with_context(|| format!("POST {url} did not answer JSON"))
    }

    /// A read on the projector; `None` when it answers 404 (not projected yet).
    pub async fn read(&self, token: &str, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.projector);
        let response = self.client.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                Ok(Some(response.json().await.with_context(|| format!("GET {url} did not answer JSON"))?))
            }
            status => bail!("GET {path} answered {status}: {}", problem_text(response).await),
        }
    }

    /// omie-sim's control API: POST `body` to `path`, its JSON answer (null when empty).
    pub async fn control(&self, omie_sim: &str, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{omie_sim}{path}");
        let response = self.client.post(&url).json(body).send().await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {url} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// omie-sim's webhook queues: `{queued, delivered, dead_letters}`.
    pub async fn omie_sim_webhooks(&self, omie_sim: &str) -> Result<Value> {
        let url = format!("{omie_sim}/control/webhooks");
        let response = self.client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        response.json().await.with_context(|| format!("GET {url} did not answer JSON"))
    }

    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.ingress)
    }

    pub async fn stats(&self, token: &str) -> Result<Stats> {
        let url = format!("{}/api/v1/stats", self.projector);
        let response = self.client.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET /api/v1/stats answered {}: {}", response.status(), problem_text(response).await);
        }
        response.json().await.with_context(|| format!("GET {url} did not answer the stats shape"))
    }
}

/// `Retry-After` in seconds (the services never send the HTTP-date form).
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The services repeat the wait as `retry_after_seconds` in the problem body, for proxies that
/// drop the header.
fn retry_after_in_body(body: &[u8]) -> Option<Duration> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let seconds = value.get("retry_after_seconds")?.as_u64()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The `title: detail` of a problem+json answer (with field errors), else the raw body.
async fn problem_text(response: Response) -> String {
    let body = response.text().await.unwrap_or_default();
    describe_problem(&body)
}

fn describe_problem(body: &str) -> String {
    match serde_json::from_str::<Problem>(body) {
        Ok(problem) if !problem.detail.is_empty() || !problem.title.is_empty() => {
            let mut text = if problem.title.is_empty() {
                problem.detail
            } else {
                format!("{}: {}", problem.title, problem.detail)
            };
            for error in problem.errors {
                text.push_str(&format!("; {}: {}", error.field, error.message));
            }
            text
        }
        _ if body.trim().is_empty() => "(empty body)".to_owned(),
        _ => body.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_described_by_title_detail_and_fields() {
        let body = r#"{"type":"/problems/validation-failed","title":"The command is not valid","status":422,
            "detail":"the command is not valid","errors":[{"field":"tag","message":"1 to 100 characters"}]}"#;
        assert_eq!(
            describe_problem(body),
            "The command is not valid: the command is not valid; tag: 1 to 100 characters"
        );
        assert_eq!(describe_problem(""), "(empty body)");
        assert_eq!(describe_problem("<html>bad gateway</html>"), "<html>bad gateway</html>");
    }

    #[test]
    fn the_wait_is_read_from_the_body_and_capped() {
        assert_eq!(retry_after_in_body(br#"{"retry_after_seconds": 2}"#), Some(Duration::from_secs(2)));
        assert_eq!(retry_after_in_body(br#"{"retry_after_seconds": 3600}"#), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after_in_body(b"not json"), None);
    }
}
