//! HTTP: the internal operations endpoint (`/metrics`, `/healthz`,
//! `/readyz`) on METRICS_ADDR.

pub mod health;
