//! `plan-worker smoke`: the check after a deploy, against a running
//! deployment as an app would use it. A throwaway user (a fresh random id,
//! signed with the project's JWT secret) creates a weekly plan job through
//! the API, follows its events to the end, reads the plan it made, and,
//! given the database, is deleted again. Each step prints what it saw and
//! how long it took; the first that fails ends the run with its reason.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::Secret;

const PROFILE: &str = include_str!("../../examples/profiles/muscle-gain-vegetarian-gym.json");

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The API's base URL, e.g. https://plans.example.com.
    #[arg(long, env = "SMOKE_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Signs the throwaway user's token (HS256, as Supabase's legacy secret).
    #[arg(long, env = "SUPABASE_JWT_SECRET", hide_env_values = true)]
    pub secret: Secret,
    /// iss claim, when the API checks it (SUPABASE_JWT_ISSUER).
    #[arg(long, env = "SUPABASE_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Longest wait for the plan (an LLM plan takes a minute or more).
    #[arg(long, default_value_t = 300.0)]
    pub timeout_seconds: f64,
    /// Leave the throwaway user's job and plan in the database.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the checks; `db` (DATABASE_URL) is where the throwaway user is
/// deleted afterwards, unless `--keep`.
pub async fn execute(db: &crate::config::DbSettings, args: SmokeArgs) -> anyhow::Result<()> {
    let base = args.api_url.trim_end_matches('/').to_owned();
    let user = Uuid::new_v4();
    let token = crate::api::auth::user_token(
        args.secret.expose(),
        user,
        (args.timeout_seconds as u64).max(60) + 600,
        args.issuer.as_deref(),
    )?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let deadline = Duration::from_secs_f64(args.timeout_seconds);
    let started = Instant::now();
    println!("smoke: {base} as throwaway user {user}");

    let step = Instant::now();
    let doc = http
        .get(format!("{base}/v1/openapi.json"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("api_url: cannot reach {base}"))?;
    if !doc.status().is_success() {
        bail!("GET /v1/openapi.json answered {}", doc.status());
    }
    ok("the API answers", step);

    let step = Instant::now();
    let profile: Value = serde_json::from_str(PROFILE)?;
    let created = http
        .post(format!("{base}/v1/plan-jobs"))
        .bearer_auth(&token)
        .json(&json!({"profileSnapshot": profile}))
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = created.status();
    let body: Value = created.json().await.unwrap_or(Value::Null);
    if status != reqwest::StatusCode::CREATED {
        bail!("POST /v1/plan-jobs answered {status}: {body}");
    }
    let job = body["jobId"]
        .as_str()
        .and_then(|j| j.parse::<Uuid>().ok())
        .ok_or_else(|| anyhow!("POST /v1/plan-jobs: no jobId in {body}"))?;
    ok(&format!("job {job} created"), step);

    let step = Instant::now();
    let done = tokio::time::timeout(deadline, follow(&http, &base, &token, job))
        .await
        .map_err(|_| anyhow!("no end of job {job} within {} s", deadline.as_secs()))??;
    if done["status"] != "completed" {
        bail!("job {job} ended {}: {}", done["status"], done["error"]);
    }
    let plan_id = done["planId"].as_str().unwrap_or_default().to_owned();
    ok(
        &format!("job completed over its event stream, plan {plan_id}"),
        step,
    );

    let step = Instant::now();
    let active = http
        .get(format!("{base}/v1/plans/active"))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = active.status();
    let plan: Value = active.json().await.unwrap_or(Value::Null);
    if !status.is_success() || plan["planId"] != json!(plan_id) {
        bail!("GET /v1/plans/active answered {status}, not plan {plan_id}: {plan}");
    }
    let days = plan["plan"]["days"].as_array().map_or(0, Vec::len);
    if days != 7 {
        bail!("the active plan has {days} days, not 7");
    }
    ok("the active plan is the new one, with 7 days", step);

    if args.keep {
        println!("  kept: the throwaway user's job and plan (--keep)");
    } else {
        let step = Instant::now();
        let pool = crate::db::pool(db, 1).await?;
        let removed = remove_user(&pool, user).await?;
        ok(&format!("throwaway user deleted ({removed} rows)"), step);
    }
    println!("smoke: passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn ok(what: &str, since: Instant) {
    println!("  ok  {what} ({:.2} s)", since.elapsed().as_secs_f64());
}

/// Reads the job's server-sent events until `done`; returns its data (the
/// job as `GET /v1/plan-jobs/{id}` answers it).
async fn follow(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    job: Uuid,
) -> anyhow::Result<Value> {
    let mut stream = http
        .get(format!("{base}/v1/plan-jobs/{job}/events"))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !stream.status().is_success() {
        bail!(
            "GET /v1/plan-jobs/{job}/events answered {}",
            stream.status()
        );
    }
    let mut text = String::new();
    while let Some(chunk) = stream.chunk().await? {
        text.push_str(&String::from_utf8_lossy(&chunk));
        // Events end with a blank line; keep an unfinished one for later.
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let name = field(&event, "event").unwrap_or("message");
            if name == "done" {
                let data = field(&event, "data").unwrap_or("null");
                return Ok(serde_json::from_str(data)?);
            }
        }
    }
    bail!("the event stream of job {job} ended before its done event")
}

fn field<'a>(event: &'a str, name: &str) -> Option<&'a str> {
    event
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Deletes everything of the throwaway user: plans, jobs, their attempts,
/// keys and pushes.
async fn remove_user(pool: &sqlx::PgPool, user: Uuid) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    let mut n = 0;
    for sql in [
        "delete from weekly_base_plans where user_id = $1",
        "delete from meal_plans where user_id = $1",
        "delete from plan_job_attempts where job_id in (select id from plan_generation_jobs where user_id = $1)",
        "delete from plan_job_idempotency_keys where user_id = $1",
        "delete from notification_outbox where user_id = $1",
        "delete from plan_generation_jobs where user_id = $1",
    ] {
        n += sqlx::query(sql)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn an_events_fields_are_read_by_name() {
        let event = "event: done\nid: 4\ndata: {\"status\":\"completed\"}\n\n";
        assert_eq!(field(event, "event"), Some("done"));
        assert_eq!(field(event, "data"), Some("{\"status\":\"completed\"}"));
        assert_eq!(field(event, "retry"), None);
    }
}
