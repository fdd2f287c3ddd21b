-- Heartbeats as HOT updates. A renewal sets locked_until and heartbeat_at;
-- locked_until keyed the processing index, so every renewal wrote a new
-- entry in each of the table's indexes (about a quarter of job-row updates
-- were HOT while heartbeating). The reaper's index now holds processing
-- rows by worker_id, which a renewal never changes: it reads the processing
-- rows (at most the workers' slots) and checks locked_until on the row.
drop index plan_generation_jobs_processing;
create index plan_generation_jobs_processing
    on plan_generation_jobs (worker_id) where status = 'processing';

-- Room on each page for a row's next versions (a HOT update stays on its
-- page), and vacuum after 2 % of the rows changed instead of 20 %: a queue
-- rewrites its rows all day, and dead versions slow every claim.
alter table plan_generation_jobs set (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 200,
    autovacuum_analyze_scale_factor = 0.05
);
