//! Time like a real model's, and streamed answers (`"stream": true`) as
//! DeepSeek and OpenAI send them: `chat.completion.chunk` server-sent events
//! paced at the token rate, the finish and usage, then `data: [DONE]`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::MockChatRequest;
use super::reply::{self, Generated};

/// Characters per content chunk: four tokens at the mock's 4 characters a
/// token. Real providers send about one token per chunk; four keeps a
/// benchmark's thousand streams from costing a wake-up per token.
const CHUNK_CHARS: usize = 16;

/// How fast the mock "generates": the first token after `ttft`, then
/// `tokens_per_second` (0: all at once).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Pace {
    pub ttft: Duration,
    pub tokens_per_second: f64,
}

impl Pace {
    /// When `tokens` tokens have been generated, from the start of the answer.
    pub fn after(&self, tokens: f64) -> Duration {
        let tps = self.tokens_per_second;
        if tps.is_nan() || tps <= 0.0 || tokens.is_nan() || tokens <= 0.0 {
            return self.ttft;
        }
        let generating = Duration::try_from_secs_f64(tokens / tps).unwrap_or(Duration::MAX);
        self.ttft.saturating_add(generating)
    }
}

/// How one streamed answer is paced and shaped.
pub(super) struct StreamPlan {
    pub pace: Pace,
    /// `: keep-alive` comments sent before the first chunk, one per interval.
    pub keepalives: u32,
    pub keepalive_interval: Duration,
    /// The body breaks off after half the content (`disconnect`).
    pub disconnect: bool,
    /// OpenAI's form, asked for with `stream_options.include_usage`: usage in
    /// an extra chunk without choices. Otherwise DeepSeek's: in the last chunk.
    pub usage_chunk: bool,
}

/// The answer as an event stream. `guard` is held until the stream ends or
/// the client goes away: the call counts as being answered until then.
pub(super) fn sse<G: Send + 'static>(
    req: &MockChatRequest,
    generated: Generated,
    usage: Value,
    plan: StreamPlan,
    guard: G,
) -> Response {
    let state = Sse {
        id: uuid::Uuid::new_v4().to_string(),
        created: reply::created(),
        model: req.model.clone(),
        tokens: f64::from(generated.emitted_tokens()),
        content: generated.content,
        finish_reason: generated.finish_reason,
        pos: 0,
        chars_sent: 0,
        usage,
        keepalives_left: plan.keepalives,
        plan,
        start: Instant::now(),
        step: Step::KeepAlive,
        _guard: guard,
    };
    let events = stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    });
    let mut resp = Response::new(Body::from_stream(events));
    reply::set_header(&mut resp, "content-type", "text/event-stream".into());
    reply::set_header(&mut resp, "cache-control", "no-cache".into());
    resp
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    KeepAlive,
    Content,
    Finish,
    Usage,
    Done,
    End,
}

struct Sse<G> {
    id: String,
    created: u64,
    model: String,
    content: String,
    tokens: f64,
    finish_reason: &'static str,
    /// Byte offset of the next chunk in `content`.
    pos: usize,
    chars_sent: usize,
    usage: Value,
    plan: StreamPlan,
    keepalives_left: u32,
    /// Generation starts after the keep-alives (the wait for a GPU).
    start: Instant,
    step: Step,
    _guard: G,
}

impl<G> Sse<G> {
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            match self.step {
                Step::KeepAlive if self.keepalives_left > 0 => {
                    tokio::time::sleep(self.plan.keepalive_interval).await;
                    self.keepalives_left -= 1;
                    return Some(Ok(Bytes::from_static(b": keep-alive\n\n")));
                }
                Step::KeepAlive => {
                    self.start = Instant::now();
                    self.step = Step::Content;
                }
                Step::Content if self.pos >= self.content.len() => self.step = Step::Finish,
                Step::Content if self.plan.disconnect && self.pos >= self.content.len() / 2 => {
                    self.step = Step::End;
                    // Let the server send what it has first: a connection
                    // drops after the bytes before it went out.
                    tokio::task::yield_now().await;
                    let reset = std::io::ErrorKind::ConnectionReset;
                    return Some(Err(std::io::Error::new(reset, "mock: connection dropped")));
                }
                Step::Content => return Some(Ok(self.content_chunk().await)),
                Step::Finish => {
                    let at = self.start + self.plan.pace.after(self.tokens);
                    tokio::time::sleep_until(at).await;
                    let choice = json!({"index": 0, "delta": {"content": ""}, "logprobs": null,
                                        "finish_reason": self.finish_reason});
                    let usage = if self.plan.usage_chunk {
                        self.step = Step::Usage;
                        Value::Null
                    } else {
                        self.step = Step::Done;
                        self.usage.take()
                    };
                    return Some(Ok(self.event(vec![choice], Some(usage))));
                }
                Step::Usage => {
                    self.step = Step::Done;
                    let usage = self.usage.take();
                    return Some(Ok(self.event(Vec::new(), Some(usage))));
                }
                Step::Done => {
                    self.step = Step::End;
                    return Some(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
                }
                Step::End => return None,
            }
        }
    }

    /// The next few tokens, sent when they have been "generated".
    async fn content_chunk(&mut self) -> Bytes {
        let sent = self.chars_sent as f64 / 4.0;
        tokio::time::sleep_until(self.start + self.plan.pace.after(sent)).await;
        let rest = &self.content[self.pos..];
        let end = rest
            .char_indices()
            .nth(CHUNK_CHARS)
            .map_or(rest.len(), |(i, _)| i);
        let piece = &rest[..end];
        let delta = if self.pos == 0 {
            json!({"role": "assistant", "content": piece})
        } else {
            json!({"content": piece})
        };
        self.chars_sent += piece.chars().count();
        self.pos += end;
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null});
        // OpenAI marks every chunk's usage null when usage comes at the end.
        let usage = self.plan.usage_chunk.then_some(Value::Null);
        self.event(vec![choice], usage)
    }

    fn event(&self, choices: Vec<Value>, usage: Option<Value>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_mock_llm",
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_adds_the_tokens_time_to_the_first_token_and_zero_is_instant() {
        let ms = Duration::from_millis;
        let p = Pace {
            ttft: ms(800),
            tokens_per_second: 40.0,
        };
        assert_eq!(p.after(0.0), ms(800));
        assert_eq!(p.after(4000.0), ms(100_800));
        let instant = Pace {
            ttft: ms(5),
            tokens_per_second: 0.0,
        };
        assert_eq!(instant.after(4000.0), ms(5));
        assert_eq!(Pace::default().after(1e9), Duration::ZERO);
    }
}
