-- A finished job's profile snapshot (health data, a push token) is needed
-- only while the job may still run or be retried. After the retention
-- period (PROFILE_RETENTION_DAYS) the maintenance tick empties it, in
-- batches, and marks when; the job row, its attempts and its plan stay.

alter table plan_generation_jobs add column profile_scrubbed_at timestamptz;

-- The finished jobs still holding a profile, oldest first.
create index plan_jobs_unscrubbed on plan_generation_jobs (completed_at)
    where profile_scrubbed_at is null and status in ('completed', 'failed', 'cancelled');

-- Empties up to p_limit snapshots of jobs finished before the period;
-- returns how many. Touches neither status nor progress: no events.
create function scrub_plan_job_snapshots(p_older_than_seconds double precision, p_limit integer default 500)
returns integer
language sql as $$
    with old as (
        select id from plan_generation_jobs
        where profile_scrubbed_at is null and status in ('completed', 'failed', 'cancelled')
          and completed_at < now() - make_interval(secs => p_older_than_seconds)
        order by completed_at
        limit greatest(p_limit, 1)
        for update skip locked
    ), scrubbed as (
        update plan_generation_jobs j
        set profile_snapshot = '{}'::jsonb, profile_scrubbed_at = now()
        from old where j.id = old.id
        returning 1
    )
    select count(*)::integer from scrubbed
$$;

-- A job whose profile is gone cannot be run again from it.
create or replace function retry_plan_job(p_job_id uuid)
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
    if j.profile_scrubbed_at is not null then
        raise exception 'job_id: its profile was removed after the retention period; create a new job'
            using errcode = '22023', column = 'job_id';
    end if;
    return query select * from create_plan_job(j.user_id, j.profile_snapshot, j.kind, j.max_retries,
                                               j.priority::integer, j.trace_context);
end $$;

-- As 0011 does for every function of the service: not for PUBLIC, nor for
-- Supabase's app roles (which its default privileges granted it).
do $$
declare
    v_role text;
begin
    revoke execute on function scrub_plan_job_snapshots(double precision, integer) from public;
    revoke execute on function retry_plan_job(uuid) from public;
    for v_role in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
        execute format('revoke execute on function scrub_plan_job_snapshots(double precision, integer) from %I', v_role);
        execute format('revoke execute on function retry_plan_job(uuid) from %I', v_role);
    end loop;
end $$;
