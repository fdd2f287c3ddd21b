//! The API's one error shape, `{"error": {"code", "message", "field"?,
//! "fields"?}}`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// One bad input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// An error answer: status, a stable code, a message safe to show.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldProblem>,
    pub retry_after: Option<Duration>,
    /// Set on 401s: the `WWW-Authenticate` challenge.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            challenge: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        e.challenge = Some("Bearer error=\"invalid_token\"");
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 naming every bad field.
    pub fn invalid(code: &'static str, fields: Vec<FieldProblem>) -> Self {
        let message = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            fields,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(
            "INVALID_REQUEST",
            vec![FieldProblem {
                field: field.to_owned(),
                message: message.into(),
            }],
        )
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// A failure of ours: logged in full, answered without internals.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "API request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is temporarily unavailable. Please try again.",
        )
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(first) = self.fields.first() {
            error["field"] = json!(first.field);
            error["fields"] = json!(self.fields);
        }
        json!({ "error": error })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: a client that waits that long succeeds.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Some(challenge) = self.challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_answer_names_every_field_and_the_first_as_field() {
        let e = ApiError::invalid(
            "INVALID_PROFILE",
            vec![
                FieldProblem {
                    field: "profileSnapshot.age".into(),
                    message: "required".into(),
                },
                FieldProblem {
                    field: "profileSnapshot.goal".into(),
                    message: "unknown".into(),
                },
            ],
        );
        let body = e.body();
        assert_eq!(body["error"]["code"], "INVALID_PROFILE");
        assert_eq!(body["error"]["field"], "profileSnapshot.age");
        assert_eq!(body["error"]["fields"].as_array().unwrap().len(), 2);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("profileSnapshot.goal: unknown")
        );
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let res = ApiError::too_many("RATE_LIMITED", "slow down", Duration::from_millis(1500))
            .into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }
}
