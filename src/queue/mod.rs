//! The job queue. `store` holds every SQL call; `listener` the LISTEN
//! connection and presence lock; `dispatcher` the wake sources and claiming;
//! `runner` one attempt; `lease` heartbeats and stop reasons; `completer`
//! batched completions; `reaper` crash recovery and stale jobs; `worker`
//! assembly and graceful shutdown; `job` the handler contract.

pub mod completer;
pub mod dispatcher;
pub mod inspect;
pub mod job;
pub mod lease;
pub mod listener;
pub mod reaper;
pub mod runner;
pub mod store;
pub mod worker;

pub use job::{BoxFuture, Done, JobContext, JobError, JobHandler, Registry};
pub use worker::{Worker, WorkerHandle};
