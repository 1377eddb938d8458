//! The demo's Omie part, against omie-sim: test the first tenant's connection, run its full sync
//! with a live progress bar, then let omie-sim's sender deliver live changes as webhooks.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::api::Api;

const CONFIGURED_TIMEOUT: Duration = Duration::from_secs(30);
const SYNC_TIMEOUT: Duration = Duration::from_secs(600);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What the Omie part did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct OmieReport {
    /// `ok`, `invalid_credentials`, … and Omie's words.
    pub connection: String,
    /// The sync run as `GET /api/v1/syncs/{id}` last showed it.
    pub sync: Value,
    pub sync_seconds: f64,
    pub live_changes: usize,
    pub delivered: u64,
    pub dead_letters: usize,
}

/// Tests the connection and runs a full sync; the progress bar follows the sync projection.
pub async fn connect_and_sync(api: &Api, token: &str, report: &mut OmieReport) -> Result<()> {
    // The commands are in the log; the ingress reads the stored keys once the projector applied them.
    let clock = Instant::now();
    while !api.read(token, "/api/v1/integration").await?.is_some_and(|integration| integration["configured"] == true) {
        if clock.elapsed() > CONFIGURED_TIMEOUT {
            bail!(
                "the projector did not apply the credentials within {} s; is it running?",
                CONFIGURED_TIMEOUT.as_secs()
            );
        }
        sleep(POLL_EVERY).await;
    }
    let tested = api.post(token, "/api/v1/integrations/omie/test-connection", &json!({})).await?;
    let outcome = tested["outcome"].as_str().unwrap_or("unknown");
    report.connection = format!("{outcome} ({})", tested["detail"].as_str().unwrap_or_default());
    let mark = if outcome == "ok" { "✓" } else { "✗" };
    println!("  {mark} test connection: {}", report.connection);
    if outcome != "ok" {
        bail!("the connection test failed, so the sync cannot run: {}", report.connection);
    }

    let started = api.post(token, "/api/v1/integrations/omie/sync", &json!({})).await?;
    let sync_id = started["sync_id"].as_str().context("the sync command answered no sync_id")?;
    let clock = Instant::now();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("  sync [{bar:32.cyan/blue}] {pos}/{len} pages · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▉ "),
    );
    let path = format!("/api/v1/syncs/{sync_id}");
    let run = loop {
        if let Some(run) = api.read(token, &path).await? {
            bar.set_length(run["pages_total"].as_u64().unwrap_or(0));
            bar.set_position(run["pages_done"].as_u64().unwrap_or(0));
            bar.set_message(progress_message(&run));
            if run["status"] != "running" {
                break run;
            }
        }
        if clock.elapsed() > SYNC_TIMEOUT {
            bar.abandon();
            bail!("the sync {sync_id} was still running after {} s", SYNC_TIMEOUT.as_secs());
        }
        sleep(POLL_EVERY).await;
    };
    bar.finish();
    report.sync_seconds = clock.elapsed().as_secs_f64();
    // Without a terminal the bar is hidden: this line is the record of the sync.
    println!(
        "  sync {}: {} in {:.1} s",
        run["status"].as_str().unwrap_or("?"),
        progress_message(&run),
        report.sync_seconds
    );
    if run["status"] != "completed" {
        bail!("the sync ended {}: {}", run["status"], run["failure_reason"]);
    }
    report.sync = run;
    Ok(())
}

/// `5000 rows · 4210 created · 0 updated · 0 deactivated · 402 failed`.
fn progress_message(run: &Value) -> String {
    let number = |key: &str| run[key].as_i64().unwrap_or(0);
    format!(
        "{} rows · {} created · {} updated · {} deactivated · {} failed",
        number("rows_seen"),
        number("users_created"),
        number("users_updated"),
        number("users_deactivated"),
        number("records_failed")
    )
}

/// Registers the ingress's webhook URL with omie-sim, has it make `count` changes as the
/// company's users would, and waits until its sender has delivered them all (or given up).
pub async fn live_changes(api: &Api, omie_sim: &str, count: usize, report: &mut OmieReport) -> Result<()> {
    api.control(omie_sim, "/control/webhooks", &json!({"url": api.webhook_url()})).await?;
    let made = api.control(omie_sim, "/control/changes", &json!({"count": count})).await?;
    report.live_changes = made["changes"].as_array().map_or(0, Vec::len);
    let clock = Instant::now();
    loop {
        let queues = api.omie_sim_webhooks(omie_sim).await?;
        report.delivered = queues["delivered"].as_u64().unwrap_or(0);
        report.dead_letters = queues["dead_letters"].as_array().map_or(0, Vec::len);
        if queues["queued"].as_u64() == Some(0) {
            break;
        }
        if clock.elapsed() > DELIVERY_TIMEOUT {
            bail!("omie-sim still had webhooks queued after {} s: {queues}", DELIVERY_TIMEOUT.as_secs());
        }
        sleep(POLL_EVERY).await;
    }
    println!(
        "  omie-sim delivered {} live changes (and its ping) in {:.1} s, {} dead letters",
        report.live_changes,
        clock.elapsed().as_secs_f64(),
        report.dead_letters
    );
    Ok(())
}
