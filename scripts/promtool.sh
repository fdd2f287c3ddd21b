#!/usr/bin/env bash
# Checks and unit-tests the alert rules with promtool:
#   scripts/promtool.sh                   promtool check rules + promtool test rules
#   scripts/promtool.sh path              print the path of a working promtool and exit
#   scripts/promtool.sh prometheus-path   print the path of a working prometheus
#                                         server (for scripts/live-prometheus.sh)
#
# promtool is taken from $PROMTOOL, else from PATH, else from a cache under
# target/promtool/. When none exists it is fetched from Debian's `prometheus`
# package WITHOUT installing it (no service, no user, no postinst): the .deb
# is downloaded with `apt-get download` and unpacked with `dpkg-deb -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'promtool.sh: %s\n' "$*" >&2; }

cache_dir="$PWD/target/promtool"
cached="$cache_dir/promtool"
cached_server="$cache_dir/prometheus"

works() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

# A subshell, so the EXIT trap removes the temporary directory however it
# ends. It is called in an `||` list, where `set -e` is off: every step
# checks its own status.
fetch_from_debian() (
    command -v apt-get >/dev/null 2>&1 || { log "no promtool and no apt-get: set PROMTOOL"; return 1; }
    command -v dpkg-deb >/dev/null 2>&1 || { log "no promtool and no dpkg-deb: set PROMTOOL"; return 1; }
    tmp=$(mktemp -d /tmp/promtool.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    log "fetching promtool from Debian's prometheus package (not installing it)"
    # apt-get download runs as the _apt user when it can: let it write here.
    chmod 0777 "$tmp"
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
        log "package index missing or stale: apt-get update"
        apt-get update >/dev/null || { log "apt-get update failed"; exit 1; }
        (cd "$tmp" && apt-get download prometheus >/dev/null) || { log "apt-get download prometheus failed"; exit 1; }
    fi
    deb=$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || { log "apt-get download produced no prometheus_*.deb"; return 1; }
    dpkg-deb -x "$deb" "$tmp/root" || exit 1
    [ -x "$tmp/root/usr/bin/promtool" ] || { log "the package has no usr/bin/promtool"; return 1; }
    mkdir -p "$cache_dir" && cp "$tmp/root/usr/bin/promtool" "$cached.tmp" && mv "$cached.tmp" "$cached"
    # The server too, from the same package (live-prometheus.sh runs it).
    if [ -x "$tmp/root/usr/bin/prometheus" ]; then
        cp "$tmp/root/usr/bin/prometheus" "$cached_server.tmp" && mv "$cached_server.tmp" "$cached_server"
    fi
)

find_prometheus() {
    if [ -n "${PROMETHEUS:-}" ]; then
        works "$PROMETHEUS" || { log "PROMETHEUS=$PROMETHEUS does not run"; return 1; }
        echo "$PROMETHEUS"
        return 0
    fi
    local p
    if p=$(command -v prometheus 2>/dev/null) && works "$p"; then echo "$p"; return 0; fi
    if works "$cached_server"; then echo "$cached_server"; return 0; fi
    fetch_from_debian || return 1
    works "$cached_server" || { log "the fetched package has no working prometheus"; return 1; }
    echo "$cached_server"
}

if [ "${1:-}" = prometheus-path ]; then
    find_prometheus
    exit $?
fi

find_promtool() {
    if [ -n "${PROMTOOL:-}" ]; then
        works "$PROMTOOL" || { log "PROMTOOL=$PROMTOOL does not run"; return 1; }
        echo "$PROMTOOL"
        return 0
    fi
    local p
    if p=$(command -v promtool 2>/dev/null) && works "$p"; then echo "$p"; return 0; fi
    if works "$cached"; then echo "$cached"; return 0; fi
    fetch_from_debian || return 1
    works "$cached" || { log "the fetched promtool does not run"; return 1; }
    echo "$cached"
}

promtool=$(find_promtool)

case "${1:-check}" in
path)
    echo "$promtool"
    ;;
check)
    log "using $promtool ($("$promtool" --version 2>&1 | head -n1))"
    "$promtool" check rules prometheus/alerts.yml
    "$promtool" test rules prometheus/tests/alerts_test.yml
    ;;
*)
    log "usage: $0 [check|path]"
    exit 2
    ;;
esac
