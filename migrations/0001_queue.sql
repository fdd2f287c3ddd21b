-- The plan generation job queue: tables, triggers and the functions every
-- client (this worker, psql, supabase-js RPC, another language) drives it with.
-- All times that decide anything come from now() of this database.

create type plan_job_status as enum ('pending', 'processing', 'completed', 'failed', 'cancelled');

-- Kinds a job may have. A row here is what makes a kind valid; the bench adds
-- its own no-op kind in its throwaway database.
create table plan_job_kinds (
    kind text primary key check (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    description text not null default '',
    -- Jobs of this kind tell their user when they end (push notification).
    notify_on_finish boolean not null default false
);
insert into plan_job_kinds (kind, description, notify_on_finish) values
    ('weekly_base_plan', 'a weekly training + nutrition + recovery plan', true),
    ('meal_plan', 'a weekly meal plan', true);

create table plan_generation_jobs (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null,
    kind text not null references plan_job_kinds (kind),
    status plan_job_status not null default 'pending',
    profile_snapshot jsonb not null
        constraint profile_snapshot_is_object check (jsonb_typeof(profile_snapshot) = 'object')
        constraint profile_snapshot_size check (pg_column_size(profile_snapshot) <= 65536),
    priority smallint not null default 0 check (priority between -100 and 100),
    run_after timestamptz not null default now(),
    retry_count integer not null default 0,
    max_retries integer not null default 3 constraint max_retries_range check (max_retries between 0 and 25),
    -- 429 deferrals spend no retry but are capped, so a provider that always
    -- says 429 cannot keep a job alive forever.
    rate_limit_deferrals integer not null default 0 check (rate_limit_deferrals >= 0),
    -- Claims so far; attempt rows are numbered by it.
    attempt_count integer not null default 0 check (attempt_count >= 0),
    worker_id text check (length(worker_id) <= 200),
    lease_token uuid,
    locked_until timestamptz,
    heartbeat_at timestamptz,
    progress text check (length(progress) <= 64),
    error_code text check (error_code ~ '^[A-Z][A-Z_]{0,63}$'),
    error_message text check (length(error_message) <= 1000),
    plan_id uuid,
    trace_context text check (length(trace_context) <= 512),
    created_at timestamptz not null default now(),
    started_at timestamptz,
    completed_at timestamptz,
    updated_at timestamptz not null default now(),
    constraint retry_count_within_limit check (retry_count between 0 and max_retries),
    constraint processing_has_lease check (
        status <> 'processing' or (lease_token is not null and locked_until is not null and worker_id is not null))
);

-- One active generation per user and kind: a second request finds the first.
create unique index plan_generation_jobs_one_active
    on plan_generation_jobs (user_id, kind) where status in ('pending', 'processing');
-- The claim: highest priority, then oldest due. Kind is a filter, not the
-- leading column: with kind = any(array) first, the index cannot return rows
-- in claim order and every claim would read and sort the whole queue.
create index plan_generation_jobs_claimable
    on plan_generation_jobs (priority desc, run_after, id) include (kind) where status = 'pending';
-- The reaper: leases that ran out, jobs of dead workers.
create index plan_generation_jobs_processing
    on plan_generation_jobs (locked_until) include (worker_id) where status = 'processing';
create index plan_generation_jobs_user on plan_generation_jobs (user_id, created_at desc);
create index plan_generation_jobs_finished
    on plan_generation_jobs (kind, completed_at desc) where status in ('completed', 'failed', 'cancelled');

-- No foreign key to plan_generation_jobs: attempt rows are inserted only by
-- claim_plan_jobs, from the job rows it has just locked, so the check could
-- never fail, and its per-row lookup cost a sixth of every claim. Deleting
-- old jobs deletes their attempts explicitly (see purge in the README).
create table plan_job_attempts (
    job_id uuid not null,
    attempt integer not null check (attempt >= 1),
    worker_id text not null,
    lease_token uuid not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    -- null while running
    outcome text check (outcome in ('completed', 'retry', 'deferred', 'failed', 'cancelled', 'released', 'lost')),
    error_code text,
    error_detail text check (length(error_detail) <= 20000),
    llm_usage jsonb,
    primary key (job_id, attempt)
) with (fillfactor = 70); -- room on the page so that closing an attempt is a HOT update

create table plan_workers (
    id text primary key check (length(id) between 1 and 200),
    host text not null default '',
    pid integer not null default 0,
    version text not null default '',
    kinds text[] not null default '{}',
    concurrency integer not null default 0,
    -- The worker holds pg_advisory_lock(1886151020, lock_key) on its LISTEN
    -- connection for its whole life; a free lock means the worker is gone.
    lock_key integer not null unique,
    started_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now()
);
create sequence plan_worker_lock_keys as integer cycle;

create table weekly_base_plans (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null,
    job_id uuid not null unique references plan_generation_jobs (id),
    version integer not null check (version >= 1),
    plan jsonb not null check (jsonb_typeof(plan) = 'object'),
    targets jsonb not null check (jsonb_typeof(targets) = 'object'),
    source text not null check (source in ('llm', 'offline')),
    model text,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    unique (user_id, version)
);
create unique index weekly_base_plans_one_active on weekly_base_plans (user_id) where is_active;

-- Push notifications through an outbox: a row is written in the same
-- transaction that ends a job (the plan's save, a final failure, the
-- reaper, stale expiry), and the worker's delivery loop sends it to Expo.
-- Expo push tokens of users. A profile snapshot may also carry push_token.
create table push_tokens (
    user_id uuid not null,
    token text not null check (length(token) between 1 and 512),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    deactivated_at timestamptz,
    primary key (user_id, token)
);

create table notification_outbox (
    id bigint generated always as identity primary key,
    job_id uuid not null,
    user_id uuid not null,
    -- plan_ready | plan_failed
    event text not null check (event in ('plan_ready', 'plan_failed')),
    error_code text,
    -- The snapshot's token, if any; tokens from push_tokens are added at send.
    snapshot_token text,
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'failed', 'skipped')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    -- A sender holds the row until then; a crash lets another take it over
    -- (so a push may, rarely, be sent twice: delivery is at least once).
    locked_until timestamptz,
    last_error text check (length(last_error) <= 2000),
    ticket_ids text[] not null default '{}',
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    unique (job_id, event)
);
create index notification_outbox_due on notification_outbox (next_attempt_at) where status = 'pending';

