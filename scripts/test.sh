#!/usr/bin/env bash
# The test command: installs what the tests need (redis-server, build headers), then runs every test.
#   scripts/test.sh            all tests (unit, integration over real HTTP, Redis, CLI)
#   scripts/test.sh <filter>   only tests whose name contains <filter>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
ensure_debs redis-server=redis-server
exec cargo test --workspace --locked -- "$@"
