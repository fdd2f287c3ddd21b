//! A minimal Unsplash stand-in for the benches: `GET /search/photos`
//! answers one photo per query in the documented shape (ids derived from
//! the query, links on this server), `GET /photos/{id}/download` answers
//! the download event; both count their calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Counts {
    searches: AtomicUsize,
    downloads: AtomicUsize,
}

pub struct MockUnsplash {
    pub base_url: String,
    counts: Arc<Counts>,
    stop: CancellationToken,
}

impl Drop for MockUnsplash {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl MockUnsplash {
    pub async fn start() -> anyhow::Result<Self> {
        let counts = Arc::new(Counts::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = (counts.clone(), base_url.clone());
        let app = Router::new()
            .route("/search/photos", get(search))
            .route("/photos/{id}/download", get(download))
            .with_state(state);
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(MockUnsplash {
            base_url,
            counts,
            stop,
        })
    }

    pub fn searches(&self) -> usize {
        self.counts.searches.load(Ordering::Relaxed)
    }
}

type Shared = (Arc<Counts>, String);

async fn search(
    State((counts, base)): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    counts.searches.fetch_add(1, Ordering::Relaxed);
    let query = q.get("query").cloned().unwrap_or_default();
    let id: String = query
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    axum::Json(json!({
        "total": 1, "total_pages": 1,
        "results": [{
            "id": id, "width": 4000, "height": 2667, "alt_description": query,
            "urls": {"raw": format!("{base}/raw/{id}"), "full": format!("{base}/full/{id}"),
                     "regular": format!("{base}/regular/{id}"), "small": format!("{base}/small/{id}"),
                     "thumb": format!("{base}/thumb/{id}")},
            "links": {"html": format!("https://unsplash.com/photos/{id}"),
                      "download_location": format!("{base}/photos/{id}/download")},
            "user": {"name": "Bench Photographer", "username": "bench",
                     "links": {"html": "https://unsplash.com/@bench"}}
        }]
    }))
}

async fn download(State((counts, _)): State<Shared>, Path(id): Path<String>) -> axum::Json<Value> {
    counts.downloads.fetch_add(1, Ordering::Relaxed);
    axum::Json(json!({ "url": format!("https://images.unsplash.com/{id}") }))
}
