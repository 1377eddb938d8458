//! `devstack demo`: configures three tenants; connects the first to omie-sim, imports its
//! company with a full sync and replays the fixture manifest against it; streams generated
//! webhooks to the other two while omie-sim's sender delivers live changes of the first; waits
//! for the projector and prints the summary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use futures::future::join_all;
use omie_sim::generator::{self, CompanySpec, Webhook};
use omie_sync_platform::auth::JwtKeys;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::api::{Api, Delivery};
use crate::manifest::{self, Case};
use crate::omie::{self, OmieReport};
use crate::summary::{self, Deliveries, Projection, Report, TenantReport};
use crate::tenants::{self, Tenant};
use crate::token;

/// How long the first webhook of a tenant may get 401 while the ingress's app-key registry
/// (refreshed every ~1 s from the projector's read model) catches up with the credentials.
const KEY_PROPAGATION: Duration = Duration::from_secs(15);
/// The projector counts as caught up once `events_applied` is unchanged for this long.
const SETTLE: Duration = Duration::from_secs(2);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base URL of the ingress (webhooks and admin commands).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub ingress_url: String,
    /// Base URL of the projector (reads).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub projector_url: String,
    /// The directory holding `manifest.json`; case files are relative to its parent.
    #[arg(long, default_value = "tests/fixtures/omie/webhooks")]
    pub fixtures: PathBuf,
    /// Base URL of omie-sim, the stand-in for Omie the first tenant syncs from.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub omie_sim_url: String,
    /// Changes omie-sim makes to the first tenant's company after the sync, each a webhook.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub live_changes: u32,
    /// Generated webhooks across the second and third tenants, redeliveries included.
    #[arg(long, default_value_t = 2400, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub events: u32,
    /// Seeds the generated stream: the same seed sends the same bodies and messageIds.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs the demo; `Ok(false)` when a manifest case got an unexpected answer.
pub async fn run(args: &DemoArgs, keys: &JwtKeys) -> Result<bool> {
    let ingress_url = args.ingress_url.trim_end_matches('/');
    let projector_url = args.projector_url.trim_end_matches('/');
    let manifest = manifest::load(&args.fixtures)?;
    let tenants = tenants::demo_tenants(&manifest);
    let api = Api::new(ingress_url, projector_url)?;
    let tokens = tenants
        .iter()
        .map(|tenant| token::admin(keys, tenant.id, "devstack-demo", "devstack demo"))
        .collect::<Result<Vec<_>>>()?;

    println!("Configuring {} tenants through the ingress admin API…", tenants.len());
    for (tenant, token) in tenants.iter().zip(&tokens) {
        configure(&api, tenant, token).await?;
    }

    let omie_sim_url = args.omie_sim_url.trim_end_matches('/');
    let mut omie = OmieReport::default();
    println!();
    println!("Connecting {} to Omie (omie-sim at {omie_sim_url}) and importing its company…", tenants[0].slug);
    omie::connect_and_sync(&api, &tokens[0], &mut omie).await?;

    let mut tallies = vec![Deliveries::default(); tenants.len()];
    println!();
    println!("Replaying {} fixture webhooks against {}…", manifest.cases.len(), tenants[0].slug);
    let matched = replay_manifest(&api, &manifest.cases, &mut tallies[0]).await?;

    let streamed = &tenants[1..];
    let streams = generate(streamed, args.events as usize, args.seed);
    let generated: usize = streams.iter().map(Vec::len).sum();
    let redeliveries = streams.iter().flatten().filter(|webhook| webhook.redelivery).count();
    println!();
    println!(
        "Streaming {generated} generated webhooks ({redeliveries} redeliveries) to {} while omie-sim sends {} \
         live changes of {}'s company…",
        streamed.iter().map(|tenant| tenant.slug).collect::<Vec<_>>().join(" and "),
        args.live_changes,
        tenants[0].slug
    );
    let started = Instant::now();
    let tasks: Vec<_> = streamed
        .iter()
        .zip(streams)
        .zip(tallies.split_off(1))
        .map(|((tenant, stream), tally)| tokio::spawn(stream_tenant(api.clone(), tenant.slug, stream, tally)))
        .collect();
    let (streamed_tallies, live) =
        tokio::join!(join_all(tasks), omie::live_changes(&api, omie_sim_url, args.live_changes as usize, &mut omie));
    for task in streamed_tallies {
        tallies.push(task.context("a delivery task panicked")??);
    }
    live?;
    let stream_seconds = started.elapsed().as_secs_f64();

    let mut expected: Vec<usize> = tallies.iter().map(|tally| tally.accepted.len()).collect();
    expected[0] += omie.live_changes.saturating_sub(omie.dead_letters);
    println!();
    println!("Waiting for the projector to apply at least {} events…", expected.iter().sum::<usize>());
    let (projections, caught_up) = wait_for_projector(&api, &tenants, &tokens, &expected).await;

    let token = token::admin(keys, tenants[0].id, "dev-admin", "Dev Admin")?;
    let token_tenant = format!("{} ({})", tenants[0].slug, tenants[0].id);
    let report = Report {
        tenants: tenants
            .iter()
            .zip(&tallies)
            .zip(&projections)
            .map(|((tenant, deliveries), projection)| TenantReport {
                slug: tenant.slug,
                tag: &tenant.tag,
                deliveries,
                projection,
            })
            .collect(),
        caught_up,
        manifest_matched: matched,
        manifest_total: manifest.cases.len(),
        generated,
        redeliveries,
        seed: args.seed,
        stream_seconds,
        ingress_url,
        projector_url,
        omie_sim_url,
        omie: &omie,
        token_tenant: &token_tenant,
        token: &token,
    };
    print!("{}", summary::render(&report));
    Ok(matched == manifest.cases.len())
}

