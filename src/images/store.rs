//! Every SQL statement of meal images: the search cache, the hourly request
//! window shared by all workers, and the download events sent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::unsplash::Photo;

/// Days a search result (a photo or "none") is reused.
pub const CACHE_DAYS: i32 = 30;

/// The cache key of a dish: lowercase, apostrophes dropped, other
/// punctuation and symbols read as spaces, whitespace collapsed and trimmed.
/// "Mom's Stir-Fry!" and "moms  stir fry" are one key.
pub fn normalise(dish: &str) -> String {
    let mut out = String::with_capacity(dish.len());
    let mut gap = false;
    for c in dish.chars().flat_map(char::to_lowercase) {
        if matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`') {
            continue;
        }
        if c.is_alphanumeric() || is_mark(c) {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

/// Combining marks, which belong to the letter before them but are not
/// alphanumeric themselves: accents written as marks, and the viramas and
/// nuktas of Indian scripts (whose dandas stay punctuation).
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
        || (('\u{0900}'..='\u{0DFF}').contains(&c) && !matches!(c, '\u{0964}' | '\u{0965}'))
}

/// Fresh cache entries (younger than [`CACHE_DAYS`]) of these keys; an
/// entry whose JSON no longer reads as a [`Photo`] counts as a miss.
pub async fn cached(db: &PgPool, keys: &[String]) -> sqlx::Result<HashMap<String, Option<Photo>>> {
    let rows: Vec<(String, Option<serde_json::Value>)> = sqlx::query_as(
        r"select query_key, photo from unsplash_search_cache
          where query_key = any($1) and searched_at > now() - make_interval(days => $2)",
    )
    .bind(keys)
    .bind(CACHE_DAYS)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, photo)| match photo {
            None => Some((key, None)),
            Some(json) => serde_json::from_value(json).ok().map(|p| (key, Some(p))),
        })
        .collect())
}

/// Stores a search's answer (None: Unsplash had no suitable photo).
pub async fn store_search(db: &PgPool, key: &str, photo: Option<&Photo>) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into unsplash_search_cache (query_key, photo) values ($1, $2)
          on conflict (query_key) do update set photo = excluded.photo, searched_at = now()",
    )
    .bind(key)
    .bind(photo.map(Json))
    .execute(db)
    .await?;
    Ok(())
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead; the request counts in this hour's window (close it there
    /// if Unsplash says the hour is spent).
    Admitted { window: DateTime<Utc> },
    /// The hour is spent or closed: no request before this time.
    Wait(DateTime<Utc>),
}

/// Takes one request from the current clock hour's window if it has fewer
/// than `per_hour` and is not closed, in one statement: concurrent workers
/// serialise on the window's row, so an hour never admits more than
/// `per_hour`. The first request of an hour deletes windows older than a day.
pub async fn take_call(db: &PgPool, per_hour: u32) -> sqlx::Result<Admit> {
    // The hour in UTC, not the session's time zone: a +05:30 session would
    // otherwise start its windows at half past.
    let (window, admitted): (DateTime<Utc>, bool) = sqlx::query_as(
        r"with hour as (
              select date_trunc('hour', now(), 'UTC') as start
          ), take as (
              insert into unsplash_rate_window as w (window_start, calls)
              select start, 1 from hour where $1 > 0
              on conflict (window_start) do update set calls = w.calls + 1
                  where w.calls < $1 and not w.closed
              -- xmax = 0: this statement inserted the row (the hour's first request).
              returning (w.xmax = 0) as opened
          ), old as (
              delete from unsplash_rate_window
              where window_start < (select start from hour) - interval '1 day'
                and exists (select 1 from take where opened)
          )
          select (select start from hour), exists (select 1 from take)",
    )
    .bind(i64::from(per_hour))
    .fetch_one(db)
    .await?;
    Ok(if admitted {
        Admit::Admitted { window }
    } else {
        Admit::Wait(window + chrono::Duration::hours(1))
    })
}

/// Closes a window: Unsplash said its hour is spent, so no worker calls
/// again before the next hour, whatever the count says.
pub async fn close_window(db: &PgPool, window: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into unsplash_rate_window (window_start, calls, closed)
          values (date_trunc('hour', $1, 'UTC'), 0, true)
          on conflict (window_start) do update set closed = true",
    )
    .bind(window)
    .execute(db)
    .await?;
    Ok(())
}

/// Records that a plan's photo had its download event; true only the first
/// time, so a retried job sends each event once.
pub async fn mark_download(db: &PgPool, plan_id: Uuid, photo_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        r"insert into unsplash_downloads (plan_id, photo_id) values ($1, $2)
          on conflict do nothing",
    )
    .bind(plan_id)
    .bind(photo_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets a download mark whose event could not be sent, so that a later
/// attempt sends it.
pub async fn unmark_download(db: &PgPool, plan_id: Uuid, photo_id: &str) -> sqlx::Result<()> {
    sqlx::query(r"delete from unsplash_downloads where plan_id = $1 and photo_id = $2")
        .bind(plan_id)
        .bind(photo_id)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn case_and_outer_and_inner_whitespace_do_not_matter() {
        assert_eq!(normalise("  Grilled   SALMON\t"), "grilled salmon");
        assert_eq!(normalise("grilled salmon"), "grilled salmon");
    }

    #[test]
    fn punctuation_is_dropped_and_apostrophes_join_the_word() {
        assert_eq!(normalise("Mom's Stir-Fry!"), "moms stir fry");
        assert_eq!(normalise("moms  stir fry"), "moms stir fry");
        assert_eq!(normalise("Mac & Cheese (baked)."), "mac cheese baked");
        assert_eq!(normalise("Chef’s salad"), "chefs salad");
    }

    #[test]
    fn letters_beyond_ascii_are_kept_and_lowercased() {
        assert_eq!(normalise("Crème Brûlée"), "crème brûlée");
        assert_eq!(normalise("ÄPFEL, 2 Stück"), "äpfel 2 stück");
        assert_eq!(normalise("दाल मखनी"), "दाल मखनी");
        assert_eq!(normalise("चिकन टिक्का।"), "चिकन टिक्का", "the virama stays");
        assert_eq!(
            normalise("Cre\u{0300}me"),
            "cre\u{0300}me",
            "a combining accent stays"
        );
    }

    #[test]
    fn a_name_of_punctuation_only_has_an_empty_key() {
        assert_eq!(normalise(" -- !? "), "");
        assert_eq!(normalise(""), "");
    }
}
