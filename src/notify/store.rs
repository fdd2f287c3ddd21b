//! Every SQL statement of the notification outbox.

use std::time::Duration;

use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A due notification, with every active token of its user.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub job_id: Uuid,
    pub event: String,
    pub error_code: Option<String>,
    pub attempts: i32,
    pub tokens: Vec<String>,
    /// This take of the row; status writes under another token do nothing.
    pub hold_token: Uuid,
}

/// The most devices one notification goes to. This service never writes
/// `push_tokens` (the app registers them), so the cap is applied where they
/// are read, and nothing is deactivated for it: the snapshot's token (the
/// device that asked) and the newest registered ones are kept, the oldest
/// left out. One user with thousands of rows costs at most this many
/// messages.
pub const MAX_TOKENS_PER_USER: i64 = 10;

/// Takes up to `limit` due rows for `lease`; the tokens are the snapshot's
/// and the user's newest active ones, at most [`MAX_TOKENS_PER_USER`].
pub async fn claim_due(db: &PgPool, limit: i64, lease: Duration) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as::<_, OutboxRow>(
        r"with due as (
              select id from notification_outbox
              where status = 'pending' and next_attempt_at <= now()
                and (locked_until is null or locked_until < now())
              order by next_attempt_at limit $1
              for update skip locked
          ), taken as (
              update notification_outbox o
              set locked_until = now() + make_interval(secs => $2), attempts = o.attempts + 1,
                  hold_token = gen_random_uuid()
              from due where o.id = due.id
              returning o.*
          )
          select t.id, t.job_id, t.event, t.error_code, t.attempts, t.hold_token,
                 array(select s.tok from (
                     select t.snapshot_token as tok, 'infinity'::timestamptz as added
                     where t.snapshot_token is not null
                     union all
                     select p.token, p.created_at from push_tokens p
                     where p.user_id = t.user_id and p.active) s
                   group by s.tok order by max(s.added) desc, s.tok limit $3) as tokens
          from taken t order by t.id",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(MAX_TOKENS_PER_USER)
    .fetch_all(db)
    .await
}

/// The row was delivered to Expo (tickets received). False: the hold was
/// lost to another sender and nothing was written.
pub async fn mark_sent(db: &PgPool, row: &OutboxRow, tickets: &[String]) -> sqlx::Result<bool> {
    let done = sqlx::query(
        r"update notification_outbox set status = 'sent', ticket_ids = $3, finished_at = now(),
                 locked_until = null, last_error = null
          where id = $1 and hold_token = $2 and status = 'pending'",
    )
    .bind(row.id)
    .bind(row.hold_token)
    .bind(tickets)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The row ends without delivery: `failed`, or `skipped` (nothing to send
/// with). False: the hold was lost and nothing was written.
pub async fn mark_ended(
    db: &PgPool,
    row: &OutboxRow,
    status: &str,
    error: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        r"update notification_outbox set status = $3, last_error = left($4, 2000), finished_at = now(),
                 locked_until = null
          where id = $1 and hold_token = $2 and status = 'pending'",
    )
    .bind(row.id)
    .bind(row.hold_token)
    .bind(status)
    .bind(error)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Tries the row again after `delay`. False: the hold was lost.
pub async fn retry_later(
    db: &PgPool,
    row: &OutboxRow,
    delay: Duration,
    error: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        r"update notification_outbox set next_attempt_at = now() + make_interval(secs => $3),
                 locked_until = null, last_error = left($4, 2000)
          where id = $1 and hold_token = $2 and status = 'pending'",
    )
    .bind(row.id)
    .bind(row.hold_token)
    .bind(delay.as_secs_f64())
    .bind(error)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Expo said the device is gone: stop sending to this token.
pub async fn deactivate_token(db: &PgPool, token: &str) -> sqlx::Result<()> {
    sqlx::query(r"update push_tokens set active = false, deactivated_at = now() where token = $1 and active")
        .bind(token)
        .execute(db)
        .await?;
    Ok(())
}