/// Credentials, tag and template: the three commands that make a tenant's integration live.
async fn configure(api: &Api, tenant: &Tenant, token: &str) -> Result<()> {
    let commands = [
        ("/api/v1/integrations/omie/credentials", json!({"app_key": tenant.app_key, "app_secret": tenant.app_secret})),
        ("/api/v1/integrations/omie/tag", json!({"tag": tenant.tag})),
        ("/api/v1/integrations/omie/template", json!({"template": "users"})),
    ];
    for (path, body) in &commands {
        api.command(token, path, body)
            .await
            .with_context(|| format!("tenant {} ({}) could not be configured", tenant.slug, tenant.id))?;
    }
    println!("  ✓ {:<8} app key {}  tag {}  template users", tenant.slug, tenant.app_key, tenant.tag);
    Ok(())
}

/// Posts every case in order and prints one line each; returns how many got the expected status.
async fn replay_manifest(api: &Api, cases: &[Case], tally: &mut Deliveries) -> Result<usize> {
    let mut matched = 0;
    for (index, case) in cases.iter().enumerate() {
        let delivery =
            if index == 0 { deliver_once_key_known(api, &case.body).await? } else { api.deliver(&case.body).await? };
        tally.record(&delivery, case.message_id.clone());
        if index == 0 && delivery.status == 401 && case.expected_status != 401 {
            println!(
                "  the ingress still does not know the app key after {} s: the projector applies \
                 the credentials to the read model the ingress refreshes from; is it running?",
                KEY_PROPAGATION.as_secs()
            );
        }
        if delivery.status == case.expected_status {
            matched += 1;
            println!("  ✓ {} {} {}", case.name, delivery.status, case.outcome);
        } else {
            let problem = delivery.problem.as_deref().map(|problem| format!(": {problem}")).unwrap_or_default();
            println!(
                "  ✗ {} {} {}, expected {}{problem}",
                case.name, delivery.status, case.outcome, case.expected_status
            );
        }
    }
    Ok(matched)
}

/// Sends the first webhook of a tenant, retrying 401s until the ingress knows the app key.
/// Only the last answer counts: the refusals are the registry's lag, not the webhook's fault.
async fn deliver_once_key_known(api: &Api, body: &[u8]) -> Result<Delivery> {
    let deadline = Instant::now() + KEY_PROPAGATION;
    loop {
        let delivery = api.deliver(body).await?;
        if delivery.status != 401 || Instant::now() >= deadline {
            return Ok(delivery);
        }
        sleep(Duration::from_millis(250)).await;
    }
}

