//! The operator commands of the binary against the test's database:
//! `kinds` (list, pause, resume, cap) and `purge`, each checking what it
//! prints, its exit code and the rows.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::process::database_url;

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `plan-worker args...` with `env` set (None: removed from the test's own
/// environment).
async fn binary(args: &[&str], env: &[(&str, Option<&str>)]) -> Ran {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_plan-worker"));
    command.args(args);
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let out = command.output().await.unwrap();
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `plan-worker args...` on the test's database.
async fn run(pool: &PgPool, args: &[&str]) -> Ran {
    let url = database_url(pool);
    let env = [
        ("DATABASE_URL", Some(url.as_str())),
        ("JOB_RETENTION_DAYS", None),
        ("RUST_LOG", Some("warn")),
    ];
    binary(args, &env).await
}

async fn kinds(pool: &PgPool) -> Vec<Value> {
    let r = run(pool, &["kinds", "list", "--json"]).await;
    assert!(r.ok, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn kind<'a>(kinds: &'a [Value], name: &str) -> &'a Value {
    kinds
        .iter()
        .find(|k| k["kind"] == name)
        .unwrap_or_else(|| panic!("no {name} in {kinds:?}"))
}

async fn make_job(pool: &PgPool, kind: &str) -> Uuid {
    sqlx::query_scalar("select job_id from create_plan_job($1, $2, $3)")
        .bind(Uuid::new_v4())
        .bind(profile("muscle-gain-vegetarian-gym"))
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_paused_kind_is_listed_paused_with_its_queue_until_resumed(pool: PgPool) {
    make_job(&pool, "meal_plan").await;
    make_job(&pool, "meal_plan").await;
    let before = kinds(&pool).await;
    assert_eq!(kind(&before, "meal_plan")["paused"], false);
    assert_eq!(kind(&before, "meal_plan")["pending"], 2);
    assert_eq!(kind(&before, "weekly_base_plan")["pending"], 0);

    let r = run(&pool, &["kinds", "pause", "meal_plan"]).await;
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "meal_plan\tpaused");
    let paused = kinds(&pool).await;
    assert_eq!(kind(&paused, "meal_plan")["paused"], true);
    assert!(kind(&paused, "meal_plan")["paused_at"].is_string());
    assert_eq!(kind(&paused, "weekly_base_plan")["paused"], false);
    let again = run(&pool, &["kinds", "pause", "meal_plan"]).await;
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(again.stdout.trim(), "meal_plan\talready paused");

    let table = run(&pool, &["kinds", "list"]).await;
    assert!(table.ok, "{}", table.stderr);
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("meal_plan "))
        .unwrap();
    assert!(line.contains(" yes "), "{line}");

    let r = run(&pool, &["kinds", "resume", "meal_plan"]).await;
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "meal_plan\tresumed");
    let resumed = kinds(&pool).await;
    assert_eq!(kind(&resumed, "meal_plan")["paused"], false);
    assert!(kind(&resumed, "meal_plan")["paused_at"].is_null());

    // Every change, and the pause that changed nothing, is in the audit.
    assert_eq!(
        audit(&pool).await,
        vec![
            (
                "pause".to_owned(),
                json!({"kind": "meal_plan", "changed": true})
            ),
            (
                "pause".to_owned(),
                json!({"kind": "meal_plan", "changed": false})
            ),
            (
                "resume".to_owned(),
                json!({"kind": "meal_plan", "changed": true})
            ),
        ]
    );
}

/// The operator actions, oldest first; each by the CLI's user, on no job.
async fn audit(pool: &PgPool) -> Vec<(String, Value)> {
    let rows: Vec<(String, String, Option<Uuid>, Value)> =
        sqlx::query_as("select operator, action, job_id, detail from operator_actions order by id")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(operator, action, job, detail)| {
            assert!(operator.starts_with("cli:"), "{operator}");
            assert_eq!(job, None);
            (action, detail)
        })
        .collect()
}

#[sqlx::test]
async fn a_cap_is_set_shown_and_lifted(pool: PgPool) {
    let r = run(&pool, &["kinds", "cap", "weekly_base_plan", "4"]).await;
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "weekly_base_plan\tcapped at 4 running");
    assert_eq!(
        kind(&kinds(&pool).await, "weekly_base_plan")["max_running"],
        4
    );
    let r = run(&pool, &["kinds", "cap", "weekly_base_plan", "none"]).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(kind(&kinds(&pool).await, "weekly_base_plan")["max_running"].is_null());

    let bad = run(&pool, &["kinds", "cap", "weekly_base_plan", "0"]).await;
    assert!(!bad.ok);
    assert!(bad.stderr.contains("max_running"), "{}", bad.stderr);
    assert_eq!(
        audit(&pool).await,
        vec![
            (
                "cap".to_owned(),
                json!({"kind": "weekly_base_plan", "maxRunning": 4})
            ),
            (
                "cap".to_owned(),
                json!({"kind": "weekly_base_plan", "maxRunning": null})
            ),
        ],
        "the refused cap is not recorded"
    );
}

