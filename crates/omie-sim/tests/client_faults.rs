//! The Omie client against omie-sim for every fault of OMIE.md's table, asserting the behaviour
//! Omie prescribes: retry or not, the stated wait honoured, no call during a block.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use omie_client::{Credentials, ListarClientes, OmieClient, OmieError, Settings};
use omie_sim::{Company, Faults, Simulator};
use secrecy::SecretString;
use serde_json::json;

const APP_KEY: &str = "3188245610231";
const APP_SECRET: &str = "omie-sim-secret-aurora";

fn company(records: i64) -> Company {
    let records: BTreeMap<i64, serde_json::Value> = (1..=records)
        .map(|code| (code, json!({"codigo_cliente_omie": code, "razao_social": format!("Empresa {code}"), "tags": [{"tag": "Espresso"}]})))
        .collect();
    Company { app_key: APP_KEY.into(), app_secret: APP_SECRET.into(), records }
}

fn start(records: i64) -> (Simulator, Settings) {
    let simulator = Simulator::new(company(records), 7);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("bound address");
    tokio::spawn(simulator.clone().serve(listener).expect("serve"));
    let mut settings = Settings::new(format!("http://{address}"));
    settings.already_running_pause = Duration::from_millis(100);
    settings.too_many_requests_pause = Duration::from_millis(50);
    (simulator, settings)
}

fn credentials(secret: &str) -> Credentials {
    Credentials { app_key: APP_KEY.into(), app_secret: SecretString::from(secret) }
}

fn calls(simulator: &Simulator, method: &str) -> u64 {
    simulator.calls().get(method).copied().unwrap_or_default()
}

#[tokio::test]
async fn right_keys_page_through_and_wrong_keys_fail_without_retry() {
    let (simulator, settings) = start(1_200);
    let client = OmieClient::new(settings).unwrap();
    let first = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 500)).await.unwrap();
    assert_eq!((first.total_de_paginas, first.total_de_registros, first.clientes_cadastro.len()), (3, 1_200, 500));
    let last = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(3, 500)).await.unwrap();
    assert_eq!(last.clientes_cadastro.len(), 200);
    let past_the_end = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(4, 500)).await.unwrap();
    assert!(past_the_end.clientes_cadastro.is_empty(), "Client-5113 is an empty page, not a failure");

    let one_off = &APP_SECRET[..APP_SECRET.len() - 1];
    let before = calls(&simulator, "ListarClientes");
    let refused = client.listar_clientes(&credentials(one_off), &ListarClientes::page(1, 1)).await;
    assert!(matches!(refused, Err(OmieError::InvalidCredentials(_))), "{refused:?}");
    assert_eq!(calls(&simulator, "ListarClientes"), before + 1, "bad credentials are never retried");
}

#[tokio::test]
async fn a_filter_reaches_omie_under_its_own_name() {
    let (_simulator, settings) = start(30);
    let client = OmieClient::new(settings).unwrap();
    let params =
        ListarClientes { clientes_filtro: Some(json!({"codigo_cliente_omie": 7})), ..ListarClientes::page(1, 50) };
    let page = client.listar_clientes(&credentials(APP_SECRET), &params).await.unwrap();
    let codes: Vec<_> = page.clientes_cadastro.iter().map(|record| record["codigo_cliente_omie"].clone()).collect();
    assert_eq!(codes, [json!(7)], "clientesFiltro narrows the listing");
}

#[tokio::test]
async fn a_redundant_call_waits_the_stated_time_and_retries_once() {
    let (simulator, settings) = start(10);
    simulator.set_faults(Faults { redundant_window_secs: Some(1), ..Faults::default() });
    let client = OmieClient::new(settings).unwrap();
    let params = ListarClientes::page(1, 5);
    client.listar_clientes(&credentials(APP_SECRET), &params).await.unwrap();
    let started = Instant::now();
    let page = client.listar_clientes(&credentials(APP_SECRET), &params).await.unwrap();
    assert_eq!(page.clientes_cadastro.len(), 5);
    assert!(started.elapsed() >= Duration::from_secs(1), "the stated wait is honoured");
    assert_eq!(calls(&simulator, "ListarClientes"), 3, "first call, the redundant one, one retry");
}

#[tokio::test]
async fn a_misuse_block_stops_every_call_until_it_ends() {
    let (simulator, settings) = start(10);
    simulator.set_faults(Faults { block_seconds: Some(600), ..Faults::default() });
    let client = OmieClient::new(settings).unwrap();
    let blocked = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 5)).await;
    assert!(
        matches!(blocked, Err(OmieError::Blocked(duration)) if duration >= Duration::from_secs(600)),
        "{blocked:?}"
    );
    let again = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(2, 5)).await;
    assert!(matches!(again, Err(OmieError::Blocked(_))));
    assert_eq!(calls(&simulator, "ListarClientes"), 1, "no call reaches Omie during a block (it would extend it)");
}

