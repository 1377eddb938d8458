//! What the demo tallies while it runs, and the summary printed at the end.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::api::{Delivery, Stats};
use crate::omie::OmieReport;

/// One tenant's webhook answers.
#[derive(Debug, Default, Clone)]
pub struct Deliveries {
    pub webhooks: usize,
    /// Every answer, the 429/503 before a resend included.
    pub by_status: BTreeMap<u16, usize>,
    /// The messageIds answered 200: each is an event the projector must apply (a redelivery
    /// carries an id already here, so it adds nothing).
    pub accepted: HashSet<String>,
}

impl Deliveries {
    pub fn record(&mut self, delivery: &Delivery, message_id: Option<String>) {
        self.webhooks += 1;
        for status in delivery.throttled.iter().chain([&delivery.status]) {
            *self.by_status.entry(*status).or_default() += 1;
        }
        if delivery.status == 200 {
            self.accepted.extend(message_id);
        }
    }
}

/// The projector's numbers for one tenant: the last good stats and the last failure, if any.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    pub stats: Option<Stats>,
    pub error: Option<String>,
}

pub struct TenantReport<'a> {
    pub slug: &'a str,
    pub tag: &'a str,
    pub deliveries: &'a Deliveries,
    pub projection: &'a Projection,
}

pub struct Report<'a> {
    pub tenants: Vec<TenantReport<'a>>,
    pub caught_up: bool,
    pub manifest_matched: usize,
    pub manifest_total: usize,
    pub generated: usize,
    pub redeliveries: usize,
    pub seed: u64,
    pub stream_seconds: f64,
    pub ingress_url: &'a str,
    pub projector_url: &'a str,
    pub omie_sim_url: &'a str,
    pub omie: &'a OmieReport,
    pub token_tenant: &'a str,
    pub token: &'a str,
}

pub fn render(report: &Report<'_>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = |text: String| lines.push(text);
    line(String::new());
    line("══ Demo summary ══".into());
    line(String::new());
    line(if report.caught_up {
        "Projections (GET /api/v1/stats, caught up)".into()
    } else {
        "Projections (GET /api/v1/stats) ⚠ the projector had not caught up; numbers are partial".into()
    });
    line(format!("  {:<8} {:<9} {:>7} {:>9} {:>9} {:>9}", "tenant", "tag", "active", "inactive", "history", "events"));
    for tenant in &report.tenants {
        match &tenant.projection.stats {
            Some(stats) => line(format!(
                "  {:<8} {:<9} {:>7} {:>9} {:>9} {:>9}",
                tenant.slug,
                tenant.tag,
                stats.users.active,
                stats.users.inactive,
                stats.history_rows,
                stats.events_applied
            )),
            None => line(format!("  {:<8} {:<9} unavailable", tenant.slug, tenant.tag)),
        }
        if let Some(error) = &tenant.projection.error {
            line(format!("  {:<8} last stats error: {error}", ""));
        }
    }
    line(String::new());
    line("Import errors by kind".into());
    for tenant in &report.tenants {
        let kinds = match &tenant.projection.stats {
            None => "unavailable".to_owned(),
            Some(stats) if stats.errors.is_empty() => "none".to_owned(),
            Some(stats) => errors_by_kind(stats),
        };
        line(format!("  {:<8} {kinds}", tenant.slug));
    }
    line(String::new());
    omie_section(report).into_iter().for_each(&mut line);
    line(String::new());
    status_table(&report.tenants).into_iter().for_each(&mut line);
    line(String::new());
    line(format!(
        "Generated stream: {} webhooks ({} redeliveries) from seed {}, delivered in {:.1} s",
        report.generated, report.redeliveries, report.seed, report.stream_seconds
    ));
    let mark = if report.manifest_matched == report.manifest_total { "✓" } else { "✗" };
    line(format!("Manifest cases matched: {}/{} {mark}", report.manifest_matched, report.manifest_total));
    line(String::new());
    line("Try it".into());
    line(format!("  ingress    {}  (metrics: {}/metrics)", report.ingress_url, report.ingress_url));
    line(format!("  projector  {}  (metrics: {}/metrics)", report.projector_url, report.projector_url));
    line(format!(
        "  omie-sim   {}  (POST /control/changes {{\"count\": 10}} sends more live changes)",
        report.omie_sim_url
    ));
    line(format!("  # admin token of {}, valid 12 h", report.token_tenant));
    line(format!("  export TOKEN='{}'", report.token));
    line(format!("  curl -H \"Authorization: Bearer $TOKEN\" {}/api/v1/users", report.projector_url));
    lines.join("\n") + "\n"
}

/// The first tenant's connection test, full sync and omie-sim's live changes.
fn omie_section(report: &Report<'_>) -> Vec<String> {
    let omie = report.omie;
    let run = &omie.sync;
    let number = |key: &str| run[key].as_i64().unwrap_or(0);
    let first = report.tenants.first().map_or("", |tenant| tenant.slug);
    vec![
        format!("Omie ({first}, from omie-sim)"),
        format!("  test connection  {}", omie.connection),
        format!(
            "  full sync        {} in {:.1} s: {} pages, {} rows → {} users created, {} updated, {} deactivated, {} records failed",
            run["status"].as_str().unwrap_or("not run"),
            omie.sync_seconds,
            number("pages_done"),
            number("rows_seen"),
            number("users_created"),
            number("users_updated"),
            number("users_deactivated"),
            number("records_failed"),
        ),
        format!(
            "  live changes     {} made by omie-sim, {} webhooks delivered by its sender (ping included), {} dead letters",
            omie.live_changes, omie.delivered, omie.dead_letters
        ),
    ]
}

