-- What the HTTP API needs besides the queue: idempotency keys of job
-- creation, and the recent real durations its estimates come from.

-- A client that retries a creation with the same Idempotency-Key gets the
-- job of its first request. Keys live 24 hours; the API drops a user's
-- expired keys when that user creates a job.
create table plan_job_idempotency_keys (
    user_id uuid not null,
    key text not null check (length(key) between 1 and 255),
    -- sha-256 of the request (kind and profile): the same key with another
    -- request is refused rather than answered with the wrong job.
    request_hash text not null check (length(request_hash) = 64),
    job_id uuid not null,
    created_at timestamptz not null default now(),
    primary key (user_id, key)
);

-- The run time (first claim to completion, retries included) of the last
-- p_limit completed jobs of a kind: how many, and their median and 90th
-- percentile in seconds. Reads the finished-jobs index, newest first.
create function plan_job_recent_durations(p_kind text, p_limit integer default 50)
returns table (samples integer, p50_seconds double precision, p90_seconds double precision)
language sql stable as $$
    select count(*)::integer,
           percentile_cont(0.5) within group (order by d.seconds),
           percentile_cont(0.9) within group (order by d.seconds)
    from (
        select extract(epoch from j.completed_at - j.started_at)::double precision as seconds
        from plan_generation_jobs j
        where j.kind = p_kind and j.status = 'completed' and j.started_at is not null
        order by j.completed_at desc
        limit greatest(p_limit, 1)
    ) d
$$;

-- Where a pending job stands: jobs of its kind that a worker would claim
-- before it (claim order: priority, then run_after, then id), and the slots
-- of live workers that run its kind.
create function plan_job_queue_position(p_job_id uuid)
returns table (ahead integer, worker_slots integer, due_in_seconds double precision)
language sql stable as $$
    select (select count(*)::integer from plan_generation_jobs o
            where o.status = 'pending' and o.kind = j.kind and o.id <> j.id
              and (o.priority > j.priority
                   or (o.priority = j.priority and (o.run_after, o.id) < (j.run_after, j.id)))),
           (select coalesce(sum(w.concurrency), 0)::integer from plan_workers w
            where j.kind = any (w.kinds)),
           greatest(extract(epoch from j.run_after - now()), 0)::double precision
    from plan_generation_jobs j
    where j.id = p_job_id and j.status = 'pending'
$$;
