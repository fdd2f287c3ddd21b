-- Off-peak economy: a job may carry a deadline (not_after) instead of
-- "now", and then runs in the provider's off-peak windows when the
-- deadline allows, at once otherwise. The windows are the callers'
-- configuration (LLM_PEAK_WINDOWS / LLM_OFFPEAK_WINDOWS), never stored
-- here: callers pass the coming off-peak stretches as two arrays
-- (starts[i] to ends[i]), and the database decides on its own clock.

-- An economy job's deadline: the time by which its plan should be ready.
-- Null: an ordinary job, run as soon as it is due. Not an expiry: a job
-- past its deadline runs as soon as it can.
alter table plan_generation_jobs add column not_after timestamptz;

-- Jobs made by this schedule are economy jobs.
alter table plan_schedules add column economy boolean not null default false;

-- When an economy job that may start at p_earliest should: p_earliest when
-- it is off-peak or no stretch is given; else the start of the next
-- off-peak stretch, if that start leaves p_margin_seconds before the
-- deadline; else p_earliest (the deadline does not allow waiting).
create function plan_job_economy_run_after(
    p_earliest timestamptz, p_not_after timestamptz,
    p_offpeak_starts timestamptz[], p_offpeak_ends timestamptz[],
    p_margin_seconds double precision
) returns timestamptz
language sql stable as $$
    select case when n.start is not null
                 and n.start + make_interval(secs => greatest(coalesce(p_margin_seconds, 0), 0))
                     <= p_not_after
                then n.start else p_earliest end
    from (select (select greatest(w.s, p_earliest)
                  from unnest(p_offpeak_starts, p_offpeak_ends) w(s, e)
                  where w.e > p_earliest
                  order by w.s limit 1) as start) n
$$;

-- As in 0014, plus the economy: p_not_after makes an economy job, placed
-- in the first off-peak stretch (p_offpeak_*) its deadline allows. A user's
-- active job is returned as before, untouched.
drop function create_plan_job(uuid, jsonb, text, integer, integer, text, timestamptz);
create function create_plan_job(
    p_user_id uuid, p_profile_snapshot jsonb, p_kind text default 'weekly_base_plan',
    p_max_retries integer default 3, p_priority integer default 0,
    p_trace_context text default null, p_run_after timestamptz default null,
    p_not_after timestamptz default null,
    p_offpeak_starts timestamptz[] default null, p_offpeak_ends timestamptz[] default null,
    p_economy_margin_seconds double precision default 1800
) returns table (job_id uuid, existed boolean, status plan_job_status)
language plpgsql as $$
declare
    v_id uuid;
    v_run_after timestamptz;
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
    v_run_after := greatest(coalesce(p_run_after, now()), now());
    if p_not_after is not null then
        if p_not_after <= v_run_after then
            raise exception 'not_after: must be later than the job''s earliest start (now, or run_after), got %', p_not_after
                using errcode = '22023', column = 'not_after';
        end if;
        if p_not_after > now() + interval '367 days' then
            raise exception 'not_after: at most 366 days ahead, got %', p_not_after
                using errcode = '22023', column = 'not_after';
        end if;
        if cardinality(p_offpeak_starts) is distinct from cardinality(p_offpeak_ends) then
            raise exception 'offpeak_ends: as many as offpeak_starts'
                using errcode = '22023', column = 'offpeak_ends';
        end if;
        v_run_after := plan_job_economy_run_after(v_run_after, p_not_after, p_offpeak_starts,
                                                  p_offpeak_ends, p_economy_margin_seconds);
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
                                              trace_context, run_after, not_after)
            values (p_user_id, p_kind, p_profile_snapshot, p_max_retries, coalesce(p_priority, 0),
                    p_trace_context, v_run_after, p_not_after)
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

-- As in 0012; a retried economy job is an economy job again, with as long
-- to wait from now as the original had from its creation.
drop function retry_plan_job(uuid);
create function retry_plan_job(
    p_job_id uuid, p_offpeak_starts timestamptz[] default null, p_offpeak_ends timestamptz[] default null,
    p_economy_margin_seconds double precision default 1800
) returns table (job_id uuid, existed boolean, status plan_job_status)
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
    if j.profile_scrubbed_at is not null then
        raise exception 'job_id: its profile was removed after the retention period; create a new job'
            using errcode = '22023', column = 'job_id';
    end if;
    return query select * from create_plan_job(
        j.user_id, j.profile_snapshot, j.kind, j.max_retries, j.priority::integer, j.trace_context,
        null,
        case when j.not_after is not null
             then now() + greatest(j.not_after - j.created_at, interval '1 minute') end,
        p_offpeak_starts, p_offpeak_ends, p_economy_margin_seconds);
end $$;

