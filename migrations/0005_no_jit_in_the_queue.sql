-- The claim's `set enable_sort = off` (there so that its pick walks the
-- claimable index in order) applies to everything it runs, the UPDATE
-- trigger included. The trigger's one sort then costs 1e10, far over
-- jit_above_cost, and every claim paid ~750 ms compiling the trigger's
-- query: p95 pickup rose from 5 ms to 600 ms and a 20,000-job drain from
-- 6,500 to 450 jobs/s.
--
-- The queue's statements touch a few hundred rows through indexes or
-- transition tables; JIT never repays its compile time on them, whatever a
-- planner estimate or a server's jit settings say. The triggers also get
-- their sorts back, whoever calls them.
alter function plan_jobs_notify_insert() set jit = off;
alter function plan_jobs_notify_insert() set enable_sort = on;
alter function plan_jobs_notify_update() set jit = off;
alter function plan_jobs_notify_update() set enable_sort = on;
alter function claim_plan_jobs(text, text[], integer, double precision, boolean) set jit = off;
alter function heartbeat_plan_jobs(uuid[], uuid[], double precision, boolean) set jit = off;
alter function complete_plan_jobs(uuid[], uuid[], uuid[]) set jit = off;
alter function reap_expired_plan_jobs() set jit = off;