-- Outbox rows for jobs that have just ended (called by the functions that
-- end jobs, after their update, in their transaction).
create function plan_jobs_to_outbox(p_job_ids uuid[]) returns void
language sql as $$
    insert into notification_outbox (job_id, user_id, event, error_code, snapshot_token)
    select j.id, j.user_id, case j.status when 'completed' then 'plan_ready' else 'plan_failed' end,
           j.error_code, nullif(j.profile_snapshot ->> 'push_token', '')
    from plan_generation_jobs j
    join plan_job_kinds k on k.kind = j.kind and k.notify_on_finish
    where j.id = any (p_job_ids) and j.status in ('completed', 'failed')
    on conflict (job_id, event) do nothing
$$;

-- Notifications, both from one statement-level trigger per operation (each
-- transition-table scan costs every claim, completion and heartbeat):
-- * plan_jobs, payload the kind: rows became claimable (inserted pending, or
--   put back to pending). One per kind per statement, never one per row,
--   because every NOTIFYing transaction serialises on a cluster-wide lock.
-- * plan_job_events: status and progress changes for listeners (API event
--   streams, the owning worker's cancel watch), as a JSON array of
--   {id, status, progress, error_code} in chunks of 50 (far below the
--   8000-byte payload limit): a batch completion of 500 jobs costs 10
--   notifications, not 500.
create function plan_jobs_notify_insert() returns trigger
language plpgsql as $$
begin
    perform pg_notify('plan_jobs', k.kind)
    from (select distinct kind from new_rows where status = 'pending') k;
    perform pg_notify('plan_job_events', c.batch::text)
    from (select json_agg(json_build_object('id', n.id, 'status', n.status, 'progress', n.progress,
                                            'error_code', n.error_code)) as batch
          from (select r.*, (row_number() over () - 1) / 50 as chunk from new_rows r) n
          group by n.chunk) c;
    return null;
end $$;

create function plan_jobs_notify_update() returns trigger
language plpgsql as $$
begin
    -- One pass over the joined transition tables feeds both channels.
    perform pg_notify(x.channel, x.payload)
    from (
        with changed as materialized (
            select n.id, n.kind, n.status, n.progress, n.error_code,
                   n.status = 'pending' and (o.status <> 'pending' or n.run_after <> o.run_after) as requeued,
                   -- A claim (pending -> processing) publishes no event:
                   -- every NOTIFYing transaction queues on a cluster-wide lock
                   -- until its commit is flushed, and a claim must not wait
                   -- behind another transaction's fsync. The first progress
                   -- stage announces processing a moment later.
                   (n.status <> o.status and not (o.status = 'pending' and n.status = 'processing'))
                       or n.progress is distinct from o.progress as visible
            from new_rows n join old_rows o using (id)
        )
        select 'plan_jobs' as channel, k.kind as payload
        from (select distinct kind from changed where requeued) k
        union all
        select 'plan_job_events', c.batch::text
        from (select json_agg(json_build_object('id', e.id, 'status', e.status, 'progress', e.progress,
                                                'error_code', e.error_code)) as batch
              from (select v.*, (row_number() over () - 1) / 50 as chunk from changed v where v.visible) e
              group by e.chunk) c
    ) x;
    return null;
end $$;

create trigger plan_jobs_notify_insert after insert on plan_generation_jobs
    referencing new table as new_rows
    for each statement execute function plan_jobs_notify_insert();
create trigger plan_jobs_notify_update after update on plan_generation_jobs
    referencing new table as new_rows old table as old_rows
    for each statement execute function plan_jobs_notify_update();

-- Backoff for a retry: min(max, base * 2^retry_count) with full jitter, or the
-- provider's Retry-After when that is longer. The one implementation.
create function plan_job_backoff(
    p_retry_count integer, p_base_seconds double precision, p_max_seconds double precision,
    p_retry_after_seconds double precision default null
) returns interval
language sql volatile as $$
    select make_interval(secs => greatest(
        random() * least(p_max_seconds, p_base_seconds * power(2, least(p_retry_count, 30))),
        coalesce(p_retry_after_seconds, 0)))
$$;

-- Create a job, idempotent per user and kind: an active job is returned with
-- existed = true instead of a second one. Bad input raises with the field named.
create function create_plan_job(
    p_user_id uuid, p_profile_snapshot jsonb, p_kind text default 'weekly_base_plan',
    p_max_retries integer default 3, p_priority integer default 0,
    p_trace_context text default null
) returns table (job_id uuid, existed boolean, status plan_job_status)
language plpgsql as $$
declare
    v_id uuid;
begin
    if p_user_id is null then
        raise exception 'user_id: required' using errcode = '22023', column = 'user_id';
    end if;
    if p_profile_snapshot is null or jsonb_typeof(p_profile_snapshot) <> 'object' then
        raise exception 'profile_snapshot: must be a JSON object, got %',
            coalesce(jsonb_typeof(p_profile_snapshot), 'null')
            using errcode = '22023', column = 'profile_snapshot';
    end if;
    if not exists (select 1 from plan_job_kinds k where k.kind = p_kind) then
        raise exception 'kind: unknown kind %', coalesce(quote_literal(p_kind), 'null')
            using errcode = '22023', column = 'kind';
    end if;
    if p_max_retries is null or p_max_retries not between 0 and 25 then
        raise exception 'max_retries: must be between 0 and 25, got %', coalesce(p_max_retries::text, 'null')
            using errcode = '22023', column = 'max_retries';
    end if;
    loop
        select j.id, j.status into v_id, status from plan_generation_jobs j
        where j.user_id = p_user_id and j.kind = p_kind and j.status in ('pending', 'processing');
        if found then
            job_id := v_id; existed := true;
            return next; return;
        end if;
        begin
            insert into plan_generation_jobs (user_id, kind, profile_snapshot, max_retries, priority, trace_context)
            values (p_user_id, p_kind, p_profile_snapshot, p_max_retries, coalesce(p_priority, 0), p_trace_context)
            returning id, plan_generation_jobs.status into v_id, status;
            job_id := v_id; existed := false;
            return next; return;
        exception when unique_violation then
            -- A concurrent create won the race; loop to return its job.
            null;
        end;
    end loop;
end $$;

-- Claim up to p_max_jobs due jobs of the given kinds for one worker. Each gets
-- a fresh lease_token and an open attempt row. A claim lost in a server crash
-- is harmless (the job is simply claimable again and fencing stops the old
-- holder), so this transaction does not wait for its WAL flush.
create function claim_plan_jobs(
    p_worker_id text, p_kinds text[], p_max_jobs integer, p_lease_seconds double precision
) returns table (
    id uuid, user_id uuid, kind text, profile_snapshot jsonb, lease_token uuid,
    attempt integer, retry_count integer, max_retries integer, rate_limit_deferrals integer,
    trace_context text, created_at timestamptz, run_after timestamptz, claimed_at timestamptz
)
language plpgsql
-- A queue table's statistics are often stale (just filled, just drained);
-- the planner must still walk the claim index in order, never sort the queue.
set enable_sort = off
as $$
begin
    perform set_config('synchronous_commit', 'off', true);
    return query
    -- The picked rows stay locked until the statement ends, so their ctids
    -- are stable: updating by ctid is a TID scan, where a join on id made the
    -- planner hash the whole table.
    with picked as (
        select j.ctid from plan_generation_jobs j
        where j.status = 'pending' and j.kind = any (p_kinds) and j.run_after <= now()
        order by j.priority desc, j.run_after, j.id
        limit greatest(p_max_jobs, 0)
        for update skip locked
    ), claimed as (
        update plan_generation_jobs j
        set status = 'processing', worker_id = p_worker_id, lease_token = gen_random_uuid(),
            locked_until = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now(),
            attempt_count = j.attempt_count + 1, started_at = coalesce(j.started_at, now()),
            progress = null, updated_at = now()
        where j.ctid = any (array(select picked.ctid from picked)) and j.status = 'pending'
        returning j.*
    ), attempts as (
        insert into plan_job_attempts (job_id, attempt, worker_id, lease_token)
        select c.id, c.attempt_count, p_worker_id, c.lease_token from claimed c
    )
    select c.id, c.user_id, c.kind, c.profile_snapshot, c.lease_token, c.attempt_count,
           c.retry_count, c.max_retries, c.rate_limit_deferrals, c.trace_context,
           c.created_at, c.run_after, now()
    from claimed c;
end $$;

-- Extend the lease of a job still held under p_lease_token. Says whether the
-- lease is still held and whether the job was cancelled meanwhile. Like the
-- claim, it need not wait for a WAL flush.
create function heartbeat_plan_job(
    p_job_id uuid, p_lease_token uuid, p_lease_seconds double precision, p_progress text default null
) returns table (held boolean, cancelled boolean)
language plpgsql as $$
declare
    v_status plan_job_status;
begin
    perform set_config('synchronous_commit', 'off', true);
    update plan_generation_jobs j
    set locked_until = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now(),
        progress = coalesce(p_progress, j.progress)
    where j.id = p_job_id and j.lease_token = p_lease_token and j.status = 'processing';
    if found then
        held := true; cancelled := false;
        return next; return;
    end if;
    select j.status into v_status from plan_generation_jobs j
    where j.id = p_job_id and j.lease_token = p_lease_token;
    held := false;
    cancelled := coalesce(v_status = 'cancelled', false);
    return next;
end $$;

-- Report the stage of a running job (fenced; no effect once the lease is lost).
create function set_plan_job_progress(p_job_id uuid, p_lease_token uuid, p_progress text)
returns boolean
language sql as $$
    with u as (
        update plan_generation_jobs set progress = p_progress, updated_at = now()
        where id = p_job_id and lease_token = p_lease_token and status = 'processing'
        returning 1
    ) select exists (select 1 from u)
$$;

-- Close the open attempt of a claim.
create function plan_job_finish_attempt(
    p_job_id uuid, p_lease_token uuid, p_outcome text, p_error_code text default null,
    p_error_detail text default null, p_llm_usage jsonb default null
) returns void
language sql as $$
    update plan_job_attempts
    set finished_at = now(), outcome = p_outcome, error_code = p_error_code,
        error_detail = left(p_error_detail, 20000), llm_usage = coalesce(p_llm_usage, llm_usage)
    where job_id = p_job_id and lease_token = p_lease_token and finished_at is null
$$;

-- Complete a batch of jobs, each fenced by its lease token. Returns the ids
-- that were completed; an id missing from the answer had lost its lease.
create function complete_plan_jobs(p_job_ids uuid[], p_lease_tokens uuid[], p_plan_ids uuid[] default null)
returns table (job_id uuid)
language sql as $$
    with input as (
        select * from unnest(p_job_ids, p_lease_tokens, coalesce(p_plan_ids, array_fill(null::uuid, array[cardinality(p_job_ids)])))
            as t(id, token, plan_id)
    ), done as (
        update plan_generation_jobs j
        set status = 'completed', plan_id = i.plan_id, completed_at = now(), updated_at = now(),
            locked_until = null, progress = null, error_code = null, error_message = null
        from input i
        where j.id = i.id and j.lease_token = i.token and j.status = 'processing'
        returning j.id, j.lease_token, j.user_id, j.kind, nullif(j.profile_snapshot ->> 'push_token', '') as push_token
    ), outbox as (
        insert into notification_outbox (job_id, user_id, event, snapshot_token)
        select d.id, d.user_id, 'plan_ready', d.push_token
        from done d join plan_job_kinds k on k.kind = d.kind and k.notify_on_finish
        on conflict (job_id, event) do nothing
    ), attempts as (
        update plan_job_attempts a
        set finished_at = now(), outcome = 'completed', error_code = null
        from done d
        where a.job_id = d.id and a.lease_token = d.lease_token and a.finished_at is null
    )
    select id from done
$$;

create function complete_plan_job(p_job_id uuid, p_lease_token uuid, p_plan_id uuid default null)
returns boolean
language sql as $$
    select exists (select 1 from complete_plan_jobs(array[p_job_id], array[p_lease_token], array[p_plan_id]))
$$;

-- Record a failed attempt and decide what happens next, exactly:
-- * AI_RATE_LIMIT with deferrals left: back to pending after Retry-After,
--   no retry spent ('deferred');
-- * retryable and retry_count < max_retries: retry_count + 1, back to pending
--   after the backoff ('retry');
-- * otherwise: failed for good ('failed').
-- Returns the outcome, or null when the lease was no longer held.
create function fail_plan_job(
    p_job_id uuid, p_lease_token uuid, p_error_code text, p_error_message text,
    p_retryable boolean, p_retry_after_seconds double precision default null,
    p_error_detail text default null,
    p_retry_base_seconds double precision default 2, p_retry_max_seconds double precision default 300,
    p_max_rate_limit_deferrals integer default 10, p_llm_usage jsonb default null
) returns text
language plpgsql as $$
declare
    j plan_generation_jobs;
    v_outcome text;
begin
    select * into j from plan_generation_jobs
    where id = p_job_id and lease_token = p_lease_token and status = 'processing'
    for update;
    if not found then
        return null;
    end if;
    if p_error_code = 'AI_RATE_LIMIT' and j.rate_limit_deferrals < p_max_rate_limit_deferrals then
        v_outcome := 'deferred';
        update plan_generation_jobs
        set status = 'pending', rate_limit_deferrals = rate_limit_deferrals + 1,
            run_after = now() + make_interval(secs => greatest(coalesce(p_retry_after_seconds, p_retry_base_seconds), 0)),
            lease_token = null, locked_until = null, worker_id = null, progress = null,
            error_code = p_error_code, error_message = left(p_error_message, 1000), updated_at = now()
        where id = p_job_id;
    elsif p_retryable and j.retry_count < j.max_retries then
        v_outcome := 'retry';
        update plan_generation_jobs
        set status = 'pending', retry_count = retry_count + 1,
            run_after = now() + plan_job_backoff(j.retry_count, p_retry_base_seconds, p_retry_max_seconds, p_retry_after_seconds),
            lease_token = null, locked_until = null, worker_id = null, progress = null,
            error_code = p_error_code, error_message = left(p_error_message, 1000), updated_at = now()
        where id = p_job_id;
    else
        v_outcome := 'failed';
        update plan_generation_jobs
        set status = 'failed', completed_at = now(), locked_until = null, progress = null,
            error_code = p_error_code, error_message = left(p_error_message, 1000), updated_at = now()
        where id = p_job_id;
        perform plan_jobs_to_outbox(array[p_job_id]);
    end if;
    perform plan_job_finish_attempt(p_job_id, p_lease_token, v_outcome, p_error_code, p_error_detail, p_llm_usage);
    return v_outcome;
end $$;

-- Give a job back without spending an attempt (graceful shutdown). The
-- requeue trigger notifies a peer.
create function release_plan_job(p_job_id uuid, p_lease_token uuid) returns boolean
language plpgsql as $$
begin
    update plan_generation_jobs
    set status = 'pending', run_after = now(), lease_token = null, locked_until = null,
        worker_id = null, progress = null, updated_at = now()
    where id = p_job_id and lease_token = p_lease_token and status = 'processing';
    if not found then
        return false;
    end if;
    perform plan_job_finish_attempt(p_job_id, p_lease_token, 'released', null, 'released on shutdown');
    return true;
end $$;

-- Cancel a pending or running job. The row is the truth: the owning worker
-- hears the plan_job_events notification, and failing that its next heartbeat
-- reports the cancellation. Returns the status before the call (null: no job).
create function cancel_plan_job(p_job_id uuid, p_reason text default 'cancelled')
returns table (previous_status plan_job_status, cancelled boolean)
language plpgsql as $$
declare
    j plan_generation_jobs;
begin
    select * into j from plan_generation_jobs where id = p_job_id for update;
    if not found then
        return;
    end if;
    previous_status := j.status;
    cancelled := j.status in ('pending', 'processing');
    if cancelled then
        -- lease_token is kept so that the holder's heartbeat can tell a
        -- cancellation from a lost lease.
        update plan_generation_jobs
        set status = 'cancelled', completed_at = now(), locked_until = null, progress = null,
            error_code = 'CANCELLED', error_message = left(coalesce(p_reason, 'cancelled'), 1000),
            updated_at = now()
        where id = p_job_id;
        if j.lease_token is not null then
            perform plan_job_finish_attempt(p_job_id, j.lease_token, 'cancelled', 'CANCELLED', p_reason);
        end if;
    end if;
    return next;
end $$;

-- Return to pending, or fail, the jobs whose worker is gone (its presence
-- lock is free) or whose lease ran out. Either counts as an attempt with
-- WORKER_LOST, so a job that keeps killing its worker ends failed. Dead
-- workers' rows are removed. Returns one row per reaped job.
create function reap_expired_plan_jobs()
returns table (job_id uuid, worker_id text, kind text, reason text, outcome text)
language plpgsql as $$
declare
    w record;
    r record;
    v_dead text[] := '{}';
    v_dead_keys integer[] := '{}';
begin
    for w in select pw.id, pw.lock_key from plan_workers pw loop
        -- A transaction-level try-lock conflicts with the worker's session
        -- lock, so it succeeds only when that session is gone.
        if pg_try_advisory_xact_lock(1886151020, w.lock_key) then
            v_dead := v_dead || w.id;
            v_dead_keys := v_dead_keys || w.lock_key;
        end if;
    end loop;
    for r in
        select j.id, j.worker_id, j.kind, j.lease_token, j.retry_count, j.max_retries,
               case when j.worker_id = any (v_dead) then 'worker_dead' else 'lease_expired' end as why
        from plan_generation_jobs j
        where j.status = 'processing' and (j.locked_until < now() or j.worker_id = any (v_dead))
        for update skip locked
    loop
        if r.retry_count < r.max_retries then
            update plan_generation_jobs
            set status = 'pending', retry_count = retry_count + 1, run_after = now(),
                lease_token = null, locked_until = null, worker_id = null, progress = null,
                error_code = 'WORKER_LOST', error_message = 'The worker running this job was lost.',
                updated_at = now()
            where id = r.id;
            outcome := 'retry';
        else
            update plan_generation_jobs
            set status = 'failed', completed_at = now(), locked_until = null, progress = null,
                error_code = 'WORKER_LOST', error_message = 'The worker running this job was lost.',
                updated_at = now()
            where id = r.id;
            perform plan_jobs_to_outbox(array[r.id]);
            outcome := 'failed';
        end if;
        perform plan_job_finish_attempt(r.id, r.lease_token, 'lost', 'WORKER_LOST', r.why);
        job_id := r.id; worker_id := r.worker_id; kind := r.kind; reason := r.why;
        return next;
    end loop;
    -- Matching the key too spares a worker that re-registered meanwhile.
    delete from plan_workers pw where pw.lock_key = any (v_dead_keys);
end $$;

-- Fail jobs that waited in pending longer than p_max_age.
create function expire_stale_plan_jobs(p_max_age interval default interval '24 hours')
returns table (job_id uuid)
language plpgsql as $$
declare
    v_ids uuid[];
begin
    with expired as (
        update plan_generation_jobs
        set status = 'failed', completed_at = now(), error_code = 'STALE_JOB',
            error_message = 'This request waited too long and was dropped. Please try again.',
            updated_at = now()
        where status = 'pending' and created_at < now() - p_max_age
        returning id
    ) select coalesce(array_agg(id), '{}') into v_ids from expired;
    perform plan_jobs_to_outbox(v_ids);
    return query select unnest(v_ids);
end $$;

-- The active (pending or processing) job of a user and kind, if any.
create function get_active_plan_job(p_user_id uuid, p_kind text default 'weekly_base_plan')
returns setof plan_generation_jobs
language sql stable as $$
    select * from plan_generation_jobs
    where user_id = p_user_id and kind = p_kind and status in ('pending', 'processing')
$$;

-- Heartbeat many jobs of one worker in one statement (one round trip per
-- heartbeat interval, whatever the number of jobs). One row per input job.
create function heartbeat_plan_jobs(p_job_ids uuid[], p_lease_tokens uuid[], p_lease_seconds double precision)
returns table (job_id uuid, held boolean, cancelled boolean)
language plpgsql as $$
begin
    perform set_config('synchronous_commit', 'off', true);
    return query
    with input as (
        select * from unnest(p_job_ids, p_lease_tokens) as t(id, token)
    ), extended as (
        update plan_generation_jobs j
        set locked_until = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now()
        from input i
        where j.id = i.id and j.lease_token = i.token and j.status = 'processing'
        returning j.id
    )
    select i.id, e.id is not null,
           e.id is null and coalesce(j.status = 'cancelled' and j.lease_token = i.token, false)
    from input i
    left join extended e on e.id = i.id
    left join plan_generation_jobs j on j.id = i.id;
end $$;

-- Seconds until the next pending job of these kinds becomes due (null: none
-- scheduled). Measured on the database clock, which decides run_after.
create function next_plan_job_due(p_kinds text[]) returns double precision
language sql stable as $$
    -- greatest() ignores nulls, so "no job" must stay null explicitly.
    select case when min(run_after) is null then null
                else greatest(extract(epoch from min(run_after) - now()), 0)::double precision end
    from plan_generation_jobs
    where status = 'pending' and kind = any (p_kinds)
$$;

-- Register (or re-register after a reconnect) a worker. Call it on the
-- connection that will hold the presence lock: the lock is taken here, in
-- the same transaction, so no reaper ever sees the row without the lock.
create function register_plan_worker(
    p_id text, p_host text, p_pid integer, p_version text, p_kinds text[], p_concurrency integer
) returns integer
language plpgsql as $$
declare
    v_key integer;
begin
    v_key := nextval('plan_worker_lock_keys');
    perform pg_advisory_lock(1886151020, v_key);
    insert into plan_workers as w (id, host, pid, version, kinds, concurrency, lock_key)
    values (p_id, p_host, p_pid, p_version, p_kinds, p_concurrency, v_key)
    on conflict (id) do update
        set host = excluded.host, pid = excluded.pid, version = excluded.version,
            kinds = excluded.kinds, concurrency = excluded.concurrency,
            lock_key = excluded.lock_key, last_seen_at = now();
    return v_key;
end $$;

-- A new job for a failed or cancelled one (same user, kind and profile). If
-- the user already has an active job of that kind, that one is returned.
create function retry_plan_job(p_job_id uuid)
returns table (job_id uuid, existed boolean, status plan_job_status)
language plpgsql as $$
declare
    j plan_generation_jobs;
begin
    select * into j from plan_generation_jobs where id = p_job_id;
    if not found then
        raise exception 'job_id: no job %', p_job_id using errcode = '22023', column = 'job_id';
    end if;
    if j.status not in ('failed', 'cancelled') then
        raise exception 'job_id: only a failed or cancelled job can be retried; this one is %', j.status
            using errcode = '22023', column = 'job_id';
    end if;
    return query select * from create_plan_job(j.user_id, j.profile_snapshot, j.kind, j.max_retries,
                                               j.priority::integer, j.trace_context);
end $$;
