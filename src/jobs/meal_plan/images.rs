//! The `meal_images` job: photos for the dishes of a user's saved meal
//! plans, after the plan is saved (a plan never waits for its photos).
//! One job per user at a time takes every plan of theirs still waiting;
//! the last look for waiting plans and the job's completion happen under
//! the user's meal-plan lock, which a save holds while it queues photos, so
//! a plan saved meanwhile is either seen here or gets a job of its own.
//! The hourly request window is shared by every worker (`images::store`);
//! when it is spent the job waits for the next window without spending a
//! retry, keeping what it found. Completion publishes the usual job event,
//! which the plan's SSE subscribers are told about as `images`.

use std::collections::HashMap;
use std::sync::Arc;

use super::store;
use crate::error_code::ErrorCode;
use crate::images::attach::find_photos;
use crate::images::unsplash::Unsplash;
use crate::queue::{BoxFuture, Done, JobContext, JobError, JobHandler};

pub const STAGE_SEARCHING: &str = "searching_images";

#[derive(Clone)]
pub struct MealImagesHandler {
    inner: Arc<Inner>,
}

struct Inner {
    client: Unsplash,
    per_hour: u32,
}

impl MealImagesHandler {
    pub fn new(client: Unsplash, per_hour: u32) -> Self {
        Self {
            inner: Arc::new(Inner { client, per_hour }),
        }
    }
}

impl JobHandler for MealImagesHandler {
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.handle(ctx).await })
    }
}

fn db_error(e: sqlx::Error) -> JobError {
    JobError::new(ErrorCode::DbError, format!("meal images: {e}"))
}

impl Inner {
    async fn handle(&self, ctx: JobContext) -> Result<Done, JobError> {
        let user = ctx.job.user_id;
        ctx.progress(STAGE_SEARCHING).await?;
        // A save that lands while this runs is seen by the next pass.
        for _pass in 0..8 {
            let pending = store::pending_images(&ctx.db, user)
                .await
                .map_err(db_error)?;
            if pending.is_empty() {
                let mut tx = ctx.db.begin().await.map_err(db_error)?;
                store::lock_user(&mut tx, user).await.map_err(db_error)?;
                if store::pending_images(&mut *tx, user)
                    .await
                    .map_err(db_error)?
                    .is_empty()
                {
                    let held = ctx
                        .complete_in(&mut tx, None)
                        .await
                        .map_err(|e| JobError::new(ErrorCode::DbError, e.to_string()))?;
                    if !held {
                        return Err(JobError::new(ErrorCode::WorkerLost, "lease lost"));
                    }
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Done::CompletedInTransaction);
                }
                continue;
            }
            for row in pending {
                let mut plan = row.plan.0;
                let dishes = plan.photo_queries();
                let found = find_photos(&ctx.db, &self.client, self.per_hour, &dishes)
                    .await
                    .map_err(|e| JobError::new(e.code(), e.to_string()))?;
                let photos: HashMap<String, serde_json::Value> = found
                    .photos
                    .iter()
                    .filter_map(|(dish, p)| {
                        Some((dish.clone(), serde_json::to_value(p.as_ref()?).ok()?))
                    })
                    .collect();
                let settled = dishes.iter().all(|d| found.photos.contains_key(d));
                plan.set_images(&photos);
                store::store_images(&ctx.db, row.id, &plan, settled)
                    .await
                    .map_err(db_error)?;
                if let Some(until) = found.deferred_until {
                    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                    return Err(JobError::new(
                        ErrorCode::ImagesRateLimit,
                        format!(
                            "the image source's hourly requests are spent; {} dishes wait",
                            dishes.len() - found.photos.len()
                        ),
                    )
                    .with_retry_after(Some(wait)));
                }
                if !settled {
                    return Err(JobError::new(
                        ErrorCode::NetworkError,
                        "some image searches failed; they are tried again",
                    ));
                }
            }
        }
        Err(JobError::new(
            ErrorCode::UnexpectedError,
            "meal plans kept arriving while their photos were searched; tried again",
        ))
    }
}
