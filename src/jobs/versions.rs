//! What the versioned plan tables (`weekly_base_plans`, `meal_plans`) share:
//! one active version per user, and making an older one active again.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// Makes the user's version `id` of `table` the active one and returns it
/// read as `columns`; None when the user has no such version (nothing
/// changes then). The caller holds the table's per-user save lock. Two
/// statements, the old active one switched off first: the unique index of
/// active versions is checked row by row.
pub async fn activate<T>(
    tx: &mut PgConnection,
    table: &'static str,
    columns: &'static str,
    user: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update {table} set is_active = false \
         where user_id = $1 and is_active and id <> $2 \
           and exists (select 1 from {table} where id = $2 and user_id = $1)"
    )))
    .bind(user)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update {table} set is_active = true where id = $2 and user_id = $1 returning {columns}"
    )))
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
}
