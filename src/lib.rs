//! plan-worker: a PostgreSQL-native job worker that turns users' fitness
//! profiles into validated weekly plans with an LLM.
//!
//! Architecture (one line per module):
//! - `config`     every setting: flag, env var, default, in one place
//! - `error_code` the stable error codes of failed attempts
//! - `queue`      the job queue: SQL store, LISTEN/NOTIFY listener, dispatcher,
//!   leases and heartbeats, retries, the reaper, graceful shutdown
//! - `db`         pool and migrations
//!
//! The flow: `create_plan_job` inserts a row and its trigger NOTIFYs; the
//! listener wakes the dispatcher, which claims up to its free slots and runs
//! each job's handler under a heartbeat-fenced lease.

pub mod error_code;
pub mod plan;
