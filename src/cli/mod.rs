//! The command line: every command and its flags (each flag also an
//! environment variable with a default, shown by `--help`).

mod demo;
mod jobs;
mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::bench::BenchCommand;
use crate::config::{ApiSettings, DbSettings, LlmSettings, WorkerSettings};

#[derive(Debug, Parser)]
#[command(
    name = "plan-worker",
    version,
    about = "A PostgreSQL-native job worker for LLM-generated weekly plans"
)]
pub struct Cli {
    #[command(flatten)]
    pub db: DbSettings,

    /// Log format: json (one object per line) or pretty.
    #[arg(long, env = "LOG_FORMAT", default_value = "json", global = true, value_parser = ["json", "pretty"])]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the worker until SIGTERM or SIGINT.
    Run(Box<RunArgs>),
    /// Create a job from a profile file (or - for stdin); prints its id.
    Enqueue(EnqueueArgs),
    /// Inspect and operate on jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Measure pickup latency and throughput against DATABASE_URL.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the nutrition targets of a profile (the one implementation).
    Targets {
        /// Profile JSON file, or - for standard input.
        #[arg(long)]
        profile: PathBuf,
    },
    /// Run a mock OpenAI-compatible server (for tests, demos, benchmarks).
    MockLlm(MockLlmArgs),
    /// Enqueue the sample profiles, run them, show them live, say where to look.
    Demo(DemoArgs),
    /// Print an HS256 user token signed with SUPABASE_JWT_SECRET, shaped like
    /// Supabase's, for trying the API locally (never for production users).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (sub claim) [default: a new random id].
    #[arg(long)]
    pub user: Option<Uuid>,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
    #[arg(long, env = "SUPABASE_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// iss claim (SUPABASE_JWT_ISSUER, when the API checks it).
    #[arg(long, env = "SUPABASE_JWT_ISSUER")]
    pub issuer: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Jobs to run (the sample profiles, repeated).
    #[arg(long, default_value_t = 5)]
    pub jobs: usize,
    /// Address of /metrics during the demo.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,
    #[command(flatten)]
    pub llm: LlmSettings,
}

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
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub worker: WorkerSettings,

    #[command(flatten)]
    pub llm: LlmSettings,

    #[command(flatten)]
    pub api: ApiSettings,

    /// Run only the API (API_ADDR), no worker: for an API-only container.
    #[arg(long, env = "NO_WORKER", default_value_t = false)]
    pub no_worker: bool,

    /// Address of /metrics, /healthz and /readyz (keep it internal).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: String,

    /// Do not apply migrations at start.
    #[arg(long, env = "NO_MIGRATE", default_value_t = false)]
    pub no_migrate: bool,

    /// Expo push API URL (https://exp.host/--/api/v2/push/send); unset: push
    /// notifications are not sent and outbox rows are marked skipped.
    #[arg(long, env = "EXPO_PUSH_URL")]
    pub expo_push_url: Option<String>,

    /// Expo access token, when push security is enabled for the project.
    #[arg(long, env = "EXPO_ACCESS_TOKEN", hide_env_values = true)]
    pub expo_access_token: Option<String>,

    /// Seconds between passes of the push delivery loop.
    #[arg(long, env = "PUSH_POLL_SECONDS", default_value_t = 2.0)]
    pub push_poll_seconds: f64,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The user the plan is for.
    #[arg(long)]
    pub user: Uuid,
    /// Profile snapshot JSON file, or - for standard input.
    #[arg(long)]
    pub profile: PathBuf,
    /// Job kind.
    #[arg(long, default_value = "weekly_base_plan")]
    pub kind: String,
    /// Retries after the first attempt.
    #[arg(long, default_value_t = 3)]
    pub max_retries: i32,
    /// Higher runs first (-100..100).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Newest jobs first.
    List {
        #[arg(long, value_parser = ["pending", "processing", "completed", "failed", "cancelled"])]
        status: Option<String>,
        #[arg(long)]
        user: Option<Uuid>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One job and its attempts: how to read a stuck generation.
    Show {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Create a new job from a failed or cancelled one.
    Retry { id: Uuid },
    /// Cancel a pending or running job.
    Cancel {
        id: Uuid,
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
}

/// Runs one command.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let traces = crate::telemetry::logging::TraceSettings::from_env();
    let telemetry = crate::telemetry::logging::init(&cli.log_format, &traces);
    let result = run_command(cli).await;
    telemetry.shutdown();
    result
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let pool = run::pool(&cli.db, 2).await?;
            crate::db::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Run(args) => run::run(&cli.db, *args).await,
        Command::Enqueue(args) => jobs::enqueue(&cli.db, args).await,
        Command::Jobs(cmd) => jobs::execute(&cli.db, cmd).await,
        Command::Bench(cmd) => crate::bench::execute(&cli.db, cmd).await,
        Command::Targets { profile } => {
            let profile = crate::plan::parse_profile(&jobs::read_json(&profile)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::plan::targets(&profile))?
            );
            Ok(())
        }
        Command::MockLlm(args) => mock_llm(args).await,
        Command::Demo(args) => demo::demo(&cli.db, args).await,
        Command::Token(args) => {
            println!("{}", user_token(&args)?);
            Ok(())
        }
    }
}

fn user_token(args: &TokenArgs) -> anyhow::Result<String> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = serde_json::json!({
        "sub": args.user.unwrap_or_else(Uuid::new_v4),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + args.ttl_seconds,
        "session_id": Uuid::new_v4(),
        "is_anonymous": false,
    });
    if let Some(iss) = &args.issuer {
        claims["iss"] = serde_json::json!(iss);
    }
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(args.secret.as_bytes()),
    )?)
}

async fn mock_llm(args: MockLlmArgs) -> anyhow::Result<()> {
    let script = args
        .mode
        .parse()
        .map_err(|e| anyhow::anyhow!("mode: {e}"))?;
    let options = crate::plan::mock_answers::mock_options(script)
        .with_latency(std::time::Duration::from_millis(args.latency));
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
    crate::llm::mock::serve(listener, options, shutdown).await?;
    Ok(())
}
