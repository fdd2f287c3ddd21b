//! Statements about the connection and the schema rather than a table
//! family: keepalives, backend pid, self-test notifications, migrations.

use sqlx::PgExecutor;

/// Server-side TCP keepalives for this connection.
pub async fn set_keepalives(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    db.execute(
        "set tcp_keepalives_idle = 5; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3",
    )
    .await?;
    Ok(())
}

/// The server process of this connection.
pub async fn backend_pid(db: impl PgExecutor<'_>) -> sqlx::Result<i32> {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(db)
        .await
}

/// Sends one notification.
pub async fn notify(db: impl PgExecutor<'_>, channel: &str, payload: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(db)
        .await?;
    Ok(())
}

/// Migrations applied successfully.
pub async fn applied_migrations(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(db)
        .await
}
