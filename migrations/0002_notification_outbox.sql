-- Push notifications through an outbox: a row is written in the same
-- transaction that ends a job (whatever ends it: the plan's save, a final
-- failure, the reaper), and the worker's delivery loop sends it to Expo.

-- Which kinds tell the user when they end (the bench's no-op kind does not).
alter table plan_job_kinds add column notify_on_finish boolean not null default false;
update plan_job_kinds set notify_on_finish = true where kind in ('weekly_base_plan', 'meal_plan');

-- Expo push tokens of users. A profile snapshot may also carry push_token.
create table push_tokens (
    user_id uuid not null,
    token text not null check (length(token) between 1 and 512),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    deactivated_at timestamptz,
    primary key (user_id, token)
);

create table notification_outbox (
    id bigint generated always as identity primary key,
    job_id uuid not null,
    user_id uuid not null,
    -- plan_ready | plan_failed
    event text not null check (event in ('plan_ready', 'plan_failed')),
    error_code text,
    -- The snapshot's token, if any; tokens from push_tokens are added at send.
    snapshot_token text,
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'failed', 'skipped')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    -- A sender holds the row until then; a crash lets another take it over
    -- (so a push may, rarely, be sent twice: delivery is at least once).
    locked_until timestamptz,
    last_error text check (length(last_error) <= 2000),
    ticket_ids text[] not null default '{}',
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    unique (job_id, event)
);
create index notification_outbox_due on notification_outbox (next_attempt_at) where status = 'pending';

create function plan_jobs_outbox() returns trigger
language plpgsql as $$
begin
    insert into notification_outbox (job_id, user_id, event, error_code, snapshot_token)
    select n.id, n.user_id,
           case n.status when 'completed' then 'plan_ready' else 'plan_failed' end,
           n.error_code, nullif(n.profile_snapshot ->> 'push_token', '')
    from new_rows n
    join old_rows o using (id)
    join plan_job_kinds k on k.kind = n.kind and k.notify_on_finish
    where n.status in ('completed', 'failed') and o.status <> n.status
    on conflict (job_id, event) do nothing;
    return null;
end $$;

create trigger plan_jobs_outbox after update on plan_generation_jobs
    referencing new table as new_rows old table as old_rows
    for each statement execute function plan_jobs_outbox();
