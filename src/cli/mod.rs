//! The command line: every command and its flags (each flag also an
//! environment variable with a default, shown by `--help`).

mod jobs;
pub mod kinds;
mod purge;
mod run;
mod schedules;
mod smoke;

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use uuid::Uuid;

use crate::config::{
    ApiSettings, DbSettings, LlmSettings, LogFormat, OpsSettings, PushSettings, WorkerSettings,
};
#[cfg(feature = "dev-tools")]
use crate::dev;
use crate::queue::store::JobStatus;

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
    #[arg(
        long,
        env = "LOG_FORMAT",
        default_value = "json",
        global = true,
        value_enum
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Commands that need neither the database nor the log format: their
/// `--help` lists only their own flags.
const WITHOUT_GLOBAL_FLAGS: &[&str] = &[
    #[cfg(feature = "dev-tools")]
    "mock-llm",
];

/// The command line as clap would build it, except that the global flags
/// (database, log format) are hidden from the help of the commands in
/// [`WITHOUT_GLOBAL_FLAGS`]. clap's build copies each global flag into every
/// subcommand that has none of that name; here, before the build, those
/// commands get that same copy hidden, so parsing is exactly as before (a
/// flag given anyway is still accepted and reaches `Cli::db`). Changing the
/// copies after the build instead (`mut_arg`) leaves clap's lookup table
/// pointing at the wrong flags: that broke parsing before.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    for name in WITHOUT_GLOBAL_FLAGS {
        cmd = cmd.mut_subcommand(name, |sc| {
            globals
                .iter()
                .fold(sc, |sc, a| sc.arg(a.clone().hide(true)))
        });
    }
    cmd
}

