//! `plan-worker enqueue` and `plan-worker jobs ...`: what an operator types.

use std::io::Read;

use anyhow::{Context, bail};
use serde_json::Value;

use super::{EnqueueArgs, JobsCommand};
use crate::config::DbSettings;
use crate::db::pool;
use crate::queue::store::{self, JobFilter, JobRow, NewJob};

/// Reads a JSON file, or standard input for `-`; errors name the file.
pub fn read_json(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the profile from stdin")?;
        s
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("profile: cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).context("profile: not valid JSON")
}

pub async fn enqueue(db: &DbSettings, args: EnqueueArgs) -> anyhow::Result<()> {
    let profile = read_json(&args.profile)?;
    let pool = pool(db, 2).await?;
    let job = NewJob {
        user_id: args.user,
        kind: args.kind,
        profile_snapshot: profile,
        max_retries: args.max_retries,
        priority: args.priority,
        trace_context: crate::telemetry::logging::current_traceparent(),
        run_after: None,
    };
    let created = crate::jobs::intake::create_job(&pool, &job).await?;
    print_created(&created);
    Ok(())
}

pub async fn execute(db: &DbSettings, cmd: JobsCommand) -> anyhow::Result<()> {
    let pool = pool(db, 2).await?;
    match cmd {
        JobsCommand::List {
            status,
            user,
            kind,
            limit,
            json,
        } => {
            let jobs = store::list_jobs(
                &pool,
                &JobFilter {
                    status,
                    user_id: user,
                    kind,
                    limit,
                },
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                print_table(&jobs);
            }
        }
        JobsCommand::Show { id, json } => show(&pool, id, json).await?,
        JobsCommand::Retry { id } => {
            let mut tx = pool.begin().await?;
            let created = store::retry_job(&mut *tx, id).await?;
            let detail =
                serde_json::json!({"newJobId": created.job_id, "existed": created.existed});
            store::record_operator_action(&mut *tx, &cli_operator(), "retry", Some(id), &detail)
                .await?;
            tx.commit().await?;
            print_created(&created);
        }
        JobsCommand::Cancel { id, reason } => {
            let mut tx = pool.begin().await?;
            let Some(c) = store::cancel(&mut *tx, id, &reason).await? else {
                bail!("job_id: no job {id}")
            };
            if !c.cancelled {
                bail!(
                    "job {id} is already {}; nothing to cancel",
                    c.previous_status
                );
            }
            let detail = serde_json::json!({
                "previousStatus": c.previous_status.to_string(),
                "reason": reason,
            });
            store::record_operator_action(&mut *tx, &cli_operator(), "cancel", Some(id), &detail)
                .await?;
            tx.commit().await?;
            println!("{id}\tcancelled (was {})", c.previous_status);
        }
    }
    Ok(())
}

/// Who ran the CLI, for `operator_actions`.
pub(super) fn cli_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// One job, its profile and its attempts: how to read a stuck generation.
async fn show(pool: &sqlx::PgPool, id: uuid::Uuid, json: bool) -> anyhow::Result<()> {
    let Some(row) = store::get_job(pool, id).await? else {
        bail!("job_id: no job {id}")
    };
    let mut job = serde_json::to_value(&row)?;
    job["profile_snapshot"] = store::profile_snapshot(pool, id)
        .await?
        .unwrap_or(Value::Null);
    let attempts = store::attempts(pool, id).await?;
    let meal_plan = meal_plan_summary(pool, &row).await?;
    if json {
        let out = serde_json::json!({"job": job, "attempts": attempts, "meal_plan": meal_plan});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&job)?);
        // What the user was told, where an operator looks first.
        if let (Some(code), Some(message)) = (&row.error_code, &row.error_message) {
            println!("\n{}: {code}: {message}", row.status);
        }
        if let Some(m) = &meal_plan {
            println!(
                "\nmeal plan {} v{} ({}): {} dishes, photos {}",
                m["meal_plan_id"], m["version"], m["source"], m["dishes"], m["images"]
            );
        }
        println!("\nattempts:");
        for a in attempts {
            println!(
                "  #{} {} {} -> {} {} {}",
                a.attempt,
                a.worker_id,
                a.started_at.format("%F %T%.3f"),
                a.finished_at
                    .map(|t| t.format("%T%.3f").to_string())
                    .unwrap_or_else(|| "running".into()),
                a.outcome.as_deref().unwrap_or("-"),
                a.error_code.as_deref().unwrap_or(""),
            );
            if let Some(d) = a.error_detail {
                println!("      {d}");
            }
        }
    }
    Ok(())
}

/// The meal plan a meal_plan or meal_swap job saved: version, source,
/// dish count and the photos' state.
async fn meal_plan_summary(pool: &sqlx::PgPool, row: &JobRow) -> anyhow::Result<Option<Value>> {
    use crate::jobs::meal_plan::{KIND, SWAP_KIND, store as meals};
    let Some(plan_id) = row
        .plan_id
        .filter(|_| [KIND, SWAP_KIND].contains(&row.kind.as_str()))
    else {
        return Ok(None);
    };
    Ok(meals::by_id(pool, plan_id).await?.map(|m| {
        let dishes = m.plan["days"].as_array().map_or(0, |d| {
            d.iter()
                .map(|d| d["meals"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        });
        serde_json::json!({
            "meal_plan_id": m.meal_plan_id, "version": m.version, "source": m.source,
            "dishes": dishes, "images": m.images, "images_job_id": m.images_job_id,
        })
    }))
}

fn print_table(jobs: &[JobRow]) {
    println!(
        "{:<36}  {:<16}  {:<10}  {:<8}  {:<20}  {:<19}  progress",
        "id", "kind", "status", "retries", "error_code", "created"
    );
    for j in jobs {
        println!(
            "{:<36}  {:<16}  {:<10}  {:<8}  {:<20}  {:<19}  {}",
            j.id,
            j.kind,
            j.status,
            format!("{}/{}", j.retry_count, j.max_retries),
            j.error_code.as_deref().unwrap_or("-"),
            j.created_at.format("%F %T"),
            j.progress.as_deref().unwrap_or(""),
        );
    }
}

/// The job id and whether it was created or already existed (one line, for scripts).
fn print_created(created: &store::Created) {
    let what = if created.existed {
        "existed"
    } else {
        "created"
    };
    println!("{}\t{what}", created.job_id);
}
