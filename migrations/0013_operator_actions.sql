-- Who did what to whose job, and when: every operator action (the API with
-- an operator token, the CLI) is written here in the transaction that does
-- it. Kept as long as the jobs are; never shown to apps.
create table operator_actions (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- The operator token's name (ADMIN_TOKENS; "admin" for ADMIN_TOKEN), or
    -- "cli:<os user>".
    operator text not null check (length(operator) between 1 and 200),
    action text not null check (action in ('cancel', 'retry')),
    job_id uuid,
    -- What came of it (the new job of a retry, the previous status...).
    detail jsonb not null default '{}' check (jsonb_typeof(detail) = 'object')
);
create index operator_actions_job on operator_actions (job_id);

-- As 0011: row-level security on, nothing for Supabase's app roles.
alter table operator_actions enable row level security;
do $$
declare
    v_role text;
begin
    for v_role in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
        execute format('revoke all on table operator_actions from %I', v_role);
        execute format('revoke all on sequence operator_actions_id_seq from %I', v_role);
    end loop;
end $$;
