//! Photos for a list of dishes: the cache first, then Unsplash within the
//! hourly window every worker shares. What cannot be searched now is left
//! for later (`deferred_until`) rather than waited for; the caller attaches
//! what it has and retries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::store::{self, Admit};
use super::unsplash::{Photo, Unsplash, UnsplashError};
use crate::error_code::ErrorCode;
use crate::telemetry::metrics::MEAL_IMAGES;

/// What [`find_photos`] settled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Per dish as given: its photo, or None when Unsplash has none (or
    /// the name has no letters). A dish missing here was not settled this
    /// time (deferred, or its search failed): try it again later.
    pub photos: HashMap<String, Option<Photo>>,
    /// Requests made to Unsplash.
    pub searched: usize,
    /// Set when dishes were left unsearched because the hour's requests
    /// are spent: the earliest time a retry can search them.
    pub deferred_until: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// A statement failed; retry the job.
    #[error("meal images: database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Every search made failed; retry the job (unless the key is refused).
    #[error("meal images: all {failed} Unsplash searches failed; the last: {last}")]
    SearchesFailed { failed: usize, last: UnsplashError },
    /// The download event could not be sent; retry the job.
    #[error("meal images: download event failed: {0}")]
    Download(UnsplashError),
}

impl ImagesError {
    /// The attempt's error code: a refused key is a setting to fix, the
    /// rest is worth another attempt.
    pub fn code(&self) -> ErrorCode {
        match self {
            ImagesError::Db(_) => ErrorCode::DbError,
            ImagesError::SearchesFailed { last: e, .. } | ImagesError::Download(e)
                if e.is_permanent() =>
            {
                ErrorCode::ConfigError
            }
            ImagesError::SearchesFailed { .. } | ImagesError::Download(_) => {
                ErrorCode::NetworkError
            }
        }
    }
}

/// How each dish ended, as the `outcome` label of `plan_meal_images_total`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// A search found a photo.
    Attached,
    /// The cache answered (a photo or none).
    Cached,
    /// A search (or the name) found nothing.
    None,
    /// Left for a later attempt: the hour's requests are spent.
    Deferred,
    /// Its search failed.
    Error,
}

impl Outcome {
    fn count(self, dishes: usize) {
        let label = match self {
            Outcome::Attached => "attached",
            Outcome::Cached => "cached",
            Outcome::None => "none",
            Outcome::Deferred => "deferred",
            Outcome::Error => "error",
        };
        metrics::counter!(MEAL_IMAGES, "outcome" => label).increment(dishes as u64);
    }
}

/// Gives every name of a key its answer.
fn settle(
    photos: &mut HashMap<String, Option<Photo>>,
    names: &[&String],
    photo: Option<Photo>,
    outcome: Outcome,
) {
    outcome.count(names.len());
    for name in names {
        photos.insert((*name).clone(), photo.clone());
    }
}

/// Dishes grouped by cache key, in the order they first appear.
fn group(dishes: &[String]) -> Vec<(String, Vec<&String>)> {
    let mut groups: Vec<(String, Vec<&String>)> = Vec::new();
    for dish in dishes {
        let key = store::normalise(dish);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) if names.contains(&dish) => {}
            Some((_, names)) => names.push(dish),
            None => groups.push((key, vec![dish])),
        }
    }
    groups
}

/// Finds a photo per dish: names that normalise alike share one search;
/// fresh cache entries are used as they are; each miss takes a request
/// from the shared hourly window, searches, and caches the answer. When the
/// window is spent (our count, or Unsplash's 403 or last request, which
/// close it for every worker) the rest is deferred. A failed search leaves
/// its dish out and the others go on; if every search failed (and none was
/// deferred), the whole call fails so that the job retries.
#[tracing::instrument(skip_all, fields(dishes = dishes.len()))]
pub async fn find_photos(
    db: &PgPool,
    client: &Unsplash,
    per_hour: u32,
    dishes: &[String],
) -> Result<Found, ImagesError> {
    let mut found = Found::default();
    let groups = group(dishes);
    let keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
    let mut cache = store::cached(db, &keys).await?;
    let mut misses = Vec::new();
    for (key, names) in &groups {
        if key.is_empty() {
            settle(&mut found.photos, names, None, Outcome::None);
        } else if let Some(photo) = cache.remove(key) {
            settle(&mut found.photos, names, photo, Outcome::Cached);
        } else {
            misses.push((key, names));
        }
    }

    let mut pass = Pass {
        found,
        ..Pass::default()
    };
    // Misses up to `reached` have been dealt with; the rest was not reached.
    let mut reached = 0;
    for (i, (key, names)) in misses.iter().enumerate() {
        reached = i + 1;
        let window = match store::take_call(db, per_hour).await? {
            Admit::Admitted { window } => window,
            Admit::Wait(until) => {
                pass.found.deferred_until = Some(until);
                Outcome::Deferred.count(names.len());
                break;
            }
        };
        let more = reached < misses.len();
        if !pass.search(db, client, window, key, names, more).await? {
            break;
        }
    }
    // Whatever the loop did not reach is deferred, or failed with the key.
    let key_refused = pass
        .last_error
        .as_ref()
        .is_some_and(UnsplashError::is_permanent);
    let rest: usize = misses[reached..].iter().map(|(_, names)| names.len()).sum();
    if rest > 0 {
        let outcome = if key_refused {
            Outcome::Error
        } else {
            Outcome::Deferred
        };
        outcome.count(rest);
    }

    let Pass {
        found,
        ok,
        failed,
        last_error,
    } = pass;
    if let Some(last) = last_error
        && ok == 0
        && found.deferred_until.is_none()
    {
        return Err(ImagesError::SearchesFailed { failed, last });
    }
    Ok(found)
}