/// `invalid_email 12 open, 3 resolved · missing_email 4 open`.
fn errors_by_kind(stats: &Stats) -> String {
    let mut kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for error in &stats.errors {
        kinds.entry(&error.kind).or_default().push(format!("{} {}", error.count, error.status));
    }
    kinds.into_iter().map(|(kind, counts)| format!("{kind} {}", counts.join(", "))).collect::<Vec<_>>().join(" · ")
}

/// Answers by HTTP status, one column per status seen, per tenant and in total.
fn status_table(tenants: &[TenantReport<'_>]) -> Vec<String> {
    let statuses: BTreeSet<u16> =
        tenants.iter().flat_map(|tenant| tenant.deliveries.by_status.keys().copied()).collect();
    let row = |name: &str, webhooks: usize, counts: &BTreeMap<u16, usize>| {
        let cells: String =
            statuses.iter().map(|status| format!(" {:>6}", counts.get(status).copied().unwrap_or(0))).collect();
        format!("  {name:<8} {webhooks:>8}{cells}")
    };
    let header: String = statuses.iter().map(|status| format!(" {status:>6}")).collect();
    let mut table = vec![
        "Webhooks answered by HTTP status (429/503 counted before the resend)".to_owned(),
        format!("  {:<8} {:>8}{header}", "tenant", "webhooks"),
    ];
    let mut totals: BTreeMap<u16, usize> = BTreeMap::new();
    for tenant in tenants {
        for (status, count) in &tenant.deliveries.by_status {
            *totals.entry(*status).or_default() += count;
        }
        table.push(row(tenant.slug, tenant.deliveries.webhooks, &tenant.deliveries.by_status));
    }
    table.push(row("total", tenants.iter().map(|tenant| tenant.deliveries.webhooks).sum(), &totals));
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ErrorCount, UserCounts};

    fn deliveries(answers: &[(u16, &[u16])]) -> Deliveries {
        let mut tally = Deliveries::default();
        for (index, (status, throttled)) in answers.iter().enumerate() {
            let delivery = Delivery { throttled: throttled.to_vec(), status: *status, problem: None };
            tally.record(&delivery, Some(format!("m{}", index % 3)));
        }
        tally
    }

    #[test]
    fn the_tally_counts_every_answer_and_distinct_accepted_ids() {
        let tally = deliveries(&[(200, &[429, 429]), (200, &[]), (401, &[]), (200, &[503]), (200, &[])]);
        assert_eq!(tally.webhooks, 5);
        assert_eq!(tally.by_status, BTreeMap::from([(200, 4), (401, 1), (429, 2), (503, 1)]));
        // m0, m1 accepted; m2 got 401; m0 again (index 3) and m1 again (index 4) add nothing.
        assert_eq!(tally.accepted.len(), 2);
    }

    #[test]
    fn the_summary_shows_projections_statuses_and_the_token() {
        let aurora = deliveries(&[(200, &[]), (200, &[429]), (401, &[]), (400, &[])]);
        let boreal = deliveries(&[(200, &[])]);
        let stats = Stats {
            users: UserCounts { active: 7, inactive: 2 },
            errors: vec![
                ErrorCount { kind: "invalid_email".into(), status: "open".into(), count: 3 },
                ErrorCount { kind: "invalid_email".into(), status: "resolved".into(), count: 1 },
                ErrorCount { kind: "missing_email".into(), status: "open".into(), count: 2 },
            ],
            history_rows: 40,
            events_applied: 21,
        };
        let with_stats = Projection { stats: Some(stats), error: None };
        let without = Projection { stats: None, error: Some("connection refused".into()) };
        let omie = OmieReport {
            connection: "ok (Omie accepted the App Key and App Secret)".into(),
            sync: serde_json::json!({"status": "completed", "pages_done": 10, "rows_seen": 5000, "users_created": 4100,
                "users_updated": 0, "users_deactivated": 0, "records_failed": 400}),
            sync_seconds: 4.2,
            live_changes: 300,
            delivered: 301,
            dead_letters: 0,
        };
        let report = Report {
            tenants: vec![
                TenantReport { slug: "aurora", tag: "Espresso", deliveries: &aurora, projection: &with_stats },
                TenantReport { slug: "boreal", tag: "Espresso", deliveries: &boreal, projection: &without },
            ],
            caught_up: false,
            manifest_matched: 17,
            manifest_total: 18,
            generated: 5,
            redeliveries: 1,
            seed: 42,
            stream_seconds: 1.25,
            ingress_url: "http://127.0.0.1:8080",
            projector_url: "http://127.0.0.1:8081",
            omie_sim_url: "http://127.0.0.1:8090",
            omie: &omie,
            token_tenant: "aurora",
            token: "eyJ.x.y",
        };
        let text = render(&report);
        assert!(text.contains("had not caught up"), "{text}");
        assert!(text.contains("invalid_email 3 open, 1 resolved · missing_email 2 open"), "{text}");
        assert!(text.contains("boreal   Espresso  unavailable"), "{text}");
        assert!(text.contains("  boreal   unavailable\n"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("tenant   webhooks    200    400    401    429"), "{text}");
        assert!(text.contains("total           5      3      1      1      1"), "{text}");
        assert!(text.contains("Manifest cases matched: 17/18 ✗"), "{text}");
        assert!(
            text.contains("full sync        completed in 4.2 s: 10 pages, 5000 rows → 4100 users created"),
            "{text}"
        );
        assert!(text.contains("live changes     300 made by omie-sim, 301 webhooks delivered"), "{text}");
        assert!(text.contains("curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8081/api/v1/users"), "{text}");
    }
}
