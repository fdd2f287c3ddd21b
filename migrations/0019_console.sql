-- What the operators' console (/ops/) reads, kept cheap with a million jobs.
--
-- The failed list, newest first, optionally by error code: failed jobs are
-- few beside completed ones, so a partial index holds them all for little,
-- and a page of them is an index range scan, never a sort of the table. A
-- row enters it only when it becomes failed (a partial index takes no entry
-- for versions outside its predicate), so claims and heartbeats pay nothing.
create index plan_generation_jobs_failed_created
    on plan_generation_jobs (created_at desc, id desc) include (kind, error_code)
    where status = 'failed';

-- Finished jobs by kind and status are shown as the planner's estimates
-- (an exact count reads every row). Kind and status are not independent (a
-- kind that fails often), so the planner gets their joint frequencies; it
-- costs only ANALYZE time.
create statistics plan_generation_jobs_kind_status (mcv) on kind, status from plan_generation_jobs;
