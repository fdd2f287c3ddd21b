//! The Expo push API: one request of up to 100 messages, tickets back in
//! the same order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many messages per request (Expo's limit).
pub const MAX_MESSAGES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub to: String,
    pub title: String,
    pub body: String,
    pub data: Value,
    pub sound: &'static str,
}

/// One ticket: `ok` with an id, or an error with Expo's code.
#[derive(Debug, Clone, Deserialize)]
pub struct Ticket {
    pub status: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<TicketDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TicketDetails {
    #[serde(default)]
    pub error: Option<String>,
}

impl Ticket {
    pub fn error_code(&self) -> Option<&str> {
        self.details.as_ref().and_then(|d| d.error.as_deref())
    }
}

/// Why a whole request failed; `retryable` decides what happens to its rows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expo push: {reason}")]
pub struct SendError {
    /// Free text (Expo's answer may quote a token): for `last_error`, never
    /// for a metric label.
    pub reason: String,
    pub retryable: bool,
    /// The HTTP status, when Expo answered one.
    pub status: Option<u16>,
    /// Expo's request-level error code (`errors[0].code`), if any.
    pub code: Option<String>,
}

impl SendError {
    fn network(e: &reqwest::Error) -> Self {
        Self {
            reason: format!("network: {e}"),
            retryable: true,
            status: None,
            code: None,
        }
    }

    /// Expo refused the request for what is in it: a 400 "will not resolve"
    /// by itself, but it may be the fault of one message among many.
    pub fn refuses_content(&self) -> bool {
        self.status == Some(400)
    }
}

/// The error codes Expo documents, for tickets and receipts and for whole
/// requests. Only these become metric labels; anything else is `other`.
pub const ERROR_CODES: &[&str] = &[
    "DeviceNotRegistered",
    "MessageTooBig",
    "MessageRateExceeded",
    "MismatchSenderId",
    "InvalidCredentials",
    "TOO_MANY_REQUESTS",
    "PUSH_TOO_MANY_EXPERIENCE_IDS",
    "PUSH_TOO_MANY_NOTIFICATIONS",
    "PUSH_TOO_MANY_RECEIPTS",
    "UNAUTHORIZED",
];

/// The label of an Expo error code: itself when documented, else `other`.
/// Static, so free text cannot become a label by mistake.
pub fn error_label(code: Option<&str>) -> &'static str {
    code.and_then(|c| ERROR_CODES.iter().copied().find(|known| *known == c))
        .unwrap_or("other")
}

#[derive(Clone)]
pub struct ExpoClient {
    http: reqwest::Client,
    url: String,
    access_token: Option<String>,
}

impl ExpoClient {
    pub fn new(url: String, access_token: Option<String>) -> Result<Self, SendError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| SendError {
                reason: e.to_string(),
                retryable: false,
                status: None,
                code: None,
            })?;
        Ok(Self {
            http,
            url,
            access_token,
        })
    }

    /// Sends the messages; tickets come back in their order.
    pub async fn send(&self, messages: &[Message]) -> Result<Vec<Ticket>, SendError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            data: Vec<Ticket>,
        }
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/json")
            .json(messages);
        if let Some(token) = &self.access_token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| SendError::network(&e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| SendError::network(&e))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                #[serde(default)]
                errors: Vec<RequestError>,
            }
            #[derive(Deserialize)]
            struct RequestError {
                code: Option<String>,
            }
            let code = serde_json::from_str::<Refusal>(&body)
                .ok()
                .and_then(|r| r.errors.into_iter().find_map(|e| e.code));
            // 429 and 5xx resolve themselves; another 4xx will not.
            let retryable = status.as_u16() == 429 || status.is_server_error();
            return Err(SendError {
                reason: format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ),
                retryable,
                status: Some(status.as_u16()),
                code,
            });
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| SendError {
            reason: format!("unreadable answer: {e}"),
            retryable: true,
            status: Some(status.as_u16()),
            code: None,
        })?;
        // Tickets are matched to messages by position: a list of another
        // length cannot be matched at all.
        if answer.data.len() != messages.len() {
            return Err(ticket_count(answer.data.len(), messages.len()));
        }
        Ok(answer.data)
    }
}

/// Expo answered a number of tickets that does not match the messages.
/// Retried: the messages may or may not have gone out, and delivery is at
/// least once.
pub fn ticket_count(tickets: usize, messages: usize) -> SendError {
    SendError {
        reason: format!("Expo answered {tickets} tickets for {messages} messages"),
        retryable: true,
        status: None,
        code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documented_codes_become_labels() {
        assert_eq!(
            error_label(Some("DeviceNotRegistered")),
            "DeviceNotRegistered"
        );
        assert_eq!(error_label(Some("TOO_MANY_REQUESTS")), "TOO_MANY_REQUESTS");
        assert_eq!(
            error_label(Some(
                "\"ExponentPushToken[x]\" is not a registered recipient"
            )),
            "other"
        );
        assert_eq!(error_label(None), "other");
    }
}