/// Splits `events` over the tenants; each tenant's stream has its own rng drawn from the seed.
fn generate(tenants: &[Tenant], events: usize, seed: u64) -> Vec<Vec<Webhook>> {
    let mut seeds = StdRng::seed_from_u64(seed);
    tenants
        .iter()
        .enumerate()
        .map(|(index, tenant)| {
            let count = events / tenants.len() + usize::from(index < events % tenants.len());
            let spec = CompanySpec { slug: tenant.slug, app_key: &tenant.app_key, tag: &tenant.tag };
            generator::webhook_stream(&spec, count, seeds.random())
        })
        .collect()
}

/// Delivers one tenant's stream in order, one webhook at a time, as Omie does per endpoint.
/// The first webhook rides out the ingress's registry lag.
async fn stream_tenant(
    api: Api,
    slug: &'static str,
    stream: Vec<Webhook>,
    mut tally: Deliveries,
) -> Result<Deliveries> {
    let started = Instant::now();
    for (index, webhook) in stream.iter().enumerate() {
        let delivery = if index == 0 {
            deliver_once_key_known(&api, &webhook.body).await
        } else {
            api.deliver(&webhook.body).await
        }
        .with_context(|| format!("delivering {slug}'s stream"))?;
        tally.record(&delivery, Some(webhook.message_id.to_string()));
    }
    println!("  {slug:<8} {} webhooks in {:.1} s", stream.len(), started.elapsed().as_secs_f64());
    Ok(tally)
}

/// Polls each tenant's stats until every `events_applied` reached its expected floor and held
/// still for `SETTLE`, or `CATCH_UP_TIMEOUT` passed. Returns the last numbers and whether the
/// projector caught up.
async fn wait_for_projector(
    api: &Api,
    tenants: &[Tenant],
    tokens: &[String],
    expected: &[usize],
) -> (Vec<Projection>, bool) {
    let started = Instant::now();
    let mut projections = vec![Projection::default(); tokens.len()];
    let mut changed_at = vec![started; tokens.len()];
    let mut last_progress = started;
    loop {
        let polls = join_all(tokens.iter().map(|token| api.stats(token))).await;
        let now = Instant::now();
        for ((projection, changed), poll) in projections.iter_mut().zip(&mut changed_at).zip(polls) {
            match poll {
                Ok(stats) => {
                    if projection.stats.as_ref().map(|known| known.events_applied) != Some(stats.events_applied) {
                        *changed = now;
                    }
                    *projection = Projection { stats: Some(stats), error: None };
                }
                Err(error) => projection.error = Some(format!("{error:#}")),
            }
        }
        let settled = projections.iter().zip(&changed_at).zip(expected).all(|((projection, changed), floor)| {
            projection.error.is_none()
                && projection.stats.as_ref().is_some_and(|stats| stats.events_applied >= *floor as i64)
                && now.duration_since(*changed) >= SETTLE
        });
        if settled {
            println!("  caught up in {:.1} s", started.elapsed().as_secs_f64());
            return (projections, true);
        }
        if now.duration_since(started) >= CATCH_UP_TIMEOUT {
            println!(
                "  ⚠ the projector did not catch up within {} s: {}",
                CATCH_UP_TIMEOUT.as_secs(),
                progress(tenants, &projections, expected)
            );
            return (projections, false);
        }
        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            println!("  still applying: {}", progress(tenants, &projections, expected));
            last_progress = now;
        }
        sleep(POLL_EVERY).await;
    }
}

/// `aurora 700/851 · boreal 800/800 · cerrado unavailable (…)`.
fn progress(tenants: &[Tenant], projections: &[Projection], expected: &[usize]) -> String {
    tenants
        .iter()
        .zip(projections)
        .zip(expected)
        .map(|((tenant, projection), floor)| match (&projection.stats, &projection.error) {
            (_, Some(error)) => format!("{} unavailable ({error})", tenant.slug),
            (Some(stats), None) => format!("{} {}/{floor}", tenant.slug, stats.events_applied),
            (None, None) => format!("{} no answer yet", tenant.slug),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
