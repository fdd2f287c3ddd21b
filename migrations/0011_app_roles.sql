-- Safe beside Supabase. Supabase grants its `anon` and `authenticated` roles
-- (and `service_role`) every privilege on new objects of `public`, and
-- PostgreSQL lets PUBLIC execute every new function: with the public anon
-- key, anyone could have read every profile snapshot (health data, push
-- tokens) and plan, and created, cancelled, claimed or completed anyone's
-- jobs. From here on:
--
-- * the worker and the API connect as the role that ran these migrations
--   (the tables' owner), which row-level security does not restrict;
-- * every table of this service has RLS on, and no app role holds a
--   privilege on it, except SELECT on its own rows for `authenticated`
--   (jobs, weekly plans, meal plans: `user_id` = the JWT's `sub`);
-- * no app role may execute any function of this service, except
--   `get_my_active_plan_job` and `cancel_my_plan_job` for `authenticated`,
--   which take the user from the JWT, never from an argument. Jobs are
--   created through the HTTP API, which holds the profile checks, the rate
--   limits and the regeneration cool-down.
--
-- Where the roles do not exist (a plain PostgreSQL), only RLS and the
-- revocations from PUBLIC apply, and nothing changes for the owner.

-- The caller's user id, as Supabase's auth.uid() reads it (PostgREST sets
-- `request.jwt.claims` from the verified token); null when there is none.
create function plan_request_user() returns uuid
language sql stable as $$
    select nullif(
        coalesce(
            nullif(current_setting('request.jwt.claim.sub', true), ''),
            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
        ),
        ''
    )::uuid
$$;

-- The signed-in user's job of `p_kind` still pending or running.
create function get_my_active_plan_job(p_kind text default 'weekly_base_plan')
returns table (id uuid, kind text, status plan_job_status, progress text, created_at timestamptz)
language plpgsql stable security definer as $$
declare
    v_user uuid := plan_request_user();
begin
    if v_user is null then
        raise exception 'not signed in' using errcode = '42501';
    end if;
    return query
        select j.id, j.kind, j.status, j.progress, j.created_at
        from plan_generation_jobs j
        where j.user_id = v_user and j.kind = p_kind and j.status in ('pending', 'processing');
end $$;

-- Cancels one of the signed-in user's own jobs; another user's job is
-- refused exactly like one that does not exist.
create function cancel_my_plan_job(p_job_id uuid)
returns table (previous_status plan_job_status, cancelled boolean)
language plpgsql security definer as $$
declare
    v_user uuid := plan_request_user();
begin
    if v_user is null then
        raise exception 'not signed in' using errcode = '42501';
    end if;
    if not exists (select 1 from plan_generation_jobs j where j.id = p_job_id and j.user_id = v_user) then
        raise exception 'job_id: no job % of this user', p_job_id
            using errcode = '22023', column = 'job_id';
    end if;
    return query select c.previous_status, c.cancelled
                 from cancel_plan_job(p_job_id, 'cancelled by the user') c;
end $$;

do $$
declare
    v_schema text := current_schema();
    v_table text;
    v_role text;
    v_tables text[] := array[
        'plan_job_kinds', 'plan_generation_jobs', 'plan_job_attempts', 'plan_workers',
        'weekly_base_plans', 'push_tokens', 'notification_outbox', 'plan_job_idempotency_keys',
        'meal_plans', 'unsplash_search_cache', 'unsplash_rate_window', 'unsplash_downloads',
        'plan_queue_clock'];
    v_own_rows text[] := array['plan_generation_jobs', 'weekly_base_plans', 'meal_plans'];
    v_app_roles text[] := array(
        select rolname::text from pg_roles
        where rolname in ('anon', 'authenticated', 'service_role'));
    v_fn record;
begin
    -- A security-definer function runs with the owner's rights: its names
    -- resolve in this schema only, never in one a caller put first.
    execute format('alter function get_my_active_plan_job(text) set search_path = %I, pg_temp', v_schema);
    execute format('alter function cancel_my_plan_job(uuid) set search_path = %I, pg_temp', v_schema);

    foreach v_table in array v_tables loop
        execute format('alter table %I enable row level security', v_table);
        foreach v_role in array v_app_roles loop
            execute format('revoke all on table %I from %I', v_table, v_role);
        end loop;
    end loop;
    foreach v_role in array v_app_roles loop
        execute format('revoke all on table _sqlx_migrations from %I', v_role);
        execute format('revoke all on all sequences in schema %I from %I', v_schema, v_role);
    end loop;

    -- Every function of this service, by name (the schema may hold the
    -- app's own functions, which keep their grants): PUBLIC and the app
    -- roles lose EXECUTE. A later migration that adds a function revokes
    -- the same way; a test checks that none is left executable.
    for v_fn in
        select p.oid::regprocedure as sig
        from pg_proc p
        where p.pronamespace = v_schema::regnamespace
          and p.proname = any (array[
              'cancel_my_plan_job', 'cancel_plan_job', 'claim_plan_jobs', 'complete_plan_job',
              'complete_plan_jobs', 'create_plan_job', 'expire_stale_plan_jobs', 'fail_plan_job',
              'fail_unhandled_plan_jobs', 'get_active_plan_job', 'get_my_active_plan_job',
              'heartbeat_plan_job', 'heartbeat_plan_jobs', 'next_plan_job_due', 'plan_job_backoff',
              'plan_job_deferral', 'plan_job_finish_attempt', 'plan_job_queue_position',
              'plan_job_recent_durations', 'plan_jobs_notify_insert', 'plan_jobs_notify_update',
              'plan_jobs_to_outbox', 'plan_queue_gap', 'plan_queue_resumed_at', 'plan_request_user',
              'reap_expired_plan_jobs', 'register_plan_worker', 'release_plan_job', 'retry_plan_job',
              'set_plan_job_progress', 'touch_plan_worker'])
    loop
        execute format('revoke execute on function %s from public', v_fn.sig);
        foreach v_role in array v_app_roles loop
            execute format('revoke execute on function %s from %I', v_fn.sig, v_role);
        end loop;
    end loop;

    if 'authenticated' = any (v_app_roles) then
        foreach v_table in array v_own_rows loop
            execute format('grant select on table %I to authenticated', v_table);
            execute format(
                'create policy %I on %I for select to authenticated using (user_id = plan_request_user())',
                v_table || '_own_rows', v_table);
        end loop;
        grant execute on function get_my_active_plan_job(text) to authenticated;
        grant execute on function cancel_my_plan_job(uuid) to authenticated;
        -- Their bodies call these as the owner; the caller needs them to
        -- read its own token's user.
        grant execute on function plan_request_user() to authenticated;
    end if;
end $$;
