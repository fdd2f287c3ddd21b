//! The LLM boundary: one client for any OpenAI-compatible chat completions
//! server (DeepSeek by default, OpenAI by changing settings), the mapping of
//! every provider outcome to a stable [`ErrorCode`](crate::error_code::ErrorCode).
//! The mock server that plays the provider lives in `dev::mock_llm`.
//!
//! - `config`  [`LlmConfig`]: endpoint, model, key (redacted), limits
//! - `client`  [`LlmClient::chat_json`]: one JSON-mode call, rate limited and capped;
//!   [`LlmClient::chat_json_streaming`] the same call streamed
//! - `stream`  reading a streamed answer's server-sent events
//! - `error`   [`LlmError`]: what went wrong, its code and its Retry-After
//! - `wire`    the JSON shapes on the wire (requests, responses, error bodies)
//! - `body`    request bodies as chunks, the big static messages shared by all calls
//! - `limit`   the per-client request rate limit and in-flight cap
//! - `metrics` metric names and their recording

mod body;
mod client;
mod config;
mod error;
mod limit;
pub mod metrics;
mod stream;
mod wire;

pub use client::{ChatRequest, ChatResponse, LlmClient, Message, Place, Role};
pub use config::{HttpVersion, LlmConfig, Prices};
pub use error::{HttpError, LlmError, OutputError, OutputProblem};
pub use metrics::describe_metrics;
pub use wire::{ApiError, Usage};

#[cfg(all(test, feature = "dev-tools"))]
mod tests;
