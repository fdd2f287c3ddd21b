-- Stage 1's week structure (which days train, each session's focus) depends
-- on a few profile fields only; people who share them share it, and the
-- LLM call is skipped. Keyed by a hash of those fields with the model and
-- the prompt's version, so a new model or prompt starts a new cache. Rows
-- hold no personal data: only the days' training flags and foci (the
-- model's rationale, which could quote a person, is not stored).
create table if not exists plan_structure_cache (
    key text primary key check (key ~ '^[0-9a-f]{64}$'),
    model text not null,
    prompt_version int not null,
    days jsonb not null check (jsonb_typeof(days) = 'array'),
    hits bigint not null default 0,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);

create index if not exists plan_structure_cache_expiry on plan_structure_cache (expires_at);

-- As 0011: row-level security on, nothing for Supabase's app roles.
alter table plan_structure_cache enable row level security;
do $$
declare
    v_role text;
begin
    for v_role in select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') loop
        execute format('revoke all on table plan_structure_cache from %I', v_role);
    end loop;
end $$;
