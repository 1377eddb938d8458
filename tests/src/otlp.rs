//! An in-process OTLP/HTTP receiver: what the services export, decoded, for tests to inspect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;

/// Spans received so far, in arrival order.
#[derive(Clone, Default)]
pub struct OtlpReceiver {
    spans: Arc<Mutex<Vec<Span>>>,
    port: u16,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let sink = web::Data::new(Arc::clone(&spans));
        // A batch of 512 spans with their SQL text is well over actix's 256 KiB default body limit;
        // the exporter keeps its connection open between batches.
        let server = HttpServer::new(move || {
            App::new()
                .app_data(sink.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/v1/traces", web::post().to(receive))
        })
        .keep_alive(KeepAlive::Timeout(Duration::from_secs(3600)))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind the OTLP receiver");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        OtlpReceiver { spans, port }
    }

    /// The traces URL to export to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

async fn receive(body: web::Bytes, sink: web::Data<Arc<Mutex<Vec<Span>>>>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    let received =
        request.resource_spans.into_iter().flat_map(|resource| resource.scope_spans).flat_map(|scope| scope.spans);
    sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(received);
    HttpResponse::Ok().content_type("application/x-protobuf").finish()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An attribute of `span` as text (numbers and booleans printed), when it has it.
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|attribute| attribute.key == key).and_then(|attribute| {
        match attribute.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some(text.clone()),
            AnyValue::IntValue(number) => Some(number.to_string()),
            AnyValue::DoubleValue(number) => Some(number.to_string()),
            AnyValue::BoolValue(flag) => Some(flag.to_string()),
            _ => None,
        }
    })
}
