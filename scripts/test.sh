#!/usr/bin/env bash
# The test command: installs what the tests need (redis-server, build headers), then runs every test.
#   scripts/test.sh            all tests (unit, integration over real HTTP, Redis, CLI)
#   scripts/test.sh <filter>   only tests whose name contains <filter>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
ensure_debs redis-server=redis-server
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --all-targets -- "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
