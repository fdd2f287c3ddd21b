//! Tools for development, tests and measurement, compiled only with the
//! `dev-tools` feature (on by default; the container image is built
//! without it):
//!
//! - `mock_llm`     a mock OpenAI-compatible server, scriptable per call (`plan-worker mock-llm`)
//! - `mock_answers` its answers to plan prompts, built from the prompt's tagged JSON
//! - `mock_unsplash` an Unsplash stand-in for the benches
//! - `bench`        `plan-worker bench`: pickup latency, throughput, the pipeline's memory
//! - `demo`         `plan-worker demo`: the sample profiles run live
//! - `token`        `plan-worker token`: a Supabase-shaped user token for local tries

pub mod bench;
pub mod demo;
pub mod mock_answers;
pub mod mock_llm;
pub mod mock_unsplash;
pub mod token;

use clap::Args;

#[derive(Debug, Args)]
pub struct MockLlmArgs {
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Answers per call, comma-separated; the last repeats. E.g. "429,429,ok",
    /// "slow:2000", "insufficient_balance", "ok:diet_breaking".
    #[arg(long, default_value = "ok")]
    pub mode: String,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Mean of a random extra delay before every answer, in milliseconds:
    /// exponentially distributed, capped at ten times this (0: none).
    #[arg(long, default_value_t = 0)]
    pub jitter: u64,
    /// Output tokens per second of a content answer (4 characters a token),
    /// after the time to first token; 0: the whole answer at once.
    #[arg(long, default_value_t = 0.0)]
    pub tokens_per_second: f64,
    /// Time to the first token of a content answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub ttft_ms: u64,
    /// Calls answered at once; a call past them gets a 429 with Retry-After
    /// (0: no cap).
    #[arg(long, default_value_t = 0)]
    pub max_concurrent: usize,
    /// The Retry-After of a call refused past --max-concurrent, in
    /// milliseconds (sent as retry-after-ms and rounded-up seconds).
    #[arg(long, default_value_t = 1000)]
    pub retry_after_ms: u64,
}

/// `plan-worker mock-llm`: serves until Ctrl-C.
pub async fn mock_llm(args: MockLlmArgs) -> anyhow::Result<()> {
    let script = args
        .mode
        .parse()
        .map_err(|e| anyhow::anyhow!("mode: {e}"))?;
    let ms = std::time::Duration::from_millis;
    let options = mock_answers::mock_options(script)
        .with_latency(ms(args.latency))
        .with_jitter(ms(args.jitter))
        .with_ttft(ms(args.ttft_ms))
        .with_tokens_per_second(args.tokens_per_second)
        .with_max_concurrent(args.max_concurrent)
        .with_retry_after(ms(args.retry_after_ms));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| anyhow::anyhow!("port: cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    eprintln!(
        "mock LLM on http://{} (mode {})",
        listener.local_addr()?,
        args.mode
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    mock_llm::serve(listener, options, shutdown).await?;
    Ok(())
}
