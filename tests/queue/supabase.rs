//! Beside Supabase: a database shaped like a Supabase project's (its `anon`,
//! `authenticated` and `service_role` roles, `auth.uid()` reading
//! `request.jwt.claims`, and its default grants of every new object to those
//! roles) before the migrations run. Then `anon` can do nothing,
//! `authenticated` reads only its own rows and calls only the two functions
//! that take the user from its token, and the worker's functions are closed
//! to apps.

use plan_worker::db::MIGRATOR;
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Supabase's roles, `auth.uid()` and default privileges (from its
/// project set-up scripts). Roles are cluster-wide and other tests may have
/// made them already.
const SUPABASE_SHAPE: &str = r#"
do $$
declare
    r text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        begin
            execute format('create role %I nologin noinherit', r);
        exception when duplicate_object or unique_violation then
            null;
        end;
    end loop;
end $$;
create schema if not exists auth;
create or replace function auth.uid() returns uuid language sql stable as $f$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$f$;
grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid() to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
"#;

const APP_FUNCTIONS: &[&str] = &[
    "cancel_my_plan_job",
    "get_my_active_plan_job",
    "plan_request_user",
];

async fn supabase_shaped(pool: &PgPool) {
    sqlx::raw_sql(SUPABASE_SHAPE).execute(pool).await.unwrap();
    MIGRATOR.run(pool).await.expect("the migrations run");
}

/// Runs `sql` as `role`, with `sub` as the token's user, in a transaction
/// that is rolled back.
async fn as_role(
    pool: &PgPool,
    role: &str,
    sub: Option<Uuid>,
    sql: &str,
) -> Result<Vec<PgRow>, sqlx::Error> {
    assert!(["anon", "authenticated", "service_role"].contains(&role));
    let mut tx = pool.begin().await.unwrap();
    if let Some(sub) = sub {
        let claims = json!({"sub": sub, "role": role}).to_string();
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(claims)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("set local role {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *tx)
        .await;
    tx.rollback().await.unwrap();
    rows
}

fn denied(result: Result<Vec<PgRow>, sqlx::Error>, what: &str) {
    match result {
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") => {}
        other => panic!("{what}: expected permission denied, got {other:?}"),
    }
}

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' \
         and tablename <> '_sqlx_migrations' order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Two users, each with a job, a weekly plan and a meal plan, made as the
/// owner (the worker's and the API's role).
async fn two_users(pool: &PgPool) -> [(Uuid, Uuid); 2] {
    let mut out = Vec::new();
    for _ in 0..2 {
        let user = Uuid::new_v4();
        let job: Uuid = sqlx::query_scalar("select job_id from create_plan_job($1, $2)")
            .bind(user)
            .bind(json!({"goal": "MAINTENANCE"}))
            .fetch_one(pool)
            .await
            .unwrap();
        let done: Uuid = sqlx::query_scalar(
            "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot) \
             values ($1, 'weekly_base_plan', 'completed', '{}') returning id",
        )
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap();
        for table in ["weekly_base_plans", "meal_plans"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "insert into {table} (user_id, job_id, version, plan, targets, source) \
                 values ($1, $2, 1, '{{}}', '{{}}', 'offline')"
            )))
            .bind(user)
            .bind(done)
            .execute(pool)
            .await
            .unwrap();
        }
        out.push((user, job));
    }
    [out[0], out[1]]
}

