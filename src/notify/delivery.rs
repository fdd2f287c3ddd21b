//! Sends due outbox rows to Expo in batches of up to 100 messages and
//! records each row's end: sent, retried with backoff (network, 429, 5xx,
//! MessageRateExceeded), or failed; `DeviceNotRegistered` turns the token off.

use std::time::Duration;

use rand::RngExt;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::expo::{ExpoClient, MAX_MESSAGES, Message, Ticket};
use super::store::{self, OutboxRow};
use crate::error_code::ErrorCode;

pub const PUSHES: &str = "plan_push_notifications_total";
const MAX_ATTEMPTS: i32 = 10;

pub struct Delivery {
    pub db: PgPool,
    /// None: no push settings; rows are kept and marked skipped.
    pub expo: Option<ExpoClient>,
    /// How long a sender holds a row before another may take it over.
    pub lease: Duration,
}

impl Delivery {
    /// Runs passes every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        loop {
            // A full pass means more may be due at once.
            let full = match self.deliver_once().await {
                Ok(n) => n >= MAX_MESSAGES,
                Err(err) => {
                    tracing::warn!(error = %err, "push delivery pass failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One pass over the due rows; returns how many rows it took.
    pub async fn deliver_once(&self) -> sqlx::Result<usize> {
        let rows = store::claim_due(&self.db, MAX_MESSAGES as i64, self.lease).await?;
        let taken = rows.len();
        let Some(expo) = &self.expo else {
            for row in &rows {
                let held = store::mark_ended(
                    &self.db,
                    row,
                    "skipped",
                    "no push settings (EXPO_PUSH_URL unset)",
                )
                .await?;
                written(held, row, "skipped", "");
            }
            return Ok(taken);
        };
        let (with_tokens, without): (Vec<OutboxRow>, Vec<OutboxRow>) =
            rows.into_iter().partition(|r| !r.tokens.is_empty());
        for row in &without {
            let held =
                store::mark_ended(&self.db, row, "skipped", "no push token for this user").await?;
            written(held, row, "skipped", "");
        }
        for batch in batches(with_tokens) {
            let messages: Vec<Message> = batch.iter().flat_map(messages_of).collect();
            match expo.send(&messages).await {
                Ok(tickets) => self.record_tickets(&batch, &tickets).await?,
                Err(err) => {
                    for row in &batch {
                        self.retry_or_fail(row, err.retryable, &err.reason).await?;
                    }
                }
            }
        }
        Ok(taken)
    }

    async fn record_tickets(&self, batch: &[OutboxRow], tickets: &[Ticket]) -> sqlx::Result<()> {
        let mut at = 0;
        for row in batch {
            let mine = &tickets[at..at + row.tokens.len()];
            at += row.tokens.len();
            let mut ids = Vec::new();
            let mut errors = Vec::new();
            let mut rate_limited = false;
            for (ticket, token) in mine.iter().zip(&row.tokens) {
                match (ticket.status.as_str(), ticket.error_code()) {
                    ("ok", _) => ids.extend(ticket.id.clone()),
                    (_, Some("DeviceNotRegistered")) => {
                        store::deactivate_token(&self.db, token).await?;
                        errors.push("DeviceNotRegistered".to_owned());
                    }
                    (_, Some("MessageRateExceeded")) => rate_limited = true,
                    (_, code) => errors.push(
                        code.or(ticket.message.as_deref())
                            .unwrap_or("error")
                            .to_owned(),
                    ),
                }
            }
            if !ids.is_empty() {
                let held = store::mark_sent(&self.db, row, &ids).await?;
                written(held, row, "sent", "");
            } else if rate_limited {
                self.retry_or_fail(row, true, "MessageRateExceeded").await?;
            } else {
                let first = errors.first().cloned().unwrap_or_default();
                let held = store::mark_ended(&self.db, row, "failed", &errors.join(", ")).await?;
                written(held, row, "failed", &first);
            }
        }
        Ok(())
    }

    async fn retry_or_fail(
        &self,
        row: &OutboxRow,
        retryable: bool,
        reason: &str,
    ) -> sqlx::Result<()> {
        if retryable && row.attempts < MAX_ATTEMPTS {
            let held = store::retry_later(&self.db, row, backoff(row.attempts), reason).await?;
            written(held, row, "retry", "");
        } else {
            let held = store::mark_ended(&self.db, row, "failed", reason).await?;
            written(held, row, "failed", "request");
        }
        Ok(())
    }
}

/// Counts a status write, or says that another sender holds the row now
/// (this pass outlasted its hold) and nothing was written.
fn written(held: bool, row: &OutboxRow, outcome: &'static str, error: &str) {
    if held {
        count(outcome, error);
    } else {
        tracing::warn!(
            outbox_id = row.id,
            outcome,
            "outbox row taken over by another sender; nothing written"
        );
    }
}

/// Rows grouped so that no request carries more than 100 messages.
fn batches(rows: Vec<OutboxRow>) -> Vec<Vec<OutboxRow>> {
    let mut out: Vec<Vec<OutboxRow>> = Vec::new();
    let mut size = 0;
    for row in rows {
        let n = row.tokens.len().min(MAX_MESSAGES);
        if out.is_empty() || size + n > MAX_MESSAGES {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        out.last_mut().expect("a batch").push(row);
    }
    out
}

fn messages_of(row: &OutboxRow) -> Vec<Message> {
    let (title, body) = match row.event.as_str() {
        "plan_ready" => (
            "Your weekly plan is ready".to_owned(),
            "Open the app to see your training and meals.".to_owned(),
        ),
        _ => {
            let code = row
                .error_code
                .as_deref()
                .and_then(|c| c.parse::<ErrorCode>().ok());
            let msg = code.map_or(
                "We could not create your plan. Please try again.",
                ErrorCode::final_user_message,
            );
            ("We could not create your plan".to_owned(), msg.to_owned())
        }
    };
    row.tokens
        .iter()
        .take(MAX_MESSAGES)
        .map(|to| Message {
            to: to.clone(),
            title: title.clone(),
            body: body.clone(),
            data: json!({"jobId": row.job_id, "event": row.event}),
            sound: "default",
        })
        .collect()
}

/// Exponential backoff with jitter: up to 2^attempts seconds, at most 5 min.
fn backoff(attempts: i32) -> Duration {
    let cap = 2f64.powi(attempts.clamp(0, 9)).min(300.0);
    Duration::from_secs_f64(rand::rng().random_range(cap / 2.0..=cap))
}

fn count(outcome: &'static str, error: &str) {
    metrics::counter!(PUSHES, "outcome" => outcome, "error" => error.to_owned()).increment(1);
}
