//! The API's own tables and counts: idempotency keys, the per-user
//! creation lock and the creation-rate window. Job rows are read through
//! `queue::store`, plans through their kind's store.

use uuid::Uuid;

/// Advisory-lock class of per-user job creation (the worker's presence
/// locks use 1886151020).
const CREATE_LOCK_CLASS: i32 = 1_886_151_021;

/// How long an Idempotency-Key is remembered.
const KEY_TTL: &str = "24 hours";

/// Keys remembered per user at most (the oldest are forgotten first): the
/// creation limit bounds new keys per window, this bounds them whatever it is.
pub const MAX_KEYS_PER_USER: i64 = 100;

/// Serialises one user's creations until the transaction ends.
pub async fn lock_user(tx: &mut sqlx::PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(CREATE_LOCK_CLASS)
        .bind(user)
        .execute(tx)
        .await?;
    Ok(())
}

/// Seconds until the oldest of the user's last `count` creations leaves
/// the window; `None` while fewer than `count` fall in it.
pub async fn rate_window_wait(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    count: u32,
    window_seconds: f64,
) -> sqlx::Result<Option<f64>> {
    // Counted: the jobs the user created, and the Idempotency-Keys that
    // were answered with an existing job (a key and the job it created
    // share their transaction's now(), so that pair counts once).
    sqlx::query_scalar(
        r"select extract(epoch from t.created_at + make_interval(secs => $2) - now())::float8
          from (
              select created_at from plan_generation_jobs
              where user_id = $1 and created_at > now() - make_interval(secs => $2)
                and kind <> 'meal_images' -- the service's own follow-up, not the user's
              union all
              select k.created_at from plan_job_idempotency_keys k
              where k.user_id = $1 and k.created_at > now() - make_interval(secs => $2)
                and not exists (select 1 from plan_generation_jobs j
                                where j.id = k.job_id and j.created_at = k.created_at)
          ) t
          order by t.created_at desc
          offset $3 - 1 limit 1",
    )
    .bind(user)
    .bind(window_seconds)
    .bind(i64::from(count))
    .fetch_optional(tx)
    .await
}

/// Forgets the user's keys older than the TTL.
pub async fn forget_expired_keys(tx: &mut sqlx::PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from plan_job_idempotency_keys \
         where user_id = $1 and created_at < now() - interval '{KEY_TTL}'"
    )))
    .bind(user)
    .execute(tx)
    .await?;
    Ok(())
}

/// The job a key was first used for, and the hash of that request.
pub async fn find_key(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    key: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as(
        "select job_id, request_hash from plan_job_idempotency_keys where user_id = $1 and key = $2",
    )
    .bind(user)
    .bind(key)
    .fetch_optional(tx)
    .await
}

/// Remembers a key with the request it came with.
pub async fn remember_key(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    key: &str,
    request_hash: &str,
    job_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into plan_job_idempotency_keys (user_id, key, request_hash, job_id) \
         values ($1, $2, $3, $4)",
    )
    .bind(user)
    .bind(key)
    .bind(request_hash)
    .bind(job_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Forgets the user's oldest keys beyond `MAX_KEYS_PER_USER`.
pub async fn cap_keys(tx: &mut sqlx::PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "delete from plan_job_idempotency_keys k using ( \
             select key from plan_job_idempotency_keys where user_id = $1 \
             order by created_at desc, key offset $2) old \
         where k.user_id = $1 and k.key = old.key",
    )
    .bind(user)
    .bind(MAX_KEYS_PER_USER)
    .execute(tx)
    .await?;
    Ok(())
}

/// Pending jobs of every user (the pending partial index; no heap visit
/// for an all-visible page).
pub async fn pending_jobs(db: &sqlx::PgPool) -> sqlx::Result<u64> {
    let n: i64 =
        sqlx::query_scalar("select count(*) from plan_generation_jobs where status = 'pending'")
            .fetch_one(db)
            .await?;
    Ok(n.max(0) as u64)
}
