//! Riding out a database that is briefly away (a restart, a failover, a
//! dropped connection): the statements that end an attempt are tried again
//! instead of giving up the work done. Without this, a one-second restart
//! turned finished LLM plans into lost attempts that spent a retry each.
//!
//! Only errors that say "the server or the connection went away" or "try the
//! transaction again" are retried; every statement retried this way is fenced
//! by the lease token, so running it twice cannot complete a job twice.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// An error that may be worth the same statement again a moment later.
pub trait Transient: std::fmt::Display {
    fn is_transient(&self) -> bool;
}

impl Transient for sqlx::Error {
    fn is_transient(&self) -> bool {
        is_transient(self)
    }
}

/// Whether `err` is worth the same statement again a moment later.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // A connection that ended mid-message.
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATEs of a server going away or a transaction to run again.
fn transient_sqlstate(code: &str) -> bool {
    // 08: connection exception; 57P01-03: admin/crash shutdown, cannot
    // connect now (starting up or in recovery); 53300: too many connections;
    // 40001/40P01: serialization failure, deadlock (the whole transaction
    // runs again, as PostgreSQL asks).
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
}

/// Runs `op` until it succeeds, fails for good, or `within` has passed since
/// the first try; pauses grow from 50 ms to 1 s. Returns the last error.
pub async fn retry<T, E, F, Fut>(within: Duration, what: &'static str, mut op: F) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    let mut pause = FIRST_PAUSE;
    let mut tries = 1u32;
    loop {
        match op().await {
            Ok(v) => {
                if tries > 1 {
                    tracing::info!(what, tries, "the database answered again");
                }
                return Ok(v);
            }
            Err(err) if err.is_transient() && Instant::now() + pause < deadline => {
                if tries == 1 {
                    tracing::warn!(what, error = %err, "database unavailable; trying again");
                }
                metrics::counter!(crate::telemetry::metrics::DB_RETRIES, "what" => what)
                    .increment(1);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                tries += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn io_error() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    #[test]
    fn connection_and_shutdown_states_are_transient_others_are_not() {
        for code in ["08006", "08003", "57P01", "57P03", "40001", "40P01"] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "22023", "42P01", "P0001"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        assert!(is_transient(&io_error()));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_error_is_tried_again_until_the_statement_succeeds() {
        let calls = AtomicU32::new(0);
        let v = retry(Duration::from_secs(10), "test", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(io_error()),
                _ => Ok(7),
            }
        })
        .await
        .unwrap();
        assert_eq!((v, calls.load(Ordering::SeqCst)), (7, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_outage_gives_up_at_the_window_and_a_real_error_at_once() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let err = retry(Duration::from_secs(3), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(io_error())
        })
        .await
        .unwrap_err();
        assert!(is_transient(&err));
        assert!(
            started.elapsed() <= Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(calls.load(Ordering::SeqCst) > 3);

        let calls = AtomicU32::new(0);
        let err = retry(Duration::from_secs(3), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(sqlx::Error::RowNotFound)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, sqlx::Error::RowNotFound));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
