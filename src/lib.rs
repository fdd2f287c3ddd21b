//! plan-worker: a PostgreSQL-native job worker that turns users' fitness
//! profiles into validated weekly plans with an LLM.
//!
//! The flow of one job, in order:
//!
//! 1. An app (through `api`), an operator (through `cli`) or any SQL client
//!    calls `create_plan_job`; `jobs::intake` checks the profile first. The
//!    insert's trigger NOTIFYs `plan_jobs`.
//! 2. `queue`: the listener wakes the dispatcher, which claims up to its free
//!    slots (`claim_plan_jobs`, SKIP LOCKED, a fresh lease token each) and
//!    runs each attempt under a heartbeat-fenced lease.
//! 3. `jobs`: the kind's handler runs: profile -> targets (`plan`) -> LLM
//!    stage 1 (structure) and stage 2 (details) (`llm`) -> fixer and
//!    validator, one repair round (`plan`) -> save, which inserts the plan
//!    and completes the job in one transaction, fenced by the lease token.
//! 4. The job's end writes an outbox row in that same transaction; `notify`
//!    delivers the push. Status changes NOTIFY `plan_job_events`, which the
//!    API's event streams relay.
//!
//! The queue's rules (claiming, fencing, retries and backoff, reaping dead
//! workers, stale jobs) are SQL functions in `migrations/`, so every client
//! shares one implementation; Rust calls them through `store` modules, the
//! only places with SQL.
//!
//! Modules:
//! - `api`        the `/v1` HTTP API for apps: jobs, plans, live events, JWT auth, limits
//! - `cli`        the command line and what each command does
//! - `config`     every setting: flag, env var, one default, in one place
//! - `db`         the pool, migrations, and the one LISTEN session type
//! - `dev`        (feature `dev-tools`) mock LLM, bench, demo, token
//! - `error_code` the stable error codes of failed attempts
//! - `http_server` serves the API and ops routers: connection cap, header and idle timeouts
//! - `images`     meal photos from Unsplash: cached searches, a shared hourly limit, attribution
//! - `jobs`       one room per job kind (handler, LLM stages, save, its store); `registry()`
//! - `llm`        OpenAI-compatible client, error mapping, rate and in-flight limits
//! - `notify`     push notifications from the outbox to Expo
//! - `offpeak`    the provider's off-peak windows (parsed from config) and where economy jobs go
//! - `ops`        the internal listener: `/metrics`, `/healthz`, `/readyz`, the operators' console at `/ops/`
//! - `plan`       the pure domain: profile, targets, prompts, plan model, fixer,
//!   validator, offline planner (no database, no HTTP)
//! - `queue`      the job queue: store, events, listener, dispatcher, runner,
//!   leases and heartbeats, completer, reaper, graceful shutdown
//! - `telemetry`  logs, traces and the metric catalogue

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
#[cfg(feature = "dev-tools")]
pub mod dev;
pub mod error_code;
pub mod http_server;
pub mod images;
pub mod jobs;
pub mod llm;
pub mod notify;
pub mod offpeak;
pub mod ops;
pub mod plan;
pub mod queue;
pub mod telemetry;
