-- The queue review's fixes (never edit a landed migration; these replace
-- functions of 0001_queue.sql).

-- A worker is dead only when its presence lock is free AND its heartbeats
-- have stopped: the lock lives on the LISTEN connection, which can drop
-- while the worker lives (a server restart, a proxy, a network blip), and
-- its heartbeats keep coming through the query pool meanwhile.
alter table plan_workers
    add column heartbeat_seconds double precision not null default 10
        check (heartbeat_seconds > 0 and heartbeat_seconds <= 3600);

-- Register (or re-register after a reconnect) a worker, taking its presence
-- lock on this connection. An id whose lock is still held belongs to another
-- live process: refused, so that two processes never share one row.
drop function register_plan_worker(text, text, integer, text, text[], integer);
create function register_plan_worker(
    p_id text, p_host text, p_pid integer, p_version text, p_kinds text[], p_concurrency integer,
    p_heartbeat_seconds double precision default 10
) returns integer
language plpgsql as $$
declare
    v_key integer;
    v_old integer;
begin
    select w.lock_key into v_old from plan_workers w where w.id = p_id for update;
    if found and not pg_try_advisory_xact_lock(1886151020, v_old) then
        raise exception 'worker_id: % is registered by a live process; every process needs its own id', p_id
            using errcode = '22023', column = 'worker_id';
    end if;
    v_key := nextval('plan_worker_lock_keys');
    perform pg_advisory_lock(1886151020, v_key);
    insert into plan_workers as w (id, host, pid, version, kinds, concurrency, lock_key, heartbeat_seconds)
    values (p_id, p_host, p_pid, p_version, p_kinds, p_concurrency, v_key, coalesce(p_heartbeat_seconds, 10))
    on conflict (id) do update
        set host = excluded.host, pid = excluded.pid, version = excluded.version,
            kinds = excluded.kinds, concurrency = excluded.concurrency,
            lock_key = excluded.lock_key, heartbeat_seconds = excluded.heartbeat_seconds,
            last_seen_at = now();
    return v_key;
end $$;

create or replace function reap_expired_plan_jobs()
returns table (job_id uuid, worker_id text, kind text, reason text, outcome text)
language plpgsql as $$
declare
    w record;
    r record;
    v_dead text[] := '{}';
    v_dead_keys integer[] := '{}';
begin
    for w in select pw.id, pw.lock_key from plan_workers pw
             where pw.last_seen_at < now() - make_interval(secs => 2 * pw.heartbeat_seconds) loop
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

-- Under REPEATABLE READ or SERIALIZABLE the caller's snapshot never sees a
-- job another session created after it began, so retrying the insert would
-- loop forever: raise a serialization failure for the caller to retry.
create or replace function create_plan_job(
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
            if current_setting('transaction_isolation') <> 'read committed' then
                raise exception 'create_plan_job: another session created this user''s % job after this transaction began; retry the transaction', p_kind
                    using errcode = '40001';
            end if;
            -- A concurrent create won the race; loop to return its job.
        end;
    end loop;
end $$;

-- Events go out in chunks of at most about 7,000 bytes (NOTIFY refuses
-- payloads of 8,000 and more, which would abort the whole UPDATE), however
-- long the rows' progress and error codes are.
create or replace function plan_jobs_notify_insert() returns trigger
language plpgsql as $$
begin
    perform pg_notify('plan_jobs', k.kind)
    from (select distinct kind from new_rows where status = 'pending') k;
    perform pg_notify('plan_job_events', c.batch::text)
    from (select json_agg(n.ev) as batch
          from (select e.ev, sum(length(e.ev::text) + 1) over (order by e.id) / 7000 as chunk
                from (select r.id, json_build_object('id', r.id, 'status', r.status, 'progress', r.progress,
                                                     'error_code', r.error_code) as ev
                      from new_rows r) e) n
          group by n.chunk) c;
    return null;
end $$;

create or replace function plan_jobs_notify_update() returns trigger
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

-- Claims and heartbeats need not wait for a WAL flush (a claim lost in a
-- crash is claimable again; fencing stops the old holder), but setting that
-- inside the function leaked into a caller's own transaction: a client that
-- claimed inside its transaction lost the durability of everything else it
-- committed there. The worker now asks for it (p_async_commit, and calls in
-- a transaction of its own); every other caller keeps durable commits.
drop function claim_plan_jobs(text, text[], integer, double precision);
create function claim_plan_jobs(
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
begin
    if p_async_commit then
        perform set_config('synchronous_commit', 'off', true);
    end if;
    return query
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

drop function heartbeat_plan_job(uuid, uuid, double precision, text);
create function heartbeat_plan_job(
    p_job_id uuid, p_lease_token uuid, p_lease_seconds double precision, p_progress text default null,
    p_async_commit boolean default false
) returns table (held boolean, cancelled boolean)
language plpgsql as $$
declare
    v_status plan_job_status;
begin
    if p_async_commit then
        perform set_config('synchronous_commit', 'off', true);
    end if;
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

-- One row per input attempt, with its token: the same job may appear under
-- an old and a new token of one worker for a moment.
drop function heartbeat_plan_jobs(uuid[], uuid[], double precision);
create function heartbeat_plan_jobs(
    p_job_ids uuid[], p_lease_tokens uuid[], p_lease_seconds double precision,
    p_async_commit boolean default false
) returns table (job_id uuid, lease_token uuid, held boolean, cancelled boolean)
language plpgsql as $$
begin
    if p_async_commit then
        perform set_config('synchronous_commit', 'off', true);
    end if;
    return query
    with input as (
        select * from unnest(p_job_ids, p_lease_tokens) as t(id, token)
    ), extended as (
        update plan_generation_jobs j
        set locked_until = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now()
        from input i
        where j.id = i.id and j.lease_token = i.token and j.status = 'processing'
        returning j.id, j.lease_token
    )
    select i.id, i.token, e.id is not null,
           e.id is null and coalesce(j.status = 'cancelled' and j.lease_token = i.token, false)
    from input i
    left join extended e on e.id = i.id and e.lease_token = i.token
    left join plan_generation_jobs j on j.id = i.id;
end $$;
