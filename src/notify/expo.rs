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
#[derive(Debug, thiserror::Error)]
#[error("expo push: {reason}")]
pub struct SendError {
    pub reason: String,
    pub retryable: bool,
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
        let resp = req.send().await.map_err(|e| SendError {
            reason: format!("network: {e}"),
            retryable: true,
        })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| SendError {
            reason: format!("network: {e}"),
            retryable: true,
        })?;
        if !status.is_success() {
            // 429 and 5xx resolve themselves; another 4xx will not.
            let retryable = status.as_u16() == 429 || status.is_server_error();
            return Err(SendError {
                reason: format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ),
                retryable,
            });
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| SendError {
            reason: format!("unreadable answer: {e}"),
            retryable: true,
        })?;
        if answer.data.len() != messages.len() {
            return Err(SendError {
                reason: format!(
                    "{} tickets for {} messages",
                    answer.data.len(),
                    messages.len()
                ),
                retryable: true,
            });
        }
        Ok(answer.data)
    }
}
