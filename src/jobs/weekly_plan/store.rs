//! Every SQL statement on `weekly_base_plans`: the writes of the save
//! transaction and the reads of the API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::plan::{Targets, WeeklyPlan};

/// Advisory-lock class of one user's plan saves (versions are per user).
const SAVE_LOCK_CLASS: i32 = 1_886_151_021;

/// A saved weekly plan, as the API answers it.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PlanRow {
    pub plan_id: Uuid,
    /// None once retention deleted the job.
    pub job_id: Option<Uuid>,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub targets: Value,
    pub plan: Value,
}

/// One version in the list (without the plan body).
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PlanVersion {
    pub plan_id: Uuid,
    /// None once retention deleted the job.
    pub job_id: Option<Uuid>,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

const PLAN_COLUMNS: &str =
    "id as plan_id, job_id, version, is_active, source, model, created_at, targets, plan";

/// The plan to insert.
pub struct NewPlanRow<'a> {
    pub user_id: Uuid,
    pub job_id: Uuid,
    pub plan: &'a WeeklyPlan,
    pub targets: &'a Targets,
    pub source: &'static str,
    pub model: Option<&'a str>,
}

/// Serialises this user's saves until the transaction ends.
pub async fn lock_user(tx: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(SAVE_LOCK_CLASS)
        .bind(user)
        .execute(tx)
        .await?;
    Ok(())
}

/// Inserts the next version as the user's active plan; returns its id.
pub async fn insert_active(tx: &mut PgConnection, new: &NewPlanRow<'_>) -> sqlx::Result<Uuid> {
    sqlx::query("update weekly_base_plans set is_active = false where user_id = $1 and is_active")
        .bind(new.user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(
        r"insert into weekly_base_plans (user_id, job_id, version, plan, targets, source, model)
          values ($1, $2, (select coalesce(max(version), 0) + 1 from weekly_base_plans where user_id = $1), $3, $4, $5, $6)
          returning id",
    )
    .bind(new.user_id)
    .bind(new.job_id)
    // Json(&plan) serialises straight into the bind buffer: no serde_json
    // Value copy of the plan (several times its text size) per waiting job.
    .bind(Json(new.plan))
    .bind(Json(new.targets))
    .bind(new.source)
    .bind(new.model)
    .fetch_one(&mut *tx)
    .await
}

/// Seconds left of the cool-down after the user's newest plan, if any.
pub async fn cooldown_wait(
    tx: &mut PgConnection,
    user: Uuid,
    cooldown: Duration,
) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar(
        r"select extract(epoch from max(created_at) + make_interval(secs => $2) - now())::float8
          from weekly_base_plans where user_id = $1",
    )
    .bind(user)
    .bind(cooldown.as_secs_f64())
    .fetch_one(tx)
    .await
}

/// One plan by id.
pub async fn by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PLAN_COLUMNS} from weekly_base_plans where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The user's plan `id` (another user's is as absent as a missing one).
pub async fn owned(db: &PgPool, user: Uuid, id: Uuid) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PLAN_COLUMNS} from weekly_base_plans where id = $1 and user_id = $2"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Makes the user's plan `id` their active one (a rollback to an older
/// version); None when they have no such plan. The caller holds
/// [`lock_user`].
pub async fn activate(
    tx: &mut PgConnection,
    user: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<PlanRow>> {
    crate::jobs::versions::activate(tx, "weekly_base_plans", PLAN_COLUMNS, user, id).await
}

/// The user's active plan.
pub async fn active(db: &PgPool, user: Uuid) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PLAN_COLUMNS} from weekly_base_plans where user_id = $1 and is_active"
    )))
    .bind(user)
    .fetch_optional(db)
    .await
}

/// The user's versions, newest first.
pub async fn versions(db: &PgPool, user: Uuid, limit: i64) -> sqlx::Result<Vec<PlanVersion>> {
    sqlx::query_as(
        "select id as plan_id, job_id, version, is_active, source, created_at \
         from weekly_base_plans where user_id = $1 order by version desc limit $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The targets of the user's active weekly plan: a meal plan follows them
/// when there is one.
pub async fn active_targets(db: &PgPool, user: Uuid) -> sqlx::Result<Option<Json<Targets>>> {
    sqlx::query_scalar("select targets from weekly_base_plans where user_id = $1 and is_active")
        .bind(user)
        .fetch_optional(db)
        .await
}
