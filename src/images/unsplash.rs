//! The Unsplash API client: one photo search per dish, and the download
//! tracking the API guidelines ask for when a photo is used. The access key
//! travels only in a sensitive header to the configured API host; it is in
//! no error, log line or metric.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url, redirect};
use serde::{Deserialize, Serialize};

use crate::config::SettingError;
use crate::telemetry::metrics::{UNSPLASH_REQUEST_DURATION, UNSPLASH_REQUESTS};

/// A search answer for five photos is a few kilobytes; stop reading a body
/// far larger than that rather than buffer whatever a broken proxy sends.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Photos asked for per search: enough to skip a few unsuitable ones.
const PER_PAGE: &str = "5";

/// How to reach Unsplash; `UnsplashSettings::client` builds it.
#[derive(Clone)]
pub struct UnsplashConfig {
    /// Base URL of the API (`https://api.unsplash.com`).
    pub api_url: Url,
    pub access_key: String,
    /// Sent as `utm_source` in attribution links.
    pub app_name: String,
    /// Deadline of one request (connect, headers and body).
    pub timeout: Duration,
}

/// A photo as a meal stores it: hotlinked URLs and the attribution the API
/// guidelines require, links already carrying the utm parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub id: String,
    /// `urls.regular`, hotlinked.
    pub url: String,
    /// `urls.small`, hotlinked.
    pub thumb_url: String,
    /// `alt_description`, else the dish name.
    pub alt: String,
    /// `user.name`, for "Photo by <photographer> on Unsplash".
    pub photographer: String,
    /// The photographer's profile, with utm parameters.
    pub photographer_url: String,
    /// The photo's page on unsplash.com, with utm parameters.
    pub unsplash_url: String,
    /// Where to send the download event when the photo is used.
    pub download_location: String,
}

/// A usable answer, and whether it spent the hour's last request
/// (`X-Ratelimit-Remaining: 0`): then the caller closes the shared window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub window_spent: bool,
}

/// What can go wrong in one request. Display never holds the access key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsplashError {
    /// 403 "Rate Limit Exceeded" (or 429): no more requests this clock hour.
    #[error("Unsplash rate limit exceeded for this hour")]
    RateLimited,
    /// Any other non-success status.
    #[error("Unsplash answered HTTP {0}")]
    Status(u16),
    /// Connect, TLS, timeout, or the body broke off.
    #[error("network error talking to Unsplash: {0}")]
    Transport(String),
    /// A success whose body is not what the API documents.
    #[error("Unsplash sent an unexpected body: {0}")]
    Decode(String),
    /// A download_location on another host than the configured API: the
    /// server never calls URLs that data handed to it.
    #[error("refused to call a download_location outside the Unsplash API (host {0:?})")]
    ForeignUrl(String),
}

impl UnsplashError {
    /// Errors that no retry fixes: the key is refused.
    pub fn is_permanent(&self) -> bool {
        matches!(self, UnsplashError::Status(401 | 403))
    }
}

/// The Unsplash client. Clones share the connection pool.
#[derive(Clone)]
pub struct Unsplash {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    /// Kept only to scrub it from any text that ends up in an error.
    key: String,
    app_name: String,
    timeout: Duration,
}

impl fmt::Debug for Unsplash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsplash")
            .field("base", &self.inner.base.as_str())
            .field("app_name", &self.inner.app_name)
            .finish_non_exhaustive()
    }
}

/// The two endpoints, as metric labels.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Search,
    Download,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Search => "search",
            Endpoint::Download => "download",
        }
    }
}

