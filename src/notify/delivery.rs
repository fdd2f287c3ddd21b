//! Sends due outbox rows to Expo and records each row's end: sent, retried
//! with backoff (network, 429, 5xx, MessageRateExceeded), or failed;
//! `DeviceNotRegistered` turns the token off.
//!
//! A row has one message per token (at most `store::MAX_TOKENS_PER_USER`).
//! A pass's messages go out in requests of at most 100 whatever the rows,
//! so a row may span two requests; each message keeps its own answer and a
//! row's end is decided from its own messages alone, so one row can neither
//! fail nor stall another. A request Expo refuses with 400 (one bad message
//! refuses the whole request) is split in halves until the message at fault
//! is alone: the others still go out, for about 2·log2(100) ≈ 14 more
//! requests per bad message instead of 100 single ones.

use std::ops::Range;
use std::time::Duration;

use rand::RngExt;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::expo::{self, ExpoClient, MAX_MESSAGES, Message, SendError, Ticket};
use super::store::{self, OutboxRow};
use crate::error_code::ErrorCode;
use crate::plan::PushToken;

pub const PUSHES: &str = "plan_push_notifications_total";
const MAX_ATTEMPTS: i32 = 10;
/// Rows taken by one pass (each brings up to `MAX_TOKENS_PER_USER` messages).
const ROWS_PER_PASS: usize = 100;
/// How much of one Expo error text goes into `last_error`.
const MAX_REASON_CHARS: usize = 200;

#[derive(Clone)]
pub struct Delivery {
    pub db: PgPool,
    /// None: no push settings; rows are kept and marked skipped.
    pub expo: Option<ExpoClient>,
    /// How long a sender holds a row before another may take it over.
    pub lease: Duration,
}

/// What Expo said about one message.
#[derive(Debug, Clone)]
enum Answer {
    Ticket(Ticket),
    /// The request that carried the message failed as a whole.
    Refused(SendError),
}

