//! plan-worker: a PostgreSQL-native job worker that turns users' fitness
//! profiles into validated weekly plans with an LLM.
//!
//! Architecture (one line per module):
//! - `api`        HTTP: health, readiness and metrics (ops endpoint)
//! - `bench`      `plan-worker bench`: pickup latency and drain throughput
//! - `cli`        the command line and what each command does
//! - `config`     every setting: flag, env var, default, in one place
//! - `db`         pool and migrations
//! - `error_code` the stable error codes of failed attempts
//! - `llm`        OpenAI-compatible client, error mapping, limits, mock LLM
//! - `notify`     push notifications from the outbox to Expo
//! - `plan`       the domain: profile, nutrition targets, prompts, fixer,
//!   validator, offline generator
//! - `queue`      the job queue: SQL store, LISTEN/NOTIFY listener, dispatcher,
//!   leases and heartbeats, retries, the reaper, graceful shutdown
//! - `telemetry`  logs and the metric catalogue
//!
//! The flow: `create_plan_job` inserts a row and its trigger NOTIFYs; the
//! listener wakes the dispatcher, which claims up to its free slots and runs
//! each job's handler under a heartbeat-fenced lease.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod error_code;
pub mod llm;
pub mod notify;
pub mod plan;
pub mod queue;
pub mod telemetry;