impl Unsplash {
    /// Builds the client; no network traffic.
    pub fn new(cfg: UnsplashConfig) -> Result<Self, SettingError> {
        if cfg.access_key.trim().is_empty() {
            return Err(SettingError {
                field: "unsplash_access_key",
                message: "must not be empty".into(),
            });
        }
        let mut auth =
            HeaderValue::from_str(&format!("Client-ID {}", cfg.access_key)).map_err(|_| {
                SettingError {
                    field: "unsplash_access_key",
                    message: "has characters not allowed in an HTTP header".into(),
                }
            })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            // A redirect could carry the request (and, for a same-host hop,
            // the key) somewhere the host check never saw.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("plan-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingError {
                field: "unsplash_api_url",
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Unsplash {
            inner: Arc::new(Inner {
                http,
                base: cfg.api_url,
                auth,
                key: cfg.access_key,
                app_name: cfg.app_name,
                timeout: cfg.timeout,
            }),
        })
    }

    /// Searches landscape photos for a dish and keeps the first suitable
    /// one; `value` is None when Unsplash has none.
    #[tracing::instrument(skip_all)]
    pub async fn search(&self, dish: &str) -> Result<Reply<Option<Photo>>, UnsplashError> {
        let mut url = self.inner.endpoint("search/photos");
        url.query_pairs_mut()
            .append_pair("query", dish)
            .append_pair("orientation", "landscape")
            .append_pair("per_page", PER_PAGE)
            .append_pair("content_filter", "high");
        let answer = self.inner.call(Endpoint::Search, url).await?;
        let page: SearchPage = serde_json::from_str(&answer.body)
            .map_err(|e| UnsplashError::Decode(self.inner.scrub(&e.to_string())))?;
        let photo = page
            .results
            .into_iter()
            .find_map(|p| p.into_photo(dish, &self.inner.app_name));
        Ok(Reply {
            value: photo,
            window_spent: answer.window_spent,
        })
    }

    /// Whether `location` is on the configured API's scheme, host and port,
    /// the only place [`Unsplash::track_download`] sends a request to.
    pub fn is_api_url(&self, location: &str) -> bool {
        self.inner.own_url(location).is_ok()
    }

    /// Sends the download event of a used photo to its `download_location`,
    /// which must be on the configured API host.
    #[tracing::instrument(skip_all)]
    pub async fn track_download(
        &self,
        download_location: &str,
    ) -> Result<Reply<()>, UnsplashError> {
        let url = self.inner.own_url(download_location)?;
        let answer = self.inner.call(Endpoint::Download, url).await?;
        Ok(Reply {
            value: (),
            window_spent: answer.window_spent,
        })
    }
}

/// A success read to its end.
struct Answer {
    body: String,
    window_spent: bool,
}