-- A claimed economy job that a worker, on its own windows, finds in a peak
-- goes back to pending until the next off-peak start, when its deadline
-- allows: retries and deferrals land wherever their backoff puts them, and
-- the windows a worker knows may differ from those the job was placed
-- with. Not an attempt: the claim's attempt row goes, its count is taken
-- back, as if the job had not been claimed. Fenced by the lease tokens;
-- returns the jobs postponed and their new start.
create function postpone_economy_plan_jobs(
    p_job_ids uuid[], p_lease_tokens uuid[],
    p_offpeak_starts timestamptz[], p_offpeak_ends timestamptz[],
    p_margin_seconds double precision
) returns table (job_id uuid, run_after timestamptz)
language sql as $$
    with due as (
        select j.id, j.lease_token, j.attempt_count,
               plan_job_economy_run_after(now(), j.not_after, p_offpeak_starts, p_offpeak_ends,
                                          p_margin_seconds) as at
        from plan_generation_jobs j
        join unnest(p_job_ids, p_lease_tokens) t(id, token) on j.id = t.id and j.lease_token = t.token
        where j.status = 'processing' and j.not_after is not null
        for update of j
    ), moved as (
        update plan_generation_jobs j
        set status = 'pending', run_after = d.at, attempt_count = j.attempt_count - 1,
            started_at = case when j.attempt_count <= 1 then null else j.started_at end,
            lease_token = null, locked_until = null, worker_id = null, progress = null,
            updated_at = now()
        from due d
        where j.id = d.id and d.at > now()
        returning j.id, j.run_after
    ), forgotten as (
        delete from plan_job_attempts a
        using due d
        where a.job_id = d.id and a.attempt = d.attempt_count and a.lease_token = d.lease_token
          and d.id in (select m.id from moved m)
    )
    select m.id, m.run_after from moved m
$$;

-- As in 0014, plus economy: p_economy makes the schedule's jobs economy jobs.
drop function schedule_plan_regeneration(uuid, text, jsonb, interval, timestamptz);
create function schedule_plan_regeneration(
    p_user_id uuid, p_kind text, p_profile_snapshot jsonb, p_every interval,
    p_first_run timestamptz default null, p_economy boolean default false
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
    insert into plan_schedules as s (user_id, kind, profile_snapshot, every, next_run_at, economy)
    values (p_user_id, p_kind, p_profile_snapshot, p_every, coalesce(p_first_run, now() + p_every),
            coalesce(p_economy, false))
    on conflict (user_id, kind) do update
        set profile_snapshot = excluded.profile_snapshot, every = excluded.every,
            next_run_at = excluded.next_run_at, economy = excluded.economy, active = true,
            last_error = null, updated_at = now()
    returning s.*;
end $$;

-- As in 0014; an economy schedule's job gets a deadline of
-- p_economy_max_delay_seconds (never more than its period, so that it is
-- done before the next one is due) and is placed in the stretches given.
drop function enqueue_due_plan_schedules(integer);
create function enqueue_due_plan_schedules(
    p_limit integer default 100,
    p_offpeak_starts timestamptz[] default null, p_offpeak_ends timestamptz[] default null,
    p_economy_max_delay_seconds double precision default 86400,
    p_economy_margin_seconds double precision default 1800
)
returns table (user_id uuid, kind text, job_id uuid, waiting boolean)
language plpgsql as $$
declare
    s plan_schedules;
    c record;
    v_periods double precision;
    v_not_after timestamptz;
begin
    for s in
        select * from plan_schedules ps
        where ps.active and ps.next_run_at <= now()
        order by ps.next_run_at
        limit greatest(p_limit, 1)
        for update skip locked
    loop
        v_not_after := case when s.economy
            then now() + least(make_interval(secs => greatest(p_economy_max_delay_seconds, 60)), s.every)
        end;
        begin
            select * into c from create_plan_job(
                s.user_id, s.profile_snapshot, s.kind,
                p_not_after => v_not_after, p_offpeak_starts => p_offpeak_starts,
                p_offpeak_ends => p_offpeak_ends, p_economy_margin_seconds => p_economy_margin_seconds);
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

-- As 0011: nothing of this for PUBLIC or Supabase's app roles.
do $$
declare
    v_fn record;
    v_role text;
    v_app_roles text[] := array(
        select rolname::text from pg_roles
        where rolname in ('anon', 'authenticated', 'service_role'));
begin
    for v_fn in
        select p.oid::regprocedure as sig
        from pg_proc p
        where p.pronamespace = current_schema()::regnamespace
          and p.proname = any (array[
              'plan_job_economy_run_after', 'create_plan_job', 'retry_plan_job',
              'postpone_economy_plan_jobs', 'schedule_plan_regeneration', 'enqueue_due_plan_schedules'])
    loop
        execute format('revoke execute on function %s from public', v_fn.sig);
        foreach v_role in array v_app_roles loop
            execute format('revoke execute on function %s from %I', v_fn.sig, v_role);
        end loop;
    end loop;
end $$;