#[sqlx::test]
async fn an_unknown_kind_is_refused_by_name(pool: PgPool) {
    for args in [
        &["kinds", "pause", "no_such_kind"][..],
        &["kinds", "resume", "no_such_kind"],
        &["kinds", "cap", "no_such_kind", "3"],
    ] {
        let r = run(&pool, args).await;
        assert!(!r.ok, "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.contains("kind: unknown kind 'no_such_kind'"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let count: i64 = sqlx::query_scalar("select count(*) from plan_job_kinds where paused")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert!(audit(&pool).await.is_empty(), "a refusal is not recorded");
}

/// `n` cancelled jobs that finished 40 days ago.
async fn old_finished_jobs(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = make_job(pool, "weekly_base_plan").await;
        sqlx::query("select cancel_plan_job($1)")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
        ids.push(id);
    }
    // Their failure pushes are not pending: a pending push holds its job.
    sqlx::query("update notification_outbox set status = 'sent' where job_id = any ($1)")
        .bind(&ids)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "update plan_generation_jobs set completed_at = now() - interval '40 days' \
         where id = any ($1)",
    )
    .bind(&ids)
    .execute(pool)
    .await
    .unwrap();
    ids
}

#[sqlx::test]
async fn purge_dry_run_counts_and_purge_deletes_in_batches(pool: PgPool) {
    old_finished_jobs(&pool, 5).await;
    let recent = make_job(&pool, "weekly_base_plan").await;

    let dry = run(&pool, &["purge", "--dry-run"]).await;
    assert!(dry.ok, "{}", dry.stderr);
    assert!(dry.stdout.starts_with("would delete:"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("jobs              5\n"),
        "{}",
        dry.stdout
    );
    assert_eq!(count(&pool, "plan_generation_jobs").await, 6);

    // A longer period than the jobs' age: nothing is due.
    let none = run(&pool, &["purge", "--older-than-days", "60"]).await;
    assert!(none.ok, "{}", none.stderr);
    assert!(
        none.stdout.contains("jobs              0\n"),
        "{}",
        none.stdout
    );

    let done = run(&pool, &["purge", "--limit", "2"]).await;
    assert!(done.ok, "{}", done.stderr);
    assert!(done.stdout.starts_with("deleted:"), "{}", done.stdout);
    assert!(
        done.stdout.contains("jobs              5\n"),
        "{}",
        done.stdout
    );
    assert!(!done.stdout.contains("skipped"), "{}", done.stdout);
    let left: Vec<Uuid> = sqlx::query_scalar("select id from plan_generation_jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![recent]);
}

#[sqlx::test]
async fn purge_says_when_another_worker_holds_the_pass(pool: PgPool) {
    old_finished_jobs(&pool, 1).await;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock(1886151022, 1)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let r = run(&pool, &["purge"]).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("skipped"), "{}", r.stdout);
    holder.rollback().await.unwrap();
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

#[sqlx::test]
async fn purge_refuses_to_read_a_kept_retention_as_delete_everything(pool: PgPool) {
    old_finished_jobs(&pool, 1).await;
    let url = database_url(&pool);
    let env = [
        ("DATABASE_URL", Some(url.as_str())),
        ("JOB_RETENTION_DAYS", Some("0")),
    ];
    let out = binary(&["purge"], &env).await;
    assert!(!out.ok);
    let stderr = out.stderr;
    assert!(stderr.contains("older_than_days"), "{stderr}");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

#[sqlx::test]
async fn schedules_lists_every_schedule_or_one_users(pool: PgPool) {
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    for user in [alice, bob] {
        sqlx::query(
            "select schedule_plan_regeneration($1, 'weekly_base_plan', $2, interval '7 days')",
        )
        .bind(user)
        .bind(profile("muscle-gain-vegetarian-gym"))
        .execute(&pool)
        .await
        .unwrap();
    }
    let all = run(&pool, &["schedules", "--json"]).await;
    assert!(all.ok, "{}", all.stderr);
    let rows: Vec<Value> = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["every"], "7 days");
    assert_eq!(rows[0]["every_seconds"], 7 * 86_400);
    assert_eq!(rows[0]["active"], true);

    let one = run(&pool, &["schedules", "--user", &alice.to_string()]).await;
    assert!(one.ok, "{}", one.stderr);
    assert!(one.stdout.contains(&alice.to_string()), "{}", one.stdout);
    assert!(!one.stdout.contains(&bob.to_string()), "{}", one.stdout);
    assert!(one.stdout.contains("7 days"), "{}", one.stdout);
    assert!(one.stdout.ends_with("1 schedules\n"), "{}", one.stdout);
}

/// `plan-worker migrate` with `url` and no RUST_LOG, pretty logs, output
/// piped as a log collector would read it.
async fn migrate_at(url: &str) -> Ran {
    let env = [
        ("DATABASE_URL", Some(url)),
        ("LOG_FORMAT", Some("pretty")),
        ("RUST_LOG", None),
    ];
    binary(&["migrate"], &env).await
}

#[sqlx::test]
async fn a_database_that_is_missing_or_refuses_is_named_in_one_line(pool: PgPool) {
    let url = database_url(&pool);
    let (server, _) = url.rsplit_once('/').unwrap();
    let missing = migrate_at(&format!("{server}/no_such_database")).await;
    assert!(!missing.ok);
    assert_eq!(
        missing.stderr.trim(),
        format!(
            "error: could not connect to DATABASE_URL: database \"no_such_database\" does not exist (at {})",
            server.rsplit_once('@').unwrap().1
        )
    );

    // Nothing listens on a port just freed: refused (tried again for 10 s,
    // as for a server restarting), said as such, not as a pool's timeout.
    let port = crate::support::free_port();
    let refused = migrate_at(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    assert!(!refused.ok);
    // After the retry's one warning, the error in one line.
    let line = refused.stderr.trim().lines().last().unwrap_or_default();
    assert!(
        !refused.stderr.contains("pool timed out"),
        "{}",
        refused.stderr
    );
    assert!(
        line.starts_with(&format!(
            "error: could not connect to DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:{port}: "
        )) && line.to_lowercase().contains("refused"),
        "{line}"
    );
}

#[sqlx::test]
async fn migrate_on_an_up_to_date_database_says_one_line_without_colour_codes(pool: PgPool) {
    let url = database_url(&pool);
    let first = migrate_at(&url).await;
    assert!(first.ok, "{}", first.stderr);
    let again = migrate_at(&url).await;
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(again.stdout.trim(), "migrations applied");
    assert!(
        !again.stderr.contains("INFO") && !again.stderr.contains('\u{1b}'),
        "a piped, up-to-date migrate logs nothing and no escape codes: {:?}",
        again.stderr
    );
}

#[sqlx::test]
async fn jobs_show_ends_a_failed_job_with_what_the_user_was_told(pool: PgPool) {
    let id: Uuid = sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot, status, error_code, \
         error_message, completed_at) values (gen_random_uuid(), 'weekly_base_plan', '{}', \
         'failed', 'AI_UNAVAILABLE', 'The plan service is busy; try again in a few minutes.', now()) \
         returning id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let r = run(&pool, &["jobs", "show", &id.to_string()]).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "\nfailed: AI_UNAVAILABLE: The plan service is busy; try again in a few minutes.\n"
        ),
        "{}",
        r.stdout
    );
}

