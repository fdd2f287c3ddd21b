-- Meal plans: the `meal_plan` kind's result, saved in the transaction that
-- completes its job, versioned per user with one active plan, like
-- weekly_base_plans. Photos come afterwards from a `meal_images` job (the
-- plan is usable without them); a `meal_swap` job replaces one meal and
-- saves the result as the next version.
create table meal_plans (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null,
    job_id uuid not null unique references plan_generation_jobs (id),
    version integer not null check (version >= 1),
    plan jsonb not null check (jsonb_typeof(plan) = 'object'),
    targets jsonb not null check (jsonb_typeof(targets) = 'object'),
    source text not null check (source in ('llm', 'offline')),
    model text,
    is_active boolean not null default true,
    -- none: no image source configured; pending: the images job is queued
    -- or deferred by the rate limit; complete: every dish was searched.
    images text not null default 'none' check (images in ('none', 'pending', 'complete')),
    -- The meal_images job that finds them: apps follow its events.
    images_job_id uuid references plan_generation_jobs (id),
    -- The version this one was made from by a swap.
    swapped_from uuid references meal_plans (id),
    created_at timestamptz not null default now(),
    images_at timestamptz,
    unique (user_id, version)
);
create unique index meal_plans_one_active on meal_plans (user_id) where is_active;

insert into plan_job_kinds (kind, description, notify_on_finish) values
    ('meal_images', 'Unsplash photos for the dishes of a saved meal plan', false),
    ('meal_swap', 'one meal of a saved meal plan replaced, saved as the next version', false);


-- A deferral's delay: the provider's Retry-After (cut to a day, whatever it
-- says; the worker cuts it to RETRY_AFTER_MAX_SECONDS first), at least the
-- backoff of this many deferrals (base * 2^n up to the max), plus up to a
-- quarter more at random, so that jobs told the same Retry-After do not all
-- return at the same instant.
create function plan_job_deferral(
    p_deferrals integer, p_base_seconds double precision, p_max_seconds double precision,
    p_retry_after_seconds double precision
) returns double precision
language sql volatile as $$
    select greatest(
               least(coalesce(p_retry_after_seconds, 0), 86400),
               least(p_max_seconds, p_base_seconds * power(2, least(p_deferrals, 30)))
           ) * (1 + 0.25 * random())
$$;

-- IMAGES_RATE_LIMIT: a meal_images job that met the image source's hourly
-- limit waits for the next window without spending a retry, however many
-- windows that takes (photos never fail a plan, and a backlog of dishes at
-- 50 searches an hour can take many hours).
create or replace function fail_plan_job(
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
    if (p_error_code = 'AI_RATE_LIMIT' and j.rate_limit_deferrals < p_max_rate_limit_deferrals)
       or p_error_code = 'IMAGES_RATE_LIMIT' then
        v_outcome := 'deferred';
        update plan_generation_jobs
        set status = 'pending', rate_limit_deferrals = rate_limit_deferrals + 1,
            run_after = now() + make_interval(secs => plan_job_deferral(j.rate_limit_deferrals,
                p_retry_base_seconds, p_retry_max_seconds, p_retry_after_seconds)),
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
