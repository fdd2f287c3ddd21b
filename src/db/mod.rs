//! The query pool, the embedded migrations, and `listen`: the one LISTEN
//! session type of the process (`store` holds its few statements).

pub mod listen;
pub mod store;
pub mod transient;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Parses a database URL, naming the setting it came from on error.
pub fn options(url: &str, setting: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("{setting}: invalid PostgreSQL URL: {e}"))
}

/// The query pool of `DATABASE_URL`, `size` connections.
pub async fn pool(db: &crate::config::DbSettings, size: u32) -> anyhow::Result<PgPool> {
    named_pool(db, size, "plan-worker").await
}

/// `pool`, its connections named `app` in `pg_stat_activity`.
pub async fn named_pool(
    db: &crate::config::DbSettings,
    size: u32,
    app: &str,
) -> anyhow::Result<PgPool> {
    let options = options(&db.database_url, "DATABASE_URL")?;
    connect(options, size, app)
        .await
        .context("could not connect to DATABASE_URL")
}

pub async fn connect(options: PgConnectOptions, size: u32, app: &str) -> anyhow::Result<PgPool> {
    // One connection first, to say in a line why none can be made: the pool
    // would retry until its timeout and then say only "pool timed out". A
    // server that is starting or restarting gets the same 10 s as before; a
    // missing database or a refused role fails at once.
    let attempt = || async {
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(connected) => connected,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    };
    match transient::retry(CONNECT_TIMEOUT, "connect", attempt).await {
        Ok(conn) => {
            let _ = conn.close().await;
        }
        Err(err) => return Err(anyhow::anyhow!(connect_failure(&options, &err))),
    }
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.application_name(app))
        .await?;
    Ok(pool)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn server(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// Why a connection failed, in one line that names the server (never the
/// password): the server's own message for a refusal (a missing database,
/// a failed password), the OS's for an unreachable host.
fn connect_failure(options: &PgConnectOptions, err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => format!("{} (at {})", db.message(), server(options)),
        sqlx::Error::Io(io) => format!("cannot reach PostgreSQL at {}: {io}", server(options)),
        sqlx::Error::PoolTimedOut => format!(
            "no answer from PostgreSQL at {} within {} s",
            server(options),
            CONNECT_TIMEOUT.as_secs()
        ),
        other => format!("{other} (at {})", server(options)),
    }
}

/// Applies pending migrations (idempotent; concurrent callers serialise on
/// sqlx's advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when every embedded migration is applied.
pub async fn migrations_current(pool: &PgPool) -> sqlx::Result<bool> {
    let applied = store::applied_migrations(pool).await?;
    Ok(applied as usize >= MIGRATOR.iter().count())
}