#[tokio::test]
async fn already_running_backs_off_and_retries() {
    let (simulator, settings) = start(10);
    simulator.set_faults(Faults { max_concurrent: Some(1), latency_ms: 300, ..Faults::default() });
    let client = OmieClient::new(settings).unwrap();
    let creds = credentials(APP_SECRET);
    let (page_one, page_two) = (ListarClientes::page(1, 5), ListarClientes::page(2, 5));
    let (first, second) =
        tokio::join!(client.listar_clientes(&creds, &page_one), client.listar_clientes(&creds, &page_two));
    assert_eq!(first.unwrap().clientes_cadastro.len(), 5);
    assert_eq!(second.unwrap().clientes_cadastro.len(), 5);
    assert!(calls(&simulator, "ListarClientes") >= 3, "one call met Client-1880 and was retried");
}

#[tokio::test]
async fn the_client_side_concurrency_limit_keeps_us_under_omies() {
    let (simulator, mut settings) = start(10);
    simulator.set_faults(Faults { max_concurrent: Some(1), latency_ms: 200, ..Faults::default() });
    settings.max_concurrent = 1;
    let client = OmieClient::new(settings).unwrap();
    let creds = credentials(APP_SECRET);
    let (page_one, page_two) = (ListarClientes::page(1, 5), ListarClientes::page(2, 5));
    let (first, second) =
        tokio::join!(client.listar_clientes(&creds, &page_one), client.listar_clientes(&creds, &page_two));
    assert!(first.is_ok() && second.is_ok());
    assert_eq!(calls(&simulator, "ListarClientes"), 2, "never two in flight, so never Client-1880");
}

#[tokio::test]
async fn too_many_requests_backs_off_a_bounded_number_of_times() {
    let (simulator, settings) = start(10);
    simulator.set_faults(Faults { per_minute_limit: Some(2), ..Faults::default() });
    let retries = u64::from(settings.max_retries);
    let client = OmieClient::new(settings).unwrap();
    for page in 1..=2 {
        client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(page, 5)).await.unwrap();
    }
    let limited = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 5)).await;
    assert_eq!(limited, Err(OmieError::TooManyRequests));
    assert_eq!(calls(&simulator, "ListarClientes"), 2 + 1 + retries, "the first 429, then the bounded retries");
}

#[tokio::test]
async fn consultar_cliente_finds_or_reports_not_found() {
    let (_simulator, settings) = start(10);
    let client = OmieClient::new(settings).unwrap();
    let record = client.consultar_cliente(&credentials(APP_SECRET), 7).await.unwrap();
    assert_eq!(record["razao_social"], "Empresa 7");
    let missing = client.consultar_cliente(&credentials(APP_SECRET), 9_999).await;
    assert!(matches!(missing, Err(OmieError::NotFound(_))), "{missing:?}");
    let summaries =
        client.listar_clientes_resumido(&credentials(APP_SECRET), &ListarClientes::page(1, 3)).await.unwrap();
    assert_eq!(summaries.iter().map(|row| row.codigo_cliente).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times_then_surface() {
    let (simulator, settings) = start(10);
    simulator.set_faults(Faults { error_rate_percent: 100, ..Faults::default() });
    let retries = u64::from(settings.max_retries);
    let client = OmieClient::new(settings.clone()).unwrap();
    let failed = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 5)).await;
    assert!(matches!(failed, Err(OmieError::Unexpected { status: 500, .. })), "{failed:?}");
    assert_eq!(calls(&simulator, "ListarClientes"), 1 + retries);
    let impatient = client.answering_at_once();
    assert!(impatient.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 5)).await.is_err());
    assert_eq!(calls(&simulator, "ListarClientes"), 2 + retries, "a handle answering at once does not retry");

    // One call in four failing: every page still comes back.
    let (simulator, settings) = start(1_200);
    simulator.set_faults(Faults { error_rate_percent: 25, ..Faults::default() });
    let client = OmieClient::new(settings).unwrap();
    for page in 1..=12 {
        let listed = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(page, 100)).await;
        assert!(listed.as_ref().is_ok_and(|listed| listed.clientes_cadastro.len() == 100), "page {page}: {listed:?}");
    }
    assert!(calls(&simulator, "ListarClientes") > 12, "some calls failed and were retried");
}

#[tokio::test]
async fn a_timeout_says_so() {
    let (simulator, mut settings) = start(1);
    simulator.set_faults(Faults { latency_ms: 1_500, ..Faults::default() });
    settings.timeout = Duration::from_secs(1);
    let client = OmieClient::new(settings).unwrap().answering_at_once();
    let failed = client.listar_clientes(&credentials(APP_SECRET), &ListarClientes::page(1, 1)).await;
    assert_eq!(failed, Err(OmieError::Transport("no answer within 1 s".into())));
}
