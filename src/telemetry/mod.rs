//! Logs, metrics and (later) traces: initialisation and the metric catalogue.

pub mod logging;
pub mod metrics;
