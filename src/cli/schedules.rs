//! `plan-worker schedules`: the periodic regenerations (`plan_schedules`),
//! soonest due first, with why a switched-off one stopped.

use uuid::Uuid;

use crate::api::schedules::{self, ScheduleRow};
use crate::config::DbSettings;
use crate::db::pool;

pub async fn list(db: &DbSettings, user: Option<Uuid>, json: bool) -> anyhow::Result<()> {
    let pool = pool(db, 2).await?;
    let rows = schedules::list(&pool, user).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

fn print_table(rows: &[ScheduleRow]) {
    println!(
        "{:<36}  {:<16}  {:<12}  {:<19}  {:<6}  {:>5}  {:<36}  last_error",
        "user", "kind", "every", "next_run_at", "active", "runs", "last_job_id"
    );
    for s in rows {
        println!(
            "{:<36}  {:<16}  {:<12}  {:<19}  {:<6}  {:>5}  {:<36}  {}",
            s.user_id,
            s.kind,
            s.every,
            s.next_run_at.format("%F %T"),
            if s.active { "yes" } else { "no" },
            s.runs,
            s.last_job_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".into()),
            s.last_error.as_deref().unwrap_or(""),
        );
    }
    println!("{} schedules", rows.len());
}
