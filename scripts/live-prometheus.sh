#!/usr/bin/env bash
# The alert rules and the dashboards against a real Prometheus (Debian's
# package, unpacked by scripts/promtool.sh, not installed) scraping a real
# worker (with the API) every second, with the project's rules loaded from
# a test copy whose `for:` durations are cut to 3 s.
#
#   1. A healthy run (the mock LLM answers well): no alert pends or fires.
#   2. A mixed run: a 429 deferral, a plan that breaks the diet (validation
#      and repair), broken JSON (retried, then JSON_PARSE_ERROR), 402
#      (AI_QUOTA_EXCEEDED), a slow provider, a paused kind whose jobs wait while an app
#      follows one over SSE, and good plans: PlanJobFailureRatioHigh and
#      PlanLlmQuotaOrConfigError fire.
#   3. Every panel query of dashboards/*.json evaluates without error over
#      the run and returns data, but for the panels listed as empty by
#      design in scripts/live_prometheus.py, each with its reason.
# Every wait polls its condition under a deadline.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'live-prometheus.sh: %s\n' "$*" >&2; }
started=$SECONDS

prometheus=$(./scripts/promtool.sh prometheus-path)
log "using $("$prometheus" --version 2>&1 | head -n1)"

# shellcheck source=scripts/lib/live.sh
. scripts/lib/live.sh
work=$(mktemp -d /tmp/plan-worker-prometheus.XXXXXX)
cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        dump_logs
        [ -f "$work/prometheus.log" ] && { log "--- prometheus log"; tail -n 20 "$work/prometheus.log" >&2; }
    fi
    live_cleanup
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

mock_port=$(free_port)
ops_port=$(free_port)
api_port=$(free_port)
prom_port=$(free_port)
secret="live-prometheus-secret-$RANDOM$RANDOM-0123456789"

start_mock "$mock_port" ok
worker_log="$work/worker.log"
start_worker "$worker_log" \
    METRICS_ADDR="127.0.0.1:$ops_port" API_ADDR="127.0.0.1:$api_port" \
    SUPABASE_JWT_SECRET="$secret" \
    LLM_BASE_URL="http://127.0.0.1:$mock_port" LLM_API_KEY=test-key \
    LLM_PRICE_PROMPT_PER_MILLION=0.27 LLM_PRICE_COMPLETION_PER_MILLION=1.10 \
    LLM_PRICE_CACHE_HIT_PER_MILLION=0.07 \
    LLM_OFFPEAK_WINDOWS=00:00-24:00 \
    RETRY_BASE_SECONDS=0.2 RETRY_MAX_SECONDS=0.5 POLL_INTERVAL_SECONDS=1 \
    LLM_OVERLOAD_WAIT_MAX_SECONDS=0.5 \
    MAX_CONCURRENT_JOBS=16
wait_for 30 "the worker's /readyz" curl -fsS "http://127.0.0.1:$ops_port/readyz"

# The rules as shipped, `for:` cut to 3 s (0m stays 0m).
mkdir -p "$work/data"
sed -E 's/^( *)for: [1-9][0-9]*m$/\1for: 3s/' prometheus/alerts.yml >"$work/alerts.yml"
if grep -qE 'for: [1-9][0-9]*m' "$work/alerts.yml"; then
    log "a for: duration was not shortened"; exit 1
fi
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $work/alerts.yml
scrape_configs:
  - job_name: plan-worker
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$ops_port"]
YAML
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
live_pids+=($!)
prom="http://127.0.0.1:$prom_port"
wait_for 30 "Prometheus to answer" curl -fsS "$prom/-/ready"
scraped_up() { curl -fsS "$prom/api/v1/query?query=up%7Bjob%3D%22plan-worker%22%7D%3D%3D1" | grep -q '"value"'; }
wait_for 30 "the first scrape of the worker" scraped_up

ended() { [ "$(sql "select count(*) from plan_generation_jobs where status not in ('completed', 'failed', 'cancelled')")" = 0 ]; }
api="http://127.0.0.1:$api_port"
api_traffic() {
    # A few API answers of each class the dashboards show (no 5xx: by design).
    local user token
    user=$(python3 -c 'import uuid; print(uuid.uuid4())')
    token=$(SUPABASE_JWT_SECRET="$secret" "$bin" token --user "$user")
    curl -fsS -o /dev/null "$api/v1/openapi.json"
    curl -s -o /dev/null "$api/v1/plans"
    curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -X POST --data "{\"profileSnapshot\": $(cat examples/profiles/teen-muscle-gain-kettlebell.json)}" \
        "$api/v1/plan-jobs"
    curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$api/v1/plan-jobs/active"
}

