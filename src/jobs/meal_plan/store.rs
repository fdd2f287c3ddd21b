//! Every SQL statement on `meal_plans`: the save transaction's writes, the
//! images job's reads and writes, and the API's reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::plan::Targets;
use crate::plan::meal_plan::MealPlan;

/// Advisory-lock class of one user's meal-plan writes: versions are per
/// user, and the images job's last look for plans without photos must not
/// interleave with a save that queues photos (see `images`).
const LOCK_CLASS: i32 = 1_886_151_022;

/// A saved meal plan, as the API answers it.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct MealPlanRow {
    pub meal_plan_id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    /// None once retention deleted the job.
    pub job_id: Option<Uuid>,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub model: Option<String>,
    /// none | pending | complete
    pub images: String,
    /// Follow this job's events to learn when the photos are in.
    pub images_job_id: Option<Uuid>,
    pub swapped_from: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub targets: Value,
    pub plan: Value,
}

/// One version in the list (without the plan body).
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct MealPlanVersion {
    pub meal_plan_id: Uuid,
    /// None once retention deleted the job.
    pub job_id: Option<Uuid>,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub images: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id as meal_plan_id, user_id, job_id, version, is_active, source, model, images, \
                       images_job_id, swapped_from, created_at, targets, plan";

pub struct NewMealPlanRow<'a> {
    pub user_id: Uuid,
    pub job_id: Uuid,
    pub plan: &'a MealPlan,
    pub targets: &'a Targets,
    pub source: &'static str,
    pub model: Option<&'a str>,
    /// Photos will be looked for (an image source is configured).
    pub images_pending: bool,
    pub swapped_from: Option<Uuid>,
}

/// Serialises this user's meal-plan writes until the transaction ends.
pub async fn lock_user(tx: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(LOCK_CLASS)
        .bind(user)
        .execute(tx)
        .await?;
    Ok(())
}

/// Inserts the next version as the user's active meal plan; returns its id.
pub async fn insert_active(tx: &mut PgConnection, new: &NewMealPlanRow<'_>) -> sqlx::Result<Uuid> {
    sqlx::query("update meal_plans set is_active = false where user_id = $1 and is_active")
        .bind(new.user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(
        r"insert into meal_plans (user_id, job_id, version, plan, targets, source, model, images, swapped_from)
          values ($1, $2, (select coalesce(max(version), 0) + 1 from meal_plans where user_id = $1),
                  $3, $4, $5, $6, case when $7 then 'pending' else 'none' end, $8)
          returning id",
    )
    .bind(new.user_id)
    .bind(new.job_id)
    .bind(Json(new.plan))
    .bind(Json(new.targets))
    .bind(new.source)
    .bind(new.model)
    .bind(new.images_pending)
    .bind(new.swapped_from)
    .fetch_one(&mut *tx)
    .await
}

/// Records the job that finds the plan's photos.
pub async fn set_images_job(tx: &mut PgConnection, id: Uuid, job: Uuid) -> sqlx::Result<()> {
    sqlx::query("update meal_plans set images_job_id = $2 where id = $1")
        .bind(id)
        .bind(job)
        .execute(tx)
        .await?;
    Ok(())
}

/// A plan still waiting for its photos.
#[derive(Debug, FromRow)]
pub struct PendingImages {
    pub id: Uuid,
    pub plan: Json<MealPlan>,
}

/// The user's plans waiting for photos, newest first.
pub async fn pending_images(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> sqlx::Result<Vec<PendingImages>> {
    sqlx::query_as(
        "select id, plan from meal_plans where user_id = $1 and images = 'pending' \
         order by version desc",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// Writes the plan with its photos; `complete` when every dish was
/// searched. Only a plan still pending is written (a swap may have made a
/// newer version meanwhile; that one has its own photos to find).
pub async fn store_images(
    db: impl PgExecutor<'_>,
    id: Uuid,
    plan: &MealPlan,
    complete: bool,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        r"update meal_plans set plan = $2, images = case when $3 then 'complete' else 'pending' end,
                images_at = now()
          where id = $1 and images = 'pending'",
    )
    .bind(id)
    .bind(Json(plan))
    .bind(complete)
    .execute(db)
    .await?;
    Ok(n.rows_affected() == 1)
}

/// One meal plan by id.
pub async fn by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<MealPlanRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from meal_plans where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Makes the user's meal plan `id` their active one (a rollback); None
/// when they have no such plan. The caller holds [`lock_user`].
pub async fn activate(
    tx: &mut PgConnection,
    user: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<MealPlanRow>> {
    crate::jobs::versions::activate(tx, "meal_plans", COLUMNS, user, id).await
}

/// The user's active meal plan.
pub async fn active(db: &PgPool, user: Uuid) -> sqlx::Result<Option<MealPlanRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from meal_plans where user_id = $1 and is_active"
    )))
    .bind(user)
    .fetch_optional(db)
    .await
}

/// The user's versions, newest first.
pub async fn versions(db: &PgPool, user: Uuid, limit: i64) -> sqlx::Result<Vec<MealPlanVersion>> {
    sqlx::query_as(
        "select id as meal_plan_id, job_id, version, is_active, source, images, created_at \
         from meal_plans where user_id = $1 order by version desc limit $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A plan to swap a meal of, with the profile it was made for.
#[derive(Debug, FromRow)]
pub struct SwapSource {
    pub user_id: Uuid,
    pub is_active: bool,
    pub plan: Json<MealPlan>,
    pub targets: Json<Targets>,
    pub profile_snapshot: Value,
}

/// The plan and the profile of the meal-plan job it descends from (a
/// swapped version's own job carries the swap, not the profile).
pub async fn swap_source(db: &PgPool, id: Uuid) -> sqlx::Result<Option<SwapSource>> {
    sqlx::query_as(
        r"with recursive chain as (
              select m.id, m.job_id, m.swapped_from from meal_plans m where m.id = $1
              union all
              select m.id, m.job_id, m.swapped_from from meal_plans m join chain c on m.id = c.swapped_from
          )
          select m.user_id, m.is_active, m.plan, m.targets, j.profile_snapshot
          from meal_plans m
          cross join chain c
          join plan_generation_jobs j on j.id = c.job_id
          where m.id = $1 and c.swapped_from is null",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Seconds left of the cool-down after the user's newest meal plan, if any.
pub async fn cooldown_wait(
    tx: &mut PgConnection,
    user: Uuid,
    cooldown: std::time::Duration,
) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar(
        r"select extract(epoch from max(created_at) + make_interval(secs => $2) - now())::float8
          from meal_plans where user_id = $1 and swapped_from is null",
    )
    .bind(user)
    .bind(cooldown.as_secs_f64())
    .fetch_one(tx)
    .await
}
