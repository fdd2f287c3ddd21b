//! Completions in batches. A completion must be durable, so it waits for a
//! WAL flush; one statement for everything that finished meanwhile pays
//! that flush once. An idle worker completes a lone job at once: the batch
//! is simply what has queued up while the previous statement ran.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::store::{self, StoreError};
use crate::db::transient;

const MAX_BATCH: usize = 500;

/// What became of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// The lease was no longer held: nothing was written.
    LeaseLost,
}

/// Why a completion could not be recorded (the lease then runs out and the
/// reaper retries the job).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompleteError {
    #[error("the completer has stopped")]
    Stopped,
    #[error("completion batch failed: {0}")]
    Db(String),
}

type Request = (
    Uuid,
    Uuid,
    oneshot::Sender<Result<Completion, CompleteError>>,
);

/// Hands completions to the batching task.
#[derive(Clone)]
pub struct Completer {
    tx: mpsc::UnboundedSender<Request>,
}

impl Completer {
    /// Starts the batching task; it ends when every `Completer` is dropped.
    /// A batch the database refuses for a moment is tried again for up to
    /// `window` (the lease).
    pub fn spawn(db: PgPool, window: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(batch_loop(db, rx, window)))
    }

    /// Completes one job held under `token`.
    pub async fn complete(&self, job_id: Uuid, token: Uuid) -> Result<Completion, CompleteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((job_id, token, reply))
            .map_err(|_| CompleteError::Stopped)?;
        rx.await.map_err(|_| CompleteError::Stopped)?
    }
}

async fn batch_loop(db: PgPool, mut rx: mpsc::UnboundedReceiver<Request>, window: Duration) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Jobs that ended together wake together: a turn of the scheduler
        // lets the rest of them queue up behind the first, which would
        // otherwise pay a statement and a WAL flush of its own.
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let jobs: Vec<(Uuid, Uuid)> = batch.iter().map(|(id, token, _)| (*id, *token)).collect();
        match complete_with_retries(&db, &jobs, window).await {
            Ok(done) => {
                for (id, _, reply) in batch.drain(..) {
                    let completion = if done.binary_search(&id).is_ok() {
                        Completion::Completed
                    } else {
                        Completion::LeaseLost
                    };
                    let _ = reply.send(Ok(completion));
                }
            }
            Err(err) => {
                let err = CompleteError::Db(err.to_string());
                for (_, _, reply) in batch.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// A transient database error is retried while the leases can last: the
/// heartbeat keeps them meanwhile, and fencing makes a repeated completion
/// harmless.
async fn complete_with_retries(
    db: &PgPool,
    jobs: &[(Uuid, Uuid)],
    window: Duration,
) -> Result<Vec<Uuid>, StoreError> {
    let plan_ids = vec![None; jobs.len()];
    let mut done =
        transient::retry(window, "complete", || store::complete(db, jobs, &plan_ids)).await?;
    done.sort_unstable();
    Ok(done)
}
