//! Test handlers: each reports its start, then behaves as the test needs.

use std::future::Future;

use plan_worker::queue::{Done, JobContext, JobError, Registry};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::common::{KIND, Starts};

/// A registry whose one handler reports every start, then runs `f`.
pub fn probe<F, Fut>(f: F) -> (Registry, Starts)
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Done, JobError>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<(Uuid, i32)>();
    let handler = move |ctx: JobContext| {
        let _ = tx.send((ctx.id(), ctx.attempt()));
        f(ctx)
    };
    (Registry::new().register(KIND, handler), rx)
}

/// Completes at once.
pub fn instant() -> (Registry, Starts) {
    probe(|_| async { Ok(Done::Complete) })
}

/// Never finishes on its own; sends on `dropped` when it is stopped.
pub fn blocking(dropped: mpsc::UnboundedSender<Uuid>) -> (Registry, Starts) {
    probe(move |ctx| {
        let guard = DropSignal(ctx.id(), dropped.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Done::Complete)
        }
    })
}

struct DropSignal(Uuid, mpsc::UnboundedSender<Uuid>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}
