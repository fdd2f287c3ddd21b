#!/usr/bin/env bash
# Property-based API check: schemathesis (from PyPI, in a venv under
# target/) generates requests from the OpenAPI document the API serves and
# fails on any 5xx and any answer that breaks the document. The service
# runs (worker + API, offline generator) on a scratch database created on
# the server of DATABASE_URL (default 127.0.0.1:5432) and dropped after.
# Extra arguments go to `st run`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'api-fuzz.sh: %s\n' "$*" >&2; }

SCHEMATHESIS_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-target}
venv="$target/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$venv/bin/st" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet
bin="$target/debug/plan-worker"

base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="plan_worker_fuzz_$$"
server_url="${base_url%/*}"
psql -q "$base_url" -c "create database $db" >/dev/null
log_file=$(mktemp /tmp/plan-worker-fuzz.XXXXXX.log)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    psql -q "$base_url" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
secret="fuzz-secret-$(date +%s%N)"
DATABASE_URL="$server_url/$db" API_ADDR="127.0.0.1:$port" METRICS_ADDR="127.0.0.1:$((port + 1))" \
    SUPABASE_JWT_SECRET="$secret" LOG_FORMAT=json RUST_LOG=warn \
    "$bin" run >"$log_file" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/openapi.json" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$log_file" >&2; log "the service exited"; exit 1; }
    sleep 0.2
done
token=$(SUPABASE_JWT_SECRET="$secret" "$bin" token --ttl-seconds 7200)

log "fuzzing http://127.0.0.1:$port/v1 (service log: $log_file)"
status=0
"$venv/bin/st" run "http://127.0.0.1:$port/v1/openapi.json" \
    --url "http://127.0.0.1:$port" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth \
    --max-examples "${FUZZ_EXAMPLES:-40}" \
    --seed 1 \
    --no-color \
    "$@" || status=$?
if grep -q '"level":"ERROR"' "$log_file"; then
    log "the service logged errors:"
    grep '"level":"ERROR"' "$log_file" | head -20 >&2
    status=1
fi
exit $status