/// What becomes of one row. Labels are static: Expo's text never is one.
#[derive(Debug, PartialEq)]
enum Verdict {
    Sent(Vec<String>),
    Retry { reason: String, label: &'static str },
    Failed { reason: String, label: &'static str },
}

impl Delivery {
    /// Runs passes every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        loop {
            // A full pass means more may be due at once.
            let full = match self.deliver_once().await {
                Ok(n) => n >= ROWS_PER_PASS,
                Err(err) => {
                    tracing::warn!(error = %err, "push delivery pass failed");
                    false
                }
            };
            if full && !stop.is_cancelled() {
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
        let mut rows = store::claim_due(&self.db, ROWS_PER_PASS as i64, self.lease).await?;
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
        rows.iter_mut().for_each(keep_expo_tokens);
        let (rows, without): (Vec<OutboxRow>, Vec<OutboxRow>) =
            rows.into_iter().partition(|r| !r.tokens.is_empty());
        for row in &without {
            let held = store::mark_ended(
                &self.db,
                row,
                "skipped",
                "no valid push token for this user",
            )
            .await?;
            written(held, row, "skipped", "");
        }
        let messages: Vec<Message> = rows.iter().flat_map(messages_of).collect();
        let mut answers = send_all(expo, &messages).await.into_iter();
        for row in &rows {
            // messages_of gave each row one message per token, in order.
            let mine: Vec<Answer> = answers.by_ref().take(row.tokens.len()).collect();
            self.record(row, &mine).await?;
        }
        Ok(taken)
    }

    async fn record(&self, row: &OutboxRow, answers: &[Answer]) -> sqlx::Result<()> {
        for (token, answer) in row.tokens.iter().zip(answers) {
            if let Answer::Ticket(t) = answer
                && t.status != "ok"
                && t.error_code() == Some("DeviceNotRegistered")
            {
                store::deactivate_token(&self.db, token).await?;
            }
        }
        match verdict(answers) {
            Verdict::Sent(ids) => {
                let held = store::mark_sent(&self.db, row, &ids).await?;
                written(held, row, "sent", "");
            }
            Verdict::Retry { reason, label } => {
                self.retry_or_fail(row, true, &reason, label).await?;
            }
            Verdict::Failed { reason, label } => {
                self.retry_or_fail(row, false, &reason, label).await?;
            }
        }
        Ok(())
    }

    async fn retry_or_fail(
        &self,
        row: &OutboxRow,
        retryable: bool,
        reason: &str,
        label: &'static str,
    ) -> sqlx::Result<()> {
        if retryable && row.attempts < MAX_ATTEMPTS {
            let held = store::retry_later(&self.db, row, backoff(row.attempts), reason).await?;
            written(held, row, "retry", "");
        } else {
            let held = store::mark_ended(&self.db, row, "failed", reason).await?;
            written(held, row, "failed", label);
        }
        Ok(())
    }
}

/// Sends `messages` in requests of at most 100; returns one answer per
/// message, in order. Nothing is matched by position unless Expo answered
/// exactly one ticket per message of the request.
async fn send_all(expo: &ExpoClient, messages: &[Message]) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = vec![None; messages.len()];
    // A stack with the first request on top, so requests go out in order.
    let mut todo: Vec<Range<usize>> = (0..messages.len())
        .step_by(MAX_MESSAGES)
        .map(|start| start..(start + MAX_MESSAGES).min(messages.len()))
        .rev()
        .collect();
    while let Some(range) = todo.pop() {
        let refused = match expo.send(&messages[range.clone()]).await {
            Ok(tickets) if tickets.len() == range.len() => {
                for (slot, ticket) in answers[range].iter_mut().zip(tickets) {
                    *slot = Some(Answer::Ticket(ticket));
                }
                continue;
            }
            Ok(tickets) => expo::ticket_count(tickets.len(), range.len()),
            Err(err) if err.refuses_content() && range.len() > 1 => {
                tracing::info!(
                    messages = range.len(),
                    "Expo refused a request (400); sending its halves apart"
                );
                let mid = range.start + range.len() / 2;
                todo.push(mid..range.end);
                todo.push(range.start..mid);
                continue;
            }
            Err(err) => err,
        };
        // After a 429 the rest of this pass would be refused as well.
        let mut ranges = vec![range];
        if refused.status == Some(429) {
            ranges.append(&mut todo);
        }
        for range in ranges {
            for slot in &mut answers[range] {
                *slot = Some(Answer::Refused(refused.clone()));
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Answer::Refused(expo::ticket_count(0, 1))))
        .collect()
}

/// A row's end from its messages' answers: sent if any went out, retried
/// if a failure may resolve itself, else failed.
fn verdict(answers: &[Answer]) -> Verdict {
    let mut ids = Vec::new();
    let mut retry = None;
    let mut errors: Vec<(String, &'static str)> = Vec::new();
    for answer in answers {
        let (text, label, retryable) = match answer {
            Answer::Ticket(t) if t.status == "ok" => {
                ids.extend(t.id.clone());
                continue;
            }
            Answer::Ticket(t) => {
                let label = expo::error_label(t.error_code());
                // Expo's message may quote the token: last_error only.
                let text = match (t.error_code(), t.message.as_deref()) {
                    (Some(code), _) => code.to_owned(),
                    (None, Some(message)) => format!("other: {message}"),
                    (None, None) => "other: an error ticket without detail".to_owned(),
                };
                (text, label, label == "MessageRateExceeded")
            }
            Answer::Refused(err) => (
                err.reason.clone(),
                expo::error_label(err.code.as_deref()),
                err.retryable,
            ),
        };
        let text: String = text.chars().take(MAX_REASON_CHARS).collect();
        if retryable {
            retry.get_or_insert((text, label));
        } else if !errors.iter().any(|(t, _)| *t == text) {
            errors.push((text, label));
        }
    }
    if !ids.is_empty() {
        Verdict::Sent(ids)
    } else if let Some((reason, label)) = retry {
        Verdict::Retry { reason, label }
    } else {
        let label = errors.first().map_or("other", |(_, l)| *l);
        let reason = if errors.is_empty() {
            "no answer from Expo".to_owned()
        } else {
            errors
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Verdict::Failed { reason, label }
    }
}

/// Tokens reach the outbox from the snapshot and from `push_tokens`, which
/// other clients write: one that is not an Expo token is never sent.
fn keep_expo_tokens(row: &mut OutboxRow) {
    let before = row.tokens.len();
    row.tokens
        .retain(|t| PushToken::parse(t).is_ok_and(|p| p.expose() == t));
    let dropped = before - row.tokens.len();
    if dropped > 0 {
        tracing::warn!(
            outbox_id = row.id,
            dropped,
            "push tokens that are not Expo tokens were left out"
        );
    }
}

/// Counts a status write, or says that another sender holds the row now
/// (this pass outlasted its hold) and nothing was written.
fn written(held: bool, row: &OutboxRow, outcome: &'static str, error: &'static str) {
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

fn count(outcome: &'static str, error: &'static str) {
    metrics::counter!(PUSHES, "outcome" => outcome, "error" => error).increment(1);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ticket(v: serde_json::Value) -> Answer {
        Answer::Ticket(serde_json::from_value(v).unwrap())
    }

    fn refused(status: u16, code: Option<&str>, retryable: bool) -> Answer {
        Answer::Refused(SendError {
            reason: format!("HTTP {status}: ExponentPushToken[quoted]"),
            retryable,
            status: Some(status),
            code: code.map(str::to_owned),
        })
    }

    #[test]
    fn a_ticket_without_a_code_fails_as_other_with_its_text_kept_for_last_error_only() {
        let long = format!("\"ExponentPushToken[x]\" is bad {}", "y".repeat(500));
        let v = verdict(&[ticket(json!({"status": "error", "message": long}))]);
        let Verdict::Failed { reason, label } = v else {
            panic!("{v:?}")
        };
        assert_eq!(label, "other");
        assert!(reason.starts_with("other: \"ExponentPushToken[x]\""));
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn documented_codes_are_their_own_labels_and_request_errors_count_too() {
        let gone = json!({"status": "error", "message": "gone", "details": {"error": "DeviceNotRegistered"}});
        assert_eq!(
            verdict(&[ticket(gone.clone()), ticket(gone)]),
            Verdict::Failed {
                reason: "DeviceNotRegistered".into(),
                label: "DeviceNotRegistered"
            }
        );
        let v = verdict(&[refused(401, Some("UNAUTHORIZED"), false)]);
        assert!(
            matches!(
                v,
                Verdict::Failed {
                    label: "UNAUTHORIZED",
                    ..
                }
            ),
            "{v:?}"
        );
        let v = verdict(&[refused(400, Some("SOMETHING_NEW"), false)]);
        assert!(matches!(v, Verdict::Failed { label: "other", .. }), "{v:?}");
    }

    #[test]
    fn one_ticket_out_sends_the_row_and_a_passing_failure_retries_it() {
        let ok = ticket(json!({"status": "ok", "id": "t-1"}));
        let slow = ticket(json!({"status": "error", "details": {"error": "MessageRateExceeded"}}));
        assert_eq!(verdict(&[slow, ok]), Verdict::Sent(vec!["t-1".to_owned()]));
        let v = verdict(&[refused(503, None, true), ticket(json!({"status": "error"}))]);
        assert!(matches!(v, Verdict::Retry { label: "other", .. }), "{v:?}");
    }
}
