-- The queue at scale: finished jobs deleted after a retention period,
-- jobs scheduled for later, periodic regeneration, and kinds that can be
-- paused or capped across the cluster.

-- ---------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------

-- A user's plans outlive the job that made them: when retention deletes the
-- job, the plan keeps everything but the link.
alter table weekly_base_plans alter column job_id drop not null;
alter table weekly_base_plans drop constraint weekly_base_plans_job_id_fkey;
alter table weekly_base_plans add constraint weekly_base_plans_job_id_fkey
    foreign key (job_id) references plan_generation_jobs (id) on delete set null;

alter table meal_plans alter column job_id drop not null;
alter table meal_plans drop constraint meal_plans_job_id_fkey;
alter table meal_plans add constraint meal_plans_job_id_fkey
    foreign key (job_id) references plan_generation_jobs (id) on delete set null;
alter table meal_plans drop constraint meal_plans_images_job_id_fkey;
alter table meal_plans add constraint meal_plans_images_job_id_fkey
    foreign key (images_job_id) references plan_generation_jobs (id) on delete set null;
-- The delete's set-null looks plans up by images job.
create index meal_plans_images_job on meal_plans (images_job_id) where images_job_id is not null;

-- Deletes, in one transaction, up to p_limit jobs that finished before the
-- period, oldest first, with their attempts, idempotency keys and outbox
-- rows. A job whose push is still pending waits for it. Plans stay (their
-- job_id becomes null); operator_actions stay too (an audit trail outlives
-- what it names). One caller at a time: the others skip (skipped = true)
-- instead of fighting over the same rows. p_dry_run counts all that would
-- go, without the limit, and deletes nothing.
create function purge_plan_jobs(
    p_older_than_seconds double precision, p_limit integer default 1000, p_dry_run boolean default false
) returns table (skipped boolean, jobs bigint, attempts bigint, idempotency_keys bigint, outbox bigint)
language plpgsql as $$
declare
    v_cutoff timestamptz;
    v_ids uuid[] := '{}';
    v_users uuid[];
    v_kind text;
    v_batch uuid[];
begin
    if p_older_than_seconds is null or p_older_than_seconds < 0 then
        raise exception 'older_than_seconds: must be 0 or more, got %', coalesce(p_older_than_seconds::text, 'null')
            using errcode = '22023', column = 'older_than_seconds';
    end if;
    v_cutoff := now() - make_interval(secs => p_older_than_seconds);
    if p_dry_run then
        return query
        with doomed as (
            select j.id, j.user_id from plan_generation_jobs j
            where j.status in ('completed', 'failed', 'cancelled') and j.completed_at < v_cutoff
              and not exists (select 1 from notification_outbox o
                              where o.job_id = j.id and o.status = 'pending')
        )
        select false,
               (select count(*) from doomed),
               (select count(*) from plan_job_attempts a join doomed d on d.id = a.job_id),
               (select count(*) from plan_job_idempotency_keys k join doomed d on d.id = k.job_id),
               (select count(*) from notification_outbox o join doomed d on d.id = o.job_id);
        return;
    end if;
    if not pg_try_advisory_xact_lock(1886151022, 1) then
        return query select true, 0::bigint, 0::bigint, 0::bigint, 0::bigint;
        return;
    end if;
    -- Kind by kind, so that each batch reads the finished-jobs index
    -- (kind, completed_at) from its oldest end instead of all of it.
    for v_kind in select k.kind from plan_job_kinds k order by k.kind loop
        exit when cardinality(v_ids) >= p_limit;
        select coalesce(array_agg(d.id), '{}') into v_batch
        from (select j.id from plan_generation_jobs j
              where j.kind = v_kind and j.status in ('completed', 'failed', 'cancelled')
                and j.completed_at < v_cutoff
                and not exists (select 1 from notification_outbox o
                                where o.job_id = j.id and o.status = 'pending')
              order by j.completed_at
              limit greatest(p_limit - cardinality(v_ids), 0)
              for update skip locked) d;
        v_ids := v_ids || v_batch;
    end loop;
    select coalesce(array_agg(distinct j.user_id), '{}') into v_users
    from plan_generation_jobs j where j.id = any (v_ids);
    return query
    with a as (delete from plan_job_attempts where job_id = any (v_ids) returning 1),
         -- By user first: the keys' primary key leads with it.
         k as (delete from plan_job_idempotency_keys
               where user_id = any (v_users) and job_id = any (v_ids) returning 1),
         o as (delete from notification_outbox where job_id = any (v_ids) returning 1),
         j as (delete from plan_generation_jobs where id = any (v_ids) returning 1)
    select false, (select count(*) from j), (select count(*) from a),
           (select count(*) from k), (select count(*) from o);
