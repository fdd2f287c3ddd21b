//! `plan-worker bench`: pickup latency and drain throughput of the queue,
//! measured against DATABASE_URL's server in a throwaway database of its own;
//! the pipeline's memory; the offline planner's speed and accuracy.

mod console;
mod eta;
mod heartbeats;
mod latency;
mod meals;
pub mod nutrition;
mod pipeline;
mod scratch;
mod soak;
mod throughput;

use clap::Subcommand;

use crate::config::DbSettings;
use crate::llm::HttpVersion;

/// The kind only the bench registers: a handler that does nothing.
pub const BENCH_KIND: &str = "bench_noop";

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Single-job inserts one at a time, timed from the insert's commit to
    /// the handler's start.
    Latency {
        #[arg(long, default_value_t = 500)]
        jobs: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Jobs inserted in one statement, drained by in-process workers.
    Throughput {
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Slots per worker.
        #[arg(long, default_value_t = 500)]
        concurrency: u32,
        #[arg(long)]
        json: bool,
    },
    /// A long drain with retention on, fed to keep a steady backlog: jobs/s
    /// over time, the hot tables' sizes, dead rows and autovacuum runs.
    Soak {
        #[arg(long, default_value_t = 1_000_000)]
        jobs: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Slots per worker.
        #[arg(long, default_value_t = 500)]
        concurrency: u32,
        /// Jobs inserted and not yet finished, kept at about this many.
        #[arg(long, default_value_t = 20_000)]
        backlog: usize,
        /// Finished jobs are deleted after this many seconds.
        #[arg(long, default_value_t = 5.0)]
        retention_seconds: f64,
        /// How many intervals the run is sampled in.
        #[arg(long, default_value_t = 20)]
        samples: usize,
        #[arg(long)]
        json: bool,
    },
    /// Jobs held by one worker heartbeating every 0.5 s: the share of the
    /// job table's row updates that are HOT.
    Heartbeats {
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long)]
        json: bool,
    },
    /// weekly_base_plan jobs through the real pipeline against the mock LLM
    /// (a child process) with a set latency, all in flight on one worker.
    Pipeline {
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Mock LLM latency per call, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        latency_ms: u64,
        /// weekly_base_plan or meal_plan.
        #[arg(long, default_value = "weekly_base_plan", value_parser = ["weekly_base_plan", "meal_plan"])]
        kind: String,
        /// LLM calls in flight at once (LLM_MAX_IN_FLIGHT); default: one per job.
        #[arg(long)]
        llm_max_in_flight: Option<usize>,
        /// HTTP to the mock: http2 (h2c, as HTTPS providers are spoken to
        /// when they offer HTTP/2) or http1 (a connection per call).
        #[arg(long, default_value = "http2", value_enum)]
        llm_http: HttpVersion,
        /// Mock LLM output tokens per second after the first (0: instant).
        #[arg(long, default_value_t = 0.0)]
        tokens_per_second: f64,
        /// Mock LLM time to first token, in milliseconds.
        #[arg(long, default_value_t = 0)]
        ttft_ms: u64,
        /// Calls the mock LLM answers at once; past them it answers 429, as
        /// DeepSeek does per account (0: no cap).
        #[arg(long, default_value_t = 0)]
        max_concurrent: usize,
        /// Stage 2's layout: parallel, sequential, or both (side by side,
        /// one after the other in this run).
        #[arg(long, default_value = "both", value_parser = ["parallel", "sequential", "both"])]
        layout: String,
        #[command(flatten)]
        prices: BenchPrices,
        #[arg(long)]
        json: bool,
    },
    /// The API's estimate against the truth: weekly_base_plan jobs through
    /// the real pipeline against the mock LLM with varying delays, arriving
    /// at random; each job's estimate at its creation, its start, every
    /// stage and every --sample-ms, compared with the time it then still
    /// took (share inside [p10, p90] and [p50, p90], error of the median).
    Eta {
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Jobs run first so that the measured ones have a history.
        #[arg(long, default_value_t = 30)]
        warmup: usize,
        /// Slots of the worker.
        #[arg(long, default_value_t = 8)]
        concurrency: u32,
        /// Mock LLM latency per call, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        latency_ms: u64,
        /// Mean of the mock's exponential extra delay per call, in ms.
        #[arg(long, default_value_t = 1500)]
        jitter_ms: u64,
        /// Jobs arrive (Poisson) at this share of the worker's capacity.
        #[arg(long, default_value_t = 0.8)]
        utilization: f64,
        /// Milliseconds between samples of every job in flight.
        #[arg(long, default_value_t = 500)]
        sample_ms: u64,
        #[arg(long)]
        json: bool,
    },
    /// Offline meal plans for the profile matrix (plans per second, share
    /// valid), then photos from a local Unsplash stand-in through the real
    /// jobs: Unsplash calls per plan with a cold and a warm cache.
    Meals {
        #[arg(long, default_value_t = 200)]
        profiles: usize,
        /// Meal plans per photo round (0: no photo rounds, no database).
        #[arg(long, default_value_t = 20)]
        image_plans: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// The operators' console over a job table of `jobs` rows (a month of
    /// history, the last hour, a backlog, running jobs): each page fetched
    /// `rounds` times over HTTP through the real handlers, signed in.
    Console {
        #[arg(long, default_value_t = 1_000_000)]
        jobs: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Offline plans for a matrix of generated profiles, on one core: plans
    /// per second, solver time per day, share within tolerance (no database).
    Nutrition {
        #[arg(long, default_value_t = 500)]
        profiles: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
}

/// LLM_PRICE_*, as `run` reads them: the cost per plan is estimated at these.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct BenchPrices {
    /// USD per million prompt tokens that miss the cache.
    #[arg(long, env = "LLM_PRICE_PROMPT_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_prompt_per_million: f64,
    /// USD per million completion tokens.
    #[arg(long, env = "LLM_PRICE_COMPLETION_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_completion_per_million: f64,
    /// USD per million prompt tokens that hit the cache.
    #[arg(long, env = "LLM_PRICE_CACHE_HIT_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_cache_hit_per_million: f64,
}

impl From<BenchPrices> for crate::llm::Prices {
    fn from(p: BenchPrices) -> Self {
        crate::llm::Prices {
            prompt_per_million: p.llm_price_prompt_per_million,
            completion_per_million: p.llm_price_completion_per_million,
            cache_hit_per_million: p.llm_price_cache_hit_per_million,
        }
    }
}

pub async fn execute(db: &DbSettings, cmd: BenchCommand) -> anyhow::Result<()> {
    if let BenchCommand::Nutrition {
        profiles,
        seed,
        json,
    } = cmd
    {
        return nutrition::run(profiles, seed, json);
    }
    if let BenchCommand::Meals {
        profiles,
        image_plans: 0,
        seed,
        json,
    } = cmd
    {
        return meals::run(None, profiles, 0, seed, json).await;
    }
    let scratch = scratch::Scratch::create(&db.database_url).await?;
    let result = match cmd {
        BenchCommand::Latency { jobs, json } => latency::run(&scratch, jobs, json).await,
        BenchCommand::Throughput {
            jobs,
            workers,
            concurrency,
            json,
        } => throughput::run(&scratch, jobs, workers, concurrency, json).await,
        BenchCommand::Soak {
            jobs,
            workers,
            concurrency,
            backlog,
            retention_seconds,
            samples,
            json,
        } => {
            let soak = soak::Soak {
                jobs,
                workers,
                concurrency,
                backlog: backlog.max(1),
                retention: std::time::Duration::from_secs_f64(retention_seconds.max(0.0)),
                samples,
            };
            soak::run(&scratch, soak, json).await
        }
        BenchCommand::Pipeline {
            jobs,
            latency_ms,
            kind,
            llm_max_in_flight,
            llm_http,
            tokens_per_second,
            ttft_ms,
            max_concurrent,
            layout,
            prices,
            json,
        } => {
            use crate::jobs::weekly_plan::Layout;
            let in_flight = llm_max_in_flight.unwrap_or(jobs).max(1);
            let layouts = match layout.as_str() {
                "parallel" => vec![Layout::Parallel],
                "sequential" => vec![Layout::Sequential],
                _ => vec![Layout::Parallel, Layout::Sequential],
            };
            let run = pipeline::Run {
                jobs,
                latency_ms,
                kind,
                llm_in_flight: in_flight,
                http: llm_http,
                mock: pipeline::MockFlags {
                    latency_ms,
                    tokens_per_second,
                    ttft_ms,
                    max_concurrent,
                    ..Default::default()
                },
                prices: prices.into(),
                layouts,
            };
            pipeline::run(&scratch, run, json).await
        }
        BenchCommand::Heartbeats {
            jobs,
            seconds,
            json,
        } => heartbeats::run(&scratch, jobs, seconds, json).await,
        BenchCommand::Eta {
            jobs,
            warmup,
            concurrency,
            latency_ms,
            jitter_ms,
            utilization,
            sample_ms,
            json,
        } => {
            let run = eta::Run {
                jobs,
                warmup,
                concurrency,
                latency_ms,
                jitter_ms,
                utilization,
                sample_ms,
            };
            eta::run(&scratch, run, json).await
        }
        BenchCommand::Meals {
            profiles,
            image_plans,
            seed,
            json,
        } => meals::run(Some(&scratch), profiles, image_plans, seed, json).await,
        BenchCommand::Console { jobs, rounds, json } => {
            console::run(&scratch, jobs, rounds.max(1), json).await
        }
        BenchCommand::Nutrition { .. } => unreachable!("run without a database above"),
    };
    scratch.drop_database().await?;
    result
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
