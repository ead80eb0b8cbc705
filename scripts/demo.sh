#!/usr/bin/env bash
# The demo: installs what it needs, builds Shroud, and starts
#   - the dev IdP (scripts/dev-idp, oidc-provider)   http://127.0.0.1:9090
#   - the demo API (scripts/demo-api)                 http://127.0.0.1:7001
#   - Shroud with config/demo.toml                    http://127.0.0.1:8080  (the example SPA at /)
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
ensure_node
ensure_debs curl=curl
ensure_ports_free shroud=8080 dev-idp=9090 demo-api=7001
npm ci --prefix scripts/dev-idp --no-audit --no-fund --loglevel=error
cargo build --release --locked --bin shroud
key=config/keys/phantom-es256.pem
if [[ ! -f $key ]]; then
  mkdir -p "$(dirname "$key")"
  ./target/release/shroud keygen --phantom-key es256 > "$key"
  chmod 600 "$key"
  echo ">> created the phantom signing key $key"
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

node scripts/dev-idp/index.js & pids+=($!)
node scripts/demo-api/server.mjs 7001 & pids+=($!)
./target/release/shroud serve --config config/demo.toml & pids+=($!)

# Running means Shroud answers /readyz (its issuer's discovery and keys loaded) within the deadline, with
# every process still alive.
deadline=$((SECONDS + ${SHROUD_DEMO_READY_SECONDS:-60}))
until curl -fsS -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    echo "demo: a process exited before Shroud was ready (see its output above); stopping" >&2
    exit 1
  done
  if ((SECONDS >= deadline)); then
    echo "demo: Shroud did not answer http://127.0.0.1:8080/readyz within ${SHROUD_DEMO_READY_SECONDS:-60} s; stopping" >&2
    curl -sS http://127.0.0.1:8080/readyz >&2 || true
    exit 1
  fi
  sleep 0.2
done
cat <<'TEXT'

Shroud is running.
  Open http://127.0.0.1:8080/ : the example SPA (Log in → alice is logged in automatically).

  An opaque token swapped for a JWT:
    TOKEN=$(curl -s -u demo-client:demo-client-secret -d grant_type=client_credentials -d scope=read \
            http://127.0.0.1:9090/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    echo "$TOKEN"                                   # opaque
    curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/hello
    # → the demo API's answer shows the JWT it received from Shroud (iss https://shroud.local)

Ctrl-C stops everything.
TEXT
wait -n "${pids[@]}"
