//! The query pool and the embedded migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Parses a database URL, naming the setting it came from on error.
pub fn options(url: &str, setting: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("{setting}: invalid PostgreSQL URL: {e}"))
}

pub async fn connect(options: PgConnectOptions, size: u32, app: &str) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.application_name(app))
        .await?;
    Ok(pool)
}

/// Applies pending migrations (idempotent; concurrent callers serialise on
/// sqlx's advisory lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
