#!/usr/bin/env bash
# The operators' console in a real browser: headless Chromium (Debian's
# `chromium`, installed with apt-get when missing) driven by Playwright for
# Python (PyPI, pinned, in a venv under target/; it never downloads a
# browser of its own). A worker runs on a scratch database against the mock
# LLM, which first answers well, then with 402 (AI_QUOTA_EXCEEDED) and with
# broken JSON (JSON_PARSE_ERROR, retried once), so every failure the
# console shows was made by the real pipeline. scripts/console_test.py then
# acts as an operator and checks each page against the database.
# Screenshots go to target/console-screenshots/ (CI artefacts);
# CONSOLE_SCREENSHOTS_TO_DOCS=1 also refreshes the README's, in docs/.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'console-test.sh: %s\n' "$*" >&2; }
started=$SECONDS

PLAYWRIGHT_VERSION=1.65.2
target=${CARGO_TARGET_DIR:-target}
venv="$target/playwright-$PLAYWRIGHT_VERSION"
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
    }
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
    log "installing playwright $PLAYWRIGHT_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
fi

# shellcheck source=scripts/lib/live.sh
. scripts/lib/live.sh
cleanup() {
    status=$?
    [ "$status" -eq 0 ] || dump_logs
    live_cleanup
    exit "$status"
}
trap cleanup EXIT

mock_port=$(free_port)
ops_port=$(free_port)
token="alice-console-token-$RANDOM$RANDOM-0123456789"
start_mock "$mock_port" ok
worker_log=$(mktemp /tmp/plan-worker-console.XXXXXX.log)
start_worker "$worker_log" \
    METRICS_ADDR="127.0.0.1:$ops_port" \
    ADMIN_TOKENS="alice=$token" \
    LLM_BASE_URL="http://127.0.0.1:$mock_port" LLM_API_KEY=test-key \
    LLM_PRICE_PROMPT_PER_MILLION=0.27 LLM_PRICE_COMPLETION_PER_MILLION=1.10 \
    RETRY_BASE_SECONDS=0.2 RETRY_MAX_SECONDS=0.5 POLL_INTERVAL_SECONDS=1 \
    MAX_CONCURRENT_JOBS=16
wait_for 30 "the worker's /readyz" curl -fsS "http://127.0.0.1:$ops_port/readyz"

# Real jobs, phase by phase; each phase waits until its jobs have ended.
ended() { [ "$(sql "select count(*) from plan_generation_jobs where status not in ('completed', 'failed', 'cancelled')")" = 0 ]; }
log "phase 1: the mock answers well"
make_jobs 6 weekly_base_plan examples/profiles/muscle-gain-vegetarian-gym.json
make_jobs 2 meal_plan examples/profiles/fat-loss-vegan-home.json
wait_for 90 "the healthy jobs to complete" ended
log "phase 2: 402 insufficient balance (AI_QUOTA_EXCEEDED, not retried)"
set_mock "$mock_port" insufficient_balance
make_jobs 55 weekly_base_plan examples/profiles/recomposition-eggitarian-bodyweight.json
wait_for 90 "the 402 jobs to fail" ended
log "phase 3: broken JSON (JSON_PARSE_ERROR, retried once)"
set_mock "$mock_port" broken_json
make_jobs 3 weekly_base_plan examples/profiles/maintenance-non-vegetarian-athlete.json 1
wait_for 90 "the broken-JSON jobs to fail" ended
set_mock "$mock_port" ok
log "jobs: $(sql "select string_agg(status || coalesce(' ' || error_code, '') || ': ' || n, ', ') from (select status, error_code, count(*) n from plan_generation_jobs group by 1, 2 order by 1, 2) s")"

shots="$target/console-screenshots"
rm -rf "$shots" && mkdir -p "$shots"
log "browser checks (screenshots in $shots)"
CONSOLE_URL="http://127.0.0.1:$ops_port" CONSOLE_TOKEN="$token" CONSOLE_OPERATOR=alice \
    CONSOLE_DB_URL="$db_url" CHROMIUM="$chromium" SCREENSHOTS="$shots" \
    "$venv/bin/python" scripts/console_test.py

if [ "${CONSOLE_SCREENSHOTS_TO_DOCS:-0}" = 1 ]; then
    mkdir -p docs
    for f in login overview jobs-failed job-attempts job-plan workers kinds overview-phone; do
        cp "$shots/$f.png" "docs/console-$f.png"
    done
    log "copied the screenshots to docs/"
fi
if grep -q '"level":"ERROR"' "$worker_log"; then
    log "the worker logged errors:"
    grep '"level":"ERROR"' "$worker_log" | head -20 >&2
    exit 1
fi
log "passed in $((SECONDS - started)) s"
