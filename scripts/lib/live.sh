# Shared by the scripts that run a real worker against a scratch database
# (console-test.sh, live-prometheus.sh). Source it after `set -euo pipefail`
# and `cd` to the repository, with `log` defined. It sets:
#   bin        the debug plan-worker binary (built here)
#   server_url the PostgreSQL server of DATABASE_URL, without the database
#   db_url     the scratch database, created here and dropped at exit
# and offers free_port, wait_for, sql, start_mock, set_mock, start_worker,
# make_jobs and dump_logs. Every wait has a deadline.

target=${CARGO_TARGET_DIR:-target}
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
server_url="${base_url%/*}"
scratch_db="plan_worker_live_$$_$RANDOM"
db_url="$server_url/$scratch_db"
live_pids=()
live_logs=()

cargo build --quiet
bin="$target/debug/plan-worker"

live_cleanup() {
    local p
    for p in "${live_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${live_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    psql -q "$base_url" -c "drop database if exists $scratch_db with (force)" >/dev/null 2>&1 || true
}

psql -q "$base_url" -c "create database $scratch_db" >/dev/null
"$bin" migrate --database-url "$db_url" >/dev/null

# A free TCP port on 127.0.0.1 (bound and released by the kernel's choice).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 100 ms until it
# succeeds; fails naming WHAT after SECONDS.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${seconds}s waiting for: $what"
            return 1
        fi
        sleep 0.1
    done
}

# sql STATEMENT: one value (or rows, tab-separated) from the scratch database.
sql() {
    psql -qAtX -F $'\t' "$db_url" -c "$1"
}

# start_mock PORT SCRIPT: the mock LLM (`plan-worker mock-llm`).
start_mock() {
    local port=$1 script=$2 log_file
    log_file=$(mktemp /tmp/plan-worker-mock.XXXXXX.log)
    "$bin" mock-llm --port "$port" --mode "$script" >"$log_file" 2>&1 &
    live_pids+=($!)
    live_logs+=("$log_file")
    # Any HTTP answer means it listens (GET is answered 4xx by design).
    wait_for 20 "the mock LLM on port $port" curl -s -o /dev/null "http://127.0.0.1:$port/"
}

# set_mock PORT SCRIPT: the mock's answers from now on.
set_mock() {
    curl -fsS -X PUT --data "$2" "http://127.0.0.1:$1/_mock/script" >/dev/null
}

# start_worker LOG_FILE [VAR=VALUE...]: `plan-worker run` on the scratch
# database with the environment given; sets worker_pid. The caller waits
# for readiness (its METRICS_ADDR is in the environment it passes).
start_worker() {
    local log_file=$1
    shift
    env DATABASE_URL="$db_url" LOG_FORMAT=json RUST_LOG=warn "$@" "$bin" run >"$log_file" 2>&1 &
    worker_pid=$!
    live_pids+=("$worker_pid")
    live_logs+=("$log_file")
}

# make_jobs N KIND PROFILE_FILE [MAX_RETRIES]: N jobs of new users through
# the real create_plan_job, in one transaction.
make_jobs() {
    local n=$1 kind=$2 profile=$3 retries=${4:-3}
    psql -qAtX "$db_url" -v profile="$(cat "$profile")" >/dev/null <<SQL
-- In the select list, so that it runs once per row.
select count(*) from (
    select create_plan_job(gen_random_uuid(), :'profile'::jsonb, '$kind', $retries)
    from generate_series(1, $n)
) made;
SQL
}

# dump_logs: the tail of every service log, for a failed run's output.
dump_logs() {
    local f
    for f in "${live_logs[@]}"; do
        log "--- $f (last 30 lines)"
        tail -n 30 "$f" >&2 || true
    done
}
