-- Completions and heartbeats of a batch, without the quadratic plan.
--
-- Both statements join the batch (unnest of the caller's arrays) to the
-- jobs by id and lease token. The planner knows neither how long the
-- arrays are (it assumes 10 elements) nor, with statistics taken while the
-- jobs were still pending, how many are processing (it assumes 1). It then
-- reads the processing rows through their partial index and, for each,
-- scans the whole batch again: 500 completions compared 250,000 pairs and
-- took ~100 ms of a 130 ms statement (auto_explain, `bench throughput`).
--
-- Here each statement finds its rows by primary key (`id = any`), whatever
-- the statistics say, and pairs them with the batch by hash: nested loops
-- are off inside these functions, so every join is linear in the batch.
-- Every join to a large table therefore carries its own `= any (p_job_ids)`:
-- without a key to look up, a hash join would read the whole table.

create or replace function complete_plan_jobs(p_job_ids uuid[], p_lease_tokens uuid[], p_plan_ids uuid[] default null)
returns table (job_id uuid)
language sql
set jit = off
set enable_nestloop = off
as $$
    with input as (
        select * from unnest(p_job_ids, p_lease_tokens, coalesce(p_plan_ids, array_fill(null::uuid, array[cardinality(p_job_ids)])))
            as t(id, token, plan_id)
    ), done as (
        update plan_generation_jobs j
        set status = 'completed', plan_id = i.plan_id, completed_at = now(), updated_at = now(),
            locked_until = null, progress = null, error_code = null, error_message = null
        from input i
        where j.id = any (p_job_ids) and j.id = i.id and j.lease_token = i.token and j.status = 'processing'
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
        where a.job_id = any (p_job_ids) and a.job_id = d.id and a.lease_token = d.lease_token
          and a.finished_at is null
    )
    select id from done
$$;

create or replace function heartbeat_plan_jobs(
    p_job_ids uuid[], p_lease_tokens uuid[], p_lease_seconds double precision,
    p_async_commit boolean default false
) returns table (job_id uuid, lease_token uuid, held boolean, cancelled boolean)
language plpgsql
set jit = off
set enable_nestloop = off
as $$
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
        where j.id = any (p_job_ids) and j.id = i.id and j.lease_token = i.token and j.status = 'processing'
        returning j.id, j.lease_token
    ), current as (
        select j.id, j.status, j.lease_token from plan_generation_jobs j where j.id = any (p_job_ids)
    )
    select i.id, i.token, e.id is not null,
           e.id is null and coalesce(c.status = 'cancelled' and c.lease_token = i.token, false)
    from input i
    left join extended e on e.id = i.id and e.lease_token = i.token
    left join current c on c.id = i.id;
end $$;

-- The setting reaches the update triggers these statements fire; their
-- joins are between two transition tables, where a hash join is right
-- anyway, but they should not depend on who fired them.
alter function plan_jobs_notify_update() set enable_nestloop = on;
alter function plan_jobs_notify_insert() set enable_nestloop = on;
