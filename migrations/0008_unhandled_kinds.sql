-- A pending job of a kind that no live worker handles would wait until it
-- is stale (24 h) while its user watches a spinner. Once it has waited
-- p_grace (room for a rolling deploy that brings the kind), and while at
-- least one worker is alive (with none, every job waits and the workers-down
-- alert speaks), it fails as CONFIG_ERROR naming its kind. Live: a heartbeat
-- within two of that worker's heartbeat intervals.
create function fail_unhandled_plan_jobs(p_grace interval default interval '5 minutes')
returns table (job_id uuid, kind text)
language plpgsql as $$
declare
    v_kinds text[];
    v_ids uuid[];
begin
    select coalesce(array_agg(distinct k.kind), '{}') into v_kinds
    from plan_workers w cross join lateral unnest(w.kinds) as k(kind)
    where w.last_seen_at > now() - make_interval(secs => 2 * w.heartbeat_seconds);
    if cardinality(v_kinds) = 0 then
        return;
    end if;
    with failed as (
        update plan_generation_jobs j
        set status = 'failed', completed_at = now(), error_code = 'CONFIG_ERROR',
            error_message = left(format('No live worker handles jobs of kind %s.', j.kind), 1000),
            updated_at = now()
        where j.status = 'pending' and j.created_at < now() - p_grace
          and not (j.kind = any (v_kinds))
        returning j.id, j.kind
    ), collected as (
        select array_agg(f.id) as ids from failed f
    )
    select coalesce(c.ids, '{}') into v_ids from collected c;
    perform plan_jobs_to_outbox(v_ids);
    return query
        select j.id, j.kind from plan_generation_jobs j where j.id = any (v_ids);
end $$;