/// A pass over the cache misses.
#[derive(Default)]
struct Pass {
    found: Found,
    /// Searches answered.
    ok: usize,
    /// Searches that failed, and the last failure.
    failed: usize,
    last_error: Option<UnsplashError>,
}

impl Pass {
    /// Searches one miss with a request admitted in `window`, caches and
    /// settles the answer. False: stop here (the hour is spent, or the key
    /// is refused); `more` says whether misses are left to defer.
    async fn search(
        &mut self,
        db: &PgPool,
        client: &Unsplash,
        window: DateTime<Utc>,
        key: &str,
        names: &[&String],
        more: bool,
    ) -> sqlx::Result<bool> {
        let next_hour = window + chrono::Duration::hours(1);
        self.found.searched += 1;
        // The first spelling seen is the query (and the alt text when the
        // photo has none); its answer serves every spelling of the key.
        match client.search(names[0].trim()).await {
            Ok(reply) => {
                self.ok += 1;
                store::store_search(db, key, reply.value.as_ref()).await?;
                let outcome = if reply.value.is_some() {
                    Outcome::Attached
                } else {
                    Outcome::None
                };
                settle(&mut self.found.photos, names, reply.value, outcome);
                if !reply.window_spent {
                    return Ok(true);
                }
                // That was the hour's last request: close the window for
                // every worker; the rest (if any) waits for the next hour.
                store::close_window(db, window).await?;
                if more {
                    self.found.deferred_until = Some(next_hour);
                }
                Ok(false)
            }
            Err(UnsplashError::RateLimited) => {
                store::close_window(db, window).await?;
                self.found.deferred_until = Some(next_hour);
                Outcome::Deferred.count(names.len());
                Ok(false)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Unsplash search failed; the dish is left for a later attempt");
                Outcome::Error.count(names.len());
                self.failed += 1;
                // A refused key is refused for every dish.
                let go_on = !e.is_permanent();
                self.last_error = Some(e);
                Ok(go_on)
            }
        }
    }
}

/// What [`track_download`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// The download event was sent now.
    Sent,
    /// It had been sent for this plan and photo before.
    AlreadySent,
    /// The hour's requests are spent: try again after this time.
    Deferred(DateTime<Utc>),
    /// Never sent: its download_location is not on the configured API
    /// host (a photo cached before UNSPLASH_API_URL changed, say). Retrying
    /// will not help; the photo may still be shown.
    Refused,
}

/// Sends the download event of a photo a plan uses, once per plan and
/// photo, within the shared hourly window. The mark is written first, so
/// that two attempts racing cannot both send; if the request fails the mark
/// is removed so that a retry sends it.
#[tracing::instrument(skip_all, fields(plan.id = %plan_id, photo.id = %photo.id))]
pub async fn track_download(
    db: &PgPool,
    client: &Unsplash,
    per_hour: u32,
    plan_id: Uuid,
    photo: &Photo,
) -> Result<Tracked, ImagesError> {
    // Checked before the mark and the window: a refused URL spends neither.
    if !client.is_api_url(&photo.download_location) {
        tracing::warn!("download_location outside the Unsplash API; not sent");
        return Ok(Tracked::Refused);
    }
    if !store::mark_download(db, plan_id, &photo.id).await? {
        return Ok(Tracked::AlreadySent);
    }
    let window = match store::take_call(db, per_hour).await? {
        Admit::Admitted { window } => window,
        Admit::Wait(until) => {
            store::unmark_download(db, plan_id, &photo.id).await?;
            return Ok(Tracked::Deferred(until));
        }
    };
    match client.track_download(&photo.download_location).await {
        Ok(reply) => {
            if reply.window_spent {
                store::close_window(db, window).await?;
            }
            Ok(Tracked::Sent)
        }
        Err(e) => {
            store::unmark_download(db, plan_id, &photo.id).await?;
            match e {
                UnsplashError::RateLimited => {
                    store::close_window(db, window).await?;
                    Ok(Tracked::Deferred(window + chrono::Duration::hours(1)))
                }
                UnsplashError::ForeignUrl(_) => Ok(Tracked::Refused),
                e => Err(ImagesError::Download(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn dishes_that_normalise_alike_share_one_key_in_first_seen_order() {
        let dishes: Vec<String> = ["Dal Makhani", "Oats", "dal  makhani!", "Dal Makhani"]
            .map(String::from)
            .into();
        let groups = group(&dishes);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "dal makhani");
        assert_eq!(groups[0].1, [&dishes[0], &dishes[2]]);
        assert_eq!(groups[1].0, "oats");
    }
}
