-- Days of a plan written one at a time (stage 2 in parallel) are shown as
-- they land: the job counts them, and each day's JSON waits in
-- plan_job_days for the event streams until the job is deleted. A retry's
-- days replace the earlier attempt's. days_ready is in no index, so its
-- updates stay HOT.
alter table plan_generation_jobs
    add column if not exists days_ready smallint not null default 0
        check (days_ready between 0 and 7),
    add column if not exists first_day_at timestamptz;

create table if not exists plan_job_days (
    job_id uuid not null references plan_generation_jobs (id) on delete cascade,
    day smallint not null check (day between 1 and 7),
    attempt integer not null check (attempt >= 1),
    content jsonb not null check (jsonb_typeof(content) = 'object'),
    created_at timestamptz not null default now(),
    primary key (job_id, day)
);

-- As 0011: row-level security on, nothing for Supabase's app roles (apps
-- read days through the API's event stream).
alter table plan_job_days enable row level security;
do $$
declare
    v_role text;
begin
    for v_role in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
        execute format('revoke all on table plan_job_days from %I', v_role);
    end loop;
end $$;
