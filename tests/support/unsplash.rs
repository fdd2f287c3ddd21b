//! A stand-in for the Unsplash API on 127.0.0.1, following the documented
//! shapes: `GET /search/photos` and `GET /photos/{id}/download`, the
//! `Authorization: Client-ID` and `Accept-Version: v1` headers (401
//! without them), `X-Ratelimit-Limit`/`X-Ratelimit-Remaining` on every
//! answer, and 403 "Rate Limit Exceeded" when switched to it. It counts
//! requests per query and download events per photo.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The access key the stand-in accepts.
pub const KEY: &str = "stand-in-key-5b1e9c";
/// X-Ratelimit-Limit of every answer.
pub const LIMIT: i64 = 50;

#[derive(Default)]
struct Shared {
    base_url: OnceLock<String>,
    searches: Mutex<HashMap<String, usize>>,
    downloads: Mutex<HashMap<String, usize>>,
    rate_limited: AtomicBool,
    echo_key: AtomicBool,
    empty: Mutex<HashSet<String>>,
    failing: Mutex<HashSet<String>>,
    remaining: AtomicI64,
}

/// The running stand-in; stops when dropped.
pub struct StandIn {
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    pub async fn start() -> StandIn {
        let shared = Arc::new(Shared {
            remaining: AtomicI64::new(LIMIT),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/search/photos", get(search))
            .route("/photos/{id}/download", get(download))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        shared.base_url.set(base_url.clone()).unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StandIn {
            base_url,
            shared,
            task,
        }
    }

    /// Authorised search requests for this query (compared lowercase).
    pub fn searches(&self, query: &str) -> usize {
        let searches = self.shared.searches.lock().unwrap();
        searches.get(&query.to_lowercase()).copied().unwrap_or(0)
    }

    /// Authorised search requests of any query.
    pub fn total_searches(&self) -> usize {
        self.shared.searches.lock().unwrap().values().sum()
    }

    /// Authorised download events of this photo.
    pub fn downloads(&self, photo_id: &str) -> usize {
        let downloads = self.shared.downloads.lock().unwrap();
        downloads.get(photo_id).copied().unwrap_or(0)
    }

    /// Every request answers 403 "Rate Limit Exceeded" while on.
    pub fn set_rate_limited(&self, on: bool) {
        self.shared.rate_limited.store(on, Ordering::SeqCst);
    }

    /// Requests left in the hour; each answer counts one down and reports it.
    pub fn set_remaining(&self, n: i64) {
        self.shared.remaining.store(n, Ordering::SeqCst);
    }

    /// This query finds nothing (`results: []`).
    pub fn set_empty(&self, query: &str) {
        self.shared
            .empty
            .lock()
            .unwrap()
            .insert(query.to_lowercase());
    }

    /// This query answers 500.
    pub fn set_failing(&self, query: &str) {
        let mut failing = self.shared.failing.lock().unwrap();
        failing.insert(query.to_lowercase());
    }

    /// Searches answer 200 with a body that is not JSON and quotes the
    /// Authorization header (a misbehaving proxy).
    pub fn set_echo_key(&self, on: bool) {
        self.shared.echo_key.store(on, Ordering::SeqCst);
    }
}

/// The deterministic id of the photo a query finds.
pub fn photo_id(query: &str) -> String {
    format!("ph-{}", slug(query))
}

fn slug(query: &str) -> String {
    query
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn authorised(headers: &HeaderMap) -> bool {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let version = headers.get("accept-version").and_then(|v| v.to_str().ok());
    auth == Some(&format!("Client-ID {KEY}")) && version == Some("v1")
}

/// The rate-limit headers, counting this request.
fn limit_headers(s: &Shared) -> [(&'static str, String); 2] {
    let before = s
        .remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| Some((r - 1).max(0)))
        .unwrap();
    [
        ("x-ratelimit-limit", LIMIT.to_string()),
        ("x-ratelimit-remaining", (before - 1).max(0).to_string()),
    ]
}

fn refused() -> Response {
    let body = json!({"errors": ["OAuth error: The access token is invalid"]});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

fn rate_limited() -> Response {
    let headers = [
        ("x-ratelimit-limit", LIMIT.to_string()),
        ("x-ratelimit-remaining", "0".to_owned()),
    ];
    (StatusCode::FORBIDDEN, headers, "Rate Limit Exceeded").into_response()
}

async fn search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !authorised(&headers) {
        return refused();
    }
    let Some(query) = params.get("query").map(|q| q.to_lowercase()) else {
        return (StatusCode::BAD_REQUEST, "query is missing").into_response();
    };
    let expected = [
        ("orientation", "landscape"),
        ("per_page", "5"),
        ("content_filter", "high"),
    ];
    if let Some((name, _)) = expected
        .iter()
        .find(|(name, value)| params.get(*name).map(String::as_str) != Some(*value))
    {
        return (StatusCode::BAD_REQUEST, format!("unexpected {name}")).into_response();
    }
    *s.searches.lock().unwrap().entry(query.clone()).or_default() += 1;
    if s.rate_limited.load(Ordering::SeqCst) {
        return rate_limited();
    }
    let limits = limit_headers(&s);
    if s.failing.lock().unwrap().contains(&query) {
        return (StatusCode::INTERNAL_SERVER_ERROR, limits, "oops").into_response();
    }
    if s.echo_key.load(Ordering::SeqCst) {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        return (
            StatusCode::OK,
            limits,
            format!("<html>you sent {auth}</html>"),
        )
            .into_response();
    }
    let results = if s.empty.lock().unwrap().contains(&query) {
        vec![]
    } else {
        let base = s.base_url.get().unwrap();
        vec![unsuitable(&query), photo(base, &query)]
    };
    let body = json!({"total": results.len(), "total_pages": 1, "results": results});
    (StatusCode::OK, limits, axum::Json(body)).into_response()
}

async fn download(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorised(&headers) {
        return refused();
    }
    if s.rate_limited.load(Ordering::SeqCst) {
        return rate_limited();
    }
    *s.downloads.lock().unwrap().entry(id.clone()).or_default() += 1;
    let body = json!({"url": format!("https://images.unsplash.test/{id}?ixid=test")});
    (StatusCode::OK, limit_headers(&s), axum::Json(body)).into_response()
}

/// A photo of the query; soups have no alt description.
fn photo(base: &str, query: &str) -> Value {
    let id = photo_id(query);
    let slug = slug(query);
    let alt = (!query.contains("soup")).then(|| format!("a plate of {query}"));
    json!({
        "id": id, "width": 5000, "height": 3333, "alt_description": alt,
        "urls": {
            "raw": format!("https://images.unsplash.test/{id}"),
            "full": format!("https://images.unsplash.test/{id}?q=85"),
            "regular": format!("https://images.unsplash.test/{id}?w=1080"),
            "small": format!("https://images.unsplash.test/{id}?w=400"),
            "thumb": format!("https://images.unsplash.test/{id}?w=200"),
        },
        "links": {
            "html": format!("https://unsplash.com/photos/{id}"),
            "download_location": format!("{base}/photos/{id}/download?ixid=test"),
        },
        "user": {
            "name": format!("Cook {slug}"),
            "username": format!("cook_{slug}"),
            "links": {"html": format!("https://unsplash.com/@cook_{slug}")},
        },
    })
}

/// A result ranked first that a meal cannot use (no small size).
fn unsuitable(query: &str) -> Value {
    let id = format!("x-{}", slug(query));
    json!({
        "id": id, "width": 100, "height": 100, "alt_description": null,
        "urls": {"regular": format!("https://images.unsplash.test/{id}")},
        "links": {"html": format!("https://unsplash.com/photos/{id}")},
        "user": {"name": "Someone", "username": "someone"},
    })
}
