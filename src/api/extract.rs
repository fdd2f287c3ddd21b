//! Extractors that refuse bad input in the API's error shape (axum's own
//! answer in plain text).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;

/// A JSON object body. Over the size cap -> 413; not JSON or not an object
/// -> 400; both in the API's error shape.
pub struct JsonObject(pub serde_json::Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("the request body is over {} KiB", super::BODY_LIMIT / 1024),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    rejection.body_text(),
                )
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the request body is not valid JSON: {e}"),
            )),
        }
    }
}

/// The `{id}` of a path, as text: a malformed id is simply not found.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|_| ApiError::not_found("job"))
    }
}

/// The query string's parameters; handlers check the ones they take.
pub struct QueryMap(pub HashMap<String, String>);

impl QueryMap {
    /// `limit` of a list: 1 to 100, 20 when absent.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.0.get("limit") {
            None => Ok(20),
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| ApiError::field("limit", "must be a whole number from 1 to 100")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryMap(q))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.body_text()))
    }
}