impl Inner {
    /// The base URL with `path` appended to its own path.
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    /// `location` parsed, if it is on the API's scheme, host and port.
    fn own_url(&self, location: &str) -> Result<Url, UnsplashError> {
        let url =
            Url::parse(location).map_err(|_| UnsplashError::ForeignUrl("not a URL".into()))?;
        if url.origin() != self.base.origin() || !url.username().is_empty() {
            return Err(UnsplashError::ForeignUrl(
                url.host_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(url)
    }

    /// One GET with the key, timed and counted.
    async fn call(&self, endpoint: Endpoint, url: Url) -> Result<Answer, UnsplashError> {
        let started = Instant::now();
        let result = self.exchange(url).await;
        metrics::histogram!(UNSPLASH_REQUEST_DURATION, "endpoint" => endpoint.label())
            .record(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(UnsplashError::RateLimited) => "rate_limited",
            Err(_) => "error",
        };
        metrics::counter!(UNSPLASH_REQUESTS, "endpoint" => endpoint.label(), "outcome" => outcome)
            .increment(1);
        if let Err(e) = &result {
            tracing::debug!(endpoint = endpoint.label(), error = %e, "Unsplash request failed");
        }
        result
    }

    async fn exchange(&self, url: Url) -> Result<Answer, UnsplashError> {
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header("Accept-Version", "v1")
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let window_spent = remaining(resp.headers()) == Some(0);
        let body = self.read_body(resp).await?;
        if status.is_success() {
            return Ok(Answer { body, window_spent });
        }
        // Unsplash has no 429: over the limit it answers 403 with this body.
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && body.contains("Rate Limit Exceeded"))
        {
            return Err(UnsplashError::RateLimited);
        }
        Err(UnsplashError::Status(status.as_u16()))
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<String, UnsplashError> {
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e))? {
            if buf.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(UnsplashError::Decode(format!(
                    "body larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn transport(&self, e: reqwest::Error) -> UnsplashError {
        if e.is_timeout() {
            return UnsplashError::Transport(format!(
                "timed out after {}s",
                self.timeout.as_secs_f64()
            ));
        }
        // The cause chain names what broke (refused, reset, TLS); the URL
        // adds nothing but the dish.
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        UnsplashError::Transport(self.scrub(&detail))
    }

    fn scrub(&self, text: &str) -> String {
        text.replace(&self.key, "[redacted]")
    }
}

/// `X-Ratelimit-Remaining`, when present and a number.
fn remaining(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("x-ratelimit-remaining")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `link` with `utm_source=<app>&utm_medium=referral` appended to its query
/// (after `?` or `&`, before any fragment), the app name encoded.
pub fn with_utm(link: &str, app_name: &str) -> Option<String> {
    let mut url = Url::parse(link).ok()?;
    url.query_pairs_mut()
        .append_pair("utm_source", app_name)
        .append_pair("utm_medium", "referral");
    Some(url.into())
}

/// The documented shape of `GET /search/photos`; every field optional, so
/// that one odd result is skipped rather than failing the page.
#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    results: Vec<WirePhoto>,
}

#[derive(Deserialize)]
struct WirePhoto {
    id: Option<String>,
    alt_description: Option<String>,
    urls: Option<WireUrls>,
    links: Option<WireLinks>,
    user: Option<WireUser>,
}

#[derive(Deserialize)]
struct WireUrls {
    regular: Option<String>,
    small: Option<String>,
}

#[derive(Deserialize)]
struct WireLinks {
    html: Option<String>,
    download_location: Option<String>,
}

#[derive(Deserialize)]
struct WireUser {
    name: Option<String>,
    username: Option<String>,
    links: Option<WireUserLinks>,
}

#[derive(Deserialize)]
struct WireUserLinks {
    html: Option<String>,
}

fn present(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl WirePhoto {
    /// The meal's photo, if this result has what a meal shows and the
    /// guidelines require (both image sizes, the photographer, the download
    /// event's URL).
    fn into_photo(self, dish: &str, app_name: &str) -> Option<Photo> {
        let id = present(self.id)?;
        let urls = self.urls?;
        let links = self.links?;
        let user = self.user?;
        let user_page = present(user.links.and_then(|l| l.html))
            .or_else(|| present(user.username).map(|u| format!("https://unsplash.com/@{u}")));
        let photo_page =
            present(links.html).unwrap_or_else(|| format!("https://unsplash.com/photos/{id}"));
        Some(Photo {
            url: present(urls.regular)?,
            thumb_url: present(urls.small)?,
            download_location: present(links.download_location)?,
            photographer: present(user.name)?,
            photographer_url: with_utm(&user_page?, app_name)?,
            unsplash_url: with_utm(&photo_page, app_name)?,
            alt: present(self.alt_description).unwrap_or_else(|| dish.trim().to_owned()),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_follow_a_question_mark_or_an_ampersand() {
        assert_eq!(
            with_utm("https://unsplash.com/@anna", "plan-worker").unwrap(),
            "https://unsplash.com/@anna?utm_source=plan-worker&utm_medium=referral"
        );
        assert_eq!(
            with_utm("https://unsplash.com/photos/x?lang=en#top", "plan-worker").unwrap(),
            "https://unsplash.com/photos/x?lang=en&utm_source=plan-worker&utm_medium=referral#top"
        );
    }

    #[test]
    fn the_app_name_is_url_encoded() {
        assert_eq!(
            with_utm("https://unsplash.com/@anna", "Meal Plans & Co").unwrap(),
            "https://unsplash.com/@anna?utm_source=Meal+Plans+%26+Co&utm_medium=referral"
        );
    }

    fn wire(json: serde_json::Value) -> WirePhoto {
        serde_json::from_value(json).unwrap()
    }

    fn full() -> serde_json::Value {
        serde_json::json!({
            "id": "abc", "width": 4000, "height": 3000, "alt_description": null,
            "urls": {"raw": "r", "full": "f", "regular": "https://images.unsplash.com/abc?w=1080",
                     "small": "https://images.unsplash.com/abc?w=400", "thumb": "t"},
            "links": {"html": "https://unsplash.com/photos/abc",
                      "download_location": "https://api.unsplash.com/photos/abc/download?ixid=1"},
            "user": {"name": "Anna B", "username": "anna", "links": {"html": "https://unsplash.com/@anna"}}
        })
    }

    #[test]
    fn a_result_becomes_the_meals_photo_with_the_dish_as_alt_text_when_it_has_none() {
        let photo = wire(full()).into_photo(" Dal makhani ", "app").unwrap();
        assert_eq!(photo.alt, "Dal makhani");
        assert_eq!(photo.url, "https://images.unsplash.com/abc?w=1080");
        assert_eq!(photo.thumb_url, "https://images.unsplash.com/abc?w=400");
        assert_eq!(photo.photographer, "Anna B");
        assert_eq!(
            photo.unsplash_url,
            "https://unsplash.com/photos/abc?utm_source=app&utm_medium=referral"
        );
    }

    #[test]
    fn a_result_without_what_a_meal_needs_is_unsuitable() {
        for path in [
            "/urls/small",
            "/urls/regular",
            "/links/download_location",
            "/user/name",
        ] {
            let mut json = full();
            *json.pointer_mut(path).unwrap() = serde_json::Value::Null;
            assert!(wire(json).into_photo("x", "app").is_none(), "{path}");
        }
    }
}
