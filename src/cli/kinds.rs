//! `plan-worker kinds ...`: list the job kinds with their queue, pause and
//! resume a kind, cap how many of its jobs run at once across the cluster.
//! The rules are the SQL functions of migration 0014; this calls them, and
//! writes each change to `operator_actions` in the same transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

use super::KindsCommand;
use super::jobs::cli_operator;
use crate::config::DbSettings;
use crate::db::pool;
use crate::queue::store;

/// A kind as an operator reads it.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct KindRow {
    pub kind: String,
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub max_running: Option<i32>,
    pub pending: i64,
    pub processing: i64,
}

/// `kinds cap`'s value: a number of jobs, or `none` to lift the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub Option<i32>);

impl std::str::FromStr for Cap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Cap(None));
        }
        match s.parse::<i32>() {
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(Cap(Some(n))),
            _ => Err(format!(
                "max_running: a number from 1 to 1000000, or none; got {s:?}"
            )),
        }
    }
}

pub async fn execute(db: &DbSettings, cmd: KindsCommand) -> anyhow::Result<()> {
    let pool = pool(db, 2).await?;
    match cmd {
        KindsCommand::List { json } => {
            let kinds = list(&pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&kinds)?);
            } else {
                print_table(&kinds);
            }
        }
        KindsCommand::Pause { kind } => {
            if set_paused(&pool, &kind, true).await? {
                println!("{kind}\tpaused");
            } else {
                println!("{kind}\talready paused");
            }
        }
        KindsCommand::Resume { kind } => {
            if set_paused(&pool, &kind, false).await? {
                println!("{kind}\tresumed");
            } else {
                println!("{kind}\twas not paused");
            }
        }
        KindsCommand::Cap { kind, max_running } => {
            set_cap(&pool, &kind, max_running.0).await?;
            match max_running.0 {
                Some(n) => println!("{kind}\tcapped at {n} running"),
                None => println!("{kind}\tno cap"),
            }
        }
    }
    Ok(())
}

/// Every kind with its pause, cap and the jobs waiting and running.
pub async fn list(pool: &PgPool) -> anyhow::Result<Vec<KindRow>> {
    Ok(sqlx::query_as::<_, KindRow>(
        r"select k.kind, k.paused, k.paused_at, k.max_running,
                 coalesce(c.pending, 0) as pending, coalesce(c.processing, 0) as processing
          from plan_job_kinds k
          left join (
              select kind, count(*) filter (where status = 'pending') as pending,
                     count(*) filter (where status = 'processing') as processing
              from plan_generation_jobs
              where status in ('pending', 'processing')
              group by kind
          ) c using (kind)
          order by k.kind",
    )
    .fetch_all(pool)
    .await?)
}

/// Pauses or resumes `kind`; true when that changed anything.
async fn set_paused(pool: &PgPool, kind: &str, paused: bool) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed: bool = sqlx::query_scalar("select set_plan_job_kind_paused($1, $2)")
        .bind(kind)
        .bind(paused)
        .fetch_one(&mut *tx)
        .await
        .map_err(named)?;
    let action = if paused { "pause" } else { "resume" };
    let detail = serde_json::json!({"kind": kind, "changed": changed});
    store::record_operator_action(&mut *tx, &cli_operator(), action, None, &detail).await?;
    tx.commit().await?;
    Ok(changed)
}

async fn set_cap(pool: &PgPool, kind: &str, max_running: Option<i32>) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("select set_plan_job_kind_max_running($1, $2)")
        .bind(kind)
        .bind(max_running)
        .execute(&mut *tx)
        .await
        .map_err(named)?;
    let detail = serde_json::json!({"kind": kind, "maxRunning": max_running});
    store::record_operator_action(&mut *tx, &cli_operator(), "cap", None, &detail).await?;
    tx.commit().await?;
    Ok(())
}

/// The SQL functions' refusals (`kind: unknown kind 'x'`) as they are,
/// without sqlx's "error returned from database" around them.
fn named(err: sqlx::Error) -> anyhow::Error {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22023") => {
            anyhow::anyhow!("{}", db.message())
        }
        _ => err.into(),
    }
}

fn print_table(kinds: &[KindRow]) {
    println!(
        "{:<16}  {:<6}  {:<19}  {:>11}  {:>8}  {:>10}",
        "kind", "paused", "paused_at", "max_running", "pending", "processing"
    );
    for k in kinds {
        println!(
            "{:<16}  {:<6}  {:<19}  {:>11}  {:>8}  {:>10}",
            k.kind,
            if k.paused { "yes" } else { "no" },
            k.paused_at
                .map(|t| t.format("%F %T").to_string())
                .unwrap_or_else(|| "-".into()),
            k.max_running
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            k.pending,
            k.processing,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Cap;

    #[test]
    fn a_cap_is_a_number_in_range_or_none() {
        assert_eq!("none".parse::<Cap>(), Ok(Cap(None)));
        assert_eq!("NONE".parse::<Cap>(), Ok(Cap(None)));
        assert_eq!("4".parse::<Cap>(), Ok(Cap(Some(4))));
        for bad in ["0", "-1", "1000001", "four", ""] {
            let err = bad.parse::<Cap>().unwrap_err();
            assert!(err.starts_with("max_running:"), "{bad}: {err}");
        }
    }
}
