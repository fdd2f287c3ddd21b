//! Log output: JSON lines (the default, for collectors) or pretty text.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `format` is `json` or `pretty`. A second
/// call (tests) is a no-op.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "pretty" {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    };
}