/// Piped (as into a file or a CI log), the demo's table is plain text, and
/// without RUST_LOG no INFO line cuts into it.
#[sqlx::test]
async fn the_demo_piped_prints_plain_text_and_no_info_logs(pool: PgPool) {
    let url = database_url(&pool);
    let env = [
        ("DATABASE_URL", Some(url.as_str())),
        ("LLM_API_KEY", Some("")),
        ("LOG_FORMAT", Some("pretty")),
        ("RUST_LOG", None),
    ];
    let out = binary(&["demo"], &env).await;
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(out.ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes in a pipe: {stdout:?}"
    );
    assert!(
        !stderr.contains("INFO"),
        "INFO logs during the table: {stderr}"
    );
}

#[tokio::test]
async fn mock_llm_help_lists_only_its_own_flags_and_run_help_still_lists_the_database_ones() {
    let no_env = [
        ("DATABASE_URL", None),
        ("LISTEN_DATABASE_URL", None),
        ("LOG_FORMAT", None),
    ];
    let mock = binary(&["mock-llm", "--help"], &no_env).await;
    assert!(mock.ok, "{}", mock.stderr);
    for own in ["--port", "--mode", "--latency", "--jitter", "--help"] {
        assert!(mock.stdout.contains(own), "{own} missing:\n{}", mock.stdout);
    }
    for global in [
        "--database-url",
        "--listen-database-url",
        "--database-pool-size",
        "--log-format",
    ] {
        assert!(
            !mock.stdout.contains(global),
            "{global} listed:\n{}",
            mock.stdout
        );
    }

    let run = binary(&["run", "--help"], &no_env).await;
    assert!(run.ok, "{}", run.stderr);
    for global in ["--database-url", "--listen-database-url", "--log-format"] {
        assert!(run.stdout.contains(global), "{global} missing from run");
    }
    let top = binary(&["--help"], &no_env).await;
    assert!(top.stdout.contains("--database-url"), "{}", top.stdout);
}

#[sqlx::test]
async fn hidden_global_flags_still_parse_before_and_after_the_command(pool: PgPool) {
    let url = database_url(&pool);
    // Before and after the subcommand, as global flags always were.
    let before = binary(
        &["--database-url", &url, "kinds", "list", "--json"],
        &[("DATABASE_URL", None), ("RUST_LOG", Some("warn"))],
    )
    .await;
    assert!(before.ok, "{}", before.stderr);
    let after = binary(
        &["kinds", "list", "--json", "--database-url", &url],
        &[("DATABASE_URL", None), ("RUST_LOG", Some("warn"))],
    )
    .await;
    assert!(after.ok, "{}", after.stderr);
    assert_eq!(before.stdout, after.stdout);
}
