#!/usr/bin/env bash
# Graphile Worker drain-throughput bench; see README.md.
#   scripts/peer-bench/run.sh --jobs 20000 --mode batched --json
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -d node_modules/graphile-worker || ! -d node_modules/pg ]]; then
  npm ci --no-audit --no-fund >&2
fi
exec node graphile.mjs "$@"
