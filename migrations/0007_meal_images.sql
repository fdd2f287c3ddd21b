-- Meal images from Unsplash: a search cache per dish, the hourly request
-- window every worker shares, and the download events already sent.
-- Nothing here references meal_plans: a plan's images are attached by its
-- own job, and these rows outlive or predate any one plan.

-- One search per normalised dish name (lowercase, punctuation gone,
-- whitespace collapsed), reused for 30 days. photo is the meal's image JSON,
-- or null when Unsplash had nothing suitable: a dish without a photo is not
-- searched again either until the entry is 30 days old.
create table unsplash_search_cache (
    query_key text primary key check (query_key <> ''),
    photo jsonb null,
    searched_at timestamptz not null default now()
);

-- Requests made to Unsplash per clock hour (UTC), the window its rate limit
-- counts in. A request is admitted by one upsert that adds 1 only while
-- calls < the limit and the window is open; closed is set when Unsplash said
-- the hour is spent (403 "Rate Limit Exceeded", or X-Ratelimit-Remaining: 0),
-- whatever our count says. Old windows are deleted as new ones start.
create table unsplash_rate_window (
    window_start timestamptz primary key
        check (window_start = date_trunc('hour', window_start, 'UTC')),
    calls integer not null check (calls >= 0),
    closed boolean not null default false
);

-- The download events sent (the API guidelines ask for one when a photo is
-- used), so that a retried job does not send them twice.
create table unsplash_downloads (
    plan_id uuid not null,
    photo_id text not null,
    tracked_at timestamptz not null default now(),
    primary key (plan_id, photo_id)
);