/// Parses the process's arguments; prints help or the error and exits as
/// clap does.
pub fn parse() -> Cli {
    let mut cmd = command();
    let mut matches = cmd.clone().get_matches();
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
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
    /// Job kinds: their queues; pause, resume and cap them cluster-wide.
    #[command(subcommand)]
    Kinds(KindsCommand),
    /// Delete finished jobs past the retention period now, in batches, with
    /// their attempts, idempotency keys and pushes (plans stay).
    Purge(PurgeArgs),
    /// Periodic regenerations, soonest due first.
    Schedules {
        /// Only this user's.
        #[arg(long)]
        user: Option<Uuid>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure pickup latency and throughput against DATABASE_URL.
    #[cfg(feature = "dev-tools")]
    #[command(subcommand)]
    Bench(dev::bench::BenchCommand),
    /// Search the food table (USDA SR28, IFCT 2017): per 100 g, bounds, tags.
    Foods(FoodsArgs),
    /// After a deploy: a throwaway user creates a plan through the API,
    /// follows it to the end over SSE, reads it, and is deleted again.
    Smoke(smoke::SmokeArgs),
    /// Print the nutrition targets of a profile (the one implementation).
    Targets {
        /// Profile JSON file, or - for standard input.
        #[arg(long)]
        profile: PathBuf,
    },
    /// Run a mock OpenAI-compatible server (for tests, demos, benchmarks).
    #[cfg(feature = "dev-tools")]
    MockLlm(dev::MockLlmArgs),
    /// Enqueue the sample profiles, run them, show them live, say where to look.
    #[cfg(feature = "dev-tools")]
    Demo(Box<dev::demo::DemoArgs>),
    /// Print an HS256 user token signed with SUPABASE_JWT_SECRET, shaped like
    /// Supabase's, for trying the API locally (never for production users).
    #[cfg(feature = "dev-tools")]
    Token(dev::token::TokenArgs),
}

impl Command {
    /// Commands whose own output is a live table: without RUST_LOG, their
    /// logs stay at WARN so that INFO lines do not cut into it.
    fn draws_on_the_terminal(&self) -> bool {
        #[cfg(feature = "dev-tools")]
        if matches!(self, Command::Demo(_)) {
            return true;
        }
        false
    }
}

#[derive(Debug, Args)]
pub struct FoodsArgs {
    /// Words that the id, name or group must all contain (none: every food).
    pub query: Vec<String>,
    /// Only foods this profile may eat (its diet and allergies).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub ops: OpsSettings,

    #[command(flatten)]
    pub worker: WorkerSettings,

    #[command(flatten)]
    pub llm: LlmSettings,

    #[command(flatten)]
    pub images: crate::images::settings::UnsplashSettings,

    #[command(flatten)]
    pub api: ApiSettings,

    #[command(flatten)]
    pub push: PushSettings,
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
        #[arg(long, value_enum)]
        status: Option<JobStatus>,
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

#[derive(Debug, Subcommand)]
pub enum KindsCommand {
    /// Every kind: paused, cap, jobs pending and processing.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop claims of a kind; its pending jobs wait (and do not go stale).
    Pause { kind: String },
    /// Let workers claim a paused kind again (they wake at once).
    Resume { kind: String },
    /// Jobs of a kind processing at once across all workers, or `none`.
    Cap {
        kind: String,
        max_running: kinds::Cap,
    },
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete jobs finished more than this many days ago (default:
    /// JOB_RETENTION_DAYS; 0 deletes every finished job).
    #[arg(long)]
    pub older_than_days: Option<f64>,
    /// The retention the worker uses: the default of --older-than-days.
    #[arg(long, env = "JOB_RETENTION_DAYS", default_value_t = 30.0, hide = true)]
    pub job_retention_days: f64,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Jobs deleted per transaction.
    #[arg(long, default_value_t = 1000)]
    pub limit: i32,
}

fn foods(args: &FoodsArgs) -> anyhow::Result<()> {
    use crate::plan::foods::{FoodFilter, catalogue};
    let filter = match &args.profile {
        Some(path) => Some(FoodFilter::new(&crate::plan::parse_profile(
            &jobs::read_json(path)?,
        )?)),
        None => None,
    };
    let found: Vec<_> = catalogue()
        .search(&args.query.join(" "))
        .into_iter()
        .filter(|f| filter.as_ref().is_none_or(|flt| flt.allows(f)))
        .collect();
    if args.json {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|f| {
                serde_json::json!({
                    "id": f.id, "source": f.source.as_str(), "code": f.code, "name": f.name,
                    "group": f.group, "diet": f.diet, "allergens": f.allergens,
                    "kcal": f.kcal, "protein_g": f.protein_g, "fat_g": f.fat_g,
                    "carbs_g": f.carbs_g, "fiber_g": f.fiber_g,
                    "min_g": f.min_g, "max_g": f.max_g, "step_g": f.step_g,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<28} {:<9} {:<6} {:>7} {:>6} {:>6} {:>6}  {:<10} {:<11} allergens",
        "id", "source", "code", "kcal", "prot", "fat", "carb", "group", "diet"
    );
    for f in &found {
        println!(
            "{:<28} {:<9} {:<6} {:>7.1} {:>6.1} {:>6.1} {:>6.1}  {:<10} {:<11} {}",
            f.id,
            f.source.as_str(),
            f.code,
            f.kcal,
            f.protein_g,
            f.fat_g,
            f.carbs_g,
            f.group,
            format!("{:?}", f.diet).to_lowercase(),
            f.allergens.join(",")
        );
    }
    println!("{} foods (per 100 g edible portion)", found.len());
    Ok(())
}

/// Runs one command.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let traces = crate::telemetry::logging::TraceSettings::from_env();
    let telemetry = if cli.command.draws_on_the_terminal() {
        crate::telemetry::logging::init_with(cli.log_format, &traces, "warn")
    } else {
        crate::telemetry::logging::init(cli.log_format, &traces)
    };
    let result = run_command(cli).await;
    telemetry.shutdown();
    result
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let pool = crate::db::pool(&cli.db, 2).await?;
            crate::db::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Run(args) => run::run(&cli.db, *args).await,
        Command::Enqueue(args) => jobs::enqueue(&cli.db, args).await,
        Command::Jobs(cmd) => jobs::execute(&cli.db, cmd).await,
        Command::Kinds(cmd) => kinds::execute(&cli.db, cmd).await,
        Command::Purge(args) => purge::execute(&cli.db, args).await,
        Command::Schedules { user, json } => schedules::list(&cli.db, user, json).await,
        #[cfg(feature = "dev-tools")]
        Command::Bench(cmd) => dev::bench::execute(&cli.db, cmd).await,
        Command::Foods(args) => foods(&args),
        Command::Smoke(args) => smoke::execute(&cli.db, args).await,
        Command::Targets { profile } => {
            let profile = crate::plan::parse_profile(&jobs::read_json(&profile)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::plan::targets(&profile))?
            );
            Ok(())
        }
        #[cfg(feature = "dev-tools")]
        Command::MockLlm(args) => dev::mock_llm(args).await,
        #[cfg(feature = "dev-tools")]
        Command::Demo(args) => dev::demo::demo(&cli.db, *args).await,
        #[cfg(feature = "dev-tools")]
        Command::Token(args) => {
            println!("{}", dev::token::user_token(&args)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Every secret a command line can carry: flag, value, and the part of
    /// the value that must never be shown.
    const SECRETS: [(&str, &str, &str); 7] = [
        (
            "--database-url",
            "postgres://app:db-password-1@db:5432/plans",
            "db-password-1",
        ),
        (
            "--listen-database-url",
            "postgres://app@db/plans?password=listen-password-2",
            "listen-password-2",
        ),
        ("--supabase-jwt-secret", "jwt-secret-3", "jwt-secret-3"),
        ("--admin-token", "admin-token-4-0123456", "admin-token-4"),
        ("--llm-api-key", "llm-key-5", "llm-key-5"),
        ("--expo-access-token", "expo-token-6", "expo-token-6"),
        ("--unsplash-access-key", "unsplash-key-7", "unsplash-key-7"),
    ];

    #[cfg(feature = "dev-tools")]
    #[test]
    fn global_flags_hidden_from_mock_llm_help_still_parse_everywhere() {
        let parse = |argv: &[&str]| {
            let mut m = command().try_get_matches_from(argv).unwrap();
            Cli::from_arg_matches_mut(&mut m).unwrap()
        };
        let url = "postgres://u@db:5432/x";
        let cli = parse(&[
            "plan-worker",
            "mock-llm",
            "--database-url",
            url,
            "--port",
            "1",
        ]);
        assert_eq!(cli.db.database_url, url);
        assert!(matches!(cli.command, Command::MockLlm(ref a) if a.port == 1));
        let cli = parse(&["plan-worker", "--database-url", url, "migrate"]);
        assert_eq!(cli.db.database_url, url);
        let cli = parse(&["plan-worker", "migrate", "--database-url", url]);
        assert_eq!(cli.db.database_url, url);
        let help = command()
            .find_subcommand_mut("mock-llm")
            .unwrap()
            .render_help()
            .to_string();
        assert!(!help.contains("--database-url"), "{help}");
        for own in [
            "--port",
            "--tokens-per-second",
            "--ttft-ms",
            "--max-concurrent",
            "--retry-after-ms",
        ] {
            assert!(help.contains(own), "{own}: {help}");
        }
    }

    #[test]
    fn debug_output_of_the_settings_shows_no_secret() {
        let mut argv = vec!["plan-worker", "run"];
        for (flag, value, _) in SECRETS {
            argv.extend([flag, value]);
        }
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Run(run) = &cli.command else {
            panic!("not run: {:?}", cli.command);
        };
        let shown = [
            format!("{cli:?}"),
            format!("{:?}", cli.db),
            format!("{:?}", run.api),
            format!("{:?}", run.llm),
            format!("{:?}", run.push),
            format!("{:?}", run.images),
        ];
        for text in &shown {
            for (flag, _, secret) in SECRETS {
                assert!(!text.contains(secret), "{flag} shown: {text}");
            }
        }
        // Redacted, not dropped: what is set stays visible.
        assert!(shown[1].contains("@db:5432/plans"), "{}", shown[1]);
        assert!(shown[2].contains("admin_token: Some("), "{}", shown[2]);
    }
}
