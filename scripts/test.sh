#!/usr/bin/env bash
# The test command. Installs what the tests need (build headers, redis-server, Chromium, the Node packages
# of the dev IdP and of the e2e suite), then runs:
#   1. every Rust test (unit, integration over real HTTP with a fake AS, Redis, CLI);
#   2. the dev IdP's smoke test;
#   3. the end-to-end suite (tests/e2e): Shroud against the real dev IdP, Redis and headless Chromium.
# Usage:
#   scripts/test.sh            everything
#   scripts/test.sh <filter>   only Rust tests whose name contains <filter> (no e2e)
#   SHROUD_E2E=0 scripts/test.sh   skip the e2e suite
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
# redis-cli (redis-tools) assembles the test Redis Cluster; openssl makes the TLS test's private CA.
ensure_debs redis-server=redis-server redis-cli=redis-tools openssl=openssl
run_e2e=${SHROUD_E2E:-1}
[[ $# -gt 0 ]] && run_e2e=0
if [[ $run_e2e == 1 ]]; then
  ensure_node
  ensure_debs /usr/bin/chromium=chromium
  npm ci --prefix scripts/dev-idp --no-audit --no-fund --loglevel=error
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
status=0
set +e
cargo test --workspace --locked --all-targets -- "$@" 2>&1 | tee "$log/cargo.txt"
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
if [[ $run_e2e == 1 ]]; then
  # The e2e suites run target/debug/shroud: a failed build must not leave them a stale binary.
  if cargo build --locked --bin shroud; then
    for suite in scripts/dev-idp/test tests/e2e; do
      echo ">> node --test $suite"
      node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$log/$(basename "$suite").tap" "$suite"
      [[ $? == 0 ]] || status=1
    done
  else
    echo "cargo build --bin shroud failed: the e2e suites did not run" >&2
    status=1
  fi
fi
set -e
# One closing line over every runner.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"/cargo.txt $(ls "$log"/*.tap 2>/dev/null)
exit "$status"
