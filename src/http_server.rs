//! Serves a router on a TCP listener with limits against slow and stalled
//! clients, for both the API and the ops listener: a cap on open
//! connections, a deadline for the request head, and an idle timeout.
//! `axum::serve` has none of these, and without them a few hundred clients
//! that send half a request each exhaust the file descriptors, and with
//! them `/healthz`. Shutdown is graceful: no new connections, open
//! exchanges finish.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one listener allows its clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Connections open at once; further clients wait in the kernel's
    /// accept queue, holding no file descriptor of ours.
    pub max_connections: usize,
    /// The first byte must come this soon after connecting, and a whole
    /// request head this soon after its first byte. On HTTP/1.1 hyper also
    /// counts it from the end of the previous answer, so it is how long an
    /// unused kept-alive connection stays open too.
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is
    /// closed (HTTP/2 connections, clients that stopped reading).
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The ops listener's: probes and scrapers send their request at once,
    /// and a few of them at a time is all it serves.
    pub fn ops(max_connections: usize) -> Self {
        ConnectionLimits {
            max_connections,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `stop` fires, then
/// stops accepting and waits for the open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        // The slot is taken before accepting: over the cap, a client waits
        // in the listen queue instead of costing a file descriptor.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tokio::select! {
                        () = accept_failed(err) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        };
        let (io, activity) = Watched::new(stream);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(
            builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            tokio::select! {
                served = conn => {
                    if let Err(err) = served {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                }
                () = activity.stalled(limits) => {
                    tracing::debug!("closed a stalled connection");
                }
            }
            drop(slot);
        });
    }
    // Closing the listener refuses queued clients at once rather than
    // leaving them to time out.
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed accept: a client that left is skipped; anything else (such as
/// EMFILE) waits a second rather than spin on it.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// When a connection last moved a byte, and whether it ever sent one.
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened`.
    last_ms: AtomicU64,
    has_sent: AtomicBool,
}

impl Activity {
    fn touch(&self, read: bool) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        if read {
            self.has_sent.store(true, Ordering::Relaxed);
        }
    }

    /// Resolves once the connection has stalled: nothing sent within the
    /// header timeout of connecting, or no byte either way for the idle
    /// timeout. hyper cannot see the first case: it waits for the first
    /// bytes to tell HTTP/1.1 from HTTP/2 before its own timers start.
    async fn stalled(&self, limits: ConnectionLimits) {
        loop {
            let deadline = if self.has_sent.load(Ordering::Relaxed) {
                let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
                self.opened + last + limits.idle_timeout
            } else {
                self.opened + limits.header_timeout
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records its activity.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn new(stream: TcpStream) -> (Self, Arc<Activity>) {
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            has_sent: AtomicBool::new(false),
        });
        let watched = Watched {
            stream,
            activity: activity.clone(),
        };
        (watched, activity)
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch(true);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
