#!/usr/bin/env bash
# Runs Shroud on its defaults (config/shroud.toml, in-memory cache) in front of a demo upstream, with a
# development authorization server. Ctrl-C stops everything.
#   issuer (fake AS)  http://127.0.0.1:9090
#   demo upstream     http://127.0.0.1:7001
#   shroud            http://127.0.0.1:8080   (/api → upstream, needs scope "read")
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
cargo build --release --locked --bin shroud -p shroud -p shroud-testkit --bins
key=config/keys/phantom-es256.pem
if [[ ! -f $key ]]; then
  mkdir -p "$(dirname "$key")"
  ./target/release/shroud keygen --phantom-key es256 > "$key"
  chmod 600 "$key"
  echo ">> created phantom signing key $key"
fi
./target/release/shroud-demo-peers --issuer-addr 127.0.0.1:9090 --upstream-addr 127.0.0.1:7001 &
peers=$!
trap 'kill $peers 2>/dev/null || true' EXIT INT TERM
sleep 1
# The demo AS's client secret for Shroud; in production set it the same way, never in the file.
export SHROUD__INTROSPECTION__CLIENT_SECRET=${SHROUD__INTROSPECTION__CLIENT_SECRET:-gateway-secret}
./target/release/shroud serve --config config/shroud.toml
