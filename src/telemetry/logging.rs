//! Logs and traces. Logs are JSON lines (the default, for collectors) or
//! pretty text, filtered by RUST_LOG. Traces go to an OTLP/HTTP collector
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, and
//! nowhere otherwise; the standard `OTEL_SERVICE_NAME` is honoured.

use crate::config::LogFormat;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where traces go.
#[derive(Debug, Clone, Default)]
pub struct TraceSettings {
    /// The OTLP/HTTP traces URL (ending in `/v1/traces`); None: no export.
    pub endpoint: Option<String>,
    pub service_name: String,
}

impl TraceSettings {
    /// From the standard OTEL_* variables.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            // Only the generic variable gets the signal path appended (the
            // OTLP specification's rule).
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
        });
        let service_name = var("OTEL_SERVICE_NAME").unwrap_or_else(|| "plan-worker".to_owned());
        Self {
            endpoint,
            service_name,
        }
    }
}

/// Keeps the trace exporter alive; `shutdown` flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends buffered spans now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }

    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            let _ = p.shutdown();
        }
    }
}

/// Without RUST_LOG: INFO, except the server's NOTICEs, which sqlx logs at
/// INFO ("relation _sqlx_migrations already exists, skipping" at every
/// start); their warnings still show.
const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber. A second call (tests) leaves the first
/// subscriber in place.
pub fn init(format: LogFormat, traces: &TraceSettings) -> Telemetry {
    init_with(format, traces, DEFAULT_FILTER)
}

/// [`init`] with another filter when RUST_LOG is unset (`warn` for commands
/// that draw on the terminal, where INFO lines would cut into their output).
pub fn init_with(format: LogFormat, traces: &TraceSettings, default_filter: &str) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if format == LogFormat::Pretty {
        use std::io::IsTerminal;
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, never into a
            // file or a pipe.
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let provider =
        traces
            .endpoint
            .as_deref()
            .and_then(|url| match exporter(url, &traces.service_name) {
                Ok(p) => Some(p),
                Err(err) => {
                    eprintln!("warning: OTEL_EXPORTER_OTLP_ENDPOINT: traces are off: {err}");
                    None
                }
            });
    // Each layer filters for itself: RUST_LOG=warn quiets the logs but must
    // not switch off the INFO spans that traces are made of.
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("plan-worker"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("plan_worker", tracing::Level::INFO),
            )
    });
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(otel)
        .try_init();
    Telemetry { provider }
}

fn exporter(url: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    Ok(SdkTracerProvider::builder()
        // Batches are sent from the SDK's own thread (blocking client), so
        // no runtime is needed and a slow collector never blocks a job.
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// Makes `span` a child of the W3C `traceparent` stored on a job, so that
/// the worker's spans continue the trace of the request that created it.
pub fn link_to_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let Some(tp) = traceparent else { return };
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let _ = span.set_parent(cx);
}

/// The W3C `traceparent` of the current span, if traces are on (stored on a
/// job at creation).
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}
