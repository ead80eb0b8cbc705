#!/usr/bin/env bash
# API schema testing: runs schemathesis (PyPI, pinned below) against a running Shroud, checking every
# answer of the operations in openapi.yaml against the document. Not part of CI's pass/fail: it is slow
# and needs PyPI.
#
# It installs what it needs (build headers, Node.js for the dev IdP, python3-venv), creates a virtual
# environment with schemathesis under .cache/, builds Shroud, and starts on free loopback ports:
#   - the dev IdP (scripts/dev-idp), so the OAuth Agent has a live authorization server;
#   - Shroud with the token handler and [server] openapi on (the config is written to a temporary dir).
# Then it logs a user in as an SPA would (scripts/schemathesis/login.py), so that schemathesis can send
# real session cookies, and runs `schemathesis run` against the main listener's operations with every
# check. Everything it started is stopped on exit. Logs and reports go to artifacts/schemathesis/.
#
# Usage:
#   scripts/schemathesis.sh                      every phase, 25 examples per operation
#   SCHEMATHESIS_MAX_EXAMPLES=100 scripts/schemathesis.sh
#   scripts/schemathesis.sh --include-tag oauth-agent     extra arguments go to `schemathesis run`
#
# The admin API is on its own listener: its operations (tag `admin`) run in a second pass against it,
# with the admin token.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh

SCHEMATHESIS_VERSION=4.32.5
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
venv=.cache/schemathesis-$SCHEMATHESIS_VERSION
out=artifacts/schemathesis
# The SPA's origin and callback: the token handler's defaults, which the dev IdP's webapp client expects.
origin=http://127.0.0.1:8080
redirect_uri=$origin/callback

ensure_build_deps
ensure_node
ensure_python_venv
ensure_debs curl=curl
if [[ ! -x $venv/bin/schemathesis ]]; then
  echo ">> installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
npm ci --prefix scripts/dev-idp --no-audit --no-fund --loglevel=error
cargo build --locked --bin shroud
shroud_bin=${CARGO_TARGET_DIR:-target}/debug/shroud

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$out"
mkdir -p "$out"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
idp_port=$(free_port)
shroud_port=$(free_port)
shroud_url=http://127.0.0.1:$shroud_port
admin_port=$(free_port)
admin_url=http://127.0.0.1:$admin_port
admin_token=$("$shroud_bin" keygen)

"$shroud_bin" keygen --phantom-key es256 > "$work/phantom.pem"
cat > "$work/shroud.toml" <<TOML
[server]
listen = "127.0.0.1:$shroud_port"
workers = 2
openapi = true

[issuer]
url = "http://127.0.0.1:$idp_port"

[introspection]
client_id = "gateway"
client_secret = "gateway-secret"

[phantom]
signing_key_file = "$work/phantom.pem"

[token_handler]
enabled = true
client_id = "webapp"
client_secret = "webapp-secret"
redirect_uri = "$redirect_uri"
trusted_web_origins = ["$origin"]
cookie_encryption_keys = ["$("$shroud_bin" keygen)"]
cookie_secure = false
# Schemathesis sends hundreds of calls with the one logged-in session: without this, most would get 429.
agent_rate = "off"

[admin]
listen = "127.0.0.1:$admin_port"
TOML

DEV_IDP_PORT=$idp_port \
  DEV_IDP_BACKCHANNEL_URI=$shroud_url/oauth-agent/backchannel-logout \
  node scripts/dev-idp/index.js > "$out/dev-idp.log" 2>&1 & pids+=($!)
SHROUD__ADMIN__TOKEN=$admin_token RUST_LOG=info "$shroud_bin" serve --config "$work/shroud.toml" > "$out/shroud.log" 2>&1 & pids+=($!)

ready=0
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$shroud_url/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
if [[ $ready != 1 ]]; then
  echo "Shroud did not become ready; see $out/shroud.log and $out/dev-idp.log" >&2
  exit 1
fi

# A real session, so that the cookie-protected operations are reached with valid cookies too.
session=$("$venv/bin/python" scripts/schemathesis/login.py "$shroud_url" "$origin" "$redirect_uri")
eval "$session"
export SHROUD_ORIGIN=$origin

# Runs schemathesis on one listener: run_schemathesis NAME BASE_URL [schemathesis run arguments...]
status=0
run_schemathesis() {
  local name=$1 url=$2
  shift 2
  echo ">> schemathesis $SCHEMATHESIS_VERSION: $name at $url ($max_examples examples per operation)"
  "$venv/bin/schemathesis" --config-file scripts/schemathesis/schemathesis.toml \
    run "$shroud_url/.well-known/openapi.yaml" \
    --url "$url" \
    --checks all \
    --max-examples "$max_examples" \
    --workers 1 \
    --report junit --report-dir "$out/report-$name" \
    "$@" || status=1
}

run_schemathesis main "$shroud_url" --exclude-tag admin "$@"
run_schemathesis admin "$admin_url" --include-tag admin -H "Authorization: Bearer $admin_token" "$@"

echo ">> logs and reports: $out/"
exit "$status"