#[sqlx::test(migrations = false)]
async fn anon_can_read_nothing_and_call_nothing(pool: PgPool) {
    supabase_shaped(&pool).await;
    let [(user, job), _] = two_users(&pool).await;
    for table in tables(&pool).await {
        denied(
            as_role(&pool, "anon", None, &format!("select * from {table}")).await,
            &format!("anon reads {table}"),
        );
        let writable: bool = sqlx::query_scalar(
            "select has_table_privilege('anon', $1, 'INSERT, UPDATE, DELETE, TRUNCATE')",
        )
        .bind(&table)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(!writable, "anon may write {table}");
    }
    for call in [
        format!("select * from create_plan_job('{user}', '{{}}')"),
        format!("select * from cancel_plan_job('{job}')"),
        "select * from claim_plan_jobs('evil', array['weekly_base_plan'], 10, 30)".to_owned(),
        format!("select * from cancel_my_plan_job('{job}')"),
        "select * from get_my_active_plan_job()".to_owned(),
    ] {
        denied(as_role(&pool, "anon", Some(user), &call).await, &call);
    }
    let executable: Vec<String> = sqlx::query_scalar(
        "select p.oid::regprocedure::text from pg_proc p \
         where p.pronamespace = 'public'::regnamespace \
           and has_function_privilege('anon', p.oid, 'EXECUTE') order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(executable.is_empty(), "anon may execute {executable:?}");
}

#[sqlx::test(migrations = false)]
async fn authenticated_users_read_only_their_own_rows_and_call_only_their_own_functions(
    pool: PgPool,
) {
    supabase_shaped(&pool).await;
    let [(alice, alices_job), (_bob, bobs_job)] = two_users(&pool).await;
    let me = Some(alice);

    for table in ["plan_generation_jobs", "weekly_base_plans", "meal_plans"] {
        let rows = as_role(
            &pool,
            "authenticated",
            me,
            &format!("select user_id from {table}"),
        )
        .await
        .unwrap();
        let users: Vec<Uuid> = rows.iter().map(|r| r.get("user_id")).collect();
        assert!(!users.is_empty(), "{table}: alice sees her rows");
        assert!(users.iter().all(|u| *u == alice), "{table}: {users:?}");
        denied(
            as_role(
                &pool,
                "authenticated",
                me,
                &format!("update {table} set user_id = user_id"),
            )
            .await,
            &format!("authenticated updates {table}"),
        );
        // Without a token's user, nothing at all.
        let rows = as_role(
            &pool,
            "authenticated",
            None,
            &format!("select * from {table}"),
        )
        .await
        .unwrap();
        assert!(rows.is_empty(), "{table} without a user");
    }
    for table in tables(&pool).await {
        if ["plan_generation_jobs", "weekly_base_plans", "meal_plans"].contains(&table.as_str()) {
            continue;
        }
        denied(
            as_role(
                &pool,
                "authenticated",
                me,
                &format!("select * from {table}"),
            )
            .await,
            &format!("authenticated reads {table}"),
        );
    }

    // The worker's functions and job creation are closed to apps.
    for call in [
        format!("select * from create_plan_job('{alice}', '{{}}')"),
        format!("select * from cancel_plan_job('{bobs_job}')"),
        "select * from claim_plan_jobs('evil', array['weekly_base_plan'], 10, 30)".to_owned(),
        format!("select * from complete_plan_job('{bobs_job}', gen_random_uuid())"),
        "select * from reap_expired_plan_jobs()".to_owned(),
        format!("select * from get_active_plan_job('{alice}')"),
    ] {
        denied(as_role(&pool, "authenticated", me, &call).await, &call);
    }
    let executable: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p \
         where p.pronamespace = 'public'::regnamespace \
           and has_function_privilege('authenticated', p.oid, 'EXECUTE') order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(executable, APP_FUNCTIONS);

    // Her own functions take the user from the token, never from an argument.
    let active = as_role(
        &pool,
        "authenticated",
        me,
        "select id from get_my_active_plan_job()",
    )
    .await
    .unwrap();
    let ids: Vec<Uuid> = active.iter().map(|r| r.get("id")).collect();
    assert_eq!(ids, [alices_job]);
    let refused = as_role(
        &pool,
        "authenticated",
        me,
        &format!("select * from cancel_my_plan_job('{bobs_job}')"),
    )
    .await;
    match refused {
        Err(sqlx::Error::Database(db)) => {
            assert_eq!(db.code().as_deref(), Some("22023"));
            assert!(db.message().starts_with("job_id:"), "{}", db.message());
        }
        other => panic!("cancelling bob's job: {other:?}"),
    }
    let cancelled = as_role(
        &pool,
        "authenticated",
        me,
        &format!("select cancelled from cancel_my_plan_job('{alices_job}')"),
    )
    .await
    .unwrap();
    assert!(cancelled[0].get::<bool, _>("cancelled"));
    denied(
        as_role(
            &pool,
            "authenticated",
            None,
            "select * from get_my_active_plan_job()",
        )
        .await,
        "without a token's user",
    );
}

#[sqlx::test(migrations = false)]
async fn every_table_has_row_level_security_and_the_owner_still_runs_the_queue(pool: PgPool) {
    supabase_shaped(&pool).await;
    let without: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c \
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' \
           and c.relname <> '_sqlx_migrations' and not c.relrowsecurity order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(without.is_empty(), "tables without RLS: {without:?}");
    // The owner (the worker's role) is not restricted by RLS.
    let [(user, job), _] = two_users(&pool).await;
    let claimed: Vec<Uuid> = sqlx::query_scalar(
        "select id from claim_plan_jobs('owner', array['weekly_base_plan'], 10, 30)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.contains(&job));
    let plans: i64 =
        sqlx::query_scalar("select count(*) from weekly_base_plans where user_id = $1")
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(plans, 1);
}

/// On a plain PostgreSQL (no Supabase roles) the migrations still run, and
/// PUBLIC may execute none of the service's functions.
#[sqlx::test]
async fn without_supabase_roles_public_executes_nothing(pool: PgPool) {
    let executable: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p \
         where p.pronamespace = 'public'::regnamespace \
           and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a \
                       where a.grantee = 0 and a.privilege_type = 'EXECUTE') order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(executable.is_empty(), "PUBLIC executes {executable:?}");
}
