//! The job queue. The rules themselves (claiming, fencing, retries,
//! reaping) are SQL functions in `migrations/`; this module drives them.
//!
//! - `store`      every SQL statement on the queue's tables, typed (`JobStatus`, outcomes)
//! - `events`     the notification channels, job events, a bounded waiter on them
//! - `listener`   the worker's LISTEN session: wake-ups, cancellations, presence lock
//! - `dispatcher` the wake sources, claiming into free slots
//! - `runner`     one attempt, from handler to exactly one recorded outcome
//! - `lease`      heartbeats, fencing and stop reasons of running attempts
//! - `completer`  completions in batches (one WAL flush for many jobs)
//! - `reaper`     crash recovery, stale jobs, the queue gauges
//! - `upkeep`     periodic schedules due, retention of finished jobs
//! - `worker`     assembly and graceful shutdown
//! - `job`        the handler contract and the kind -> handler registry

pub mod completer;
pub mod dispatcher;
pub mod events;
pub mod funnel;
pub mod job;
pub mod lease;
pub mod listener;
pub mod reaper;
pub mod runner;
pub mod store;
pub mod upkeep;
pub mod worker;

pub use job::{BoxFuture, Done, JobContext, JobError, JobHandler, Registry};
pub use worker::{Worker, WorkerHandle};
