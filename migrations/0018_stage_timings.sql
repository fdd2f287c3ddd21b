-- An estimate that means something (#16 item 2). Until now the ETA came
-- from the run times of the last jobs of a kind, whatever made them: a
-- minute-long LLM job was estimated from millisecond offline ones. From
-- here on the estimate reads:
--
-- * what each stage of a finished job took, with the route (source and
--   model) that made it: plan_job_stage_timings, one row per completed
--   job, written in the transaction that saves the plan and completes it;
-- * the stage a running job is in and since when (progress_at);
-- * the route each worker runs each kind with (plan_workers.routes), so a
--   running job is estimated from jobs made the way its worker makes them,
--   and a pending one from the way the live workers would.

-- When the current stage (progress) began, on the database clock.
alter table plan_generation_jobs add column progress_at timestamptz;

-- As 0001, and the stage's start. Every call is a stage entered (the
-- worker reports each stage once), so the time is always now().
create or replace function set_plan_job_progress(p_job_id uuid, p_lease_token uuid, p_progress text)
returns boolean
language sql as $$
    with u as (
        update plan_generation_jobs set progress = p_progress, progress_at = now(), updated_at = now()
        where id = p_job_id and lease_token = p_lease_token and status = 'processing'
        returning 1
    ) select exists (select 1 from u)
$$;

-- {"weekly_base_plan": {"source": "llm", "model": "deepseek-chat"}, ...}:
-- how this worker makes each kind ('{}' for a worker that does not say).
alter table plan_workers add column routes jsonb not null default '{}'
    check (jsonb_typeof(routes) = 'object');

-- Stage timings of completed jobs. Insert-only, deleted with their job
-- (purge, retention) by the cascade. No row for a job completed without a
-- stage record (kinds completed by the queue's batch completer, jobs
-- finished before this migration): their estimates fall back to run times.
create table plan_job_stage_timings (
    job_id uuid primary key references plan_generation_jobs (id) on delete cascade,
    kind text not null,
    -- '' when the kind does not say (only 'llm' and 'offline' do today).
    source text not null default '' check (source in ('', 'llm', 'offline')),
    model text not null default '' check (length(model) <= 200),
    finished_at timestamptz not null default now(),
    -- The completing attempt, from its claim to the save.
    attempt_seconds double precision not null check (attempt_seconds >= 0),
    -- Its stages in the order run: [["generating_structure", 12.5], ...],
    -- seconds each, the last one (saving) up to the commit.
    stages jsonb not null check (jsonb_typeof(stages) = 'array')
);
-- The estimate reads the last N of a route, or of a kind, newest first:
-- each a bounded index range scan.
create index plan_job_stage_timings_route
    on plan_job_stage_timings (kind, source, model, finished_at desc);
create index plan_job_stage_timings_kind on plan_job_stage_timings (kind, finished_at desc);

-- As 0011: row-level security on, nothing for Supabase's app roles.
alter table plan_job_stage_timings enable row level security;
do $$
declare
    v_role text;
begin
    for v_role in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
        execute format('revoke all on table plan_job_stage_timings from %I', v_role);
        execute format('revoke execute on function set_plan_job_progress(uuid, uuid, text) from %I', v_role);
    end loop;
    revoke execute on function set_plan_job_progress(uuid, uuid, text) from public;
end $$;
