//! The stable error codes of a failed attempt. The API, metrics, dashboards
//! and alert rules use the strings verbatim, so they never change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    AiTimeout,
    AiRateLimit,
    ImagesRateLimit,
    AiUnavailable,
    NetworkError,
    JsonParseError,
    AiOutputTruncated,
    WorkerLost,
    DbError,
    ValidationFailed,
    InvalidProfile,
    ConfigError,
    AiQuotaExceeded,
    StaleJob,
    Cancelled,
    UnexpectedError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::AiTimeout,
        ErrorCode::AiRateLimit,
        ErrorCode::ImagesRateLimit,
        ErrorCode::AiUnavailable,
        ErrorCode::NetworkError,
        ErrorCode::JsonParseError,
        ErrorCode::AiOutputTruncated,
        ErrorCode::WorkerLost,
        ErrorCode::DbError,
        ErrorCode::ValidationFailed,
        ErrorCode::InvalidProfile,
        ErrorCode::ConfigError,
        ErrorCode::AiQuotaExceeded,
        ErrorCode::StaleJob,
        ErrorCode::Cancelled,
        ErrorCode::UnexpectedError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AiTimeout => "AI_TIMEOUT",
            ErrorCode::AiRateLimit => "AI_RATE_LIMIT",
            ErrorCode::ImagesRateLimit => "IMAGES_RATE_LIMIT",
            ErrorCode::AiUnavailable => "AI_UNAVAILABLE",
            ErrorCode::NetworkError => "NETWORK_ERROR",
            ErrorCode::JsonParseError => "JSON_PARSE_ERROR",
            ErrorCode::AiOutputTruncated => "AI_OUTPUT_TRUNCATED",
            ErrorCode::WorkerLost => "WORKER_LOST",
            ErrorCode::DbError => "DB_ERROR",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::InvalidProfile => "INVALID_PROFILE",
            ErrorCode::ConfigError => "CONFIG_ERROR",
            ErrorCode::AiQuotaExceeded => "AI_QUOTA_EXCEEDED",
            ErrorCode::StaleJob => "STALE_JOB",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::UnexpectedError => "UNEXPECTED_ERROR",
        }
    }

    /// Whether a failure with this code is worth another attempt.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::AiTimeout
                | ErrorCode::AiRateLimit
                | ErrorCode::ImagesRateLimit
                | ErrorCode::AiUnavailable
                | ErrorCode::NetworkError
                | ErrorCode::JsonParseError
                | ErrorCode::AiOutputTruncated
                | ErrorCode::WorkerLost
                | ErrorCode::DbError
                | ErrorCode::UnexpectedError
        )
    }

    /// The message an end user may see; never carries internal detail.
    pub fn user_message(self) -> &'static str {
        match self {
            ErrorCode::AiTimeout => {
                "Generating your plan is taking longer than usual. We will keep trying."
            }
            ErrorCode::ImagesRateLimit => "Photos for your meal plan are on their way.",
            ErrorCode::AiRateLimit | ErrorCode::AiUnavailable => {
                "Our AI service is busy. Your plan will be ready soon."
            }
            ErrorCode::NetworkError => {
                "We could not reach our AI service. We will try again shortly."
            }
            ErrorCode::JsonParseError | ErrorCode::AiOutputTruncated => {
                "The AI returned an incomplete plan. We are generating it again."
            }
            ErrorCode::WorkerLost | ErrorCode::DbError | ErrorCode::UnexpectedError => {
                "Something went wrong on our side. We are retrying your plan."
            }
            ErrorCode::ValidationFailed => {
                "We could not generate a plan that meets all of your preferences. Please try again."
            }
            ErrorCode::InvalidProfile => {
                "Some of your profile details are missing or invalid. Please update your profile."
            }
            ErrorCode::ConfigError | ErrorCode::AiQuotaExceeded => {
                "Plan generation is temporarily unavailable. Please try again later."
            }
            ErrorCode::StaleJob => {
                "This request waited too long and was dropped. Please try again."
            }
            ErrorCode::Cancelled => "This plan generation was cancelled.",
        }
    }
}

impl ErrorCode {
    /// The message once the job has failed for good: a retryable code's
    /// message promises another try, which will not come.
    pub fn final_user_message(self) -> &'static str {
        if self.is_retryable() {
            "We could not generate your plan this time. Please try again."
        } else {
            self.user_message()
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn a_final_failure_never_promises_a_retry() {
        for code in ErrorCode::ALL {
            let m = code.final_user_message().to_lowercase();
            assert!(
                !m.contains("retrying") && !m.contains("keep trying"),
                "{code}: {m}"
            );
            assert!(!m.contains("will be ready soon"), "{code}: {m}");
        }
        assert_eq!(
            ErrorCode::ConfigError.final_user_message(),
            ErrorCode::ConfigError.user_message()
        );
    }

    #[test]
    fn retryability_matches_the_design_table() {
        let retryable: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(
            retryable.len(),
            10,
            "the nine of DESIGN.md and IMAGES_RATE_LIMIT"
        );
        assert!(!ErrorCode::ValidationFailed.is_retryable());
        assert!(!ErrorCode::AiQuotaExceeded.is_retryable());
        assert!(ErrorCode::UnexpectedError.is_retryable());
    }
}