end $$;

-- The hot tables are vacuumed after a small share of their rows changed,
-- not the default fifth: a queue rewrites most of its live rows every few
-- seconds, and at the default the jobs table would wait for millions of dead
-- rows before a vacuum.
alter table plan_generation_jobs set (
    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
alter table plan_job_attempts set (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
alter table notification_outbox set (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 500,
    autovacuum_analyze_scale_factor = 0.05);
alter table plan_job_idempotency_keys set (
    autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 500);
-- A handful of rows, each updated every heartbeat.
alter table plan_workers set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 200);
alter table plan_queue_clock set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 200);

-- ---------------------------------------------------------------------
-- Jobs scheduled for later
-- ---------------------------------------------------------------------

-- As in 0003, plus p_run_after: the job is not claimed before it (null or a
-- past time: now). More than a year ahead is refused as a likely mistake.
drop function create_plan_job(uuid, jsonb, text, integer, integer, text);
create function create_plan_job(
    p_user_id uuid, p_profile_snapshot jsonb, p_kind text default 'weekly_base_plan',
    p_max_retries integer default 3, p_priority integer default 0,
    p_trace_context text default null, p_run_after timestamptz default null
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
    if p_run_after > now() + interval '366 days' then
        raise exception 'run_after: at most 366 days ahead, got %', p_run_after
            using errcode = '22023', column = 'run_after';
    end if;
    loop
        select j.id, j.status into v_id, status from plan_generation_jobs j
        where j.user_id = p_user_id and j.kind = p_kind and j.status in ('pending', 'processing');
        if found then
            job_id := v_id; existed := true;
            return next; return;
        end if;
        begin
            insert into plan_generation_jobs (user_id, kind, profile_snapshot, max_retries, priority,
                                              trace_context, run_after)
            values (p_user_id, p_kind, p_profile_snapshot, p_max_retries, coalesce(p_priority, 0),
                    p_trace_context, greatest(coalesce(p_run_after, now()), now()))
            returning id, plan_generation_jobs.status into v_id, status;
            job_id := v_id; existed := false;
            return next; return;
        exception when unique_violation then
            if current_setting('transaction_isolation') <> 'read committed' then
                raise exception 'create_plan_job: another session created this user''s % job after this transaction began; retry the transaction', p_kind
                    using errcode = '40001';
            end if;
        end;
    end loop;
end $$;

-- Staleness now counts from when a job became due, not from its creation:
-- a job scheduled two days ahead is not stale at its due time. Jobs of a
-- paused kind wait for the operator, not for the user, and are left alone.
create or replace function expire_stale_plan_jobs(p_max_age interval default interval '24 hours')
returns table (job_id uuid)
language plpgsql as $$
declare
    v_ids uuid[];
begin
    with expired as (
        update plan_generation_jobs j
        set status = 'failed', completed_at = now(), error_code = 'STALE_JOB',
            error_message = 'This request waited too long and was dropped. Please try again.',
            updated_at = now()
        where j.status = 'pending' and j.run_after < now() - p_max_age
          and not exists (select 1 from plan_job_kinds k where k.kind = j.kind and k.paused)
        returning j.id
    ) select coalesce(array_agg(id), '{}') into v_ids from expired;
    perform plan_jobs_to_outbox(v_ids);
    return query select unnest(v_ids);
end $$;

-- ---------------------------------------------------------------------
-- Periodic regeneration
-- ---------------------------------------------------------------------

-- One schedule per user and kind: every `every`, from next_run_at on, a job
-- is created from profile_snapshot. A schedule whose user already has an
-- active job of its kind waits for it (it stays due).
create table plan_schedules (
    user_id uuid not null,
    kind text not null references plan_job_kinds (kind),
    profile_snapshot jsonb not null
        constraint schedule_profile_is_object check (jsonb_typeof(profile_snapshot) = 'object')
        constraint schedule_profile_size check (pg_column_size(profile_snapshot) <= 65536),
    every interval not null
        constraint schedule_every_range check (every between interval '1 minute' and interval '366 days'),
    next_run_at timestamptz not null,
    active boolean not null default true,
    -- No foreign key: retention deletes old jobs.
    last_job_id uuid,
    last_enqueued_at timestamptz,
    runs integer not null default 0,
    -- Why the schedule was switched off, when something about it is broken.
    last_error text check (length(last_error) <= 1000),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (user_id, kind)
);
create index plan_schedules_due on plan_schedules (next_run_at) where active;
alter table plan_schedules enable row level security;

-- Creates or replaces the user's schedule of this kind. p_first_run: when
-- the first job is made (null: one period from now).
create function schedule_plan_regeneration(
    p_user_id uuid, p_kind text, p_profile_snapshot jsonb, p_every interval,
    p_first_run timestamptz default null
) returns setof plan_schedules
language plpgsql as $$
begin
    if p_user_id is null then
        raise exception 'user_id: required' using errcode = '22023', column = 'user_id';
    end if;
    if not exists (select 1 from plan_job_kinds k where k.kind = p_kind) then
        raise exception 'kind: unknown kind %', coalesce(quote_literal(p_kind), 'null')
            using errcode = '22023', column = 'kind';
    end if;
    if p_profile_snapshot is null or jsonb_typeof(p_profile_snapshot) <> 'object' then
        raise exception 'profile_snapshot: must be a JSON object, got %',
            coalesce(jsonb_typeof(p_profile_snapshot), 'null')
            using errcode = '22023', column = 'profile_snapshot';
    end if;
    if p_every is null or p_every not between interval '1 minute' and interval '366 days' then
        raise exception 'every: must be between 1 minute and 366 days, got %', coalesce(p_every::text, 'null')
            using errcode = '22023', column = 'every';
    end if;
    if p_first_run > now() + interval '366 days' then
        raise exception 'first_run: at most 366 days ahead, got %', p_first_run
            using errcode = '22023', column = 'first_run';
    end if;
    return query
    insert into plan_schedules as s (user_id, kind, profile_snapshot, every, next_run_at)
    values (p_user_id, p_kind, p_profile_snapshot, p_every, coalesce(p_first_run, now() + p_every))
    on conflict (user_id, kind) do update
        set profile_snapshot = excluded.profile_snapshot, every = excluded.every,
            next_run_at = excluded.next_run_at, active = true, last_error = null, updated_at = now()
    returning s.*;
end $$;

create function unschedule_plan_regeneration(p_user_id uuid, p_kind text) returns boolean
language sql as $$
    with gone as (delete from plan_schedules where user_id = p_user_id and kind = p_kind returning 1)
    select exists (select 1 from gone)
$$;

-- Makes a job for each due schedule (at most p_limit) and moves its
-- next_run_at on, in one transaction: a schedule is locked while it is
-- handled and skipped by every other caller, and once committed it is no
-- longer due, so any number of workers make exactly one job per due time.
-- After downtime a schedule makes one job, not one per missed period: the
-- next run is the first period boundary after now.
create function enqueue_due_plan_schedules(p_limit integer default 100)
returns table (user_id uuid, kind text, job_id uuid, waiting boolean)
language plpgsql as $$
declare
    s plan_schedules;
    c record;
    v_periods double precision;
begin
    for s in
        select * from plan_schedules ps
        where ps.active and ps.next_run_at <= now()
        order by ps.next_run_at
        limit greatest(p_limit, 1)
        for update skip locked
    loop
        begin
            select * into c from create_plan_job(s.user_id, s.profile_snapshot, s.kind);
        exception when others then
            -- A schedule that cannot make a job (its profile no longer
            -- valid, say) is switched off with the reason, instead of
            -- failing every other schedule's pass at every tick.
            update plan_schedules ps
            set active = false, last_error = left(sqlerrm, 1000), updated_at = now()
            where ps.user_id = s.user_id and ps.kind = s.kind;
            continue;
        end;
        user_id := s.user_id; kind := s.kind; job_id := c.job_id; waiting := c.existed;
        if not c.existed then
            v_periods := floor(extract(epoch from now() - s.next_run_at) / extract(epoch from s.every)) + 1;
            update plan_schedules ps
            set next_run_at = s.next_run_at + s.every * greatest(v_periods, 1),
                last_job_id = c.job_id, last_enqueued_at = now(), runs = ps.runs + 1, updated_at = now()
            where ps.user_id = s.user_id and ps.kind = s.kind;
        end if;
        return next;
    end loop;
end $$;

-- ---------------------------------------------------------------------
-- Pause, resume and cap kinds
-- ---------------------------------------------------------------------

alter table plan_job_kinds
    add column paused boolean not null default false,
    add column paused_at timestamptz,
    -- Jobs of this kind processing at once across all workers (null: no cap).
    add column max_running integer constraint max_running_range check (max_running between 1 and 1000000);

-- Pauses or resumes a kind; true when that changed anything. Resuming
-- wakes the workers at once.
create function set_plan_job_kind_paused(p_kind text, p_paused boolean) returns boolean
language plpgsql as $$
declare
    v_was boolean;
begin
    select k.paused into v_was from plan_job_kinds k where k.kind = p_kind for no key update;
    if not found then
        raise exception 'kind: unknown kind %', coalesce(quote_literal(p_kind), 'null')
            using errcode = '22023', column = 'kind';
    end if;
    if v_was = p_paused then
        return false;
    end if;
    update plan_job_kinds set paused = p_paused, paused_at = case when p_paused then now() end
    where kind = p_kind;
    if not p_paused then
        perform pg_notify('plan_jobs', p_kind);
    end if;
    return true;
end $$;

-- Sets (or with null lifts) a kind's cap; a raised or lifted cap wakes the
-- workers.
create function set_plan_job_kind_max_running(p_kind text, p_max_running integer) returns void
language plpgsql as $$
begin
    if p_max_running is not null and p_max_running not between 1 and 1000000 then
        raise exception 'max_running: must be between 1 and 1000000 or null, got %', p_max_running
            using errcode = '22023', column = 'max_running';
    end if;
    update plan_job_kinds set max_running = p_max_running where kind = p_kind;
    if not found then
        raise exception 'kind: unknown kind %', coalesce(quote_literal(p_kind), 'null')
            using errcode = '22023', column = 'kind';
    end if;
    perform pg_notify('plan_jobs', p_kind);
end $$;

-- The claim of 0003, skipping paused kinds and holding capped kinds to
-- their cap. Kinds without a cap take the same single statement as before.
-- A capped kind's row is locked (FOR NO KEY UPDATE: job inserts, which take
-- KEY SHARE for their foreign key, do not wait) while its room is counted
-- and its jobs are claimed, so concurrent claims never overshoot the cap.
create or replace function claim_plan_jobs(
    p_worker_id text, p_kinds text[], p_max_jobs integer, p_lease_seconds double precision,
    p_async_commit boolean default false
) returns table (
    id uuid, user_id uuid, kind text, profile_snapshot jsonb, lease_token uuid,
    attempt integer, retry_count integer, max_retries integer, rate_limit_deferrals integer,
    trace_context text, created_at timestamptz, run_after timestamptz, claimed_at timestamptz
)
language plpgsql
set enable_sort = off
as $$
declare
    v_free text[];
    v_capped text[];
    v_ctids tid[];
