//! CORS for web clients, for the origins of CORS_ALLOWED_ORIGINS only. A
//! request from any other origin, or from none, reaches the router as if
//! CORS did not exist: a stranger's preflight gets the usual 405 and no
//! header that would let a browser through. tower-http writes the headers;
//! the gate in front of it exists because tower-http answers every OPTIONS
//! as a preflight, whatever its origin.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Web origins as browsers send them: `scheme://host[:port]`, comma
/// separated in the setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origins(Vec<HeaderValue>);

impl FromStr for Origins {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(origin)
            .collect::<Result<_, _>>()
            .map(Origins)
    }
}

/// One origin, in the form browsers send it (lowercase host, no default
/// port, no trailing slash).
fn origin(s: &str) -> Result<HeaderValue, String> {
    if s == "*" {
        return Err("list each origin (such as https://app.example.com), not *".into());
    }
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not an origin: {e}"))?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
        return Err(format!(
            "{s:?} is not an origin: write scheme://host[:port], such as https://app.example.com"
        ));
    }
    HeaderValue::from_str(&url.origin().ascii_serialization()).map_err(|e| e.to_string())
}

/// The CORS answers for the allowed origins.
pub struct Cors {
    origins: Origins,
    layer: CorsLayer,
}

impl Cors {
    /// None when no origin is allowed: then there is no CORS at all.
    pub fn new(origins: &Origins) -> Option<Arc<Cors>> {
        if origins.0.is_empty() {
            return None;
        }
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.0.clone()))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                // The trace the app's request continues.
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([header::LOCATION, header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE);
        Some(Arc::new(Cors {
            origins: origins.clone(),
            layer,
        }))
    }
}

/// Middleware: CORS for an allowed `Origin`, the plain router otherwise.
pub async fn gate(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|o| cors.origins.0.contains(o));
    if !allowed {
        return next.run(req).await;
    }
    let answered: Result<Response, Infallible> = cors.layer.layer(next).oneshot(req).await;
    answered.unwrap_or_else(|never| match never {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let o: Origins = " https://App.Example.com/ , http://localhost:8081,https://x.example:443"
            .parse()
            .unwrap();
        assert_eq!(
            o.0,
            [
                "https://app.example.com",
                "http://localhost:8081",
                "https://x.example"
            ]
        );
        assert_eq!("".parse::<Origins>().unwrap(), Origins::default());
        assert!(Cors::new(&Origins::default()).is_none());
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "null",
        ] {
            assert!(bad.parse::<Origins>().is_err(), "{bad} accepted");
        }
    }
}