# Start-up leaves nothing behind: PlanWorkerNoneLive pends until the first
# scrape and the worker's first queue sample; the healthy run starts clean.
no_alerts() { curl -fsS "$prom/api/v1/alerts" | grep -q '"alerts":\[\]'; }
wait_for 30 "no alert pending or firing before the healthy run" no_alerts
healthy_from=$(date +%s.%N)
log "healthy run: the mock answers well"
api_traffic
make_jobs 8 weekly_base_plan examples/profiles/muscle-gain-vegetarian-gym.json
make_jobs 2 meal_plan examples/profiles/fat-loss-vegan-home.json
wait_for 90 "the healthy jobs to complete" ended
healthy_to=$(date +%s.%N)
PROMETHEUS_URL="$prom" HEALTHY_FROM="$healthy_from" HEALTHY_TO="$healthy_to" \
    python3 scripts/live_prometheus.py healthy

log "mixed run"
# Retry-After 1 s is past LLM_OVERLOAD_WAIT_MAX_SECONDS (0.5): the job
# defers, which the deferral panels need (a shorter one is waited out in
# the client).
set_mock "$mock_port" "429:1,ok"
make_jobs 2 weekly_base_plan examples/profiles/maintenance-non-vegetarian-athlete.json
wait_for 60 "the rate-limited jobs to complete" ended
set_mock "$mock_port" "ok:diet_breaking"
make_jobs 2 weekly_base_plan examples/profiles/muscle-gain-vegetarian-gym.json
wait_for 60 "the diet-breaking jobs to end" ended
set_mock "$mock_port" broken_json
make_jobs 3 weekly_base_plan examples/profiles/recomposition-eggitarian-bodyweight.json 1
wait_for 60 "the broken-JSON jobs to fail" ended
set_mock "$mock_port" insufficient_balance
make_jobs 12 weekly_base_plan examples/profiles/recomposition-eggitarian-bodyweight.json
wait_for 60 "the 402 jobs to fail" ended
# A slow provider: a job runs for seconds (the oldest-running panels; the
# workers sample the queue once a tick).
set_mock "$mock_port" slow:2500
make_jobs 1 weekly_base_plan examples/profiles/teen-muscle-gain-kettlebell.json
prom_has() { curl -fsS "$prom/api/v1/query" --data-urlencode "query=$1" | grep -q '"value"'; }
wait_for 30 "Prometheus to see a job running for seconds" prom_has 'max(plan_jobs_oldest_running_age_seconds) > 1'
wait_for 60 "the slow job to complete" ended
set_mock "$mock_port" ok
api_traffic
# An operator pauses a kind: its jobs wait (the oldest-pending panels),
# and an app follows one over SSE meanwhile (the open-streams panel).
# Paused until the wait is over 3 s: several scrapes see it, whatever the
# range queries' steps.
DATABASE_URL="$db_url" "$bin" kinds pause meal_plan >/dev/null
make_jobs 2 meal_plan examples/profiles/fat-loss-vegan-home.json
sse_job=$(sql "select id from plan_generation_jobs where kind = 'meal_plan' and status = 'pending' limit 1")
sse_user=$(sql "select user_id from plan_generation_jobs where id = '$sse_job'")
sse_token=$(SUPABASE_JWT_SECRET="$secret" "$bin" token --user "$sse_user")
curl -sN --max-time 60 -H "Authorization: Bearer $sse_token" "$api/v1/plan-jobs/$sse_job/events" >/dev/null &
live_pids+=($!)
wait_for 30 "Prometheus to see the paused jobs wait" prom_has 'max(plan_jobs_oldest_pending_age_seconds) > 3'
wait_for 30 "Prometheus to see the open event stream" prom_has 'sum(plan_api_event_streams) > 0'
DATABASE_URL="$db_url" "$bin" kinds resume meal_plan >/dev/null
wait_for 60 "the last jobs to complete" ended
log "jobs: $(sql "select string_agg(status || coalesce(' ' || error_code, '') || ': ' || n, ', ') from (select status, error_code, count(*) n from plan_generation_jobs group by 1, 2 order by 1, 2) s")"

PROMETHEUS_URL="$prom" HEALTHY_FROM="$healthy_from" HEALTHY_TO="$healthy_to" \
    python3 scripts/live_prometheus.py mixed

if grep -q '"level":"ERROR"' "$worker_log"; then
    log "the worker logged errors:"
    grep '"level":"ERROR"' "$worker_log" | head -20 >&2
    exit 1
fi
log "passed in $((SECONDS - started)) s"