begin
    if p_async_commit then
        perform set_config('synchronous_commit', 'off', true);
    end if;
    select coalesce(array_agg(k.kind) filter (where k.max_running is null), '{}'),
           coalesce(array_agg(k.kind) filter (where k.max_running is not null), '{}')
    into v_free, v_capped
    from plan_job_kinds k where k.kind = any (p_kinds) and not k.paused;

    if cardinality(v_capped) = 0 then
        return query
        with picked as (
            select j.ctid from plan_generation_jobs j
            where j.status = 'pending' and j.kind = any (v_free) and j.run_after <= now()
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
        return;
    end if;

    perform 1 from plan_job_kinds k where k.kind = any (v_capped) order by k.kind for no key update;
    -- A new statement, so a new snapshot: it sees the claims committed by
    -- whoever held these locks before.
    select array(
        select x.ctid from (
            select j.ctid, j.priority, j.run_after, j.id from plan_generation_jobs j
            where j.status = 'pending' and j.kind = any (v_free) and j.run_after <= now()
            order by j.priority desc, j.run_after, j.id
            limit greatest(p_max_jobs, 0)
            for update skip locked
        ) x
        union all
        select y.ctid from (
            select r.kind, r.room from (
                select k.kind, k.max_running - (select count(*) from plan_generation_jobs p
                                                where p.status = 'processing' and p.kind = k.kind) as room
                from plan_job_kinds k where k.kind = any (v_capped)
            ) r where r.room > 0
        ) cap
        cross join lateral (
            select j.ctid, j.priority, j.run_after, j.id from plan_generation_jobs j
            where j.status = 'pending' and j.kind = cap.kind and j.run_after <= now()
            order by j.priority desc, j.run_after, j.id
            limit least(cap.room, greatest(p_max_jobs, 0))
            for update skip locked
        ) y
    ) into v_ctids;

    return query
    with picked as (
        -- Of the candidates, the first p_max_jobs in claim order.
        select j.ctid from plan_generation_jobs j
        where j.ctid = any (v_ctids)
        order by j.priority desc, j.run_after, j.id
        limit greatest(p_max_jobs, 0)
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

-- As in 0001, leaving out paused kinds and capped kinds at their cap: their
-- due jobs would otherwise wake the worker at once, again and again.
create or replace function next_plan_job_due(p_kinds text[]) returns double precision
language sql stable as $$
    select case when min(run_after) is null then null
                else greatest(extract(epoch from min(run_after) - now()), 0)::double precision end
    from plan_generation_jobs
    where status = 'pending'
      and kind = any (array(
          select k.kind from plan_job_kinds k
          where k.kind = any (p_kinds) and not k.paused
            and (k.max_running is null
                 or (select count(*) from plan_generation_jobs p
                     where p.status = 'processing' and p.kind = k.kind) < k.max_running)))
$$;

-- A capped kind's job that ends frees room for another: announce it like a
-- requeue, so that workers waiting at the cap claim at once. Kinds without
-- a cap announce nothing more than before.
create or replace function plan_jobs_notify_update() returns trigger
language plpgsql as $$
declare
    v_capped text[] := array(select k.kind from plan_job_kinds k where k.max_running is not null);
begin
    perform pg_notify(x.channel, x.payload)
    from (
        with changed as materialized (
            select n.id, n.kind, n.status, n.progress, n.error_code,
                   (n.status = 'pending' and (o.status <> 'pending' or n.run_after <> o.run_after))
                       or (o.status = 'processing' and n.status <> 'processing'
                           and n.kind = any (v_capped)) as requeued,
                   -- A claim (pending -> processing) publishes no event:
                   -- every NOTIFYing transaction queues on a cluster-wide lock
                   -- until its commit is flushed, and a claim must not wait
                   -- behind another transaction's fsync.
                   (n.status <> o.status and not (o.status = 'pending' and n.status = 'processing'))
                       or n.progress is distinct from o.progress as visible
            from new_rows n join old_rows o using (id)
        ), events as (
            select v.id, json_build_object('id', v.id, 'status', v.status, 'progress', v.progress,
                                           'error_code', v.error_code) as ev
            from changed v where v.visible
        )
        select 'plan_jobs' as channel, k.kind as payload
        from (select distinct kind from changed where requeued) k
        union all
        select 'plan_job_events', c.batch::text
        from (select json_agg(e.ev) as batch
              from (select ev, sum(length(ev::text) + 1) over (order by id) / 7000 as chunk
                    from events) e
              group by e.chunk) c
    ) x;
    return null;
end $$;

-- As 0011: nothing of this for PUBLIC or Supabase's app roles.
do $$
declare
    v_fn record;
    v_role text;
    v_app_roles text[] := array(
        select rolname::text from pg_roles
        where rolname in ('anon', 'authenticated', 'service_role'));
begin
    foreach v_role in array v_app_roles loop
        execute format('revoke all on table plan_schedules from %I', v_role);
    end loop;
    for v_fn in
        select p.oid::regprocedure as sig
        from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname = any (array[
              'create_plan_job', 'purge_plan_jobs', 'expire_stale_plan_jobs', 'schedule_plan_regeneration',
              'unschedule_plan_regeneration', 'enqueue_due_plan_schedules',
              'set_plan_job_kind_paused', 'set_plan_job_kind_max_running'])
    loop
        execute format('revoke execute on function %s from public', v_fn.sig);
        foreach v_role in array v_app_roles loop
            execute format('revoke execute on function %s from %I', v_fn.sig, v_role);
        end loop;
    end loop;
end $$;

-- `create or replace` above dropped the settings 0005 gave these (a
-- replaced function takes only its new definition's SET clauses): put them
-- back, and give the new capped-kind lookups the same.
alter function plan_jobs_notify_update() set jit = off;
alter function plan_jobs_notify_update() set enable_sort = on;
alter function claim_plan_jobs(text, text[], integer, double precision, boolean) set jit = off;
alter function next_plan_job_due(text[]) set jit = off;
