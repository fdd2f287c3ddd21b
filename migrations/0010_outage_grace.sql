-- Heartbeats measured only while the database could hear them. A worker is
-- dead when its presence lock is free and it has not heartbeaten for two
-- intervals; but while the database is down (a restart, a crash, a
-- failover) no worker can heartbeat, so when it comes back every worker
-- looks silent and its presence lock is free until its listener reconnects.
-- The first reaper pass then took a live worker's jobs (the fault suite saw
-- all 8 of one worker's jobs lost after a crash restart). Silence now counts
-- only from when the database was last back: its start, or the end of a gap
-- in which no worker at all heartbeat (a failover to a standby whose start
-- time is old, a network cut).

create table plan_queue_clock (
    id boolean primary key default true check (id),
    -- The newest heartbeat of any worker.
    last_beat_at timestamptz not null default now(),
    -- When heartbeats came back after a gap of no heartbeat from anyone.
    resumed_at timestamptz not null default now()
) with (fillfactor = 50); -- one row rewritten by every heartbeat: HOT
insert into plan_queue_clock default values;

-- A gap: no worker heartbeat for 1.5 of its intervals (a live worker beats
-- every interval).
create function plan_queue_gap(p_last_beat timestamptz, p_heartbeat_seconds double precision)
returns boolean
language sql stable as $$
    select p_last_beat < now() - make_interval(secs => 1.5 * coalesce(p_heartbeat_seconds, 10))
$$;

-- A worker's heartbeat: its own row, and the clock.
create function touch_plan_worker(p_id text) returns void
language plpgsql as $$
declare
    v_heartbeat double precision;
begin
    update plan_workers set last_seen_at = now() where id = p_id
    returning heartbeat_seconds into v_heartbeat;
    update plan_queue_clock
    set resumed_at = case when plan_queue_gap(last_beat_at, v_heartbeat) then now() else resumed_at end,
        last_beat_at = now();
end $$;

-- Since when silence counts: the server's start, or the end of the last gap
-- (seen here too, for a reaper pass that runs before any heartbeat does).
create function plan_queue_resumed_at() returns timestamptz
language plpgsql as $$
declare
    v_resumed timestamptz;
begin
    update plan_queue_clock
    set resumed_at = now()
    where plan_queue_gap(last_beat_at, (select min(heartbeat_seconds) from plan_workers))
      and resumed_at < last_beat_at;
    select c.resumed_at into v_resumed from plan_queue_clock c;
    return greatest(v_resumed, pg_postmaster_start_time());
end $$;

create or replace function reap_expired_plan_jobs()
returns table (job_id uuid, worker_id text, kind text, reason text, outcome text)
language plpgsql as $$
declare
    w record;
    r record;
    v_dead text[] := '{}';
    v_dead_keys integer[] := '{}';
    v_resumed timestamptz := plan_queue_resumed_at();
begin
    for w in select pw.id, pw.lock_key from plan_workers pw
             where greatest(pw.last_seen_at, v_resumed)
                   < now() - make_interval(secs => 2 * pw.heartbeat_seconds) loop
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
-- `create or replace` resets a function's settings (see 0005).
alter function reap_expired_plan_jobs() set jit = off;
