//! Traces and logs, set up once per process by [`init`].
//!
//! - Logs: level from `RUST_LOG` (default `info`), JSON lines when `LOG_FORMAT=json`, human-readable
//!   otherwise. Spans that carry a `trace_id` field print it on every line logged inside them.
//! - Traces: every span at `info` or above is an OpenTelemetry span, whatever `RUST_LOG` says, so
//!   trace ids exist (and travel in Kafka headers) even when nothing is exported. They are
//!   exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the SDK reads the other standard variables
//!   (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`,
//!   `OTEL_EXPORTER_OTLP_HEADERS`, …). `OTEL_SDK_DISABLED=true` turns export off.
//! - Propagation: W3C `traceparent`/`tracestate`, over HTTP and in Kafka record headers.

use std::collections::HashMap;
use std::io::IsTerminal as _;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

const DEFAULT_LOG_FILTER: &str = "info,rdkafka=warn,actix_server=warn";

/// Finished spans waiting for export, at most (about 1 KiB each).
const SPAN_QUEUE: usize = 32_768;

/// Keeps the tracer provider alive; dropping it flushes what is still buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports every finished span now (tests, and before a process exits).
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::debug!(%error, "span flush incomplete");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Where finished spans go.
pub enum Export {
    /// OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
    /// set (and `OTEL_SDK_DISABLED` is not `true`); nowhere otherwise.
    FromEnvironment,
    /// OTLP/HTTP to this traces URL (`…/v1/traces`), whatever the environment says (tests).
    OtlpHttp(String),
}

/// Logs to stdout and traces as the environment says; `service` names the process in traces
/// unless `OTEL_SERVICE_NAME` does.
pub fn init(service: &'static str) -> Telemetry {
    let colours = std::io::stdout().is_terminal();
    setup(service, std::io::stdout, Export::FromEnvironment, colours)
}

/// [`init`] with logs written to `writer` and spans exported as `export` says (tests).
///
/// A second call in one process (tests start several apps) keeps the first subscriber.
pub fn init_with<W>(service: &'static str, writer: W, export: Export) -> Telemetry
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    setup(service, writer, export, false)
}

fn setup<W>(service: &'static str, writer: W, export: Export, colours: bool) -> Telemetry
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    global::set_text_map_propagator(TraceContextPropagator::new());
    omie_sync_store::trace_queries();
    let provider = tracer_provider(service, export);
    let tracer = provider.tracer("omie-sync");

    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt::layer().with_writer(writer).with_target(false).with_ansi(colours);
    let logs = if json { logs.json().boxed() } else { logs.boxed() };
    let traces = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(LevelFilter::INFO);
    if tracing_subscriber::registry().with(logs.with_filter(log_filter)).with(traces).try_init().is_ok() {
        global::set_tracer_provider(provider.clone());
    }
    Telemetry { provider }
}

fn tracer_provider(service: &'static str, export: Export) -> SdkTracerProvider {
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    let exporter = match export {
        Export::FromEnvironment if export_requested() => {
            opentelemetry_otlp::SpanExporter::builder().with_http().build()
        }
        Export::FromEnvironment => return builder.build(),
        Export::OtlpHttp(url) => opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(url).build(),
    };
    // A full sync produces a span per record within seconds; the SDK's default queue (2,048)
    // would drop most of them. `OTEL_BSP_MAX_QUEUE_SIZE` still decides when it is set.
    let mut batching = BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        batching = batching.with_max_queue_size(SPAN_QUEUE);
    }
    match exporter {
        Ok(exporter) => builder
            .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batching.build()).build())
            .build(),
        Err(error) => {
            eprintln!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter cannot start ({error}); not exporting traces"
            );
            builder.build()
        }
    }
}

fn export_requested() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"));
    let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
    endpoint && !disabled
}

/// The HTTP server span of every request (OpenTelemetry HTTP conventions). It continues the
/// caller's `traceparent` when there is one, puts `trace_id` on every log line of the request,
/// and has room for the Omie `messageId` a webhook carries. The path is recorded without its
/// query string: a webhook's `?token=` is a secret.
pub fn http_spans() -> TracingLogger<HttpSpan> {
    TracingLogger::new()
}

pub struct HttpSpan;

impl RootSpanBuilder for HttpSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let method = request.method().as_str().to_owned();
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = %route,
            url.path = %request.path(),
            url.scheme = %request.connection_info().scheme(),
            user_agent.original = %request.headers().get("user-agent").and_then(|agent| agent.to_str().ok()).unwrap_or(""),
            http.response.status_code = tracing::field::Empty,
            omie.message_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let caller =
            extract(request.headers().iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))));
        if caller.span().span_context().is_valid() {
            let _ = span.set_parent(caller);
        }
        record_trace_id(&span);
        span
    }

    fn on_request_end<B: MessageBody>(span: tracing::Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let status = match outcome {
            Ok(response) => {
                response.response().error().map_or(response.status(), |error| error.as_response_error().status_code())
            }
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// Fills `span`'s `trace_id` field (declared empty), so every log line inside it names its trace.
pub fn record_trace_id(span: &tracing::Span) {
    if let Some(trace_id) = trace_id(span) {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The W3C trace id of `span` (32 hex digits), for log fields and rows.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Trace context headers (`traceparent`, `tracestate`) of `span`.
pub fn inject(span: &tracing::Span) -> Vec<(String, String)> {
    let mut headers = TraceHeaders::default();
    let context = span.context();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut headers));
    headers.0.into_iter().collect()
}

/// The remote context carried by these headers (invalid when there is none).
pub fn extract<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Context {
    let headers = TraceHeaders(headers.into_iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect());
    global::get_text_map_propagator(|propagator| propagator.extract(&headers))
}

/// The trace id inside a `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
pub fn trace_id_of_traceparent(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32 && trace_id.bytes().all(|byte| byte.is_ascii_hexdigit()) && trace_id != "0".repeat(32))
        .then(|| trace_id.to_ascii_lowercase())
}

#[derive(Default)]
struct TraceHeaders(HashMap<String, String>);

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trace_id_of_a_traceparent() {
        assert_eq!(
            trace_id_of_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id_of_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id_of_traceparent("garbage"), None);
    }
}
