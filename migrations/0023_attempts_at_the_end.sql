-- An attempt's row is written once, when the attempt ends, instead of
-- inserted at the claim and updated at the end: one write per job fewer,
-- and none in the claim (measured alone it saved only a few per cent of a
-- job's database time; BENCHMARKS.md, 2026-12-04). Until then the job row
-- carries what the row needs (who runs the attempt, since when; the attempt
-- number and the lease token are there already). worker_id is not enough:
-- a retry clears it before the attempt is recorded.
alter table plan_generation_jobs
    add column attempt_started_at timestamptz,
    add column attempt_worker_id text;

-- Callers have checked the lease already (their update of the job row is
-- fenced); the conflict arm keeps rows written before 0023, or early by
-- record_usage, and the lease match there keeps a stale worker off a row
-- that is not its own.
create or replace function plan_job_finish_attempt(p_job_id uuid, p_lease_token uuid, p_outcome text,
                                                   p_error_code text default null,
                                                   p_error_detail text default null,
                                                   p_llm_usage jsonb default null)
returns void language sql as $$
    insert into plan_job_attempts as a (job_id, attempt, worker_id, lease_token, started_at,
                                        finished_at, outcome, error_code, error_detail, llm_usage)
    select j.id, j.attempt_count, coalesce(j.attempt_worker_id, j.worker_id, 'unknown'), p_lease_token,
           coalesce(j.attempt_started_at, j.heartbeat_at, now()), now(), p_outcome, p_error_code,
           left(p_error_detail, 20000), p_llm_usage
    from plan_generation_jobs j
    where j.id = p_job_id and j.attempt_count >= 1
    on conflict (job_id, attempt) do update
    set finished_at = now(), outcome = excluded.outcome, error_code = excluded.error_code,
        error_detail = excluded.error_detail, llm_usage = coalesce(excluded.llm_usage, a.llm_usage)
    where a.lease_token = excluded.lease_token and a.finished_at is null
$$;

create or replace function claim_plan_jobs(p_worker_id text, p_kinds text[], p_max_jobs integer, p_lease_seconds double precision, p_async_commit boolean DEFAULT false)
 RETURNS TABLE(id uuid, user_id uuid, kind text, profile_snapshot jsonb, lease_token uuid, attempt integer, retry_count integer, max_retries integer, rate_limit_deferrals integer, trace_context text, created_at timestamp with time zone, run_after timestamp with time zone, claimed_at timestamp with time zone)
 LANGUAGE plpgsql
 SET enable_sort TO 'off'
 SET jit TO 'off'
AS $function$
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
                attempt_started_at = now(), attempt_worker_id = p_worker_id,
                progress = null, updated_at = now()
            where j.ctid = any (array(select picked.ctid from picked)) and j.status = 'pending'
            returning j.*
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
                attempt_started_at = now(), attempt_worker_id = p_worker_id,
            progress = null, updated_at = now()
        where j.ctid = any (array(select picked.ctid from picked)) and j.status = 'pending'
        returning j.*
    )
    select c.id, c.user_id, c.kind, c.profile_snapshot, c.lease_token, c.attempt_count,
           c.retry_count, c.max_retries, c.rate_limit_deferrals, c.trace_context,
           c.created_at, c.run_after, now()
    from claimed c;
end $function$;

create or replace function complete_plan_jobs(p_job_ids uuid[], p_lease_tokens uuid[], p_plan_ids uuid[] DEFAULT NULL::uuid[])
 RETURNS TABLE(job_id uuid)
 LANGUAGE sql
 SET jit TO 'off'
 SET enable_nestloop TO 'off'
AS $function$
    with input as (
        select * from unnest(p_job_ids, p_lease_tokens, coalesce(p_plan_ids, array_fill(null::uuid, array[cardinality(p_job_ids)])))
            as t(id, token, plan_id)
    ), done as (
        update plan_generation_jobs j
        set status = 'completed', plan_id = i.plan_id, completed_at = now(), updated_at = now(),
            locked_until = null, progress = null, error_code = null, error_message = null
        from input i
        -- Rows through the primary key. With status = 'processing' as such,
        -- the planner walks the whole processing index (every running job)
        -- for each batch instead: status::text keeps that index out of the
        -- plan. (Not by ctid: a row a heartbeat updates meanwhile would be
        -- skipped at its new version, and the completion lost.)
        where j.id = any (p_job_ids) and j.id = i.id and j.lease_token = i.token
          and j.status::text = 'processing'
        returning j.id, j.lease_token, j.user_id, j.kind, j.attempt_count,
                  coalesce(j.attempt_worker_id, j.worker_id) as attempt_worker_id,
                  coalesce(j.attempt_started_at, j.heartbeat_at, now()) as attempt_started_at,
                  nullif(j.profile_snapshot ->> 'push_token', '') as push_token
    ), outbox as (
        insert into notification_outbox (job_id, user_id, event, snapshot_token)
        select d.id, d.user_id, 'plan_ready', d.push_token
        from done d join plan_job_kinds k on k.kind = d.kind and k.notify_on_finish
        on conflict (job_id, event) do nothing
    ), attempts as (
        -- The row exists already only when the attempt recorded its LLM usage
        -- (or was claimed before 0023).
        insert into plan_job_attempts as a (job_id, attempt, worker_id, lease_token, started_at,
                                            finished_at, outcome)
        select d.id, d.attempt_count, d.attempt_worker_id, d.lease_token, d.attempt_started_at,
               now(), 'completed'
        from done d
        on conflict (job_id, attempt) do update
        set finished_at = now(), outcome = 'completed', error_code = null
        where a.lease_token = excluded.lease_token and a.finished_at is null
    )
    select id from done
$function$;

create or replace function plan_jobs_notify_update()
 RETURNS trigger
 LANGUAGE plpgsql
 SET jit TO 'off'
 SET enable_sort TO 'on'
 SET enable_nestloop TO 'on'
AS $function$
declare
    v_capped text[];
begin
    if not exists (select 1 from new_rows n where n.status <> 'processing' or n.progress is not null)
       and not exists (select 1 from old_rows o
                       where o.status not in ('pending', 'processing') or o.progress is not null) then
        return null;
    end if;
    v_capped := array(select k.kind from plan_job_kinds k where k.max_running is not null);
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
            -- The same objects json_build_object made, at a fraction of its
            -- cost (a completion's batch spent a tenth of its time there).
            select v.id, '{"id":"' || v.id || '","status":"' || v.status || '","progress":'
                         || coalesce(to_json(v.progress)::text, 'null') || ',"error_code":'
                         || coalesce(to_json(v.error_code)::text, 'null') || '}' as ev
            from changed v where v.visible
        )
        select 'plan_jobs' as channel, k.kind as payload
        from (select distinct kind from changed where requeued) k
        union all
        select 'plan_job_events', '[' || string_agg(e.ev, ',') || ']'
        from (select ev, sum(length(ev) + 1) over (order by id) / 7000 as chunk from events) e
        group by e.chunk
    ) x;
    return null;
end $function$;
